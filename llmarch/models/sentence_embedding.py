"""Sentence embeddings from an encoder: mean pooling over real tokens, then L2 normalisation.

This is what sentence-transformers' all-MiniLM-L6-v2 does (``Transformer -> Pooling(mean) ->
Normalize``), so a dot product of two embeddings is their cosine similarity.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..nn.checks import check_bool, check_ndim
from .inputs import check_attention_mask

__all__ = ["mean_pooling", "sentence_embeddings", "tokenize_batch"]


# --8<-- [start:mean_pooling]
def mean_pooling(hidden: Tensor, attention_mask: Tensor) -> Tensor:
    """Average of the hidden states of the real (unpadded) tokens.

    Args:
        hidden: ``(batch, seq, d_model)``.
        attention_mask: ``(batch, seq)``, 1 (or True) at real tokens.

    Returns:
        ``(batch, d_model)``; an all-padding row gives zeros.

    Raises:
        ValueError: if the mask's shape is not ``hidden.shape[:2]`` or it holds values
            other than 0 and 1.
        TypeError: for a float mask or integer hidden states.

    >>> hidden = torch.tensor([[[1.0], [3.0], [100.0]]])
    >>> mean_pooling(hidden, torch.tensor([[1, 1, 0]]))
    tensor([[2.]])
    """
    check_ndim("hidden", hidden, 3, "(batch, seq, d_model)")
    if not hidden.dtype.is_floating_point:
        raise TypeError(f"hidden must be a floating-point tensor, got {hidden.dtype}")
    check_ndim("attention_mask", attention_mask, 2, "(batch, seq)")
    if tuple(attention_mask.shape) != tuple(hidden.shape[:2]):
        raise ValueError(
            f"attention_mask must have shape (batch, seq) = {tuple(hidden.shape[:2])}, "
            f"got {tuple(attention_mask.shape)}"
        )
    real = check_attention_mask(
        attention_mask, tuple(hidden.shape[:2]), what="hidden", device=hidden.device
    )
    weights = real.to(hidden.dtype).unsqueeze(-1)  # (batch, seq, 1)
    return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
# --8<-- [end:mean_pooling]


def sentence_embeddings(model: nn.Module, input_ids: Tensor, attention_mask: Tensor, *,
                        normalize: bool = True) -> Tensor:
    """Mean-pooled (and by default L2-normalised) embeddings ``(batch, d_model)``.

    Args:
        model: an encoder returning hidden states ``(batch, seq, d_model)``, e.g.
            ``EncoderOnly``.
        input_ids: token ids ``(batch, seq)``.
        attention_mask: ``(batch, seq)``, 1 at real tokens, 0 at padding.
        normalize: divide each embedding by its L2 norm.

    >>> from llmarch.models.presets import create_model
    >>> model = create_model("bert-base", num_layers=1, d_model=32, num_heads=2, d_ff=64, vocab_size=50).eval()
    >>> emb = sentence_embeddings(model, torch.tensor([[2, 7, 3, 0]]), torch.tensor([[1, 1, 1, 0]]))
    >>> emb.shape, torch.allclose(emb.norm(dim=-1), torch.ones(1))
    (torch.Size([1, 32]), True)
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an encoder nn.Module (e.g. EncoderOnly), got {type(model).__name__}")
    check_bool("normalize", normalize)
    pooled = mean_pooling(model(input_ids, attention_mask=attention_mask), attention_mask)
    return F.normalize(pooled, p=2, dim=-1) if normalize else pooled


def tokenize_batch(tokenizer, texts: list[str], *, max_length: int | None = None) -> tuple[Tensor, Tensor]:
    """Encode ``texts`` with a `tokenizers <https://github.com/huggingface/tokenizers>`_
    ``Tokenizer`` into ``(input_ids, attention_mask)``, each ``(batch, seq)``, padded to the
    longest text (not to a fixed length a ``tokenizer.json`` may carry).

    Args:
        tokenizer: a ``tokenizers.Tokenizer`` (e.g. ``Tokenizer.from_file("tokenizer.json")``);
            a copy is configured, the caller's object is not modified.
        texts: the sentences.
        max_length: truncate longer encodings to this many tokens, special tokens included
            (sentence-transformers' ``max_seq_length``); ``None`` = no truncation.

    Returns:
        ``input_ids`` and ``attention_mask`` (1 = real token), both ``torch.long``.
    """
    padding = tokenizer.padding or {}
    tok = type(tokenizer).from_str(tokenizer.to_str())  # a private copy
    if max_length is None:
        tok.no_truncation()
    else:
        tok.enable_truncation(max_length)
    tok.enable_padding(pad_id=padding.get("pad_id", 0), pad_token=padding.get("pad_token", "[PAD]"))
    encodings = tok.encode_batch(list(texts))
    input_ids = torch.tensor([e.ids for e in encodings], dtype=torch.long)
    attention_mask = torch.tensor([e.attention_mask for e in encodings], dtype=torch.long)
    return input_ids, attention_mask
