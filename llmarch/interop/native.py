"""llmarch's own checkpoint folder (``model_type="llmarch"``), for models no Hugging Face format
describes (RoPE + RMSNorm + SwiGLU decoders such as ``llama-tiny``, sinusoidal Transformers, ...).

The folder has the same two files as a Hugging Face one -- ``config.json`` and
``model.safetensors`` -- so ``from_pretrained`` reads both kinds. ``config.json`` holds the
``ModelConfig`` as it is (``"llmarch_config"``) and the model class (``"architectures"``); the
weights keep llmarch's parameter names. Hugging Face's ``AutoModel`` cannot read it.
"""

from __future__ import annotations

import importlib

from torch import Tensor, nn

from ..models.config import ModelConfig

__all__ = ["config_from_hf", "config_to_hf", "state_dict_from_hf", "state_dict_to_hf", "MODEL_CLASSES"]

# class name in config.json -> "module:Class" (classes built from a config alone)
MODEL_CLASSES = {
    "DecoderOnlyLM": "llmarch.models.decoder_only:DecoderOnlyLM",
    "EncoderOnly": "llmarch.models.encoder_only:EncoderOnly",
    "EncoderOnlyForMaskedLM": "llmarch.models.encoder_heads:EncoderOnlyForMaskedLM",
    "EncoderDecoderLM": "llmarch.models.encoder_decoder:EncoderDecoderLM",
}


def config_from_hf(hf: dict) -> tuple[ModelConfig, type]:
    """The ``ModelConfig`` and class stored in an llmarch ``config.json`` dict.

    >>> config, cls = config_from_hf({"model_type": "llmarch", "architectures": ["DecoderOnlyLM"], "llmarch_config": {
    ...     "architecture": "decoder_only", "vocab_size": 10, "d_model": 8, "num_layers": 1, "num_heads": 2,
    ...     "d_ff": 16, "position": "rotary"}})
    >>> config.position, cls.__name__
    ('rotary', 'DecoderOnlyLM')
    """
    arch = (hf.get("architectures") or [None])[0]
    if arch not in MODEL_CLASSES:
        raise ValueError(f"config.json architectures[0] must be one of {', '.join(MODEL_CLASSES)}, got {arch!r}")
    if not isinstance(hf.get("llmarch_config"), dict):
        raise ValueError(f"config.json of model_type 'llmarch' needs an 'llmarch_config' dict, "
                         f"got {type(hf.get('llmarch_config')).__name__}")
    module_name, class_name = MODEL_CLASSES[arch].split(":")
    return ModelConfig.from_dict(hf["llmarch_config"]), getattr(importlib.import_module(module_name), class_name)


def config_to_hf(model: nn.Module) -> dict:
    """The ``config.json`` dict of ``model``.

    Raises:
        ValueError: for a class that cannot be rebuilt from its config alone.
    """
    arch = type(model).__name__
    if arch not in MODEL_CLASSES:
        raise ValueError(f"only {', '.join(MODEL_CLASSES)} can be saved as model_type 'llmarch', got {arch}")
    return {"model_type": "llmarch", "architectures": [arch], "llmarch_config": model.config.to_dict()}


def state_dict_from_hf(hf_state: dict[str, Tensor], config: ModelConfig) -> dict[str, Tensor]:
    """The weights already carry llmarch's names: returned as they are."""
    return dict(hf_state)


def state_dict_to_hf(state: dict[str, Tensor], config: ModelConfig) -> dict[str, Tensor]:
    """llmarch's names are kept (a tied head is stored under both of its names)."""
    return dict(state)
