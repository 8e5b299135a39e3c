"""Beam search for every family, with Hugging Face's semantics (transformers 5.x).

Greedy decoding keeps one hypothesis; beam search keeps the ``num_beams`` best partial
sequences by total log-probability and, when a hypothesis ends (EOS or the length limit), moves
it to a list of ``num_beams`` finished ones scored by

.. math:: \\text{score} = \\frac{\\sum_t \\log p(y_t \\mid y_{<t}, x)}{L^{\\alpha}}

where $L$ counts the *generated* tokens (the EOS included; the prompt of a decoder-only
model and the decoder start token of an encoder-decoder excluded) and $\\alpha$ is
``length_penalty`` (``> 0`` favours longer outputs, ``< 0`` shorter ones).

When to stop (``early_stopping``):

* ``True`` -- as soon as every batch row holds ``num_beams`` finished hypotheses;
* ``False`` (default) -- also stop once the best running hypothesis, scored as if it ended
  now, cannot beat the worst finished one;
* ``"never"`` -- the same test, but with the most optimistic length (``max_new_tokens`` when
  ``length_penalty > 0``): the canonical beam search.

The model provides the two generation hooks of ``GenerationMixin``
(``_start_generation`` and ``_continue_generation``) and a state with ``reorder(indices)``;
the KV caches of the surviving beams are selected with ``reorder``.
Every step is a fixed number of tensor operations on ``(batch, beams, ...)`` tensors: there is
no Python loop over beams or batch rows.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ..nn.checks import check_bool, check_float, check_ndim, check_tensor
from .inputs import check_token_id

__all__ = ["beam_search"]

_NEG = -1.0e9  # "impossible" score, the value Hugging Face uses


def _gather(tensor: Tensor, indices: Tensor) -> Tensor:
    """Select along dim 1 (beams): ``tensor (batch, n, ...)``, ``indices (batch, m)`` -> ``(batch, m, ...)``."""
    while indices.ndim < tensor.ndim:
        indices = indices.unsqueeze(-1)
    return torch.take_along_dim(tensor, indices, dim=1)


def _check_args(num_beams, max_new_tokens, length_penalty, early_stopping) -> None:
    for name, value in (("num_beams", num_beams), ("max_new_tokens", max_new_tokens)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    if not (isinstance(early_stopping, bool) or (isinstance(early_stopping, str) and early_stopping == "never")):
        raise ValueError(f"early_stopping must be True, False or 'never', got {early_stopping!r}")
    check_float("length_penalty", length_penalty)


def _check_special_ids(model, eos_token_id, pad_token_id) -> None:
    """Explicit ``eos_token_id`` (an id or a list of ids) and ``pad_token_id`` must be ids of the vocabulary."""
    vocab_size = model.config.vocab_size
    if eos_token_id is not None:
        for index, value in enumerate(eos_token_id if isinstance(eos_token_id, (list, tuple)) else [eos_token_id]):
            check_token_id("eos_token_id" if not isinstance(eos_token_id, (list, tuple)) else f"eos_token_id[{index}]",
                           value, vocab_size)
    if pad_token_id is not None:
        check_token_id("pad_token_id", pad_token_id, vocab_size)


# --8<-- [start:beam_search]
@torch.no_grad()
def beam_search(model, input_ids: Tensor, attention_mask: Tensor | None = None, *, num_beams: int = 4,
                max_new_tokens: int = 20, length_penalty: float = 1.0, early_stopping: bool | str = False,
                eos_token_id: int | list[int] | None = None, pad_token_id: int | None = None,
                compile: bool = False) -> Tensor:
    """The best beam per batch row, like ``transformers`` ``generate(num_beams=..., do_sample=False)``.

    Args:
        model: a model with ``_start_generation`` / ``_continue_generation`` (any family).
        input_ids: ``(batch, seq)`` prompt (decoder-only) or source (encoder-decoder).
        attention_mask: ``(batch, seq)`` 0/1 padding mask of ``input_ids``.
        num_beams: hypotheses kept per row.
        max_new_tokens: most tokens to add.
        length_penalty: exponent $\\alpha$ of the length normalisation.
        early_stopping: ``True``, ``False`` or ``"never"`` (see the module docstring).
        eos_token_id: end-of-sequence id(s); default ``model.config.eos_token_id`` (as Hugging
            Face); ``[]`` for none.
        pad_token_id: fills a finished sequence up to the longest one; default: as Hugging Face
            (``pad_token_id`` unless it is ``None`` or 0, else the first EOS id).
        compile: run each step as a compiled graph over a static cache (``generate``'s ``compile``).

    Returns:
        ``(batch, L0 + n)`` token ids: the model's initial sequence (the prompt, or the decoder
        start token) followed by ``n <= max_new_tokens`` generated tokens.

    Raises:
        ValueError: on a non-positive ``num_beams``/``max_new_tokens``, a bad ``early_stopping``, a
            non-finite ``length_penalty`` or an ``eos_token_id`` / ``pad_token_id`` outside the vocabulary.
        TypeError: for a model that cannot generate, or arguments of the wrong type.

    >>> from llmarch.models.presets import create_model
    >>> model = create_model("gpt2", num_layers=1, d_model=32, num_heads=2, d_ff=64, vocab_size=50).eval()
    >>> beam_search(model, torch.tensor([[1, 2, 3]]), num_beams=3, max_new_tokens=4, eos_token_id=0).shape[0]
    1
    """
    if not callable(getattr(model, "_start_generation", None)) or not hasattr(model, "config"):
        raise TypeError(f"model must be a generating llmarch model (DecoderOnlyLM, EncoderDecoderLM), "
                        f"got {type(model).__name__}")
    check_ndim("input_ids", input_ids, 2, "(batch, seq)")
    _check_args(num_beams, max_new_tokens, length_penalty, early_stopping)
    check_bool("compile", compile)
    _check_special_ids(model, eos_token_id, pad_token_id)
    if eos_token_id is None:
        eos_token_id = model.config.eos_token_id
    eos = None if eos_token_id is None else torch.as_tensor(eos_token_id, device=input_ids.device).reshape(-1)
    if eos is not None and eos.numel() == 0:  # an empty list: no end-of-sequence token
        eos = None
    fill = -1 if eos is None else (pad_token_id if pad_token_id else int(eos[0]))

    # Every row becomes num_beams rows (as Hugging Face does) before the model sees it.
    batch = input_ids.shape[0]
    input_ids = input_ids.repeat_interleave(num_beams, dim=0)
    if attention_mask is not None:
        attention_mask = check_tensor("attention_mask", attention_mask).repeat_interleave(num_beams, dim=0)
    start, logits, state = model._start_generation(input_ids, attention_mask, max_new_tokens, compile)
    prompt_len = cur_len = start.shape[1]
    max_length = prompt_len + max_new_tokens
    device = start.device
    keep = max(2, 1 + (0 if eos is None else eos.numel())) * num_beams  # candidates per row and step
    top_beams = torch.arange(keep, device=device) < num_beams

    running = torch.full((batch, num_beams, max_length), fill, dtype=torch.long, device=device)
    running[:, :, :cur_len] = start.view(batch, num_beams, -1)
    running_scores = torch.zeros(batch, num_beams, device=device)
    running_scores[:, 1:] = _NEG  # all beams start equal: expand only the first one
    finished = running.clone()  # the best finished hypotheses, their scores and lengths
    finished_scores = torch.full((batch, num_beams), _NEG, device=device)
    finished_lengths = torch.zeros(batch, num_beams, dtype=torch.long, device=device)
    is_finished = torch.zeros(batch, num_beams, dtype=torch.bool, device=device)
    may_improve = torch.ones(batch, 1, dtype=torch.bool, device=device)
    row_offset = torch.arange(batch, device=device)[:, None] * num_beams

    while True:
        # 1. Extend every running beam by every token; keep the `keep` best per row.
        log_probs = F.log_softmax(logits.float(), dim=-1).view(batch, num_beams, -1)
        vocab = log_probs.shape[-1]
        log_probs = (log_probs + running_scores[:, :, None]).view(batch, -1)
        topk_scores, topk_indices = torch.topk(log_probs, k=keep)
        origin, tokens = topk_indices // vocab, topk_indices % vocab
        candidates = _gather(running, origin)
        candidates[:, :, cur_len] = tokens
        ends = torch.full_like(tokens, cur_len + 1 >= max_length, dtype=torch.bool)
        if eos is not None:
            ends |= torch.isin(tokens, eos)

        # 2. The best `num_beams` candidates that did not end keep running.
        alive_scores = topk_scores + ends.float() * _NEG
        chosen = torch.topk(alive_scores, k=num_beams).indices
        running, running_scores = _gather(candidates, chosen), _gather(alive_scores, chosen)
        beam_origin = (_gather(origin, chosen) + row_offset).view(-1)

        # 3. Candidates among the top `num_beams` that ended join the finished list, length-normalised.
        just_finished = ends & top_beams
        scores = topk_scores / ((cur_len + 1 - prompt_len) ** length_penalty)
        full = is_finished.all(dim=-1, keepdim=True) & (early_stopping is True)
        scores = scores + (full | ~may_improve | ~just_finished).float() * _NEG
        merged = torch.topk(torch.cat((finished_scores, scores), dim=1), k=num_beams).indices
        finished = _gather(torch.cat((finished, candidates), dim=1), merged)
        finished_scores = _gather(torch.cat((finished_scores, scores), dim=1), merged)
        lengths = torch.full_like(tokens, cur_len + 1 - prompt_len)
        finished_lengths = _gather(torch.cat((finished_lengths, lengths), dim=1), merged)
        is_finished = _gather(torch.cat((is_finished, just_finished), dim=1), merged)

        # 4. Can a running beam still beat the worst finished one?
        cur_len += 1
        best_length = max_length - prompt_len if early_stopping == "never" and length_penalty > 0 else cur_len - prompt_len
        best_possible = running_scores[:, :1] / (best_length ** length_penalty)
        worst_finished = torch.where(is_finished, finished_scores.min(dim=1, keepdim=True).values, _NEG)
        may_improve = may_improve & (best_possible > worst_finished).any(dim=-1, keepdim=True)
        all_full = bool(is_finished.all()) and early_stopping is True
        if not bool(may_improve.any()) or all_full or bool(ends.all()):
            break
        state.reorder(beam_origin)
        logits = model._continue_generation(state, running[:, :, cur_len - 1].reshape(-1))

    return finished[:, 0, : prompt_len + int(finished_lengths[:, 0].max())]
# --8<-- [end:beam_search]
