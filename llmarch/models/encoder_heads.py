"""Task heads on top of ``EncoderOnly``.

* ``EncoderOnlyForMaskedLM`` -- BERT's pretraining head: predict the token at every
  position (the loss only counts the masked ones), output matrix tied to the input embeddings.
* ``EncoderOnlyForSequenceClassification`` -- pooled ``[CLS]`` -> dropout -> linear.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..nn.checks import check_positive_int
from ..nn.feedforward import ACTIVATIONS
from .config import ModelConfig
from .encoder_only import EncoderOnly
from .init import init_weights
from .inputs import check_token_ids

__all__ = ["MaskedLMHead", "EncoderOnlyForMaskedLM", "EncoderOnlyForSequenceClassification"]


# --8<-- [start:mlm_head]
class MaskedLMHead(nn.Module):
    """``LayerNorm(act(W h + b))``, then scores against every vocabulary entry.

    The output matrix is passed in (the input embedding matrix when tied, as in BERT); the
    per-token output bias is this module's own.

    Shapes: ``hidden (batch, seq, d_model)``, ``weight (vocab, d_model)`` -> ``(batch, seq, vocab)``.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(config.d_model, config.d_model)
        self.activation = ACTIVATIONS[config.activation]
        self.norm = nn.LayerNorm(config.d_model, eps=config.norm_eps)
        self.bias = nn.Parameter(torch.zeros(config.vocab_size))

    def forward(self, hidden: Tensor, weight: Tensor) -> Tensor:
        return F.linear(self.norm(self.activation(self.dense(hidden))), weight, self.bias)
# --8<-- [end:mlm_head]


class EncoderOnlyForMaskedLM(nn.Module):
    """An ``EncoderOnly`` with the masked-LM head (BERT's
    ``BertForMaskedLM``). With ``config.tie_embeddings`` the output matrix *is* the word
    embedding matrix (one parameter, one state-dict key).

    Shapes: ``input_ids (batch, seq) -> logits (batch, seq, vocab_size)``.

    >>> from llmarch.models.presets import get_config
    >>> config = get_config("bert-base", num_layers=1, d_model=32, num_heads=2, d_ff=64, vocab_size=50, pooler=False)
    >>> model = EncoderOnlyForMaskedLM(config).eval()
    >>> model(torch.tensor([[2, 4, 3]])).shape
    torch.Size([1, 3, 50])
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.model = EncoderOnly(config)
        self.mlm_head = MaskedLMHead(config)
        self.decoder = None if config.tie_embeddings else nn.Linear(config.d_model, config.vocab_size, bias=False)
        init_weights(self.mlm_head)
        if self.decoder is not None:
            init_weights(self.decoder)

    @property
    def output_weight(self) -> Tensor:
        """The ``(vocab_size, d_model)`` output matrix (the word embeddings when tied)."""
        return self.model.embeddings.tokens.weight if self.decoder is None else self.decoder.weight

    def forward(self, input_ids: Tensor, attention_mask: Tensor | None = None,
                token_type_ids: Tensor | None = None, position_ids: Tensor | None = None) -> Tensor:
        """Vocabulary logits ``(batch, seq, vocab_size)`` at every position (arguments as
        ``EncoderOnly.forward <llmarch.models.encoder_only.EncoderOnly.forward>``)."""
        hidden = self.model(input_ids, attention_mask, token_type_ids, position_ids)
        return self.mlm_head(hidden, self.output_weight)

    @torch.inference_mode()
    def fill_mask(self, input_ids: Tensor, *, mask_token_id: int, top_k: int = 5,
                  attention_mask: Tensor | None = None,
                  token_type_ids: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """The ``top_k`` most probable tokens at every ``[MASK]`` (all masks predicted at once).

        Args:
            input_ids: ``(batch, seq)`` with ``mask_token_id`` at the positions to fill.
            mask_token_id: id of ``[MASK]``.
            top_k: candidates per mask.
            attention_mask: as in ``forward``.
            token_type_ids: as in ``forward``.

        Returns:
            ``(positions, token_ids, probs)``: ``positions (n_masks, 2)`` holds
            ``(batch index, position)`` of each mask in reading order, ``token_ids`` and
            ``probs`` are ``(n_masks, top_k)``, most probable first.

        Raises:
            ValueError: if ``input_ids`` holds no ``mask_token_id`` or ``top_k`` is out of range.
        """
        check_positive_int("top_k", top_k)
        if top_k > self.config.vocab_size:
            raise ValueError(f"top_k must be <= vocab_size = {self.config.vocab_size}, got {top_k}")
        check_positive_int("mask_token_id", mask_token_id, allow_zero=True)
        if mask_token_id >= self.config.vocab_size:
            raise ValueError(f"mask_token_id must be < vocab_size = {self.config.vocab_size}, got {mask_token_id}")
        check_token_ids("input_ids", input_ids, self.config.vocab_size, device=self.output_weight.device)
        positions = (input_ids == mask_token_id).nonzero()
        if positions.shape[0] == 0:
            raise ValueError(f"input_ids must contain mask_token_id={mask_token_id}, got no mask token")
        hidden = self.model(input_ids, attention_mask, token_type_ids)
        logits = self.mlm_head(hidden[positions[:, 0], positions[:, 1]], self.output_weight)
        probs, token_ids = logits.float().softmax(-1).topk(top_k, dim=-1)
        return positions, token_ids, probs


class EncoderOnlyForSequenceClassification(nn.Module):
    """Pooled ``[CLS]`` -> dropout -> linear (BERT's ``BertForSequenceClassification``).

    Args:
        config: an encoder-only config with ``pooler=True``.
        num_labels: number of classes.

    Shapes: ``input_ids (batch, seq) -> logits (batch, num_labels)``.

    >>> from llmarch.models.presets import get_config
    >>> config = get_config("bert-base", num_layers=1, d_model=32, num_heads=2, d_ff=64, vocab_size=50)
    >>> EncoderOnlyForSequenceClassification(config, num_labels=3)(torch.tensor([[2, 4, 3]])).shape
    torch.Size([1, 3])
    """

    def __init__(self, config: ModelConfig, num_labels: int = 2) -> None:
        super().__init__()
        if not config.pooler:
            raise ValueError("EncoderOnlyForSequenceClassification needs config.pooler=True, got False")
        self.config = config
        self.num_labels = check_positive_int("num_labels", num_labels)
        self.model = EncoderOnly(config)
        self.dropout = nn.Dropout(config.dropout)
        self.classifier = nn.Linear(config.d_model, num_labels)
        init_weights(self.classifier)

    def forward(self, input_ids: Tensor, attention_mask: Tensor | None = None,
                token_type_ids: Tensor | None = None, position_ids: Tensor | None = None) -> Tensor:
        """Class logits ``(batch, num_labels)``."""
        hidden = self.model(input_ids, attention_mask, token_type_ids, position_ids)
        return self.classifier(self.dropout(self.model.pool(hidden)))
