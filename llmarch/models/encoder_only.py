"""Encoder-only Transformer (BERT, Devlin et al. 2019): bidirectional self-attention.

Every token attends to every real token of its sequence, left *and* right; the only mask is the
padding mask. The heads that sit on top (masked LM, sequence classification) live in
``llmarch.models.encoder_heads``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..nn.checks import check_ndim
from ..nn.masks import padding_mask
from .config import ModelConfig
from .embeddings import Embeddings
from .stack import TransformerStack

__all__ = ["EncoderOnly", "Pooler", "encoder_padding_mask", "init_bert_weights"]

INIT_STD = 0.02  # BERT's initializer_range (Devlin et al., 2019: truncated normal, stddev 0.02)


def init_bert_weights(model: nn.Module, std: float = INIT_STD) -> None:
    """BERT initialisation: N(0, std) for every linear and embedding weight, zero biases;
    LayerNorms keep their ones and zeros (as Hugging Face's ``BertPreTrainedModel`` does)."""
    for module in model.modules():
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, 0.0, std)
            if getattr(module, "bias", None) is not None:
                nn.init.zeros_(module.bias)


def encoder_padding_mask(attention_mask: Tensor | None, input_ids: Tensor) -> Tensor | None:
    """Check ``attention_mask`` against ``input_ids`` and turn it into a key-padding mask.

    A mask of all ones hides nothing, so it becomes ``None`` -- the same result, and the fused
    attention kernels need no mask tensor at all.

    Args:
        attention_mask: ``(batch, seq)`` of 0/1 or bool (1 = real token), or ``None``.
        input_ids: ``(batch, seq)`` token ids, for the shape check.

    Returns:
        Bool ``(batch, 1, 1, seq)`` (``True`` = may attend), or ``None`` when nothing is hidden.

    Raises:
        ValueError: if the shape differs from ``input_ids`` or values are not 0/1.
        TypeError: if ``attention_mask`` is a float tensor.

    >>> ids = torch.tensor([[101, 7, 102, 0]])
    >>> encoder_padding_mask(torch.tensor([[1, 1, 1, 0]]), ids)[0, 0, 0].tolist()
    [True, True, True, False]
    >>> encoder_padding_mask(torch.ones(1, 4, dtype=torch.long), ids) is None
    True
    >>> encoder_padding_mask(torch.ones(1, 3, dtype=torch.long), ids)
    Traceback (most recent call last):
    ...
    ValueError: attention_mask must have the shape of input_ids (1, 4), got (1, 3)
    """
    if attention_mask is None:
        return None
    check_ndim("attention_mask", attention_mask, 2, "(batch, seq)")
    if attention_mask.shape != input_ids.shape:
        raise ValueError(f"attention_mask must have the shape of input_ids {tuple(input_ids.shape)}, "
                         f"got {tuple(attention_mask.shape)}")
    mask = padding_mask(attention_mask)  # checks dtype and 0/1 values
    return None if bool(mask.all()) else mask


class Pooler(nn.Module):
    """BERT's pooler: ``tanh(W h_[CLS] + b)``, the hidden state of the first token.

    Shapes: ``(batch, seq, d_model) -> (batch, d_model)``.

    >>> Pooler(8)(torch.randn(2, 5, 8)).shape
    torch.Size([2, 8])
    """

    def __init__(self, d_model: int) -> None:
        super().__init__()
        self.dense = nn.Linear(d_model, d_model)

    def forward(self, hidden: Tensor) -> Tensor:
        return torch.tanh(self.dense(hidden[:, 0]))


# --8<-- [start:encoder_only]
class EncoderOnly(nn.Module):
    """BERT: embeddings (tokens + learned positions + token types, LayerNorm, dropout), a
    bidirectional post-LN ``TransformerStack``, optional pooler.

    Args:
        config: an ``architecture="encoder_only"`` ``ModelConfig``
            (presets ``"bert-base"``, ``"bert-large"``).

    Shapes: ``input_ids (batch, seq) -> (batch, seq, d_model)``; ``pool`` gives
    ``(batch, d_model)``.

    >>> from llmarch.models.presets import get_config
    >>> config = get_config("bert-base", num_layers=2, d_model=64, num_heads=4, d_ff=128, vocab_size=100)
    >>> model = EncoderOnly(config).eval()
    >>> ids = torch.tensor([[2, 5, 7, 3], [2, 9, 3, 0]])
    >>> hidden = model(ids, attention_mask=(ids != 0).long())
    >>> hidden.shape, model.pool(hidden).shape
    (torch.Size([2, 4, 64]), torch.Size([2, 64]))
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        if config.architecture != "encoder_only":
            raise ValueError(f"config.architecture must be 'encoder_only', got {config.architecture!r}")
        self.config = config
        self.embeddings = Embeddings(config)
        self.encoder = TransformerStack(config, config.num_layers, causal=False)
        self.pooler = Pooler(config.d_model) if config.pooler else None
        init_bert_weights(self)

    def forward(self, input_ids: Tensor, attention_mask: Tensor | None = None,
                token_type_ids: Tensor | None = None, position_ids: Tensor | None = None) -> Tensor:
        """Contextual hidden states of every token.

        Args:
            input_ids: ``(batch, seq)`` token ids.
            attention_mask: ``(batch, seq)`` 0/1 or bool, 1 = real token (default: all real).
            token_type_ids: ``(batch, seq)`` segment ids in ``[0, type_vocab_size)`` (default 0).
            position_ids: ``(batch or 1, seq)`` (default ``0 .. seq-1``).

        Returns:
            The last hidden states ``(batch, seq, d_model)``.

        Raises:
            ValueError: for a sequence longer than ``max_positions``, ids out of range, or an
                ``attention_mask`` / ``token_type_ids`` of the wrong shape.
            TypeError: for a float ``attention_mask`` or float ids.
        """
        check_ndim("input_ids", input_ids, 2, "(batch, seq)")
        seq = input_ids.shape[1]
        limit = self.config.max_positions
        if position_ids is None:
            if self.config.position == "learned" and seq > limit:
                raise ValueError(f"input_ids has {seq} tokens, longer than max_positions = {limit}")
            position_ids = torch.arange(seq, device=input_ids.device)[None]
        mask = encoder_padding_mask(attention_mask, input_ids)
        x = self.embeddings(input_ids, position_ids, token_type_ids)
        return self.encoder(x, mask=mask)

    def pool(self, hidden: Tensor) -> Tensor:
        """The pooled ``[CLS]`` vector ``(batch, d_model)`` of hidden states from ``forward``.

        Raises:
            ValueError: if the model was built with ``config.pooler=False``.
        """
        if self.pooler is None:
            raise ValueError("this EncoderOnly has no pooler (config.pooler=False)")
        return self.pooler(hidden)
# --8<-- [end:encoder_only]
