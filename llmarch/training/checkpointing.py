"""Checkpoints that resume exactly, and survive a kill at any moment.

A run folder ``OUT`` looks like this::

    OUT/config.json, model.safetensors,   the latest model: a Hugging Face-style folder, so
        tokenizer.json, ...               `llmarch.from_pretrained(OUT)` and `generate OUT` read it
    OUT/trainer_state.pt                  optimizer, scheduler, step, RNG states of the latest one
    OUT/run.json                          the run's options, model config and objective
    OUT/log.jsonl, OUT/loss.png           one JSON line per step / evaluation; the loss curve
    OUT/checkpoints/step-00000200/        the same files, one complete folder per kept checkpoint

A checkpoint is written to ``checkpoints/.tmp-step-N`` and then *renamed* to ``step-N``: the
rename is atomic, so a folder ``step-N`` is always complete, whatever moment the process dies.
Resuming reads the newest complete one. The files at the top of ``OUT`` are hard links to it
(no extra disk), replaced one by one.

Model weights are safetensors (``save_pretrained``); the trainer state is read back with
``torch.load(weights_only=True)``, which refuses arbitrary pickled objects. The optimizer state
is stored *unsharded* and keyed by parameter name (``torch.distributed.checkpoint.state_dict``),
so a checkpoint written by N processes (DDP or FSDP) resumes in any number of processes.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn

from ..interop import from_pretrained, save_pretrained
from ..interop.hf import CONVERTERS

__all__ = ["save_model", "save_checkpoint", "latest_checkpoint", "load_checkpoint", "check_same_model",
           "STATE_FILE", "RUN_FILE", "CHECKPOINTS"]

STATE_FILE, RUN_FILE, CHECKPOINTS = "trainer_state.pt", "run.json", "checkpoints"
_STEP_DIR = re.compile(r"step-(\d+)$")
# formats to try per family, the most widely readable first (llmarch's own format reads anything)
_MODEL_TYPES = {"decoder_only": ("gpt2", "openai-gpt", "llama", "llmarch"), "encoder_only": ("bert", "llmarch"),
                "encoder_decoder": ("t5", "llmarch")}


def save_model(model: nn.Module, directory: str | os.PathLike) -> str:
    """Write ``model`` with ``save_pretrained`` in the first format that can express it.

    Hugging Face formats first (GPT-2/GPT-1, LLaMA, BERT, T5), llmarch's own
    (``model_type="llmarch"``) when none can. Returns the ``model_type`` used.

    >>> import tempfile
    >>> from llmarch import create_model
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     save_model(create_model("gpt2", num_layers=1, d_model=16, num_heads=2, d_ff=32, vocab_size=10), folder)
    'gpt2'
    """
    errors = []
    for model_type in _MODEL_TYPES[model.config.architecture]:
        if model_type not in CONVERTERS:
            continue
        try:
            save_pretrained(model, directory, model_type=model_type)
            return model_type
        except ValueError as error:  # the format cannot express this config: try the next one
            errors.append(f"{model_type}: {error}")
    raise ValueError(f"no checkpoint format can express this {type(model).__name__}: " + "; ".join(errors))


def _link_or_copy(source: Path, target: Path) -> None:
    temporary = target.with_name(f".{target.name}.tmp")
    temporary.unlink(missing_ok=True)
    try:
        os.link(source, temporary)
    except OSError:  # another file system, or no hard links
        shutil.copy2(source, temporary)
    os.replace(temporary, target)


def _rng_state(device: torch.device) -> dict:
    state = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def save_checkpoint(out_dir: str | os.PathLike, step: int, *, model: nn.Module, export_model: nn.Module | None,
                    optimizer: torch.optim.Optimizer, scheduler, scaler, context, run_info: dict,
                    tokenizer=None, extra: dict | None = None, keep: int = 2) -> Path | None:
    """Write checkpoint ``step`` of a (possibly wrapped) ``model``; every rank must call it.

    Args:
        out_dir: the run folder.
        step: optimizer steps done.
        model: the model being trained (plain, DDP or FSDP2).
        export_model: ``None`` (the module inside ``model`` is saved as it is), or, for FSDP, an
            unsharded copy on rank 0 that the gathered full state dict is loaded into.
        optimizer: its state is saved.
        scheduler: its state is saved.
        scaler: its state is saved (``None``: no loss scaling).
        context: the ``DistributedContext``.
        run_info: written to ``run.json`` (options, model config, objective).
        tokenizer: saved next to the model (its ``save(directory)``), when given.
        extra: more picklable-safe values for the trainer state (tokens seen, ...).
        keep: how many checkpoint folders to keep (the newest).

    Returns:
        The checkpoint folder on rank 0, ``None`` on the other ranks.
    """
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_state_dict

    options = StateDictOptions(full_state_dict=True, cpu_offload=True)
    model_state, optimizer_state = get_state_dict(model, optimizer, options=options)
    rng = [None] * context.world_size
    if context.distributed:
        dist.all_gather_object(rng, _rng_state(context.device))
    else:
        rng = [_rng_state(context.device)]
    final = None
    if context.is_main:
        if export_model is None:
            export_model = getattr(model, "module", model)  # a DDP wrapper holds the module
        else:  # an FSDP copy: fill it with the gathered weights
            export_model.load_state_dict(model_state)
        root = Path(out_dir) / CHECKPOINTS
        temporary, final = root / f".tmp-step-{step:08d}", root / f"step-{step:08d}"
        shutil.rmtree(temporary, ignore_errors=True)
        model_type = save_model(export_model, temporary)
        if tokenizer is not None:
            tokenizer.save(temporary)
        torch.save({"step": step, "optimizer": optimizer_state, "scheduler": scheduler.state_dict(),
                    "scaler": scaler.state_dict() if scaler is not None else None, "rng": rng,
                    "world_size": context.world_size, **(extra or {})}, temporary / STATE_FILE)
        (temporary / RUN_FILE).write_text(json.dumps({**run_info, "model_type": model_type}, indent=2,
                                                     ensure_ascii=False), encoding="utf-8")
        if final.exists():  # the same step saved again (e.g. at the end of a run)
            shutil.rmtree(final)
        os.replace(temporary, final)  # the commit point
        for old in sorted(_checkpoints(root))[:-keep] if keep > 0 else []:
            shutil.rmtree(old[1], ignore_errors=True)
        for file in final.iterdir():
            _link_or_copy(file, Path(out_dir) / file.name)
    context.barrier()
    return final


def _checkpoints(root: Path) -> list[tuple[int, Path]]:
    if not root.is_dir():
        return []
    found = [(int(m[1]), p) for p in root.iterdir() if (m := _STEP_DIR.match(p.name)) and (p / STATE_FILE).exists()]
    return sorted(found)


def latest_checkpoint(out_dir: str | os.PathLike) -> Path | None:
    """The newest complete checkpoint folder of a run, or ``None``.

    >>> latest_checkpoint("/nonexistent") is None
    True
    """
    found = _checkpoints(Path(out_dir) / CHECKPOINTS)
    return found[-1][1] if found else None


def check_same_model(saved: dict, config_dict: dict, where: str) -> None:
    """Raise ``ValueError`` listing the fields where the saved model config differs.

    >>> check_same_model({"d_model": 64, "num_layers": 2}, {"d_model": 32, "num_layers": 2}, "OUT")
    Traceback (most recent call last):
    ...
    ValueError: OUT holds a run of another model: d_model is 64 there, 32 here. Resume with the same ...
    """
    differ = [f"{key} is {saved.get(key)!r} there, {config_dict.get(key)!r} here"
              for key in sorted(set(saved) | set(config_dict)) if saved.get(key) != config_dict.get(key)]
    if differ:
        raise ValueError(f"{where} holds a run of another model: {'; '.join(differ)}. Resume with the same "
                         "preset and model options, or choose a new --out folder")


def load_checkpoint(checkpoint: str | os.PathLike, *, model: nn.Module, optimizer: torch.optim.Optimizer,
                    scheduler, scaler, context) -> dict:
    """Load a checkpoint folder into ``model``, ``optimizer``, ``scheduler`` and ``scaler``.

    Every rank reads the folder (a shared file system across nodes). The RNG state of this
    rank is restored when the world size is the one that saved it.

    Returns:
        The trainer state (``step`` and the ``extra`` values given to ``save_checkpoint``).
    """
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_state_dict

    checkpoint = Path(checkpoint)
    state = torch.load(checkpoint / STATE_FILE, map_location="cpu", weights_only=True)
    model_state = from_pretrained(checkpoint).state_dict()
    set_state_dict(model, optimizer, model_state_dict=model_state, optim_state_dict=state["optimizer"],
                   options=StateDictOptions(full_state_dict=True, strict=True))
    scheduler.load_state_dict(state["scheduler"])
    if scaler is not None and state.get("scaler") is not None:
        scaler.load_state_dict(state["scaler"])
    if state.get("world_size") == context.world_size:
        rng = state["rng"][context.rank]
        torch.set_rng_state(rng["torch"])
        if "cuda" in rng and context.device.type == "cuda":
            torch.cuda.set_rng_state(rng["cuda"], context.device)
    return state
