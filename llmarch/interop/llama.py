"""Hugging Face LLaMA checkpoints (``LlamaForCausalLM``, ``model_type="llama"``) <-> ``DecoderOnlyLM``.

LLaMA is the ``llama-tiny`` preset's family: pre-LN with RMSNorm, rotary positions (RoPE),
a SwiGLU feed-forward, grouped-query attention and, usually, an untied head. The names map one
to one, with no transposes -- Hugging Face's checkpoints already use the "rotate half" RoPE
layout that ``llmarch.nn.rotary`` implements::

    model.embed_tokens                          embeddings.tokens
    model.layers.{i}.input_layernorm            decoder.layers.{i}.self_attn_norm
    model.layers.{i}.self_attn.{q,k,v}_proj     decoder.layers.{i}.self_attn.{q,k,v}_proj
    model.layers.{i}.self_attn.o_proj           decoder.layers.{i}.self_attn.out_proj
    model.layers.{i}.post_attention_layernorm   decoder.layers.{i}.ffn_norm
    model.layers.{i}.mlp.{gate,up,down}_proj    decoder.layers.{i}.ffn.{gate,up,down}_proj
    model.norm                                  decoder.final_norm
    lm_head                                     lm_head (tied: the same tensor as embed_tokens)

Keys may come without the ``model.`` prefix (a bare ``LlamaModel``). Older checkpoints store
the RoPE frequencies ``rotary_emb.inv_freq``: they are checked against the configured base,
then dropped. A stored ``lm_head`` of a tied model must equal ``embed_tokens``. Any other key is
passed through under its own name, so the strict loader lists it as unexpected; on export a
parameter with no LLaMA name is refused.

Only plain RoPE is implemented: a ``rope_scaling`` / ``rope_parameters`` of another type
(``linear``, ``dynamic``, ``yarn``, ``llama3``) is refused, as are ``attention_bias`` and
``mlp_bias`` that differ (llmarch's ``bias`` covers both).
"""

from __future__ import annotations

import re

import torch
from torch import Tensor

from ..models.config import ModelConfig
from ..models.decoder_only import DecoderOnlyLM
from .checkpoint import drop_tied_copy
from .config_json import ConfigJson

__all__ = ["config_from_hf", "config_to_hf", "state_dict_from_hf", "state_dict_to_hf"]

_ACTIVATIONS = {"silu": "silu", "swish": "silu", "gelu": "gelu", "gelu_new": "gelu_tanh",
                "gelu_pytorch_tanh": "gelu_tanh", "relu": "relu"}  # HF -> ours
_ACTIVATION_NAMES = {"silu": "silu", "gelu": "gelu", "gelu_tanh": "gelu_pytorch_tanh", "relu": "relu"}  # ours -> HF
_TOP = {"embed_tokens": "embeddings.tokens", "norm": "decoder.final_norm"}
_LAYER = {"input_layernorm": "self_attn_norm", "post_attention_layernorm": "ffn_norm",
          "self_attn.q_proj": "self_attn.q_proj", "self_attn.k_proj": "self_attn.k_proj",
          "self_attn.v_proj": "self_attn.v_proj", "self_attn.o_proj": "self_attn.out_proj",
          "mlp.gate_proj": "ffn.gate_proj", "mlp.up_proj": "ffn.up_proj", "mlp.down_proj": "ffn.down_proj"}
_LAYER_KEY = re.compile(r"layers\.(\d+)\.(.+)\.(weight|bias)")
_INV_FREQ = re.compile(r"(layers\.\d+\.self_attn\.)?rotary_emb\.inv_freq")


def _rope_base(cfg: ConfigJson) -> float:
    """The RoPE base from ``rope_parameters`` (transformers 5) or ``rope_theta`` /
    ``rope_scaling`` (transformers 4); any RoPE type but the default is refused."""
    for key in ("rope_parameters", "rope_scaling"):
        params = cfg.data.get(key)
        if params is None:
            continue
        if not isinstance(params, dict):
            raise TypeError(f"config.json {key} must be an object or null, got {type(params).__name__} ({params!r})")
        rope_type = params.get("rope_type", params.get("type", "default"))
        if rope_type != "default":
            raise ValueError(f"config.json {key} rope_type must be 'default' (plain RoPE; scaled RoPE is not "
                             f"implemented), got {rope_type!r}")
        if params.get("partial_rotary_factor", 1.0) != 1.0:
            raise ValueError(f"config.json {key} partial_rotary_factor must be 1.0, got "
                             f"{params['partial_rotary_factor']!r}")
        if "rope_theta" in params:
            return ConfigJson(params, f"config.json {key}").float("rope_theta")
    return cfg.float("rope_theta", 10000.0)


def config_from_hf(hf: dict) -> tuple[ModelConfig, type]:
    """A ``ModelConfig`` from a Hugging Face ``LlamaConfig`` dict, and ``DecoderOnlyLM``.

    Raises:
        ValueError / TypeError: naming the ``config.json`` field, for a value of the wrong type
            or one this converter does not implement (scaled RoPE, differing biases, an
            architecture other than ``LlamaForCausalLM``, several EOS ids).

    >>> config, cls = config_from_hf({"model_type": "llama", "vocab_size": 100, "hidden_size": 64,
    ...                               "intermediate_size": 96, "num_hidden_layers": 2,
    ...                               "num_attention_heads": 4, "num_key_value_heads": 2})
    >>> config.kv_heads, config.head_size, config.gated, config.tie_embeddings, cls.__name__
    (2, 16, True, False, 'DecoderOnlyLM')
    >>> config_from_hf({"model_type": "llama", "rope_scaling": {"rope_type": "llama3", "factor": 8.0}})
    Traceback (most recent call last):
    ...
    ValueError: config.json rope_scaling rope_type must be 'default' (plain RoPE; ...), got 'llama3'
    """
    cfg = ConfigJson(hf)
    cfg.str("model_type", "llama", choices=("llama",))
    architectures = hf.get("architectures") or ["LlamaForCausalLM"]
    if architectures != ["LlamaForCausalLM"]:
        raise ValueError(f"config.json architectures must be ['LlamaForCausalLM'], got {architectures!r}")
    activation = cfg.str("hidden_act", "silu", choices=tuple(_ACTIVATIONS))
    attention_bias, mlp_bias = cfg.bool("attention_bias", False), cfg.bool("mlp_bias", False)
    if attention_bias != mlp_bias:
        raise ValueError("config.json attention_bias and mlp_bias must be equal (llmarch's bias covers both), got "
                         f"attention_bias={attention_bias} and mlp_bias={mlp_bias}")
    rope_base = _rope_base(cfg)
    num_heads = cfg.int("num_attention_heads", 32)
    config = ModelConfig(
        architecture="decoder_only", vocab_size=cfg.int("vocab_size", 32000), d_model=cfg.int("hidden_size", 4096),
        num_layers=cfg.int("num_hidden_layers", 32), num_heads=num_heads,
        num_kv_heads=cfg.int("num_key_value_heads", None, optional=True) or num_heads,
        head_dim=cfg.int("head_dim", None, optional=True), d_ff=cfg.int("intermediate_size", 11008),
        max_positions=cfg.int("max_position_embeddings", 2048), position="rotary", rope_base=rope_base,
        norm="rmsnorm", norm_position="pre", norm_eps=cfg.float("rms_norm_eps", 1e-6),
        activation=_ACTIVATIONS[activation], gated=True, bias=attention_bias, dropout=0.0,
        attention_dropout=cfg.float("attention_dropout", 0.0), tie_embeddings=cfg.bool("tie_word_embeddings", False),
        pad_token_id=cfg.token_id("pad_token_id"), bos_token_id=cfg.token_id("bos_token_id"),
        eos_token_id=cfg.token_id("eos_token_id"))
    return config, DecoderOnlyLM


def config_to_hf(model: DecoderOnlyLM) -> dict:
    """The ``config.json`` dict of ``model`` as a ``LlamaForCausalLM``.

    Raises:
        ValueError: if the model uses something LLaMA cannot express (learned positions,
            LayerNorm, post-LN, an ungated FFN, an embedding or output scale, residual or
            feed-forward dropout, ...), naming it.
    """
    c = model.config.expect_architecture("decoder_only")
    needed = {"position": (c.position, "rotary"), "norm": (c.norm, "rmsnorm"),
              "norm_position": (c.norm_position, "pre"), "gated": (c.gated, True),
              "embedding_scale": (c.embedding_scale, None), "output_scale": (c.output_scale, None),
              "attention_scale": (c.attention_scale, None), "embedding_norm": (c.embedding_norm, False),
              "type_vocab_size": (c.type_vocab_size, 0), "dropout": (c.dropout, 0.0),
              "activation_dropout": (c.activation_dropout, 0.0)}  # LLaMA has attention dropout only
    for name, (value, wanted) in needed.items():
        if value != wanted:
            raise ValueError(f"LLaMA checkpoints need config.{name}={wanted!r}, got {value!r}")
    if c.activation not in _ACTIVATION_NAMES:
        raise ValueError(f"LLaMA checkpoints need activation in {sorted(_ACTIVATION_NAMES)}, got {c.activation!r}")
    if c.max_positions is None:
        raise ValueError("LLaMA checkpoints need config.max_positions (max_position_embeddings), got None")
    return {
        "model_type": "llama", "architectures": ["LlamaForCausalLM"], "vocab_size": c.vocab_size,
        "hidden_size": c.d_model, "intermediate_size": c.d_ff, "num_hidden_layers": c.num_layers,
        "num_attention_heads": c.num_heads, "num_key_value_heads": c.kv_heads, "head_dim": c.head_size,
        "hidden_act": _ACTIVATION_NAMES[c.activation], "max_position_embeddings": c.max_positions,
        "rms_norm_eps": c.norm_eps, "tie_word_embeddings": c.tie_embeddings,
        "attention_bias": c.bias, "mlp_bias": c.bias, "attention_dropout": c.attention_dropout,
        "rope_theta": c.rope_base, "rope_scaling": None,  # transformers 4 spelling
        "rope_parameters": {"rope_type": "default", "rope_theta": c.rope_base},  # transformers 5 spelling
        "bos_token_id": c.bos_token_id, "eos_token_id": c.eos_token_id, "pad_token_id": c.pad_token_id,
    }


def _check_inv_freq(key: str, value: Tensor, config: ModelConfig) -> None:
    """A stored ``rotary_emb.inv_freq`` must be ``base ** (-2i / head_dim)`` of the config."""
    head_dim = config.head_size
    expected = config.rope_base ** (-torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim)
    tolerance = max(1e-5, 2 * torch.finfo(value.dtype).eps) if value.is_floating_point() else 0.0
    if value.shape != expected.shape or not torch.allclose(value.double(), expected, rtol=tolerance, atol=0):
        raise ValueError(f"checkpoint key {key!r} must hold RoPE frequencies base ** (-2i / head_dim) with base "
                         f"{config.rope_base} and head_dim {head_dim} (shape ({head_dim // 2},)), got shape "
                         f"{tuple(value.shape)} with other values; is the RoPE of config.json the checkpoint's?")


def state_dict_from_hf(hf_state: dict[str, Tensor], config: ModelConfig) -> dict[str, Tensor]:
    """Rename Hugging Face LLaMA weights to our names (see the module docstring).

    Raises:
        ValueError: if a stored ``lm_head.weight`` of a tied model differs from
            ``embed_tokens``, or a stored ``inv_freq`` from the configured RoPE.
    """
    state: dict[str, Tensor] = {}
    for key, value in hf_state.items():
        key = key.removeprefix("model.")
        module, _, kind = key.rpartition(".")
        match = _LAYER_KEY.fullmatch(key)
        if _INV_FREQ.fullmatch(key):
            _check_inv_freq(key, value, config)  # a buffer, not a parameter: checked, then dropped
        elif module in _TOP:
            state[f"{_TOP[module]}.{kind}"] = value
        elif key == "lm_head.weight":
            state[key] = value
        elif match and match[2] in _LAYER:
            state[f"decoder.layers.{match[1]}.{_LAYER[match[2]]}.{kind}"] = value
        else:
            state[key] = value  # unknown: reported as unexpected by the strict loader
    if config.tie_embeddings:  # a stored head must equal the embeddings; then both share one tensor
        drop_tied_copy(state, "lm_head.weight", "embeddings.tokens.weight")
        if "embeddings.tokens.weight" in state:
            state["lm_head.weight"] = state["embeddings.tokens.weight"]
    return state


def state_dict_to_hf(state: dict[str, Tensor], config: ModelConfig) -> dict[str, Tensor]:
    """Inverse of ``state_dict_from_hf``: ``LlamaForCausalLM`` names (``lm_head.weight`` only when
    untied, as Hugging Face saves).

    Raises:
        ValueError: for a key with no LLaMA name (listing every such key).
    """
    top = {ours: hf for hf, ours in _TOP.items()}
    layer = {ours: hf for hf, ours in _LAYER.items()}
    hf_state: dict[str, Tensor] = {}
    unknown = []
    for key, value in state.items():
        module, _, kind = key.rpartition(".")
        match = re.fullmatch(r"decoder\.layers\.(\d+)\.(.+)", module)
        if key == "lm_head.weight":
            if not config.tie_embeddings:
                hf_state[key] = value
        elif module in top:
            hf_state[f"model.{top[module]}.{kind}"] = value
        elif match and match[2] in layer:
            hf_state[f"model.layers.{match[1]}.{layer[match[2]]}.{kind}"] = value
        else:
            unknown.append(key)
    if unknown:
        raise ValueError(f"no Hugging Face LLaMA name for llmarch key(s) {sorted(unknown)}")
    return hf_state
