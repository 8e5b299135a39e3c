"""Putting a run together from names: corpus -> tokenizer -> ids, preset -> model, and a run folder back.

These are the steps ``python -m llmarch train`` / ``generate`` / ``eval`` take, as functions a
chapter or a script can call.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from torch import Tensor, nn

from ..models.config import ModelConfig
from ..models.presets import get_config
from .checkpointing import RUN_FILE
from .objectives import Objective, make_objective

__all__ = ["parse_override", "prepare_data", "build_model", "load_run"]


def parse_override(text: str) -> tuple[str, object]:
    """``"KEY=VALUE"`` -> ``(key, value)``; the value is read as JSON when it can be (numbers,
    ``true``, ``null``), else kept as a string.

    >>> parse_override("num_layers=2"), parse_override("position=rotary"), parse_override("bias=false")
    (('num_layers', 2), ('position', 'rotary'), ('bias', False))
    >>> parse_override("num_layers")
    Traceback (most recent call last):
    ...
    ValueError: a model option must look like KEY=VALUE (e.g. num_layers=2), got 'num_layers'
    """
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ValueError(f"a model option must look like KEY=VALUE (e.g. num_layers=2), got {text!r}")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    return key.strip(), value


def prepare_data(data: str, *, val_fraction: float = 0.1, tokenizer=None, tokenizer_kind: str = "char",
                 vocab_size: int | None = None, tokenizer_text: str = "train") -> tuple[object, Tensor, Tensor | None]:
    """Read ``data`` (a corpus name or a text file), split it, train (or reuse) a tokenizer, encode.

    By default the tokenizer is trained on the training split only, so validation text stays
    unseen. A character vocabulary learned that way maps every character that occurs only in the
    validation text to ``<unk>`` (3.4% of 唐诗三百首's validation characters): the model can never
    write them, and predicting the catch-all ``<unk>`` flatters the validation loss.
    ``tokenizer_text="all"`` learns the vocabulary from the whole text, as nanoGPT's
    ``shakespeare_char`` does; for ``"char"`` it leaks only the *set* of characters, not their
    order or counts (the model still trains on the training split alone). For ``"bpe"`` it also
    lets validation text shape the merges.

    Args:
        data: ``"tang300"``, ``"psalms"`` ... or a path to a UTF-8 text file.
        val_fraction: the share of documents held out (0: no validation set).
        tokenizer: an already trained tokenizer (a resumed run); else one is trained.
        tokenizer_kind: what to train: ``"char"`` or ``"bpe"``.
        vocab_size: the BPE vocabulary size (``None``: 1024).
        tokenizer_text: the text the tokenizer is trained on: ``"train"`` (the training split) or
            ``"all"`` (training and validation text).

    Returns:
        ``(tokenizer, train_ids, val_ids or None)``, ids 1-D long tensors.

    Raises:
        ValueError: an unknown corpus, an empty text, a fraction outside ``[0, 1)``, a
            ``tokenizer_text`` other than ``"train"`` / ``"all"``.

    >>> tokenizer, train_ids, val_ids = prepare_data("tang300", tokenizer_text="all")
    >>> tokenizer.vocab_size, int((val_ids == tokenizer.unk_token_id).sum())  # <unk> + 2,576 characters
    (2577, 0)
    """
    from .corpus import read_text, split_text
    from .data import encode_corpus
    from .tokenizers import train_tokenizer

    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    if tokenizer_text not in ("train", "all"):
        raise ValueError(f"tokenizer_text must be 'train' or 'all', got {tokenizer_text!r}")
    text = read_text(data)
    train_text, val_text = split_text(text, val_fraction) if val_fraction > 0 else (text, "")
    if tokenizer is None:
        tokenizer = train_tokenizer(tokenizer_kind, text if tokenizer_text == "all" else train_text, vocab_size)
    val_ids = encode_corpus(tokenizer, val_text) if val_text else None
    return tokenizer, encode_corpus(tokenizer, train_text), val_ids


def build_model(preset: str | ModelConfig, *, base_vocab: int, seq_len: int, eos_token_id: int | None = None,
                objective: str | None = None, objective_options: dict | None = None, overrides: dict | None = None,
                seed: int = 0) -> tuple[nn.Module, Objective]:
    """A freshly initialised model of ``preset`` (with ``overrides``) sized for the tokenizer, and
    its objective.

    The vocabulary becomes ``base_vocab`` plus the objective's extra ids (``[MASK]``, sentinels).

    Raises:
        ValueError / TypeError: an unknown preset, field or objective; an objective of another
            family.

    >>> model, objective = build_model("gpt2", base_vocab=30, seq_len=16,
    ...                                overrides={"num_layers": 1, "d_model": 32, "num_heads": 2, "d_ff": 64})
    >>> type(model).__name__, objective.name, model.config.vocab_size
    ('DecoderOnlyLM', 'causal_lm', 30)
    """
    config = preset if isinstance(preset, ModelConfig) else get_config(preset, **(overrides or {}))
    if isinstance(preset, ModelConfig) and overrides:
        config = config.replace(**overrides)
    chosen = make_objective(objective, config.architecture, **(objective_options or {}))
    config = chosen.configure(config, base_vocab, seq_len, eos_token_id)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = chosen.build_model(config)
    return model, chosen


def load_run(directory: str | os.PathLike, *, device=None) -> tuple[nn.Module, object, dict]:
    """The model, tokenizer and ``run.json`` of a run folder (or of any checkpoint folder with a
    tokenizer: ``run.json`` is then ``{}``).

    Raises:
        FileNotFoundError / ValueError: from ``from_pretrained`` and ``load_tokenizer``, naming the
            missing or invalid file.
    """
    from ..interop import from_pretrained
    from .tokenizers import load_tokenizer

    directory = Path(directory)
    model = from_pretrained(directory, device=device)
    tokenizer = load_tokenizer(directory)
    run_file = directory / RUN_FILE
    run_info = json.loads(run_file.read_text(encoding="utf-8")) if run_file.is_file() else {}
    return model, tokenizer, run_info
