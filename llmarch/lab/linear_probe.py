"""Linear probes: how much of a property a linear read-out can recover from hidden states.

A probe is ridge regression in closed form, fitted on one set of examples and scored on another
(float64, features standardised with the training set's mean and spread, a bias column):
regression for a number (a position), one-vs-all least squares for a class (the arg-max of the
fitted scores). Closed form means no probe training to tune and the same answer every time.
"""

from __future__ import annotations

__all__ = ["fit_ridge", "probe_regression", "probe_classification"]


def _design(features, mean, std):
    import torch

    x = (features.double() - mean) / std
    return torch.cat([x, torch.ones(x.shape[0], 1, dtype=x.dtype)], dim=1)


def fit_ridge(features, targets, l2: float = 1e-3):
    """A ridge read-out fitted on ``features (n, d)`` -> ``targets (n,)`` or ``(n, k)``; returns a
    function of new features ``(m, d)`` -> predictions ``(m,)`` or ``(m, k)`` (float64).

    >>> import torch
    >>> x = torch.randn(100, 3, generator=torch.Generator().manual_seed(0))
    >>> predict = fit_ridge(x, x @ torch.tensor([1.0, -2.0, 0.5]) + 3, l2=0.0)
    >>> torch.allclose(predict(x), (x @ torch.tensor([1.0, -2.0, 0.5]) + 3).double())
    True
    """
    import torch

    if features.ndim != 2 or features.shape[0] != targets.shape[0]:
        raise ValueError(f"features must be (n, d) with n = len(targets) = {targets.shape[0]}, "
                         f"got {tuple(features.shape)}")
    if l2 < 0:
        raise ValueError(f"l2 must be >= 0, got {l2}")
    mean = features.double().mean(0)
    std = features.double().std(0).clamp_min(1e-8)
    x = _design(features, mean, std)
    y = targets.double().reshape(x.shape[0], -1)
    eye = torch.eye(x.shape[1], dtype=x.dtype)
    eye[-1, -1] = 0.0  # the bias is not penalised
    weights = torch.linalg.solve(x.T @ x + l2 * x.shape[0] * eye, x.T @ y)
    squeeze = targets.ndim == 1
    return lambda new: (_design(new, mean, std) @ weights).squeeze(-1) if squeeze else _design(new, mean, std) @ weights


def probe_regression(train_x, train_y, test_x, test_y, l2: float = 1e-3) -> dict:
    """Fit on ``train``, score on ``test``: ``{"mae", "r2"}`` -- the mean absolute error and the
    share of the variance of ``test_y`` explained (1 = perfect, 0 = no better than its mean).

    >>> import torch
    >>> g = torch.Generator().manual_seed(0)
    >>> x, noise = torch.randn(400, 4, generator=g), torch.randn(400, 4, generator=g)
    >>> y = x[:, 0]
    >>> good = probe_regression(x[:200], y[:200], x[200:], y[200:])
    >>> bad = probe_regression(noise[:200], y[:200], noise[200:], y[200:])
    >>> good["r2"] > 0.99, bad["r2"] < 0.05
    (True, True)
    """
    predicted = fit_ridge(train_x, train_y, l2)(test_x)
    y = test_y.double()
    residual = float(((predicted - y) ** 2).sum())
    total = float(((y - y.mean()) ** 2).sum())
    return {"mae": float((predicted - y).abs().mean()), "r2": 1.0 - residual / total if total > 0 else 0.0}


def probe_classification(train_x, train_labels, test_x, test_labels, num_classes: int, l2: float = 1e-3) -> float:
    """Fit one-vs-all least squares on ``train``; the accuracy on ``test`` (labels ``0 ..
    num_classes - 1``).

    >>> import torch
    >>> x = torch.randn(300, 2, generator=torch.Generator().manual_seed(0))
    >>> labels = (x[:, 0] > 0).long()
    >>> probe_classification(x[:200], labels[:200], x[200:], labels[200:], 2) > 0.9
    True
    """
    import torch

    one_hot = torch.nn.functional.one_hot(train_labels, num_classes).double()
    predicted = fit_ridge(train_x, one_hot, l2)(test_x).argmax(-1)
    return float((predicted == test_labels).double().mean())
