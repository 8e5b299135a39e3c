"""The spread over seeds: every trained result in the chapters is a mean and a sample standard
deviation over a few seeds."""

from __future__ import annotations

import math

__all__ = ["mean_std"]


def mean_std(values) -> tuple[float, float]:
    """Mean and sample standard deviation (``n - 1`` in the denominator; 0 for one value).

    >>> mean_std([1.0, 2.0, 3.0])
    (2.0, 1.0)
    >>> mean_std([0.5])
    (0.5, 0.0)
    """
    values = [float(v) for v in values]
    if not values:
        raise ValueError("values must not be empty, got []")
    mean = sum(values) / len(values)
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / max(1, len(values) - 1))
