"""Hugging Face BERT checkpoints (``BertModel``, ``BertForMaskedLM``,
``BertForSequenceClassification``) <-> llmarch encoder-only models.

Hugging Face names the parts of a layer after the paper's figure, llmarch after what they do
(``encoder.layer.N.`` -> ``encoder.layers.N.``):

* ``attention.self.query`` / ``key`` / ``value`` -> ``self_attn.q_proj`` / ``k_proj`` / ``v_proj``
* ``attention.output.dense`` -> ``self_attn.out_proj``; ``attention.output.LayerNorm`` -> ``self_attn_norm``
* ``intermediate.dense`` -> ``ffn.up_proj``; ``output.dense`` -> ``ffn.down_proj``;
  ``output.LayerNorm`` -> ``ffn_norm``

The body carries a ``bert.`` prefix in models with a head (ours: ``model.``) and none in a bare
``BertModel`` -- though some bare checkpoints were saved with it. Old checkpoints also store the
``embeddings.position_ids`` buffer (``arange``; checked, then dropped) and a copy of the tied
decoder weight and bias (checked equal to the tensors they are tied to, then dropped).
"""

from __future__ import annotations

import functools

import torch
from torch import Tensor

from ..models.config import ModelConfig
from ..models.encoder_heads import EncoderOnlyForMaskedLM, EncoderOnlyForSequenceClassification
from ..models.encoder_only import EncoderOnly
from .checkpoint import drop_tied_copy
from .config_json import ConfigJson

__all__ = ["config_from_hf", "config_to_hf", "state_dict_from_hf", "state_dict_to_hf"]

_ACTIVATIONS = {"gelu": "gelu", "gelu_new": "gelu_tanh", "gelu_pytorch_tanh": "gelu_tanh", "relu": "relu",
                "silu": "silu"}
_ARCHITECTURES = {"BertModel": EncoderOnly, "BertForMaskedLM": EncoderOnlyForMaskedLM,
                  "BertForSequenceClassification": EncoderOnlyForSequenceClassification}

# HF suffix -> llmarch suffix, inside each layer
_LAYER = {
    "attention.self.query": "self_attn.q_proj",
    "attention.self.key": "self_attn.k_proj",
    "attention.self.value": "self_attn.v_proj",
    "attention.output.dense": "self_attn.out_proj",
    "attention.output.LayerNorm": "self_attn_norm",
    "intermediate.dense": "ffn.up_proj",
    "output.dense": "ffn.down_proj",
    "output.LayerNorm": "ffn_norm",
}
_EMBEDDINGS = {
    "embeddings.word_embeddings": "embeddings.tokens",
    "embeddings.position_embeddings": "embeddings.positions",
    "embeddings.token_type_embeddings": "embeddings.token_types",
    "embeddings.LayerNorm": "embeddings.norm",
    "pooler.dense": "pooler.dense",
}
_HEADS = {
    "cls.predictions.transform.dense": "mlm_head.dense",
    "cls.predictions.transform.LayerNorm": "mlm_head.norm",
    "cls.predictions.bias": "mlm_head.bias",
    "cls.predictions.decoder": "decoder",  # only when untied
    "classifier": "classifier",
}


def config_from_hf(hf_config: dict):
    """``(ModelConfig, model class)`` for a Hugging Face ``BertConfig`` dict.

    Raises:
        ValueError / TypeError: naming the ``config.json`` field, for a value of the wrong type
            or an architecture, activation or position type this converter does not implement.

    >>> config, cls = config_from_hf({"vocab_size": 99, "hidden_size": 32, "num_hidden_layers": 2,
    ...                               "num_attention_heads": 4, "intermediate_size": 37})
    >>> config.norm_position, config.pooler, cls.__name__
    ('post', True, 'EncoderOnly')
    """
    cfg = ConfigJson(hf_config)
    architectures = hf_config.get("architectures") or ["BertModel"]
    if not isinstance(architectures, list):
        raise TypeError(f"config.json architectures must be a list, got {type(architectures).__name__}")
    arch = architectures[0]
    if arch not in _ARCHITECTURES:
        raise ValueError(f"config.json architectures[0] must be one of {', '.join(_ARCHITECTURES)}, got {arch!r}")
    act = cfg.str("hidden_act", "gelu", choices=tuple(_ACTIVATIONS))
    cfg.str("position_embedding_type", "absolute", choices=("absolute",))
    if cfg.bool("is_decoder", False) or cfg.bool("add_cross_attention", False):
        raise ValueError("config.json describes a BERT decoder (is_decoder/add_cross_attention); "
                         "only the encoder is supported")
    config = ModelConfig(
        architecture="encoder_only", vocab_size=cfg.int("vocab_size"), d_model=cfg.int("hidden_size"),
        num_layers=cfg.int("num_hidden_layers"), num_heads=cfg.int("num_attention_heads"),
        d_ff=cfg.int("intermediate_size"), max_positions=cfg.int("max_position_embeddings", 512),
        position="learned", norm_position="post", norm_eps=cfg.float("layer_norm_eps", 1e-12),
        activation=_ACTIVATIONS[act], dropout=cfg.float("hidden_dropout_prob", 0.1),
        attention_dropout=cfg.float("attention_probs_dropout_prob", 0.1),
        tie_embeddings=cfg.bool("tie_word_embeddings", True), embedding_norm=True,
        type_vocab_size=cfg.int("type_vocab_size", 2), pooler=arch != "BertForMaskedLM",
        pad_token_id=cfg.token_id("pad_token_id") if "pad_token_id" in hf_config else 0)
    model_class = _ARCHITECTURES[arch]
    if model_class is EncoderOnlyForSequenceClassification:
        labels = hf_config.get("id2label") or {}
        if not isinstance(labels, dict):
            raise TypeError(f"config.json id2label must be an object, got {type(labels).__name__}")
        num_labels = cfg.int("num_labels", None, optional=True) or len(labels) or 2
        model_class = functools.partial(EncoderOnlyForSequenceClassification, num_labels=num_labels)
    return config, model_class


def config_to_hf(model) -> dict:
    """A Hugging Face ``BertConfig`` dict describing ``model`` (any of the three classes)."""
    c: ModelConfig = model.config
    if c.architecture != "encoder_only" or c.norm_position != "post" or c.position != "learned":
        raise ValueError("only a BERT-shaped config (encoder_only, post-LN, learned positions) maps to "
                         f"Hugging Face BERT, got architecture={c.architecture!r}, norm_position={c.norm_position!r}, "
                         f"position={c.position!r}")
    arch = next(name for name, cls in _ARCHITECTURES.items() if type(model) is cls)
    hf = {
        "architectures": [arch], "model_type": "bert", "vocab_size": c.vocab_size, "hidden_size": c.d_model,
        "num_hidden_layers": c.num_layers, "num_attention_heads": c.num_heads, "intermediate_size": c.d_ff,
        "hidden_act": {v: k for k, v in reversed(_ACTIVATIONS.items())}[c.activation],
        "hidden_dropout_prob": c.dropout, "attention_probs_dropout_prob": c.attention_dropout,
        "max_position_embeddings": c.max_positions, "type_vocab_size": c.type_vocab_size,
        "layer_norm_eps": c.norm_eps, "pad_token_id": c.pad_token_id, "tie_word_embeddings": c.tie_embeddings,
        "position_embedding_type": "absolute",
    }
    if arch == "BertForSequenceClassification":
        hf["id2label"] = {str(i): f"LABEL_{i}" for i in range(model.num_labels)}
        hf["label2id"] = {f"LABEL_{i}": i for i in range(model.num_labels)}
    return hf


def _rename(key: str, table: dict[str, str]) -> str | None:
    for old, new in table.items():
        if key == old or key.startswith(old + "."):
            return new + key[len(old):]
    return None


def _hf_to_ours(key: str) -> str:
    if key.startswith("encoder.layer."):
        index, rest = key[len("encoder.layer."):].split(".", 1)
        new = _rename(rest, _LAYER)
        return f"encoder.layers.{index}.{new}" if new else key
    return _rename(key, _EMBEDDINGS) or key


def state_dict_from_hf(hf_state: dict[str, Tensor], config: ModelConfig) -> dict[str, Tensor]:
    """Rename a Hugging Face BERT state dict to llmarch names.

    Keys that are not recognised are passed through unchanged, so the strict loader reports
    them as unexpected; nothing is silently dropped except the checked duplicates described in
    the module docstring.

    Raises:
        ValueError: if ``embeddings.position_ids`` is not ``0 .. n-1`` or a stored copy of a tied
            tensor differs from the tensor it is tied to.
    """
    state = {(k[len("bert."):] if k.startswith("bert.") else k): v for k, v in hf_state.items()}
    positions = state.pop("embeddings.position_ids", None)
    if positions is not None and not torch.equal(positions.reshape(-1), torch.arange(positions.numel())):
        raise ValueError("checkpoint key 'embeddings.position_ids' must be 0 .. n-1, got other values")
    drop_tied_copy(state, "cls.predictions.decoder.bias", "cls.predictions.bias")
    if config.tie_embeddings:
        drop_tied_copy(state, "cls.predictions.decoder.weight", "embeddings.word_embeddings.weight")
    has_head = any(k.startswith(("cls.", "classifier.")) for k in state)
    out = {}
    for key, value in state.items():
        head = _rename(key, _HEADS)
        if head is not None:
            out[head] = value
        else:
            out[("model." if has_head else "") + _hf_to_ours(key)] = value
    return out


def state_dict_to_hf(state: dict[str, Tensor], config: ModelConfig) -> dict[str, Tensor]:
    """Inverse of ``state_dict_from_hf`` (tied tensors stored once, as Hugging Face does)."""
    has_head = any(k.startswith(("mlm_head.", "classifier.")) for k in state)
    ours_to_hf_layer = {v: k for k, v in _LAYER.items()}
    ours_to_hf_emb = {v: k for k, v in _EMBEDDINGS.items()}
    ours_to_hf_head = {v: k for k, v in _HEADS.items()}
    out = {}
    for key, value in state.items():
        head = _rename(key, ours_to_hf_head)
        if head is not None:
            out[head] = value
            continue
        body = key[len("model."):] if has_head else key
        if body.startswith("encoder.layers."):
            index, rest = body[len("encoder.layers."):].split(".", 1)
            rest = _rename(rest, ours_to_hf_layer)
            new = None if rest is None else f"encoder.layer.{index}.{rest}"
        else:
            new = _rename(body, ours_to_hf_emb)
        if new is None:
            raise ValueError(f"no Hugging Face name for llmarch key {key!r}")
        out[("bert." if has_head else "") + new] = value
    return out
