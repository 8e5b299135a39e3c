"""Hugging Face checkpoint folders <-> llmarch models.

A checkpoint folder holds ``config.json`` and ``model.safetensors`` (or ``pytorch_model.bin``).
``config.json``'s ``model_type`` picks a *converter* module (``llmarch.interop.<family>``) that
provides four functions:

* ``config_from_hf(hf_config: dict) -> (ModelConfig, model_class)``
* ``config_to_hf(model) -> dict``
* ``state_dict_from_hf(hf_state: dict, config) -> dict``  (our parameter names)
* ``state_dict_to_hf(state: dict, config) -> dict``
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import torch
from torch import nn

from .checkpoint import load_state_dict_strict, read_weights, write_weights

__all__ = ["from_pretrained", "save_pretrained", "CONVERTERS"]

# model_type in config.json -> converter module
CONVERTERS = {
    "gpt2": "llmarch.interop.gpt2",
    "openai-gpt": "llmarch.interop.gpt2",
    "bert": "llmarch.interop.bert",
    "t5": "llmarch.interop.t5",
}


def _converter(model_type: str):
    if model_type not in CONVERTERS:
        raise ValueError(f"config.json model_type must be one of {', '.join(CONVERTERS)}, got {model_type!r}")
    return importlib.import_module(CONVERTERS[model_type])


def from_pretrained(path: str | Path, *, dtype: torch.dtype | None = None, device=None) -> nn.Module:
    """Load a local Hugging Face checkpoint folder into the matching llmarch model.

    Args:
        path: folder with ``config.json`` and ``model.safetensors`` / ``pytorch_model.bin``.
        dtype: convert the weights to this dtype (default float32, whatever the file stores).
        device: move the model there.

    Returns:
        The model in evaluation mode.

    Raises:
        FileNotFoundError: if the folder or its files are missing.
        ValueError: for an unsupported ``model_type`` or keys that do not match (missing,
            unexpected and mis-shaped keys are listed).
    """
    path = Path(path)
    config_path = path / "config.json"
    if not config_path.exists():
        raise FileNotFoundError(f"no config.json in {path}")
    hf_config = json.loads(config_path.read_text())
    converter = _converter(hf_config.get("model_type", ""))
    config, model_cls = converter.config_from_hf(hf_config)
    hf_state = read_weights(path)
    state = converter.state_dict_from_hf(hf_state, config)
    model = model_cls(config)
    load_state_dict_strict(model, {k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    if dtype is not None or device is not None:
        model.to(device=device, dtype=dtype)
    return model.eval()


def save_pretrained(model: nn.Module, path: str | Path, *, model_type: str) -> Path:
    """Write ``model`` as a Hugging Face checkpoint folder of ``model_type`` (safetensors).

    ``from_pretrained`` of the result gives back the same weights (a round trip tested in
    ``tests/``); Hugging Face's ``from_pretrained`` reads it too.
    """
    converter = _converter(model_type)
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    hf_config = converter.config_to_hf(model)
    hf_config["model_type"] = hf_config.get("model_type", model_type)
    (path / "config.json").write_text(json.dumps(hf_config, indent=2))
    write_weights(converter.state_dict_to_hf(model.state_dict(), model.config), path)
    return path
