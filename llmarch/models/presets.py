"""Named configurations of well-known models, and ``create_model``.

Sizes follow the papers and the Hugging Face configurations of the same names, so parameter
counts can be checked against them (tests/test_presets.py).
"""

from __future__ import annotations

import importlib
import math

from torch import nn

from .config import ModelConfig

__all__ = ["PRESETS", "get_config", "create_model", "MODEL_CLASSES"]

_GPT = dict(architecture="decoder_only", d_model=768, num_layers=12, num_heads=12, d_ff=3072)
_BERT = dict(architecture="encoder_only", vocab_size=30522, max_positions=512, norm_position="post",
             norm_eps=1e-12, activation="gelu", embedding_norm=True, type_vocab_size=2, pooler=True,
             pad_token_id=0)
_TRANSFORMER = dict(architecture="encoder_decoder", vocab_size=37000, num_layers=6, position="sinusoidal",
                    max_positions=None, norm_position="post", activation="relu", dropout=0.1,
                    attention_dropout=0.0, pad_token_id=0, eos_token_id=2, decoder_start_token_id=1)
_T5 = dict(architecture="encoder_decoder", vocab_size=32128, d_model=512, head_dim=64, position="t5_relative",
           max_positions=None, norm="rmsnorm", norm_position="pre", norm_eps=1e-6, bias=False,
           attention_scale=1.0, dropout=0.1, attention_dropout=0.1, activation_dropout=0.1, pad_token_id=0,
           eos_token_id=1, decoder_start_token_id=0)

PRESETS: dict[str, ModelConfig] = {
    # GPT-1 (Radford et al., 2018): post-LN, learned positions, 512 tokens, BPE of 40,478.
    "gpt1": ModelConfig(**_GPT, vocab_size=40478, max_positions=512, norm_position="post",
                        activation="gelu_tanh"),
    # GPT-2 small (Radford et al., 2019): pre-LN with a final LayerNorm, 1024 tokens.
    "gpt2": ModelConfig(**_GPT, vocab_size=50257, max_positions=1024, norm_position="pre",
                        activation="gelu_tanh", bos_token_id=50256, eos_token_id=50256),
    # A small modern decoder (LLaMA-style): RoPE, RMSNorm, SwiGLU, GQA, no biases, untied head.
    "llama-tiny": ModelConfig(architecture="decoder_only", vocab_size=32000, d_model=512, num_layers=8,
                              num_heads=8, num_kv_heads=2, d_ff=1376, max_positions=2048, position="rotary",
                              norm="rmsnorm", norm_eps=1e-6, activation="silu", gated=True, bias=False,
                              tie_embeddings=False, dropout=0.0, attention_dropout=0.0),
    # BERT (Devlin et al., 2019).
    "bert-base": ModelConfig(**_BERT, d_model=768, num_layers=12, num_heads=12, d_ff=3072),
    "bert-large": ModelConfig(**_BERT, d_model=1024, num_layers=24, num_heads=16, d_ff=4096),
    # The original Transformer (Vaswani et al., 2017, Table 3): shared source/target BPE vocabulary.
    "transformer-base": ModelConfig(**_TRANSFORMER, d_model=512, num_heads=8, d_ff=2048,
                                    embedding_scale=math.sqrt(512)),
    "transformer-big": ModelConfig(**_TRANSFORMER, d_model=1024, num_heads=16, d_ff=4096,
                                   embedding_scale=math.sqrt(1024)),
    # T5 v1.0 small (Raffel et al., 2020): ReLU FFN, tied head scaled by d_model ** -0.5.
    "t5-small": ModelConfig(**_T5, num_layers=6, num_heads=8, d_ff=2048, activation="relu",
                            output_scale=512 ** -0.5),
    # T5 v1.1 small: gated-GELU FFN, untied head, no dropout in pretraining.
    "t5-v1_1-small": ModelConfig(**{**_T5, "dropout": 0.0, "attention_dropout": 0.0, "activation_dropout": 0.0},
                                 num_layers=8, num_heads=6, d_ff=1024, activation="gelu_tanh", gated=True,
                                 tie_embeddings=False),
}

# Which class builds each architecture ("module:Class", imported on first use).
MODEL_CLASSES = {
    "decoder_only": "llmarch.models.decoder_only:DecoderOnlyLM",
    "encoder_only": "llmarch.models.encoder_only:EncoderOnly",
    "encoder_decoder": "llmarch.models.encoder_decoder:EncoderDecoderLM",
}


# Fields the papers define from d_model: a preset that has one recomputes it when d_model is
# overridden (and the field is not), so that a narrow "t5-small" scales by its own width.
SCALED_BY_D_MODEL = {
    "output_scale": lambda d_model: d_model ** -0.5,  # T5 v1.0: the tied head's input
    "embedding_scale": math.sqrt,  # the Transformer: token embeddings times sqrt(d_model)
}


def get_config(name: str, **overrides) -> ModelConfig:
    """The preset ``name`` with ``overrides`` applied (see ``SCALED_BY_D_MODEL``).

    >>> get_config("gpt2", num_layers=2).num_layers
    2
    >>> get_config("t5-small", d_model=64, head_dim=16).output_scale == 64 ** -0.5
    True
    >>> get_config("gpt3")
    Traceback (most recent call last):
    ...
    ValueError: unknown preset 'gpt3'; available: gpt1, gpt2, llama-tiny, bert-base, ...
    """
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; available: {', '.join(PRESETS)}")
    preset = PRESETS[name]
    if "d_model" in overrides:
        derived = {field: rule(overrides["d_model"]) for field, rule in SCALED_BY_D_MODEL.items()
                   if field not in overrides and getattr(preset, field) is not None}
        overrides = {**derived, **overrides}
    return preset.replace(**overrides) if overrides else preset


def model_class(config: ModelConfig) -> type[nn.Module]:
    """The class that builds ``config.architecture``."""
    module_name, class_name = MODEL_CLASSES[config.architecture].split(":")
    return getattr(importlib.import_module(module_name), class_name)


def create_model(name_or_config: str | ModelConfig, **overrides) -> nn.Module:
    """Build a randomly initialised model from a preset name (or a config) and overrides.

    >>> model = create_model("gpt2", num_layers=1, d_model=64, num_heads=2, d_ff=128, vocab_size=100)
    >>> type(model).__name__
    'DecoderOnlyLM'
    """
    if isinstance(name_or_config, ModelConfig):
        config = name_or_config.replace(**overrides) if overrides else name_or_config
    else:
        config = get_config(name_or_config, **overrides)
    return model_class(config)(config)
