"""In-context learning as an implicit weight update, and the task section 5.4 trains on.

Two parts, both used by ``llmarch.lab.why_in_context`` and by the page:

* **The dual form** (Dai et al. 2023, https://arxiv.org/abs/2212.10559; von Oswald et al. 2023,
  https://arxiv.org/abs/2212.07677). Linear attention -- attention without the softmax -- of a
  query ``q`` over keys ``k_i`` and values ``v_i`` is ``sum_i v_i (k_i . q) = (sum_i v_i k_i^T) q``:
  a weight matrix, a sum of outer products, applied to ``q``. Demonstrations in front of a
  prompt add such outer products to the weight the prompt alone would apply
  (:func:`demonstration_update`), and one gradient-descent step on a linear layer adds outer
  products of the same kind to its weight. ``linear_attention`` is the common piece.
* **In-context linear regression** (Garg et al. 2022, https://arxiv.org/abs/2208.01066): every
  prompt draws its own ``w ~ N(0, I_d)``, inputs ``x_i ~ N(0, I_d)`` and noiseless answers
  ``y_i = w . x_i``; the model sees ``k`` pairs and a query ``x_q`` and must answer ``w . x_q``.
  Each pair is **one** token ``[x_i, y_i, 0]`` and the query is ``[x_q, 0, 1]`` (the last
  coordinate flags it), the layout of von Oswald et al. and of Ding et al. (2023,
  https://arxiv.org/abs/2308.06912). The yardsticks are computed on the same prompts:
  the zero predictor, least squares (minimum-norm; with ``w ~ N(0, I)`` and no noise it is the
  Bayes-optimal answer) and one gradient-descent step from ``w = 0``, which *is* one linear
  attention head over the demonstrations.

Errors are normalised by ``d``: ``mean((prediction - y_q)^2) / d``, so the zero predictor scores
about 1.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

__all__ = ["linear_attention", "demonstration_update", "Prompts", "sample_prompts", "prompt_tokens",
           "least_squares_prediction", "gd_step_prediction", "best_gd_step", "normalized_error"]


# --8<-- [start:dual]
def linear_attention(values: Tensor, keys: Tensor, queries: Tensor) -> Tensor:
    """Attention without the softmax: ``sum_i values[i] (keys[i] . query)`` per query.

    Args:
        values: ``(..., n, d_v)``, one row per attended token.
        keys: ``(..., n, d_k)``.
        queries: ``(..., m, d_k)`` (leading batch dimensions broadcast).

    Returns:
        ``(..., m, d_v)``: the matrix ``sum_i values[i] keys[i]^T`` (a sum of outer
        products) applied to each query.

    Raises:
        ValueError: if the shapes do not fit (named in the message).

    >>> v, k = torch.tensor([[1.0], [2.0]]), torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    >>> linear_attention(v, k, torch.eye(2))    # e_1 picks value 1, e_2 value 2
    tensor([[1.],
            [2.]])
    """
    shapes = tuple(values.shape), tuple(keys.shape), tuple(queries.shape)
    if min(values.ndim, keys.ndim, queries.ndim) < 2:
        raise ValueError(f"values, keys and queries must be at least 2-d, got {shapes}")
    if values.shape[-2] != keys.shape[-2] or keys.shape[-1] != queries.shape[-1]:
        raise ValueError("values (n, d_v), keys (n, d_k) and queries (m, d_k) do not "
                         f"fit: {shapes}")
    return (queries @ keys.mT) @ values


def demonstration_update(w_k: Tensor, w_v: Tensor, demonstrations: Tensor) -> Tensor:
    """What demonstrations add to linear attention: ``sum_i (W_V x'_i)(W_K x'_i)^T``.

    With tokens as rows, linear attention of ``q`` over the demonstrations ``X'`` and
    the prompt's own tokens ``X`` splits in two: the part of ``X`` alone
    (``W_ZSL q``) plus this matrix times ``q`` (``Delta W_ICL q``).

    Args:
        w_k, w_v: key and value projections ``(d_k, d)`` and ``(d_v, d)``.
        demonstrations: the demonstration tokens ``X'`` as rows, ``(n, d)``.

    Returns:
        ``Delta W_ICL``, ``(d_v, d_k)``.

    >>> demos = torch.tensor([[1.0, 2.0]])
    >>> demonstration_update(torch.eye(2), torch.eye(2), demos)   # x' x'^T
    tensor([[1., 2.],
            [2., 4.]])
    """
    return (demonstrations @ w_v.T).T @ (demonstrations @ w_k.T)
# --8<-- [end:dual]


class Prompts(NamedTuple):
    """A batch of in-context regression prompts with ``k`` demonstrations each.

    Attributes:
        x: inputs ``(batch, k + 1, d)``; the last one is the query.
        y: answers ``(batch, k + 1)``; the last one is what the model must predict.
        w: each prompt's weight vector ``(batch, d)``.
    """

    x: Tensor
    y: Tensor
    w: Tensor


def sample_prompts(batch: int, k: int, dim: int, *, generator: torch.Generator,
                   dtype: torch.dtype = torch.float32) -> Prompts:
    """``batch`` prompts, each with its own ``w ~ N(0, I_dim)``, ``k`` demonstrations and a query.

    >>> p = sample_prompts(3, 5, 4, generator=torch.Generator().manual_seed(0))
    >>> p.x.shape, p.y.shape, torch.allclose(p.y, (p.x @ p.w[:, :, None])[..., 0])
    (torch.Size([3, 6, 4]), torch.Size([3, 6]), True)
    """
    for name, value, low in (("batch", batch, 1), ("k", k, 0), ("dim", dim, 1)):
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
    w = torch.randn(batch, dim, generator=generator, dtype=dtype)
    x = torch.randn(batch, k + 1, dim, generator=generator, dtype=dtype)
    return Prompts(x, (x @ w[:, :, None])[..., 0], w)


def prompt_tokens(prompts: Prompts) -> Tensor:
    """One token per demonstration, ``[x_i, y_i, 0]``, and the query ``[x_q, 0, 1]``.

    Returns:
        ``(batch, k + 1, d + 2)``.

    >>> p = sample_prompts(1, 2, 3, generator=torch.Generator().manual_seed(0))
    >>> t = prompt_tokens(p)
    >>> t.shape, t[0, :, 3:].tolist() == [[p.y[0, 0].item(), 0.0], [p.y[0, 1].item(), 0.0], [0.0, 1.0]]
    (torch.Size([1, 3, 5]), True)
    """
    batch = prompts.x.shape[0]
    answers = torch.cat([prompts.y[:, :-1], prompts.y.new_zeros(batch, 1)], dim=1)  # the query's is hidden
    flag = torch.zeros_like(answers)
    flag[:, -1] = 1.0
    return torch.cat([prompts.x, answers[..., None], flag[..., None]], dim=-1)


def least_squares_prediction(prompts: Prompts) -> Tensor:
    """``x_q . w_hat`` with ``w_hat`` the minimum-norm least-squares fit of the demonstrations
    (0 with none). Exact for ``k >= d``; for ``k < d`` the posterior mean under ``w ~ N(0, I)``.

    Returns:
        ``(batch,)``.
    """
    x, y = prompts.x[:, :-1], prompts.y[:, :-1]
    if x.shape[1] == 0:
        return prompts.y.new_zeros(prompts.y.shape[0])
    w_hat = torch.linalg.pinv(x) @ y[..., None]                        # (batch, d, 1)
    return (prompts.x[:, -1:] @ w_hat)[:, 0, 0]


def best_gd_step(k: int, dim: int) -> float:
    """The step size that minimises the expected error of one GD step from ``w = 0`` on
    ``1/2 sum_i (y_i - w . x_i)^2`` for these prompts: ``1 / (k + d + 1)``
    (``E[X^T X] = k I`` and ``E[(X^T X)^2] = k (k + d + 1) I`` for Gaussian inputs).

    >>> best_gd_step(10, 4)
    0.0666...
    """
    return 1.0 / (k + dim + 1)


def gd_step_prediction(prompts: Prompts, lr: float | None = None) -> Tensor:
    """One gradient-descent step from ``w = 0`` on the demonstrations, then ``x_q . w``.

    The gradient of ``1/2 sum_i (y_i - w . x_i)^2`` at 0 is ``-sum_i y_i x_i``, so the step gives
    ``w = lr sum_i y_i x_i`` and the answer ``sum_i (lr y_i)(x_i . x_q)``: linear attention with
    values ``lr y_i``, keys ``x_i`` and the query ``x_q`` (von Oswald et al. 2023).

    Args:
        prompts: the batch.
        lr: the step; default :func:`best_gd_step`.

    Returns:
        ``(batch,)``.
    """
    k, dim = prompts.x.shape[1] - 1, prompts.x.shape[2]
    lr = best_gd_step(k, dim) if lr is None else lr
    x, y = prompts.x, prompts.y
    return linear_attention(lr * y[:, :-1, None], x[:, :-1], x[:, -1:])[:, 0, 0]


def normalized_error(prediction: Tensor, prompts: Prompts) -> float:
    """``mean((prediction - y_q)^2) / d``: about 1 for the zero predictor.

    >>> p = sample_prompts(4000, 0, 4, generator=torch.Generator().manual_seed(0))
    >>> round(normalized_error(torch.zeros(4000), p), 1)
    1.0
    """
    if prediction.shape != prompts.y[:, -1].shape:
        raise ValueError(f"prediction must have shape {tuple(prompts.y[:, -1].shape)}, got {tuple(prediction.shape)}")
    return float(((prediction - prompts.y[:, -1]) ** 2).mean() / prompts.x.shape[-1])
