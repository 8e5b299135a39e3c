"""One configuration type for every family, with named presets.

A ``ModelConfig`` is plain data: which stack (``architecture``), sizes, and the handful of
choices that really distinguish the papers (where the norm goes, which positions, which
activation, tied or untied head). Presets live in ``llmarch.models.presets``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ..nn.checks import check_bool, check_choice, check_float, check_positive_int, check_probability
from ..nn.feedforward import ACTIVATIONS
from ..nn.relative import check_relative_buckets

__all__ = ["ModelConfig", "ARCHITECTURES", "POSITIONS"]

ARCHITECTURES = ("decoder_only", "encoder_only", "encoder_decoder")
POSITIONS = ("learned", "sinusoidal", "rotary", "alibi", "t5_relative", "none", "learned_2d")


@dataclass(frozen=True)
class ModelConfig:
    """Hyper-parameters of a Transformer.

    Attributes:
        architecture: ``"decoder_only"`` (GPT), ``"encoder_only"`` (BERT) or
            ``"encoder_decoder"`` (Transformer, T5).
        vocab_size, d_model, num_layers, num_heads, d_ff: sizes (``num_layers`` is the encoder
            depth of an encoder-decoder; ``num_decoder_layers`` its decoder depth).
        num_kv_heads: key/value heads (GQA/MQA); ``None`` = ``num_heads``.
        head_dim: per-head size; ``None`` = ``d_model // num_heads``.
        max_positions: longest sequence for learned positions (and the checked maximum).
        position: ``"learned"``, ``"sinusoidal"``, ``"rotary"``, ``"alibi"``,
            ``"t5_relative"``, ``"none"`` (NoPE) or ``"learned_2d"`` (GLM's two learned tables,
            position + position within a span, summed; decoder-only; ``block_position_ids`` in
            ``DecoderOnlyLM.forward``).
        norm, norm_position, norm_eps: ``"layernorm"``/``"rmsnorm"``, ``"pre"``/``"post"``.
        activation, gated: the feed-forward (``"gelu_tanh"`` is GPT-2's ``gelu_new``).
        bias: biases in linear layers and LayerNorms.
        dropout, attention_dropout: residual / attention-weight dropout (training only).
        activation_dropout: dropout on the feed-forward's hidden activations (T5: ``dropout``).
        tie_embeddings: the output projection shares the input embedding matrix.
        embedding_scale: multiply token embeddings by this (Transformer: ``sqrt(d_model)``).
        output_scale: multiply the final hidden state by this before a tied head
            (T5: ``d_model ** -0.5``).
        embedding_norm: LayerNorm after the embeddings (BERT).
        type_vocab_size: token-type (segment) embeddings (BERT: 2; 0 = none).
        pooler: a ``tanh(W h_[CLS])`` pooler (BERT).
        attention_scale: score multiplier; ``None`` = ``1/sqrt(head_dim)`` (T5: 1.0).
        relative_buckets, relative_max_distance: T5 relative position buckets.
        rope_base: RoPE base.
        pad_token_id, bos_token_id, eos_token_id, decoder_start_token_id: special ids.
        backend: attention backend, ``"auto"``, ``"sdpa"`` or ``"eager"``.
        prefix_lm: decoder-only: ``generate`` treats the prompt as a prefix -- run once with
            bidirectional attention, then causal decoding with a KV cache (a prefix LM, or
            "non-causal decoder"; ``llmarch.models.prefix_lm``). ``forward`` takes
            ``prefix_lengths`` whatever this flag says.

    >>> cfg = ModelConfig("decoder_only", vocab_size=100, d_model=32, num_layers=2, num_heads=4, d_ff=64)
    >>> cfg.replace(num_layers=3).num_layers
    3
    >>> cfg.replace(layers=3)
    Traceback (most recent call last):
    ...
    TypeError: unknown ModelConfig field(s) ['layers']; valid fields: architecture, vocab_size, ...
    """

    architecture: str
    vocab_size: int
    d_model: int
    num_layers: int
    num_heads: int
    d_ff: int
    num_decoder_layers: int | None = None
    num_kv_heads: int | None = None
    head_dim: int | None = None
    max_positions: int | None = 1024
    position: str = "learned"
    norm: str = "layernorm"
    norm_position: str = "pre"
    norm_eps: float = 1e-5
    activation: str = "gelu"
    gated: bool = False
    bias: bool = True
    dropout: float = 0.1
    attention_dropout: float = 0.1
    activation_dropout: float = 0.0
    tie_embeddings: bool = True
    embedding_scale: float | None = None
    output_scale: float | None = None
    embedding_norm: bool = False
    type_vocab_size: int = 0
    pooler: bool = False
    attention_scale: float | None = None
    relative_buckets: int = 32
    relative_max_distance: int = 128
    rope_base: float = 10000.0
    pad_token_id: int | None = None
    bos_token_id: int | None = None
    eos_token_id: int | None = None
    decoder_start_token_id: int | None = None
    backend: str = "auto"
    prefix_lm: bool = False

    def __post_init__(self) -> None:
        check_choice("architecture", self.architecture, ARCHITECTURES)
        check_choice("position", self.position, POSITIONS)
        check_choice("norm_position", self.norm_position, ("pre", "post"))
        check_choice("norm", self.norm, ("layernorm", "rmsnorm"))
        for name in ("vocab_size", "d_model", "num_layers", "num_heads", "d_ff"):
            check_positive_int(name, getattr(self, name))
        for name in ("num_decoder_layers", "num_kv_heads", "head_dim", "max_positions"):
            if getattr(self, name) is not None:
                check_positive_int(name, getattr(self, name))
        check_probability("dropout", self.dropout)
        check_probability("attention_dropout", self.attention_dropout)
        check_probability("activation_dropout", self.activation_dropout)
        if self.head_dim is None and self.d_model % self.num_heads:
            raise ValueError(f"d_model must be divisible by num_heads, got d_model={self.d_model} "
                             f"and num_heads={self.num_heads}")
        if self.num_heads % (self.num_kv_heads or self.num_heads):
            raise ValueError(f"num_heads must be divisible by num_kv_heads, got num_heads={self.num_heads} "
                             f"and num_kv_heads={self.num_kv_heads}")
        if self.position in ("learned", "learned_2d") and self.max_positions is None:
            raise ValueError(f"max_positions is required with position={self.position!r}, got None")
        if self.position == "learned_2d" and self.architecture != "decoder_only":
            raise ValueError("position='learned_2d' (GLM's 2D positions) needs architecture='decoder_only', "
                             f"got {self.architecture!r}")
        check_choice("activation", self.activation, tuple(ACTIVATIONS))
        check_choice("backend", self.backend, ("auto", "eager", "sdpa"))
        for name in ("gated", "bias", "tie_embeddings", "embedding_norm", "pooler", "prefix_lm"):
            check_bool(name, getattr(self, name))
        if self.prefix_lm is True and self.architecture != "decoder_only":
            raise ValueError(f"prefix_lm=True needs architecture='decoder_only', got {self.architecture!r}")
        check_positive_int("type_vocab_size", self.type_vocab_size, allow_zero=True)
        check_float("norm_eps", self.norm_eps, non_negative=True)
        check_float("rope_base", self.rope_base, positive=True)
        for name in ("embedding_scale", "output_scale", "attention_scale"):
            if getattr(self, name) is not None:
                check_float(name, getattr(self, name))
        for name in ("pad_token_id", "bos_token_id", "eos_token_id", "decoder_start_token_id"):
            if getattr(self, name) is not None:  # not checked against vocab_size: a preset's ids may lie beyond
                check_positive_int(name, getattr(self, name), allow_zero=True)  # a tiny vocabulary, unused
        if self.position == "t5_relative":
            bidirectional = self.architecture != "decoder_only"  # an encoder's buckets split both directions
            check_relative_buckets(self.relative_buckets, self.relative_max_distance, bidirectional,
                                   names=("relative_buckets", "relative_max_distance"))

    @property
    def head_size(self) -> int:
        """Per-head size (``head_dim`` or ``d_model // num_heads``)."""
        return self.head_dim or self.d_model // self.num_heads

    @property
    def kv_heads(self) -> int:
        """Number of key/value heads."""
        return self.num_kv_heads or self.num_heads

    @property
    def decoder_layers(self) -> int:
        """Decoder depth of an encoder-decoder."""
        return self.num_decoder_layers or self.num_layers

    def expect_architecture(self, expected: str) -> "ModelConfig":
        """Raise ``ValueError`` unless ``architecture == expected`` (a model built from a wrong config)."""
        if self.architecture != expected:
            raise ValueError(f"config.architecture must be {expected!r}, got {self.architecture!r}")
        return self

    def replace(self, **overrides) -> "ModelConfig":
        """A copy with some fields changed; unknown names raise ``TypeError``."""
        names = [f.name for f in dataclasses.fields(self)]
        unknown = sorted(set(overrides) - set(names))
        if unknown:
            raise TypeError(f"unknown ModelConfig field(s) {unknown}; valid fields: {', '.join(names)}")
        return dataclasses.replace(self, **overrides)

    def to_dict(self) -> dict:
        """Plain ``dict`` (JSON-serialisable)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "ModelConfig":
        """Inverse of ``to_dict``; unknown keys raise ``TypeError``."""
        if not isinstance(data, dict):
            raise TypeError(f"data must be a dict of ModelConfig fields, got {type(data).__name__}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise TypeError(f"unknown ModelConfig field(s) {unknown}")
        return cls(**data)
