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
"""

from __future__ import annotations

import re

from torch import Tensor

from ..models.config import ModelConfig
from ..models.encoder_decoder import EncoderDecoderLM

__all__ = ["config_from_hf", "config_to_hf", "state_dict_from_hf", "state_dict_to_hf"]

_ATTN = {"q": "q_proj", "k": "k_proj", "v": "v_proj", "o": "out_proj"}
_FFN = {"wi": "up_proj", "wi_0": "gate_proj", "wi_1": "up_proj", "wo": "down_proj"}
# HF keys that hold copies of tied weights, or a bias HF itself never uses
_IGNORED = re.compile(r"(encoder|decoder)\.embed_tokens\.weight|"
                      r"decoder\.block\.0\.layer\.1\.EncDecAttention\.relative_attention_bias\.weight")


def config_from_hf(hf: dict) -> tuple[ModelConfig, type]:
    """A ``ModelConfig`` from a Hugging Face ``T5Config`` dict, and the model class.

    >>> config, cls = config_from_hf({"vocab_size": 100, "d_model": 32, "d_kv": 8, "d_ff": 64,
    ...                               "num_layers": 2, "num_heads": 4, "feed_forward_proj": "gated-gelu",
    ...                               "tie_word_embeddings": False})
    >>> config.activation, config.gated, config.tie_embeddings, config.output_scale, cls.__name__
    ('gelu_tanh', True, False, None, 'EncoderDecoderLM')
    """
    projection = hf.get("feed_forward_proj", "relu")
    gated = projection.startswith("gated-")
    activation = projection.split("-")[-1]
    activation = {"gelu": "gelu_tanh" if gated else "gelu", "gelu_new": "gelu_tanh"}.get(activation, activation)
    tied = hf.get("tie_word_embeddings", True)
    scaled = hf.get("scale_decoder_outputs", tied)
    dropout = float(hf.get("dropout_rate", 0.1))
    config = ModelConfig(
        architecture="encoder_decoder", vocab_size=hf["vocab_size"], d_model=hf["d_model"],
        num_layers=hf["num_layers"], num_decoder_layers=hf.get("num_decoder_layers") or hf["num_layers"],
        num_heads=hf["num_heads"], head_dim=hf.get("d_kv", hf["d_model"] // hf["num_heads"]), d_ff=hf["d_ff"],
        max_positions=None, position="t5_relative", norm="rmsnorm", norm_position="pre",
        norm_eps=hf.get("layer_norm_epsilon", 1e-6), activation=activation, gated=gated, bias=False,
        dropout=dropout, attention_dropout=dropout, activation_dropout=dropout, tie_embeddings=tied,
        output_scale=hf["d_model"] ** -0.5 if scaled else None, attention_scale=1.0,
        relative_buckets=hf.get("relative_attention_num_buckets", 32),
        relative_max_distance=hf.get("relative_attention_max_distance", 128),
        pad_token_id=hf.get("pad_token_id", 0), eos_token_id=hf.get("eos_token_id", 1),
        decoder_start_token_id=hf.get("decoder_start_token_id", hf.get("pad_token_id", 0)),
    )
    return config, EncoderDecoderLM


def config_to_hf(model: EncoderDecoderLM) -> dict:
    """The Hugging Face ``config.json`` dict of ``model`` (a T5-style ``EncoderDecoderLM``)."""
    c = model.config
    if c.position != "t5_relative" or c.norm != "rmsnorm" or c.norm_position != "pre" or c.bias:
        raise ValueError("only T5-style models (t5_relative positions, pre-LN RMSNorm, no biases) can be saved "
                         f"as model_type 't5', got position={c.position!r}, norm={c.norm!r}, "
                         f"norm_position={c.norm_position!r}, bias={c.bias}")
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
    them as unexpected; a tied head's ``lm_head.weight`` (a copy of ``shared``, often not
    stored) is taken from ``shared``.
    """
    rename = {f"{hf}.weight": f"{ours}.weight" for ours, hf in _layer_names(config)}
    state = {}
    for key, value in hf_state.items():
        if _IGNORED.fullmatch(key) or (key == "lm_head.weight" and config.tie_embeddings):
            continue
        state[rename.get(key, key)] = value
    if config.tie_embeddings and "embeddings.tokens.weight" in state:
        state["lm_head.weight"] = state["embeddings.tokens.weight"]
    return state


def state_dict_to_hf(state: dict[str, Tensor], config: ModelConfig) -> dict[str, Tensor]:
    """Rename an llmarch state dict to Hugging Face T5 names (``shared`` stored once)."""
    rename = {f"{ours}.weight": f"{hf}.weight" for ours, hf in _layer_names(config)}
    return {rename.get(key, key): value for key, value in state.items()
            if not (key == "lm_head.weight" and config.tie_embeddings)}
