"""Hugging Face checkpoint folders <-> llmarch models.

A checkpoint folder holds ``config.json`` and ``model.safetensors`` (or ``pytorch_model.bin``,
or shards with an index; see ``llmarch.interop.checkpoint``). ``config.json``'s ``model_type``
picks a *converter* module (``llmarch.interop.<family>``) that provides four functions:

* ``config_from_hf(hf_config: dict) -> (ModelConfig, model_class)``
* ``config_to_hf(model) -> dict``
* ``state_dict_from_hf(hf_state: dict, config) -> dict``  (our parameter names)
* ``state_dict_to_hf(state: dict, config) -> dict``

Only local folders are read: nothing is downloaded. A Hub id such as ``"gpt2"`` that is not a
local folder is answered with how to get one.
"""

from __future__ import annotations

import importlib
import json
import os
import re
from pathlib import Path

import torch
from torch import nn

from ..nn.checks import check_device
from .checkpoint import load_state_dict_strict, read_weights, weights_file, write_weights
from .config_json import ConfigJson

__all__ = ["from_pretrained", "save_pretrained", "CONVERTERS"]

# model_type in config.json -> converter module
CONVERTERS = {
    "gpt2": "llmarch.interop.gpt2",
    "openai-gpt": "llmarch.interop.gpt2",
    "bert": "llmarch.interop.bert",
    "t5": "llmarch.interop.t5",
    "llama": "llmarch.interop.llama",
    "llmarch": "llmarch.interop.native",  # llmarch's own format, for configs no HF format describes
}
# What a Hub id looks like: "name" or "org/name" (letters, digits, "-", "_", ".").
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?")


def _converter(model_type: object, where: str):
    if model_type not in CONVERTERS:
        raise ValueError(f"{where} model_type must be one of {', '.join(map(repr, CONVERTERS))}, got {model_type!r}")
    return importlib.import_module(CONVERTERS[model_type])


def _check_folder(path: object) -> Path:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike (a local checkpoint folder), got {type(path).__name__}")
    folder = Path(path)
    if folder.is_dir():
        return folder
    if folder.exists():
        raise ValueError(f"path must be a checkpoint folder (config.json plus weights), got the file {folder}; "
                         "pass the folder that holds it")
    if _HUB_ID.fullmatch(str(path)):
        local = "./" + str(path).split("/")[-1]
        raise FileNotFoundError(
            f"no folder {str(path)!r}: it looks like a Hugging Face Hub id, but llmarch loads only local checkpoint "
            f"folders (it never downloads). On a machine with network access run "
            f"`huggingface-cli download {path} --local-dir {local}`, or in Python "
            f"`transformers.AutoModel.from_pretrained({str(path)!r}).save_pretrained({local!r})` "
            f"(AutoModelForCausalLM / AutoModelForSeq2SeqLM / AutoModelForMaskedLM for a model with its head), "
            f"then pass from_pretrained({local!r})")
    raise FileNotFoundError(f"path must be an existing checkpoint folder, got {str(path)!r}, which does not exist")


def _read_config(folder: Path) -> dict:
    config_path = folder / "config.json"
    if not config_path.is_file():
        raise FileNotFoundError(f"no config.json in {folder} (a Hugging Face checkpoint folder has config.json "
                                "next to its weights)")
    try:
        data = json.loads(config_path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as error:
        raise ValueError(f"{config_path} is not valid JSON: {error}") from error
    if not isinstance(data, dict):
        raise ValueError(f"{config_path} must hold a JSON object, got {type(data).__name__}")
    return data


def _check_vocab(state: dict, hf_state: dict, vocab_size: int, folder: Path) -> None:
    """The embedding and head rows must number ``config.json``'s ``vocab_size``."""
    for key, tensor in state.items():
        if key.endswith(("embeddings.tokens.weight", "lm_head.weight")) and tensor.shape[0] != vocab_size:
            stored = next((k for k, v in hf_state.items() if v is tensor), key)
            raise ValueError(f"vocabulary mismatch in {folder}: config.json vocab_size is {vocab_size}, but "
                             f"{weights_file(folder).name} stores {stored!r} with {tensor.shape[0]} rows "
                             f"(shape {tuple(tensor.shape)}); the config and the weights do not belong together "
                             "(was the vocabulary resized without updating config.json?)")


def from_pretrained(path: str | os.PathLike, *, dtype: torch.dtype | None = None, device=None) -> nn.Module:
    """Load a local Hugging Face checkpoint folder into the matching llmarch model.

    Args:
        path: folder with ``config.json`` and ``model.safetensors`` (or ``pytorch_model.bin``,
            or shards with an index).
        dtype: convert the weights to this floating dtype (default float32, whatever the file
            stores).
        device: move the model there.

    Returns:
        The model in evaluation mode.

    Raises:
        FileNotFoundError: if the folder or its files are missing; for a Hub id such as
            ``"gpt2"`` the message says how to download the folder first.
        ValueError: naming the file, key or field: an unsupported ``model_type``, a
            ``config.json`` field of the wrong value, corrupted or unsafe weight files, a
            vocabulary that does not match the weights, keys that do not match (missing,
            unexpected and mis-shaped keys are listed).
        TypeError: a ``config.json`` field of the wrong type, a bad ``path`` or ``dtype``.

    >>> from_pretrained("gpt2")
    Traceback (most recent call last):
    ...
    FileNotFoundError: no folder 'gpt2': it looks like a Hugging Face Hub id, but llmarch loads only local ...
    """
    folder = _check_folder(path)
    if dtype is not None and (not isinstance(dtype, torch.dtype) or not dtype.is_floating_point):
        raise TypeError(f"dtype must be a floating torch.dtype such as torch.bfloat16, got {dtype!r}")
    device = check_device("device", device)  # before reading anything: "gpu" or a missing GPU is a clean error
    hf_config = _read_config(folder)
    try:
        converter = _converter(ConfigJson(hf_config).str("model_type"), "config.json")
        config, model_cls = converter.config_from_hf(hf_config)
    except (ValueError, TypeError) as error:
        message = str(error) if str(error).startswith("config.json") else f"config.json gives an invalid model: {error}"
        raise type(error)(f"{folder}: {message}") from error
    hf_state = read_weights(folder)
    state = converter.state_dict_from_hf(hf_state, config)
    _check_vocab(state, hf_state, config.vocab_size, folder)
    model = model_cls(config)
    load_state_dict_strict(model, {k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    if dtype is not None or device is not None:
        model.to(device=device, dtype=dtype)
    return model.eval()


def save_pretrained(model: nn.Module, path: str | os.PathLike, *, model_type: str) -> Path:
    """Write ``model`` as a Hugging Face checkpoint folder of ``model_type`` (safetensors).

    ``from_pretrained`` of the result gives back the same weights (a round trip tested in
    ``tests/``); Hugging Face's ``from_pretrained`` reads it too.

    Args:
        model: an llmarch model whose configuration the format can express.
        path: the folder to write (created if needed).
        model_type: one of ``CONVERTERS``.

    Returns:
        The folder.

    Raises:
        ValueError: for an unknown ``model_type``, a model the format cannot express, or a
            parameter with no name in the format (each named).
    """
    converter = _converter(model_type, "save_pretrained")
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}")
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ValueError(f"path must be a folder to write the checkpoint into, got the file {path}")
    if not isinstance(model, nn.Module) or not hasattr(model, "config"):
        raise TypeError(f"model must be an llmarch model (an nn.Module with a .config), got {type(model).__name__}")
    hf_config = converter.config_to_hf(model)
    hf_state = converter.state_dict_to_hf(model.state_dict(), model.config)
    hf_config["model_type"] = hf_config.get("model_type", model_type)
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text(json.dumps(hf_config, indent=2))
    write_weights(hf_state, path)
    return path
