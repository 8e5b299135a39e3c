"""The learning-rate schedule: linear warm-up, then cosine decay to a floor.

For ``step < warmup``: ``lr = max_lr * (step + 1) / warmup`` (the first step already moves, and
step ``warmup - 1`` reaches ``max_lr``, as in nanoGPT). Then over the remaining steps the rate follows half a
cosine from ``max_lr`` down to ``min_lr``:

.. math::  lr(t) = lr_{min} + \\tfrac12 (lr_{max} - lr_{min}) (1 + \\cos(\\pi p)),
   \\quad p = \\frac{t - warmup}{total - warmup}

(GPT-3, Brown et al., 2020, Appendix B; Chinchilla; nanoGPT). Warm-up keeps Adam's first
updates small while its second-moment estimates are still noise; the cosine tail spends the
last steps at small rates, which lowers the final loss.
"""

from __future__ import annotations

import math

import torch

from ..nn.checks import check_positive_int

__all__ = ["lr_at", "WarmupCosine", "warmup_cosine_scheduler"]


# --8<-- [start:lr_at]
def lr_at(
    step: int,
    *,
    max_lr: float,
    total_steps: int,
    warmup_steps: int = 0,
    min_lr: float = 0.0,
) -> float:
    """The learning rate of optimizer step ``step`` (counted from 0).

    Args:
        step: the step index, ``0 <= step`` (steps past ``total_steps`` stay at
            ``min_lr``).
        max_lr: the peak rate, reached at the end of the warm-up.
        total_steps: the length of the run; the cosine ends here.
        warmup_steps: linear warm-up length (0: start at ``max_lr``).
        min_lr: the floor of the cosine.

    Raises:
        ValueError: if ``warmup_steps > total_steps`` or ``min_lr > max_lr``.

    Examples:
        >>> [round(lr_at(s, max_lr=1.0, total_steps=10, warmup_steps=2, min_lr=0.1), 3)
        ...  for s in range(11)]
        [0.5, 1.0, 1.0, 0.966, 0.868, 0.722, 0.55, 0.378, 0.232, 0.134, 0.1]
    """
    check_positive_int("total_steps", total_steps)
    check_positive_int("warmup_steps", warmup_steps, allow_zero=True)
    if warmup_steps > total_steps:
        raise ValueError(
            f"warmup_steps must be <= total_steps = {total_steps}, got {warmup_steps}"
        )
    if not 0.0 <= min_lr <= max_lr:
        raise ValueError(f"min_lr must be in [0, max_lr = {max_lr}], got {min_lr}")
    if step < warmup_steps:
        return max_lr * (step + 1) / warmup_steps
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return min_lr + 0.5 * (max_lr - min_lr) * (1.0 + math.cos(math.pi * progress))
# --8<-- [end:lr_at]


class WarmupCosine:
    """``lr_at`` as a ``LambdaLR`` multiplier (a picklable object, so the scheduler's
    ``state_dict`` records its settings)."""

    def __init__(self, *, total_steps: int, warmup_steps: int = 0, min_lr_ratio: float = 0.1) -> None:
        if not 0.0 <= min_lr_ratio <= 1.0:
            raise ValueError(f"min_lr_ratio must be in [0, 1], got {min_lr_ratio}")
        lr_at(0, max_lr=1.0, total_steps=total_steps, warmup_steps=warmup_steps)  # validates the lengths
        self.total_steps, self.warmup_steps, self.min_lr_ratio = total_steps, warmup_steps, min_lr_ratio

    def __call__(self, step: int) -> float:
        return lr_at(step, max_lr=1.0, total_steps=self.total_steps, warmup_steps=self.warmup_steps,
                     min_lr=self.min_lr_ratio)


def warmup_cosine_scheduler(optimizer: torch.optim.Optimizer, *, total_steps: int, warmup_steps: int = 0,
                            min_lr_ratio: float = 0.1) -> torch.optim.lr_scheduler.LambdaLR:
    """A ``LambdaLR`` that multiplies each group's initial ``lr`` by the warm-up + cosine factor.

    Call ``scheduler.step()`` once after each ``optimizer.step()``.

    Args:
        optimizer: its groups' ``lr`` is the peak rate.
        total_steps: as in ``lr_at``.
        warmup_steps: as in ``lr_at``.
        min_lr_ratio: the floor as a fraction of the peak (``min_lr = min_lr_ratio * lr``).

    Examples:
        >>> opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=2.0)
        >>> sched = warmup_cosine_scheduler(opt, total_steps=4, warmup_steps=2, min_lr_ratio=0.0)
        >>> rates = []
        >>> for _ in range(4):
        ...     rates.append(opt.param_groups[0]["lr"]); opt.step(); sched.step()
        >>> rates
        [1.0, 2.0, 2.0, 1.0]
    """
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, WarmupCosine(total_steps=total_steps, warmup_steps=warmup_steps, min_lr_ratio=min_lr_ratio))
