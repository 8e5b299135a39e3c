"""``python -m llmarch bench train``: training-step throughput against Hugging Face GPT-2.

One run measures, for two configurations (GPT-2 small's shapes with fewer layers, and a tiny
model), the tokens per second of one optimizer step of

* **llmarch**: ``Trainer.train_step`` -- what ``python -m llmarch train`` runs: the causal-LM
  objective (forward with ``targets``: the head and the fp32 cross-entropy in one step,
  ``llmarch.nn.linear_cross_entropy``), backward, gradient clipping at 1.0, ``torch.optim.AdamW``
  over ``build_optimizer``'s two groups (weight decay on the weight matrices only; the fused
  kernel), the warm-up + cosine schedule;
* **hf**: Hugging Face ``GPT2LMHeadModel`` of the same configuration with the same weights
  (ours are loaded from it through ``llmarch.interop.gpt2``), its own loss
  (``labels=``, ``shift_labels=``: the same targets as ours; ``use_cache=False``), and the
  same loop written out: the same ``AdamW`` with the same groups and settings, the same
  clipping and schedule, the same batches (``RandomWindows``) in the same order;
* both again with the loss (model forward and cross-entropy) compiled by ``torch.compile``
  (Hugging Face's as an extra row: if it cannot compile here, the row says why); the first
  step, compilation included, is shown separately.

The same precision (fp32), dropout 0 on both sides (so both compute the same function), the
same number of warm-up and timed steps; rows are timed in interleaved rounds, each round starting
with the next row (A B, B A, ... for two rows: drift cancels), with the machine's fp32 matmul
peak measured as one more row of the same rounds. A row's time is its fastest round (other
processes only ever add time; ``benchkit``'s rule), the median is printed beside it.

A speed is printed only if the implementations train alike: every row's first-step loss (same
weights, same batch) must agree with Hugging Face's within ``FIRST_ATOL``, its first gradient
norm within ``GRAD_NORM_RTOL``, and every later step's loss (all warm-up and timed steps) within
``LATER_ATOL``; otherwise the benchmark prints where they differ, refuses, and exits 1.

Model FLOPs of a step (PaLM, Chowdhery et al. 2022, appendix B): ``(6 N + 12 L H Q T)`` per
token, where ``N`` counts the parameters that multiply activations in a matmul -- every layer's
weight matrices and the LM head (tied to the token embeddings, but its matmul runs); the
embedding lookups (gathers), biases and norms are not counted -- and ``12 L H Q T`` is the
attention's ``q k^T`` and ``p v`` (forward and backward, no discount for the causal mask) over
``L`` layers, ``H`` heads of size ``Q`` and sequence length ``T``. (Kaplan et al. 2020, table 1,
list the de-embedding's ``2 d_model n_vocab`` forward FLOPs per token but leave them, with the
embedding parameters, out of ``C = 6 N``: right for large models, but this model's head is most
of its compute.) The fraction of the measured matmul peak is the model-FLOPs utilisation: the
optimizer, norms, softmax, the loss and the embedding's gradient are work it does not credit.

``--quick`` shrinks the models and the rounds to a smoke test of a few seconds, without the
compiled rows.
"""

from __future__ import annotations

import copy
import statistics
import time
from dataclasses import dataclass

import torch

from .benchkit import REFUSED, format_table, interleaved_times
from .machine import machine_summary

__all__ = ["run", "train_flops", "matmul_params", "CASES", "FIRST_ATOL", "GRAD_NORM_RTOL", "LATER_ATOL"]

#: fp32, same weights and batch: the two implementations' first losses differ by ~1e-6.
FIRST_ATOL = 1e-4
#: ... and their first gradient norms (before clipping) by ~1e-6 relative.
GRAD_NORM_RTOL = 1e-3
#: after AdamW steps the rounding differences of two kernels' orders grow a little.
LATER_ATOL = 2e-3
TARGET_VS_HF, TARGET_PEAK = 1.1, 0.60


@dataclass(frozen=True)
class Case:
    """One configuration: ``gpt2`` preset overrides, batch and sequence length."""

    label: str
    overrides: dict
    batch: int
    seq: int


_SMALL_VOCAB = {"bos_token_id": None, "eos_token_id": None}  # GPT-2's 50256 is not an id of a smaller vocabulary
CASES = {
    False: (Case("gpt2-shaped (2 layers)", {"num_layers": 2}, batch=4, seq=128),
            Case("tiny", {"num_layers": 2, "d_model": 128, "num_heads": 4, "d_ff": 512, "vocab_size": 1024,
                          "max_positions": 256, **_SMALL_VOCAB}, batch=8, seq=64)),
    True: (Case("gpt2-shaped (quick: 1 layer, d=128, vocab 4096)",
                {"num_layers": 1, "d_model": 128, "num_heads": 4, "d_ff": 512, "vocab_size": 4096,
                 "max_positions": 64, **_SMALL_VOCAB}, batch=2, seq=32),
           Case("tiny (quick)", {"num_layers": 1, "d_model": 32, "num_heads": 2, "d_ff": 64, "vocab_size": 128,
                                 "max_positions": 32, **_SMALL_VOCAB}, batch=2, seq=16)),
}


def matmul_params(config) -> int:
    """Parameters that multiply activations in a matmul: each layer's q, k, v, output and
    feed-forward matrices, and the LM head (``vocab x d_model``, counted once even when tied).

    >>> from llmarch.models.presets import get_config
    >>> matmul_params(get_config("gpt2")) / 1e6    # 12 x 7.08M + 38.6M
    123.532032
    """
    d, attn, kv = config.d_model, config.num_heads * config.head_size, config.kv_heads * config.head_size
    ffn = (3 if config.gated else 2) * d * config.d_ff
    return config.num_layers * (2 * d * attn + 2 * d * kv + ffn) + config.vocab_size * d


def train_flops(config, batch: int, seq: int) -> int:
    """Model FLOPs of one training step: ``tokens x (6 N + 12 L H Q T)`` (PaLM, appendix B).

    >>> from llmarch.models.presets import get_config
    >>> config = get_config("gpt2", num_layers=1, d_model=8, num_heads=2, d_ff=32, vocab_size=10)
    >>> train_flops(config, batch=1, seq=4) == 4 * (6 * (4 * 8 * 8 + 2 * 8 * 32 + 10 * 8) + 12 * 1 * 8 * 4)
    True
    """
    attention = 12 * config.num_layers * config.num_heads * config.head_size * seq
    return batch * seq * (6 * matmul_params(config) + attention)


class HFSteps:
    """Hugging Face's side: ``Trainer.train_step``'s loop written out around ``loss_fn(window)``."""

    def __init__(self, model, loss_fn, windows, train_config):
        from ..training.optim import build_optimizer
        from ..training.schedule import warmup_cosine_scheduler

        c = train_config
        self.model, self.loss_fn, self.windows, self.grad_clip, self.index = model, loss_fn, windows, c.grad_clip, 0
        self.optimizer = build_optimizer(model, lr=c.lr, weight_decay=c.weight_decay, betas=(c.beta1, c.beta2),
                                         eps=c.eps)
        self.scheduler = warmup_cosine_scheduler(self.optimizer, total_steps=c.steps, warmup_steps=c.warmup_steps,
                                                 min_lr_ratio=c.min_lr_ratio)

    def train_step(self) -> dict:
        self.model.train()
        window = self.windows.batch_at(self.index)
        loss = self.loss_fn(window)
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.scheduler.step()
        self.index += 1
        return {"loss": float(loss.detach()), "grad_norm": float(norm)}


class _CompiledLoss:
    """An objective whose ``loss`` (the model's forward and the cross-entropy) runs compiled."""

    def __init__(self, objective, model_config, base_vocab):
        self.objective = objective

        def loss(model, window):
            return objective.loss(model, window, config=model_config, base_vocab=base_vocab)[0]

        self._loss = torch.compile(loss)

    def loss(self, model, window, *, config, base_vocab, generator=None):
        return self._loss(model, window), window[:, 1:].numel()

    def __getattr__(self, name):  # name, to_dict ... of the wrapped objective
        return getattr(self.objective, name)


def _group_sizes(optimizer) -> list[tuple[int, float]]:
    return [(sum(p.numel() for p in g["params"]), g["weight_decay"]) for g in optimizer.param_groups]


def _build_rows(case: Case, quick: bool, steps: int):
    """The rows of one case (name -> an object with ``train_step()``) and the model config."""
    from transformers import GPT2Config, GPT2LMHeadModel

    from ..interop.gpt2 import config_to_hf, state_dict_from_hf
    from ..models.decoder_only import DecoderOnlyLM
    from ..models.presets import get_config
    from ..training.objectives import CausalLM
    from ..training.train_config import TrainConfig
    from ..training.trainer import Trainer

    config = get_config("gpt2", dropout=0.0, attention_dropout=0.0, **case.overrides)
    torch.manual_seed(0)
    hf_config = {k: v for k, v in config_to_hf(DecoderOnlyLM(config)).items()
                 if k not in ("architectures", "model_type")}
    hf = GPT2LMHeadModel._from_config(GPT2Config(**hf_config), attn_implementation="sdpa")
    hf.loss_type = "ForCausalLM"
    initial = copy.deepcopy(hf.state_dict())
    ids = torch.randint(config.vocab_size, (max(20_000, 4 * case.batch * (case.seq + 1)),),
                        generator=torch.Generator().manual_seed(0))
    train_config = TrainConfig(seq_len=case.seq, batch_size=case.batch, steps=steps, warmup_steps=min(2, steps),
                               dtype="fp32", device="cpu", eval_every=0, save_every=0, plot=False)

    def ours(compiled: bool):
        model = DecoderOnlyLM(config)
        model.load_state_dict(state_dict_from_hf(initial, config), strict=True)
        objective = CausalLM()
        if compiled:
            objective = _CompiledLoss(objective, config, config.vocab_size)
        return Trainer(model, objective, ids, None, config=train_config, base_vocab=config.vocab_size, bar=False)

    def theirs(model, compiled: bool, windows):
        def loss(window):
            targets = window[:, 1:].contiguous()
            return model(input_ids=window[:, :-1], labels=targets, shift_labels=targets, use_cache=False).loss

        return HFSteps(model, torch.compile(loss) if compiled else loss, windows, train_config)

    trainer = ours(False)
    rows = {"llmarch": trainer, "hf": theirs(hf, False, trainer.windows)}
    groups = [_group_sizes(rows[name].optimizer) for name in ("llmarch", "hf")]
    if groups[0] != groups[1] or rows["llmarch"].optimizer.defaults != rows["hf"].optimizer.defaults:
        raise RuntimeError(f"the two AdamW differ: groups (numel, decay) {groups[0]} vs {groups[1]}, settings "
                             f"{rows['llmarch'].optimizer.defaults} vs {rows['hf'].optimizer.defaults}")
    if not quick:
        rows["llmarch compiled"] = ours(True)
        hf_copy = GPT2LMHeadModel._from_config(GPT2Config(**hf_config), attn_implementation="sdpa")
        hf_copy.loss_type = "ForCausalLM"
        hf_copy.load_state_dict(initial)
        rows["hf compiled"] = theirs(hf_copy, True, trainer.windows)
    return rows, config


def _check_training(records: dict[str, list[dict]], live: list[str]) -> list[str]:
    """Where a row's losses (or first gradient norm) leave Hugging Face's by more than the tolerances."""
    problems = []
    reference = records["hf"]
    for name in live:
        first, ref = records[name][0]["grad_norm"], reference[0]["grad_norm"]
        if not abs(first - ref) <= GRAD_NORM_RTOL * abs(ref):
            problems.append(f"{name} step 1: gradient norm {first:.6g} vs hf {ref:.6g} (relative difference "
                            f"{abs(first - ref) / abs(ref):.1e} > {GRAD_NORM_RTOL:g})")
        for step, (record, ref_record) in enumerate(zip(records[name], reference), start=1):
            loss, ref_loss, atol = record["loss"], ref_record["loss"], FIRST_ATOL if step == 1 else LATER_ATOL
            if not abs(loss - ref_loss) <= atol:
                problems.append(f"{name} step {step}: loss {loss:.6f} vs hf {ref_loss:.6f} (|difference| "
                                f"{abs(loss - ref_loss):.2e} > {atol:g})")
                break
    return problems


def _run_case(case: Case, quick: bool, check_steps: int, rounds: int, peak_size: int) -> tuple[list[str], dict | None]:
    """Check, then time one case; returns the printed lines and the figures (``None``: refused)."""
    steps = check_steps + rounds
    rows, config = _build_rows(case, quick, steps)
    tokens = case.batch * case.seq
    lines = [f"{case.label}: {config.num_layers} layers, d_model {config.d_model}, {config.num_heads} heads, "
             f"d_ff {config.d_ff}, vocab {config.vocab_size} (tied head); batch {case.batch} x {case.seq} tokens"]
    optimizer = rows["llmarch"].optimizer
    settings = {k: optimizer.defaults[k] for k in ("lr", "betas", "eps", "fused")}
    lines.append(f"AdamW {settings}, weight decay {[g['weight_decay'] for g in optimizer.param_groups]} on "
                 f"{[sum(p.numel() for p in g['params']) for g in optimizer.param_groups]} parameters (both sides)")
    records: dict[str, list[dict]] = {name: [] for name in rows}
    first_call, notes = {}, dict.fromkeys(rows, "")
    # warm-up: the same number of untimed steps per row; the first one is timed on its own (compilation)
    for name, stepper in rows.items():
        for i in range(check_steps):
            start = time.perf_counter()
            try:
                records[name].append(stepper.train_step())
            except Exception as error:
                if name != "hf compiled":  # Hugging Face's compiled path is an extra; ours must run
                    raise
                notes[name] = f"cannot run here: {type(error).__name__}: {str(error).splitlines()[0][:120]}"
                break
            if i == 0:
                first_call[name] = time.perf_counter() - start
    live = [name for name in rows if not notes[name]]
    a, b = torch.randn(peak_size, peak_size), torch.randn(peak_size, peak_size)
    fns = {name: (lambda s=rows[name], r=records[name]: r.append(s.train_step())) for name in live}
    fns["peak"] = lambda: torch.mm(a, b)
    times = interleaved_times(fns, rounds, warmup=False)

    # the same function trained the same way: Hugging Face's losses at every step, its first gradient norm
    problems = _check_training(records, live)
    reference = [r["loss"] for r in records["hf"]]
    worst = {name: max(abs(r["loss"] - ref) for r, ref in zip(records[name], reference)) for name in live}
    lines.append(f"losses, step 1 -> {steps}: hf {reference[0]:.4f} -> {reference[-1]:.4f}; max |difference| from "
                 "hf: " + ", ".join(f"{name} {worst[name]:.1e}" for name in live if name != "hf")
                 + f" (tolerance {FIRST_ATOL:g} at step 1, {LATER_ATOL:g} after; first gradient norms within "
                 f"{GRAD_NORM_RTOL:g} relative)")
    if problems:
        lines.append(f"{REFUSED}: the implementations do not train alike, so their times would not measure the same "
                     "work; no speed is printed. " + "; ".join(problems))
        return lines, None

    peak = 2 * peak_size**3 / min(times["peak"])  # the machine's peak: its fastest matmul
    flops = train_flops(config, case.batch, case.seq)
    best = {name: min(times[name]) for name in live}
    table = []
    for name in rows:
        if name not in best:
            table.append([name, "-", "-", "-", "-", "-", "-", "", notes[name]])
            continue
        t = best[name]
        note = f"{best['hf compiled'] / t:.2f}x hf compiled" if name == "llmarch compiled" and "hf compiled" in \
            best else notes[name]
        table.append([name, f"{1e3 * t:.1f}", f"{1e3 * statistics.median(times[name]):.1f}", f"{tokens / t:.0f}",
                      f"{flops / t / 1e9:.1f}", f"{100 * flops / t / peak:.1f}%", f"{best['hf'] / t:.2f}x",
                      f"{first_call[name]:.2f}", note])
    lines.append(format_table(["row", "ms/step", "median", "tokens/s", "model GFLOP/s", "% peak", "vs hf",
                               "first step s", "note"], table))
    lines.append(f"model FLOPs/step {flops / 1e9:.2f} G = {tokens} tokens x (6 x {matmul_params(config) / 1e6:.2f}M "
                 f"matmul params + 12 x {config.num_layers} layers x {config.num_heads * config.head_size} x "
                 f"{case.seq}); fp32 matmul peak {peak / 1e9:.1f} GFLOP/s (the fastest of {rounds} {peak_size}^3 "
                 "torch.mm in the same rounds)")
    return lines, {"vs_hf": best["hf"] / best["llmarch"], "peak_fraction": flops / best["llmarch"] / peak}


def run(args) -> int:
    quick = bool(getattr(args, "quick", False))
    check_steps, rounds, peak_size = (2, 2, 256) if quick else (3, 7, 2048)
    print(machine_summary())
    print("one training step, fp32, dropout 0 on both sides, same weights, batches, AdamW and schedule: llmarch = "
          "Trainer.train_step (causal-LM loss, backward, clip 1.0, AdamW step, schedule step), hf = "
          "GPT2LMHeadModel(labels=..., shift_labels=..., use_cache=False) in the same loop; "
          f"{check_steps} untimed steps per row, then the fastest of {rounds} interleaved rounds; 'first step s' "
          "includes compilation (Inductor keeps compiled code in an on-disk cache: a repeated run compiles "
          "faster)" + ("; --quick: small models, no compiled rows" if quick else ""))
    results, code = [], 0
    for case in CASES[quick]:
        lines, figures = _run_case(case, quick, check_steps, rounds, peak_size)
        print("\n" + "\n".join(lines))
        if figures is None:
            code = 1
        results.append((case, figures))
    if code or quick:  # --quick: not the configuration the targets are about
        return code
    gpt2, figures = results[0]
    vs_hf, fraction = figures["vs_hf"], figures["peak_fraction"]
    print(f"\ntargets at {gpt2.label}: llmarch >= {TARGET_VS_HF}x hf: {vs_hf:.2f}x "
          f"({'met' if vs_hf >= TARGET_VS_HF else 'NOT met'}); >= {100 * TARGET_PEAK:.0f}% of the matmul peak: "
          f"{100 * fraction:.1f}% ({'met' if fraction >= TARGET_PEAK else 'NOT met'})")
    return 0
