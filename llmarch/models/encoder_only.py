"""Encoder-only Transformer (BERT, Devlin et al. 2019): bidirectional self-attention.

Every token attends to every real token of its sequence, left *and* right; the only mask is the
padding mask. The heads that sit on top (masked LM, sequence classification) live in
``llmarch.models.encoder_heads``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..nn.checks import check_features, check_ndim
from .config import ModelConfig
from .embeddings import Embeddings
from .init import init_weights
from .inputs import check_position_ids, key_padding_mask
from .stack import TransformerStack

__all__ = ["EncoderOnly", "Pooler"]

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
        check_features("hidden", hidden, self.dense.weight, self.dense.in_features, "(batch, seq, d_model)", ndims=3)
        if hidden.shape[1] == 0:
            raise ValueError(f"hidden must hold at least one token (the [CLS] state), got shape {tuple(hidden.shape)}")
        return torch.tanh(self.dense(hidden[:, 0]))


# --8<-- [start:encoder_only]
class EncoderOnly(nn.Module):
    """BERT: embeddings (tokens + learned positions + token types, LayerNorm,
    dropout), a bidirectional post-LN ``TransformerStack``, optional pooler.

    Args:
        config: an ``architecture="encoder_only"`` ``ModelConfig``
            (presets ``"bert-base"``, ``"bert-large"``).

    Shapes: ``input_ids (batch, seq) -> (batch, seq, d_model)``; ``pool`` gives
    ``(batch, d_model)``.

    >>> from llmarch.models.presets import get_config
    >>> config = get_config("bert-base", num_layers=2, d_model=64, num_heads=4,
    ...                     d_ff=128, vocab_size=100)
    >>> model = EncoderOnly(config).eval()
    >>> ids = torch.tensor([[2, 5, 7, 3], [2, 9, 3, 0]])
    >>> hidden = model(ids, attention_mask=(ids != 0).long())
    >>> hidden.shape, model.pool(hidden).shape
    (torch.Size([2, 4, 64]), torch.Size([2, 64]))
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config.expect_architecture("encoder_only")
        self.embeddings = Embeddings(config)
        self.encoder = TransformerStack(config, config.num_layers, causal=False)
        self.pooler = Pooler(config.d_model) if config.pooler else None
        init_weights(self)

    def forward(
        self,
        input_ids: Tensor,
        attention_mask: Tensor | None = None,
        token_type_ids: Tensor | None = None,
        position_ids: Tensor | None = None,
    ) -> Tensor:
        """Contextual hidden states of every token.

        Args:
            input_ids: ``(batch, seq)`` token ids.
            attention_mask: ``(batch, seq)`` 0/1 or bool, 1 = real token (default: all
                real).
            token_type_ids: ``(batch, seq)`` segment ids in ``[0, type_vocab_size)``
                (default 0).
            position_ids: ``(batch or 1, seq)`` (default ``0 .. seq-1``).

        Returns:
            The last hidden states ``(batch, seq, d_model)``.

        Raises:
            ValueError: for a sequence longer than ``max_positions``, ids out of range,
                or an ``attention_mask`` / ``token_type_ids`` of the wrong shape.
            TypeError: for a float ``attention_mask`` or float ids.
        """
        check_ndim("input_ids", input_ids, 2, "(batch, seq)")
        seq = input_ids.shape[1]
        limit = self.config.max_positions
        if position_ids is None:
            if self.config.position == "learned" and seq > limit:
                raise ValueError(
                    f"input_ids has {seq} tokens, longer than max_positions = {limit}"
                )
            position_ids = torch.arange(seq, device=input_ids.device)[None]
        else:
            check_position_ids(position_ids, input_ids.shape[0], seq, input_ids.device)
        mask = key_padding_mask(
            attention_mask, tuple(input_ids.shape), device=input_ids.device
        )
        x = self.embeddings(input_ids, position_ids, token_type_ids)
        # the layers need the positions too (rotary rotates q and k by them)
        return self.encoder(x, mask=mask, position_ids=position_ids)

    def pool(self, hidden: Tensor) -> Tensor:
        """The pooled ``[CLS]`` vector ``(batch, d_model)`` of ``forward``'s output.

        Raises:
            ValueError: if the model was built with ``config.pooler=False``.
        """
        if self.pooler is None:
            raise ValueError("this EncoderOnly has no pooler (config.pooler=False)")
        return self.pooler(hidden)
# --8<-- [end:encoder_only]
