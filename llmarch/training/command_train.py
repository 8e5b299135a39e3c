"""``python -m llmarch train``: every trainer option as a flag.

A new run: ``--preset``, ``--data`` and ``--out``. A resumed one: ``--resume --out DIR`` -- the
options are read back from ``DIR/run.json``; a flag given again overrides one (``--steps`` to
train longer), except those that define the model, which must stay the same.
Under ``torchrun --nproc_per_node=N`` the same command trains data-parallel.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from .train_config import DTYPES, TrainConfig

__all__ = ["add_arguments", "run"]

# TrainConfig field -> help (the default is appended)
_TRAIN_HELP = {
    "seq_len": "tokens per training sequence (the model's context must hold them)",
    "batch_size": "sequences per micro-step, over all processes (each of N processes takes 1/N)",
    "grad_accum": "micro-steps per optimizer step (effective batch = batch-size x grad-accum)",
    "steps": "optimizer steps of the whole run (the cosine schedule ends here)",
    "lr": "peak learning rate (after warm-up)",
    "min_lr_ratio": "the cosine decays to lr x this",
    "warmup_steps": "linear warm-up steps",
    "weight_decay": "AdamW weight decay of the weight matrices (never norms, biases, embeddings)",
    "beta1": "AdamW beta1",
    "beta2": "AdamW beta2",
    "eps": "AdamW epsilon",
    "grad_clip": "clip the gradient norm to this (0: no clipping)",
    "dtype": "autocast precision: auto = bf16 (or fp16) on a GPU, fp32 on CPU",
    "device": "where to train: auto = cuda when available",
    "seed": "seed of initialisation, batches, dropout and masking",
    "eval_every": "evaluate every N steps (0: only at the end)",
    "eval_batches": "validation batches per evaluation",
    "save_every": "write a checkpoint every N steps (0: only at the end)",
    "keep_checkpoints": "checkpoint folders to keep (the newest)",
    "log_every": "print a progress line every N steps when the output is not a terminal",
    "strategy": "under torchrun: ddp (replicas) or fsdp (FSDP2 fully_shard: sharded parameters)",
}
_CHOICES = {"dtype": DTYPES, "device": ("auto", "cpu", "cuda"), "strategy": ("ddp", "fsdp")}
_RUN_DEFAULTS = {"objective": None, "overrides": [], "val_fraction": 0.1, "tokenizer": "char", "vocab_size": None,
                 "tokenizer_text": "train", "mlm_probability": 0.15, "noise_density": 0.15, "mean_span_length": 3.0,
                 "label_smoothing": 0.0}
_MODEL_KEYS = ("preset", "overrides", "objective", "tokenizer", "vocab_size", "tokenizer_text", "mlm_probability",
               "noise_density", "mean_span_length", "label_smoothing", "data", "val_fraction")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of ``train``. Defaults are applied in ``run`` (so a resume knows what was given)."""
    parser.argument_default = argparse.SUPPRESS
    run = parser.add_argument_group("run")
    run.add_argument("--preset", help="model preset: gpt2, llama-tiny, bert-base, t5-small, ... (a new run)")
    run.add_argument("--set", dest="overrides", action="append", metavar="KEY=VALUE",
                     help="override a model config field, e.g. --set num_layers=2 --set d_model=128 (repeatable)")
    run.add_argument("--objective", choices=("causal_lm", "mlm", "span_corruption", "prefix_lm", "unilm", "glm"),
                     help="training objective (default: the preset family's: causal_lm, mlm, span_corruption); "
                          "prefix_lm, unilm and glm train a decoder-only preset")
    run.add_argument("--data", help="corpus name (tang300, psalms) or a UTF-8 text file")
    run.add_argument("--val-fraction", type=float, help="share of documents held out for validation (default 0.1)")
    run.add_argument("--tokenizer", choices=("char", "bpe"), help="tokenizer to train (default char)")
    run.add_argument("--vocab-size", type=int, help="BPE vocabulary size (default 1024)")
    run.add_argument("--tokenizer-text", choices=("train", "all"),
                     help="text the tokenizer learns from: the training split (default) or all of it -- for char, "
                          "validation characters then have ids instead of <unk>; only the character set leaks")
    run.add_argument("--out", required=True, help="run folder: checkpoints, log.jsonl, loss.png")
    run.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    run.add_argument("--until", type=int, metavar="STEP",
                     help="stop after this step, with a checkpoint (the schedule still runs to --steps); "
                          "continue later with --resume")
    run.add_argument("--progress", choices=("auto", "bar", "lines"),
                     help="progress display: a bar on a terminal (auto), always a bar, or plain lines")
    run.add_argument("--no-plot", dest="plot", action="store_false", help="do not draw loss.png")
    objective = parser.add_argument_group("objective")
    objective.add_argument("--mlm-probability", type=float,
                           help="mlm, unilm: share of tokens predicted (default 0.15)")
    objective.add_argument("--noise-density", type=float,
                           help="span_corruption, glm: share corrupted / blanked (default 0.15)")
    objective.add_argument("--mean-span-length", type=float,
                           help="span_corruption, glm: mean span length (default 3)")
    objective.add_argument("--label-smoothing", type=float, help="span_corruption: label smoothing (default 0)")
    trainer = parser.add_argument_group("trainer")
    for field in dataclasses.fields(TrainConfig):
        if field.name == "plot":
            continue
        flag = "--" + field.name.replace("_", "-")
        trainer.add_argument(flag, type={"int": int, "float": float, "str": str}[field.type],
                             choices=_CHOICES.get(field.name),
                             help=f"{_TRAIN_HELP[field.name]} (default {field.default})")


def _options(args: argparse.Namespace) -> dict:
    """defaults < run.json of a resumed run < the flags given now."""
    given = {k: v for k, v in vars(args).items() if k not in ("command", "handler")}
    out = Path(given["out"])
    options = {**_RUN_DEFAULTS, **TrainConfig().to_dict()}
    if given.get("resume"):
        run_file = out / "run.json"
        if not run_file.is_file():
            raise ValueError(f"--resume needs a run in --out, got {str(out)!r} with no run.json (no checkpoint yet)")
        saved = json.loads(run_file.read_text(encoding="utf-8"))
        options.update(saved.get("options", {}))
        for key in _MODEL_KEYS:
            if key in given and key != "data" and given[key] != saved.get("options", {}).get(key):
                raise ValueError(f"--out {out} holds a run of another model: {key} is "
                                 f"{saved.get('options', {}).get(key)!r} there, {given[key]!r} now; resume with "
                                 "the same model options, or choose a new --out folder")
    elif (out / "run.json").exists():
        raise ValueError(f"--out {out} already holds a run; pass --resume to continue it, or choose another --out")
    options.update(given)
    for key in ("preset", "data"):
        if options.get(key) is None:
            raise ValueError(f"--{key} is required for a new run, got none")
    return options


def run(args: argparse.Namespace) -> int:
    """Train; returns the exit code (0, 130 after Ctrl-C, 143 after SIGTERM)."""
    from ..models.presets import get_config
    from .distributed import init_distributed
    from .objectives import make_objective
    from .run_setup import build_model, parse_override, prepare_data
    from .tokenizers import load_tokenizer
    from .trainer import Trainer, TrainingInterrupted

    options = _options(args)
    config = TrainConfig.from_dict({k: options[k] for k in TrainConfig().to_dict()})
    out = Path(options["out"])
    overrides = dict(parse_override(item) for item in options["overrides"])
    model_config = get_config(options["preset"], **overrides)
    if model_config.max_positions is not None and config.seq_len > model_config.max_positions:
        raise ValueError(f"seq_len must be <= the model's context max_positions = {model_config.max_positions}, "
                         f"got {config.seq_len}")
    name = make_objective(options["objective"], model_config.architecture).name
    tokenizer, train_ids, val_ids = prepare_data(
        options["data"], val_fraction=options["val_fraction"], tokenizer=load_tokenizer(out) if options.get("resume")
        else None, tokenizer_kind=options["tokenizer"], vocab_size=options["vocab_size"],
        tokenizer_text=options["tokenizer_text"])
    objective_options = {"mlm": {"mlm_probability": options["mlm_probability"]},
                         "unilm": {"mlm_probability": options["mlm_probability"]},
                         "glm": {"mask_ratio": options["noise_density"],
                                 "mean_span_length": options["mean_span_length"]},
                         "span_corruption": {"noise_density": options["noise_density"],
                                             "mean_noise_span_length": options["mean_span_length"],
                                             "label_smoothing": options["label_smoothing"]}}
    model, objective = build_model(options["preset"], base_vocab=tokenizer.vocab_size, seq_len=config.seq_len,
                                   eos_token_id=tokenizer.eos_token_id, objective=name,
                                   objective_options=objective_options.get(name), overrides=overrides,
                                   seed=config.seed)
    context = init_distributed(config.device)
    bar = {"auto": None, "bar": True, "lines": False}[options.get("progress", "auto")]
    saved_options = {k: v for k, v in options.items() if k not in ("resume", "progress", "out", "until")}
    trainer = Trainer(model, objective, train_ids, val_ids, config=config, base_vocab=tokenizer.vocab_size,
                      out_dir=out, tokenizer=tokenizer, context=context, run_info={"options": saved_options},
                      bar=bar)
    if context.is_main:
        params = sum(p.numel() for p in model.parameters())
        print(f"{options['preset']} ({type(model).__name__}, {params:,} parameters), objective {objective.name}, "
              f"{train_ids.numel():,} training tokens, vocabulary {tokenizer.vocab_size} (+"
              f"{model.config.vocab_size - tokenizer.vocab_size} special), {context.world_size} process(es)"
              f"{f' ({config.strategy})' if context.distributed else ''} on {context.device}, dtype "
              f"{config.dtype}", file=sys.stderr, flush=True)
    try:
        if options.get("resume"):
            step = trainer.resume()
            if context.is_main:
                print(f"resumed from step {step}", file=sys.stderr, flush=True)
        records = trainer.fit(until=options.get("until"))
    except TrainingInterrupted as stop:
        context.close()
        return stop.exit_code
    evals = [r for r in records if "eval_loss" in r]
    if context.is_main:
        losses = [r["loss"] for r in records if "loss" in r]
        summary = {"step": trainer.step, "loss": losses[-1] if losses else None, **(evals[-1] if evals else {}),
                   "out": str(out)}
        print(json.dumps(summary, ensure_ascii=False))
    context.close()
    return 0
