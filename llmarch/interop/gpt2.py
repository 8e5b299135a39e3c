"""Hugging Face GPT-2 (``model_type="gpt2"``) and GPT-1 (``"openai-gpt"``) <-> ``DecoderOnlyLM``.

Three facts about the original OpenAI checkpoints decide the mapping:

* their linear layers are ``Conv1D`` modules whose weight is stored ``(in, out)``, the transpose
  of ``nn.Linear``'s ``(out, in)``;
* ``attn.c_attn`` packs the query, key and value projections into one ``(d, 3d)`` matrix;
* GPT-1 names its embeddings ``tokens_embed`` / ``positions_embed`` and, being post-LN, has no
  final LayerNorm; GPT-2 names them ``wte`` / ``wpe`` and ends with ``ln_f``.

Keys may carry the ``transformer.`` prefix (``*LMHeadModel``) or not (the base model); a tied
``lm_head.weight`` is optional, and checked equal to the token embeddings when stored. Older
checkpoints also store each layer's causal-mask buffers ``attn.bias`` (a lower-triangular matrix
of ones) and ``attn.masked_bias`` (the fill value); they are checked and dropped, as Hugging Face
ignores them. Anything else is passed through under its own name, so the strict loader lists it
as unexpected; on export a parameter with no GPT-2 / GPT-1 name is refused.
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

# HF activation names -> ours (HF's GPT-1 maps afn="gelu" to gelu_new, the tanh approximation)
_GPT2_ACTIVATIONS = {"gelu_new": "gelu_tanh", "gelu_pytorch_tanh": "gelu_tanh", "gelu": "gelu", "relu": "relu",
                     "silu": "silu", "swish": "silu"}
_GPT1_ACTIVATIONS = {"gelu": "gelu_tanh", "relu": "relu", "silu": "silu", "swish": "silu"}
_GPT2_NAMES = {"gelu_tanh": "gelu_new", "gelu": "gelu", "relu": "relu", "silu": "silu"}  # ours -> HF
_GPT1_NAMES = {"gelu_tanh": "gelu", "relu": "relu", "silu": "silu"}

# per-layer HF module -> our module (c_attn is split into q/k/v separately)
_LAYER = {"ln_1": "self_attn_norm", "ln_2": "ffn_norm", "attn.c_proj": "self_attn.out_proj",
          "mlp.c_fc": "ffn.up_proj", "mlp.c_proj": "ffn.down_proj"}
_CONV1D = ("attn.c_proj", "mlp.c_fc", "mlp.c_proj")  # stored (in, out): transpose
_TOP = {
    "gpt2": {"wte": "embeddings.tokens", "wpe": "embeddings.positions", "ln_f": "decoder.final_norm"},
    "openai-gpt": {"tokens_embed": "embeddings.tokens", "positions_embed": "embeddings.positions"},
}
_LAYER_KEY = re.compile(r"h\.(\d+)\.(.+)\.(weight|bias)$")
_MASK_BUFFER = re.compile(r"h\.\d+\.attn\.(bias|masked_bias)")  # old checkpoints' causal-mask buffers


def _model_type(config: ModelConfig) -> str:
    return "openai-gpt" if config.norm_position == "post" else "gpt2"


def _check_supported(name: str, value, allowed) -> None:
    if value not in allowed:
        raise ValueError(f"config.json {name} must be one of {sorted(map(str, allowed))}, got {value!r}")


def config_from_hf(hf: dict) -> tuple[ModelConfig, type]:
    """A ``ModelConfig`` from a GPT-2 / GPT-1 ``config.json`` dict, and ``DecoderOnlyLM``.

    Raises:
        ValueError / TypeError: naming the ``config.json`` field, for a value of the wrong type
            or one this converter does not implement.

    >>> config, cls = config_from_hf({"model_type": "gpt2", "n_embd": 64, "n_layer": 2, "n_head": 4,
    ...                                "vocab_size": 100, "n_positions": 32})
    >>> config.d_ff, config.activation, cls.__name__
    (256, 'gelu_tanh', 'DecoderOnlyLM')
    """
    cfg = ConfigJson(hf)
    model_type = cfg.str("model_type", "gpt2", choices=tuple(_TOP))
    gpt2 = model_type == "gpt2"
    activations = _GPT2_ACTIVATIONS if gpt2 else _GPT1_ACTIVATIONS
    activation = cfg.str("activation_function" if gpt2 else "afn", "gelu_new" if gpt2 else "gelu",
                         choices=tuple(activations))
    if gpt2:
        _check_supported("scale_attn_by_inverse_layer_idx", cfg.bool("scale_attn_by_inverse_layer_idx", False),
                         (False,))
        _check_supported("add_cross_attention", cfg.bool("add_cross_attention", False), (False,))
    d_model = cfg.int("n_embd", 768)
    config = ModelConfig(
        architecture="decoder_only", vocab_size=cfg.int("vocab_size", 50257 if gpt2 else 40478), d_model=d_model,
        num_layers=cfg.int("n_layer", 12), num_heads=cfg.int("n_head", 12),
        d_ff=cfg.int("n_inner", None, optional=True) or 4 * d_model,
        max_positions=cfg.int("n_positions", 1024 if gpt2 else 512),
        position="learned", norm="layernorm", norm_position="pre" if gpt2 else "post",
        norm_eps=cfg.float("layer_norm_epsilon", 1e-5), activation=activations[activation],
        dropout=cfg.float("resid_pdrop", 0.1), attention_dropout=cfg.float("attn_pdrop", 0.1),
        tie_embeddings=cfg.bool("tie_word_embeddings", True),
        attention_scale=None if cfg.bool("scale_attn_weights", True) else 1.0,
        pad_token_id=cfg.token_id("pad_token_id"), bos_token_id=cfg.token_id("bos_token_id"),
        eos_token_id=cfg.token_id("eos_token_id"))
    return config, DecoderOnlyLM


def config_to_hf(model: DecoderOnlyLM) -> dict:
    """The ``config.json`` dict of ``model`` (GPT-2 for pre-LN, GPT-1 for post-LN).

    Raises:
        ValueError: if the model uses something these formats cannot express (RoPE, RMSNorm,
            gated FFN, GQA, no biases, a separate head size, an embedding or output scale).
    """
    c = model.config.expect_architecture("decoder_only")
    unsupported = {"position": (c.position, "learned"), "norm": (c.norm, "layernorm"), "gated": (c.gated, False),
                   "num_kv_heads": (c.kv_heads, c.num_heads), "bias": (c.bias, True),
                   "head_dim": (c.head_size, c.d_model // c.num_heads), "embedding_scale": (c.embedding_scale, None),
                   "output_scale": (c.output_scale, None), "attention_scale": (c.attention_scale, None),
                   "embedding_norm": (c.embedding_norm, False), "type_vocab_size": (c.type_vocab_size, 0),
                   "activation_dropout": (c.activation_dropout, 0.0)}
    for name, (value, needed) in unsupported.items():
        if value != needed and not (name == "attention_scale" and value == 1.0):
            raise ValueError(f"GPT-2/GPT-1 checkpoints need config.{name}={needed!r}, got {value!r}")
    model_type = _model_type(c)
    common = dict(model_type=model_type, vocab_size=c.vocab_size, n_embd=c.d_model, n_layer=c.num_layers,
                  n_head=c.num_heads, n_positions=c.max_positions, layer_norm_epsilon=c.norm_eps,
                  resid_pdrop=c.dropout, embd_pdrop=c.dropout, attn_pdrop=c.attention_dropout,
                  tie_word_embeddings=c.tie_embeddings, bos_token_id=c.bos_token_id, eos_token_id=c.eos_token_id,
                  pad_token_id=c.pad_token_id)
    if model_type == "openai-gpt":
        if c.d_ff != 4 * c.d_model:
            raise ValueError(f"GPT-1 checkpoints need d_ff = 4 * d_model = {4 * c.d_model}, got {c.d_ff}")
        if c.activation not in _GPT1_NAMES:
            raise ValueError(f"GPT-1 checkpoints need activation in {sorted(_GPT1_NAMES)}, got {c.activation!r}")
        return dict(common, architectures=["OpenAIGPTLMHeadModel"], afn=_GPT1_NAMES[c.activation])
    activation = _GPT2_NAMES[c.activation]
    return dict(common, architectures=["GPT2LMHeadModel"], n_inner=c.d_ff, activation_function=activation,
                scale_attn_weights=c.attention_scale is None)


# --8<-- [start:from_hf]
def state_dict_from_hf(
    hf_state: dict[str, Tensor], config: ModelConfig
) -> dict[str, Tensor]:
    """Rename (and transpose / split) Hugging Face GPT-2 or GPT-1 weights to our names.

    ``attn.c_attn.weight`` ``(d, 3d)`` becomes ``q_proj``/``k_proj``/``v_proj`` weights
    ``(d, d)`` each, every ``Conv1D`` weight is transposed, and a missing
    ``lm_head.weight`` is filled from the token embeddings when the head is tied.
    """
    top = _TOP[_model_type(config)]
    state: dict[str, Tensor] = {}
    for key, value in hf_state.items():
        key = key.removeprefix("transformer.")
        if _MASK_BUFFER.fullmatch(key):
            _check_mask_buffer(key, value)  # not a parameter: checked, then dropped
            continue
        module, _, kind = key.rpartition(".")
        match = _LAYER_KEY.match(key)
        if module in top:
            state[f"{top[module]}.{kind}"] = value
        elif key == "lm_head.weight":
            state[key] = value
        elif match and match[2] == "attn.c_attn":
            packed = value.t() if kind == "weight" else value  # (3d, d) or (3d,)
            for name, part in zip(
                ("q_proj", "k_proj", "v_proj"), packed.chunk(3, dim=0)
            ):
                state[f"decoder.layers.{match[1]}.self_attn.{name}.{kind}"] = (
                    part.contiguous()
                )
        elif match and match[2] in _LAYER:
            conv = match[2] in _CONV1D and kind == "weight"
            state[f"decoder.layers.{match[1]}.{_LAYER[match[2]]}.{kind}"] = (
                value.t().contiguous() if conv else value
            )
        else:
            state[key] = value  # unknown: reported as unexpected by the strict loader
    if (
        config.tie_embeddings
    ):  # a stored head must equal the embeddings; then both share one tensor
        drop_tied_copy(state, "lm_head.weight", "embeddings.tokens.weight")
        if "embeddings.tokens.weight" in state:
            state["lm_head.weight"] = state["embeddings.tokens.weight"]
    return state
# --8<-- [end:from_hf]


def _check_mask_buffer(key: str, value: Tensor) -> None:
    """``attn.bias`` must be the causal mask ``tril(ones)`` ``(1, 1, n, n)``, ``attn.masked_bias``
    one number: anything else is not the buffer these names held, and is refused."""
    if key.endswith("masked_bias"):
        ok = value.numel() == 1
    else:
        n = value.shape[-1] if value.ndim == 4 else -1
        causal = torch.ones(n, n).tril()[None, None] if n > 0 else None
        ok = value.shape == (1, 1, n, n) and torch.equal(value.float(), causal)
    if not ok:
        raise ValueError(f"checkpoint key {key!r} must be GPT-2's causal-mask buffer (attn.bias: lower-triangular "
                         f"ones of shape (1, 1, n, n); attn.masked_bias: one number), got shape {tuple(value.shape)} "
                         "with other values")


def state_dict_to_hf(state: dict[str, Tensor], config: ModelConfig) -> dict[str, Tensor]:
    """Inverse of ``state_dict_from_hf``: our weights under ``GPT2LMHeadModel`` /
    ``OpenAIGPTLMHeadModel`` names (``lm_head.weight`` only when untied, as Hugging Face saves)."""
    top = {ours: hf for hf, ours in _TOP[_model_type(config)].items()}
    layer = {ours: hf for hf, ours in _LAYER.items()}
    hf_state: dict[str, Tensor] = {}
    for key, value in state.items():
        module, _, kind = key.rpartition(".")
        if key == "lm_head.weight":
            if not config.tie_embeddings:
                hf_state[key] = value
            continue
        if module in top:
            hf_state[f"transformer.{top[module]}.{kind}"] = value
            continue
        match = re.match(r"decoder\.layers\.(\d+)\.(.+)$", module)
        if match is None:
            raise ValueError(f"no GPT-2/GPT-1 name for parameter {key!r}")
        index, name = match[1], match[2]
        if name in ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"):
            if name.endswith("q_proj"):  # pack q, k, v (visited once, at q)
                parts = [state[f"decoder.layers.{index}.self_attn.{p}.{kind}"] for p in ("q_proj", "k_proj", "v_proj")]
                packed = torch.cat(parts, dim=0)
                hf_state[f"transformer.h.{index}.attn.c_attn.{kind}"] = packed.t() if kind == "weight" else packed
            continue
        if name not in layer:
            raise ValueError(f"no GPT-2/GPT-1 name for parameter {key!r}")
        conv = layer[name] in _CONV1D and kind == "weight"
        hf_state[f"transformer.h.{index}.{layer[name]}.{kind}"] = value.t() if conv else value
    return hf_state
