"""Hugging Face T5 checkpoints (``T5ForConditionalGeneration``) <-> ``EncoderDecoderLM``.

Names map one to one, block by block::

    shared.weight                                          embeddings.tokens.weight
    {stack}.block.{i}.layer.0.SelfAttention.{q,k,v,o}      {stack}.layers.{i}.self_attn.{q,k,v,out}_proj
    {stack}.block.{i}.layer.0.layer_norm                   {stack}.layers.{i}.self_attn_norm
    decoder.block.{i}.layer.1.EncDecAttention.{q,k,v,o}    decoder.layers.{i}.cross_attn.{q,k,v,out}_proj
    decoder.block.{i}.layer.1.layer_norm                   decoder.layers.{i}.cross_attn_norm
    {stack}.block.{i}.layer.{-1}.DenseReluDense.wi         {stack}.layers.{i}.ffn.up_proj       (v1.0)
    {stack}.block.{i}.layer.{-1}.DenseReluDense.wi_0/wi_1  {stack}.layers.{i}.ffn.gate_proj/up_proj (v1.1)
    {stack}.block.{i}.layer.{-1}.DenseReluDense.wo         {stack}.layers.{i}.ffn.down_proj
    {stack}.block.{i}.layer.{-1}.layer_norm                {stack}.layers.{i}.ffn_norm
    {stack}.block.0.layer.0.SelfAttention.relative_attention_bias   {stack}.position_bias.embedding
    {stack}.final_layer_norm                               {stack}.final_norm
    lm_head.weight                                         lm_head.weight (tied: the same tensor as shared)

T5 computes the relative position bias only in block 0 and shares it, which is exactly what
``TransformerStack`` does with its single ``position_bias``.

The head: T5 v1.0 ties it to ``shared`` and scales the decoder output by ``d_model ** -0.5``;
v1.1 checkpoints say ``tie_word_embeddings: false`` and have their own ``lm_head`` without
the scale. Transformers 5.x always ties the weights and records the scale as
``scale_decoder_outputs``; both spellings are understood here.

As strict as the GPT-2 and BERT converters: the stored copies of tied tensors
(``encoder.embed_tokens`` / ``decoder.embed_tokens``, and ``lm_head`` when tied) are checked
equal to ``shared`` before they are dropped; the one key Hugging Face itself ignores on load,
``decoder.block.0.layer.1.EncDecAttention.relative_attention_bias`` (cross-attention has no
position bias; some old checkpoints store one), is dropped; any other unknown key is listed
by the strict loader, and on export a parameter with no T5 name is refused.
"""

from __future__ import annotations

import math

from torch import Tensor

from ..models.config import ModelConfig
from ..models.encoder_decoder import EncoderDecoderLM
from .checkpoint import drop_tied_copy
from .config_json import ConfigJson

__all__ = ["config_from_hf", "config_to_hf", "state_dict_from_hf", "state_dict_to_hf"]

_ATTN = {"q": "q_proj", "k": "k_proj", "v": "v_proj", "o": "out_proj"}
_FFN = {"wi": "up_proj", "wi_0": "gate_proj", "wi_1": "up_proj", "wo": "down_proj"}
# a bias Hugging Face itself never uses (its T5 models list it in _keys_to_ignore_on_load_unexpected)
_UNUSED = "decoder.block.0.layer.1.EncDecAttention.relative_attention_bias.weight"
_ACTIVATIONS = ("relu", "gelu", "gelu_new", "gelu_pytorch_tanh", "silu")


def config_from_hf(hf: dict) -> tuple[ModelConfig, type]:
    """A ``ModelConfig`` from a Hugging Face ``T5Config`` dict, and the model class.

    >>> config, cls = config_from_hf({"vocab_size": 100, "d_model": 32, "d_kv": 8, "d_ff": 64,
    ...                               "num_layers": 2, "num_heads": 4, "feed_forward_proj": "gated-gelu",
    ...                               "tie_word_embeddings": False})
    >>> config.activation, config.gated, config.tie_embeddings, config.output_scale, cls.__name__
    ('gelu_tanh', True, False, None, 'EncoderDecoderLM')
    """
    cfg = ConfigJson(hf)
    projection = cfg.str("feed_forward_proj", "relu",
                         choices=_ACTIVATIONS + tuple(f"gated-{a}" for a in _ACTIVATIONS))
    gated = projection.startswith("gated-")
    activation = projection.split("-", 1)[-1] if gated else projection
    activation = {"gelu": "gelu_tanh" if gated else "gelu", "gelu_new": "gelu_tanh",
                  "gelu_pytorch_tanh": "gelu_tanh"}.get(activation, activation)
    tied = cfg.bool("tie_word_embeddings", True)
    scaled = cfg.bool("scale_decoder_outputs", tied)
    dropout = cfg.float("dropout_rate", 0.1)
    d_model, num_heads, num_layers = cfg.int("d_model"), cfg.int("num_heads"), cfg.int("num_layers")
    pad = cfg.token_id("pad_token_id") if "pad_token_id" in hf else 0
    start = cfg.token_id("decoder_start_token_id") if "decoder_start_token_id" in hf else pad
    config = ModelConfig(
        architecture="encoder_decoder", vocab_size=cfg.int("vocab_size"), d_model=d_model,
        num_layers=num_layers, num_decoder_layers=cfg.int("num_decoder_layers", None, optional=True) or num_layers,
        num_heads=num_heads, head_dim=cfg.int("d_kv", None), d_ff=cfg.int("d_ff"),
        max_positions=None, position="t5_relative", norm="rmsnorm", norm_position="pre",
        norm_eps=cfg.float("layer_norm_epsilon", 1e-6), activation=activation, gated=gated, bias=False,
        dropout=dropout, attention_dropout=dropout, activation_dropout=dropout, tie_embeddings=tied,
        output_scale=d_model ** -0.5 if scaled else None, attention_scale=1.0,
        relative_buckets=cfg.int("relative_attention_num_buckets", 32),
        relative_max_distance=cfg.int("relative_attention_max_distance", 128),
        pad_token_id=pad, eos_token_id=cfg.token_id("eos_token_id") if "eos_token_id" in hf else 1,
        decoder_start_token_id=start,
    )
    return config, EncoderDecoderLM


def config_to_hf(model: EncoderDecoderLM) -> dict:
    """The Hugging Face ``config.json`` dict of ``model`` (a T5-style ``EncoderDecoderLM``).

    Raises:
        ValueError: naming the field, if the model uses something T5 cannot express (other
            positions or norms, biases, GQA, an embedding scale, an output scale other than
            ``d_model ** -0.5``, dropout rates that differ -- T5 has one ``dropout_rate``).
    """
    c = model.config.expect_architecture("encoder_decoder")
    if c.position != "t5_relative" or c.norm != "rmsnorm" or c.norm_position != "pre" or c.bias:
        raise ValueError("only T5-style models (t5_relative positions, pre-LN RMSNorm, no biases) can be saved "
                         f"as model_type 't5', got position={c.position!r}, norm={c.norm!r}, "
                         f"norm_position={c.norm_position!r}, bias={c.bias}")
    needed = {"num_kv_heads": (c.kv_heads, c.num_heads), "embedding_scale": (c.embedding_scale, None),
              "attention_scale": (c.attention_scale, 1.0), "embedding_norm": (c.embedding_norm, False),
              "type_vocab_size": (c.type_vocab_size, 0), "attention_dropout": (c.attention_dropout, c.dropout),
              "activation_dropout": (c.activation_dropout, c.dropout)}
    if c.output_scale is not None:
        needed["output_scale"] = (c.output_scale, c.d_model ** -0.5)
    for name, (value, wanted) in needed.items():
        if value != wanted and not (isinstance(value, float) and isinstance(wanted, float)
                                    and math.isclose(value, wanted, rel_tol=1e-9)):
            raise ValueError(f"T5 checkpoints need config.{name}={wanted!r}, got {value!r}")
    if c.activation not in ("relu", "gelu", "gelu_tanh", "silu") or (c.gated and c.activation == "gelu"):
        raise ValueError("T5 checkpoints need activation in ['gelu', 'gelu_tanh', 'relu', 'silu'] (gated: not "
                         f"'gelu', which Hugging Face reads as 'gated-gelu' = gelu_tanh), got {c.activation!r}"
                         f"{' with gated=True' if c.gated else ''}")
    activation = {"gelu_tanh": "gelu_new"}.get(c.activation, c.activation)
    return {
        "model_type": "t5", "architectures": ["T5ForConditionalGeneration"], "is_encoder_decoder": True,
        "vocab_size": c.vocab_size, "d_model": c.d_model, "d_kv": c.head_size, "d_ff": c.d_ff,
        "num_layers": c.num_layers, "num_decoder_layers": c.decoder_layers, "num_heads": c.num_heads,
        "relative_attention_num_buckets": c.relative_buckets,
        "relative_attention_max_distance": c.relative_max_distance,
        "dropout_rate": c.dropout, "layer_norm_epsilon": c.norm_eps,
        "feed_forward_proj": f"gated-{activation}" if c.gated else activation,
        "tie_word_embeddings": c.tie_embeddings, "scale_decoder_outputs": c.output_scale is not None,
        "pad_token_id": c.pad_token_id, "eos_token_id": c.eos_token_id,
        "decoder_start_token_id": c.decoder_start_token_id,
    }


def _layer_names(config: ModelConfig) -> list[tuple[str, str]]:
    """``(ours, hf)`` name pairs of every parameter (without the ``.weight`` suffix)."""
    pairs = [("embeddings.tokens", "shared")]
    ffn = ("wi_0", "wi_1", "wo") if config.gated else ("wi", "wo")
    for stack, depth in (("encoder", config.num_layers), ("decoder", config.decoder_layers)):
        pairs += [(f"{stack}.position_bias.embedding", f"{stack}.block.0.layer.0.SelfAttention.relative_attention_bias"),
                  (f"{stack}.final_norm", f"{stack}.final_layer_norm")]
        for i in range(depth):
            ours, hf = f"{stack}.layers.{i}", f"{stack}.block.{i}.layer"
            sublayers = [("self_attn", "0.SelfAttention")]
            if stack == "decoder":
                sublayers.append(("cross_attn", "1.EncDecAttention"))
            for mine, theirs in sublayers:
                pairs += [(f"{ours}.{mine}.{_ATTN[p]}", f"{hf}.{theirs}.{p}") for p in _ATTN]
                pairs.append((f"{ours}.{mine}_norm", f"{hf}.{theirs.split('.')[0]}.layer_norm"))
            last = len(sublayers)
            pairs += [(f"{ours}.ffn.{_FFN[p]}", f"{hf}.{last}.DenseReluDense.{p}") for p in ffn]
            pairs.append((f"{ours}.ffn_norm", f"{hf}.{last}.layer_norm"))
    if not config.tie_embeddings:
        pairs.append(("lm_head", "lm_head"))
    return pairs


def state_dict_from_hf(hf_state: dict[str, Tensor], config: ModelConfig) -> dict[str, Tensor]:
    """Rename a Hugging Face T5 state dict to llmarch names.

    Keys this mapping does not know are passed through unchanged, so the strict loader lists
    them as unexpected. The stored copies of ``shared`` (``encoder.embed_tokens``,
    ``decoder.embed_tokens``, and ``lm_head`` when tied) must equal it; a tied head is then
    ``shared`` itself.

    Raises:
        ValueError: naming both keys, if a stored copy of a tied tensor differs from ``shared``.
    """
    state = dict(hf_state)
    state.pop(_UNUSED, None)
    copies = ["encoder.embed_tokens.weight", "decoder.embed_tokens.weight"]
    for key in copies + (["lm_head.weight"] if config.tie_embeddings else []):
        drop_tied_copy(state, key, "shared.weight")
    rename = {f"{hf}.weight": f"{ours}.weight" for ours, hf in _layer_names(config)}
    state = {rename.get(key, key): value for key, value in state.items()}
    if config.tie_embeddings and "embeddings.tokens.weight" in state:
        state["lm_head.weight"] = state["embeddings.tokens.weight"]
    return state


def state_dict_to_hf(state: dict[str, Tensor], config: ModelConfig) -> dict[str, Tensor]:
    """Rename an llmarch state dict to Hugging Face T5 names (``shared`` stored once).

    Raises:
        ValueError: for a key with no T5 name (listing every such key).
    """
    rename = {f"{ours}.weight": f"{hf}.weight" for ours, hf in _layer_names(config)}
    if config.tie_embeddings:
        rename["lm_head.weight"] = None  # the same tensor as shared: stored once
    unknown = sorted(set(state) - set(rename))
    if unknown:
        raise ValueError(f"no Hugging Face T5 name for llmarch key(s) {unknown}")
    return {rename[key]: value for key, value in state.items() if rename[key] is not None}
