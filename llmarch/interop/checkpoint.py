"""Safe checkpoint files and strict state-dict matching.

Weights are read from safetensors, or from ``pytorch_model.bin`` through
``torch.load(..., weights_only=True)`` -- never an unrestricted unpickle.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

__all__ = ["read_weights", "write_weights", "load_state_dict_strict", "WEIGHT_FILES"]

WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


def read_weights(directory: str | Path) -> dict[str, Tensor]:
    """Read ``model.safetensors`` (preferred) or ``pytorch_model.bin`` from a checkpoint folder.

    Raises:
        FileNotFoundError: if neither file exists, naming both.
    """
    directory = Path(directory)
    safetensors_path = directory / WEIGHT_FILES[0]
    if safetensors_path.exists():
        from safetensors.torch import load_file

        return load_file(str(safetensors_path))
    bin_path = directory / WEIGHT_FILES[1]
    if bin_path.exists():
        return torch.load(bin_path, map_location="cpu", weights_only=True)
    raise FileNotFoundError(f"no weights in {directory}: expected one of {', '.join(WEIGHT_FILES)}")


def write_weights(state_dict: dict[str, Tensor], directory: str | Path) -> Path:
    """Write ``model.safetensors`` (shared tensors are stored once per name, made contiguous)."""
    from safetensors.torch import save_file

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / WEIGHT_FILES[0]
    save_file({k: v.detach().contiguous().clone() for k, v in state_dict.items()}, str(path),
              metadata={"format": "pt"})
    return path


def load_state_dict_strict(model: nn.Module, state_dict: dict[str, Tensor]) -> None:
    """Copy ``state_dict`` into ``model``; every key must match by name and shape.

    Raises:
        ValueError: listing missing, unexpected and mis-shaped keys (all at once).

    >>> model = nn.Linear(2, 3)
    >>> load_state_dict_strict(model, {"weight": torch.zeros(3, 3), "extra": torch.zeros(1)})
    Traceback (most recent call last):
    ...
    ValueError: state dict does not match Linear: missing keys ['bias']; unexpected keys ['extra']; mis-shaped keys ['weight: expected (3, 2), got (3, 3)']
    """
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    misshaped = [f"{k}: expected {tuple(expected[k].shape)}, got {tuple(state_dict[k].shape)}"
                 for k in sorted(set(expected) & set(state_dict)) if expected[k].shape != state_dict[k].shape]
    problems = [f"{label} {items}" for label, items in
                (("missing keys", missing), ("unexpected keys", unexpected), ("mis-shaped keys", misshaped)) if items]
    if problems:
        raise ValueError(f"state dict does not match {type(model).__name__}: " + "; ".join(problems))
    model.load_state_dict(state_dict, strict=True)
