"""Safe checkpoint files and strict state-dict matching.

Weights are read from safetensors, or from ``pytorch_model.bin`` through
``torch.load(..., weights_only=True)`` -- never an unrestricted unpickle. A ``.bin`` whose
pickle would build anything but tensors and plain containers (that is: run code) is refused
with a ``ValueError``; so is a truncated or corrupted file of either kind. Sharded checkpoints
(``model.safetensors.index.json`` / ``pytorch_model.bin.index.json``) are read shard by shard,
each shard holding exactly the keys the index gives it.
"""

from __future__ import annotations

import json
import pickle
import re
import warnings
from pathlib import Path

import torch
from torch import Tensor, nn

__all__ = ["read_weights", "weights_file", "write_weights", "load_state_dict_strict", "drop_tied_copy",
           "WEIGHT_FILES"]

# In order of preference (safetensors first, as Hugging Face).
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                "pytorch_model.bin.index.json")
_SAFETENSORS_HINT = ("Use the checkpoint's model.safetensors instead, or, only if you trust where this file came "
                     "from, convert it yourself: torch.load(path, weights_only=False), then "
                     "safetensors.torch.save_file(state, 'model.safetensors')")


def _read_safetensors(path: Path) -> dict[str, Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except SafetensorError as error:
        raise ValueError(f"{path} is not a valid safetensors file (truncated or corrupted: {error}); "
                         "download or save it again") from error


def _unpickler_reason(error: Exception) -> str:
    """The useful line of torch's weights-only error (not its advice to turn the check off)."""
    found = re.search(r"WeightsUnpickler error:\s*(.+)", str(error))
    return found[1].strip() if found else str(error).splitlines()[0]


def _read_bin(path: Path) -> dict[str, Tensor]:
    try:
        with warnings.catch_warnings():  # torch warns about the pickle protocol of plain pickles
            warnings.simplefilter("ignore", UserWarning)
            state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        found = re.search(r"Unsupported global: GLOBAL (\S+)", str(error))
        if found:
            raise ValueError(f"{path} is a pickle that would call {found[1]} when loaded, i.e. run code, not just "
                             f"hold tensors; llmarch refuses to unpickle it (torch.load weights_only=True). "
                             f"{_SAFETENSORS_HINT}") from error
        raise ValueError(f"{path} is not a weights-only PyTorch checkpoint (corrupted, or a pickle of more than "
                         f"tensors): {_unpickler_reason(error)}; llmarch unpickles nothing else. "
                         f"{_SAFETENSORS_HINT}") from error
    except (RuntimeError, EOFError, OSError) as error:
        if isinstance(error, (PermissionError, FileNotFoundError, IsADirectoryError)):
            raise
        raise ValueError(f"{path} is not a valid PyTorch checkpoint (truncated or corrupted: "
                         f"{str(error).splitlines()[0]}); download or save it again") from error
    return _check_state(state, path)


def _check_state(state: object, path: Path) -> dict[str, Tensor]:
    if not isinstance(state, dict):
        raise ValueError(f"{path} must hold a state dict (a dict of name -> tensor), got {type(state).__name__}")
    for key, value in state.items():
        if not isinstance(key, str) or not isinstance(value, Tensor):
            raise ValueError(f"{path} must map names to tensors, got key {key!r} holding {type(value).__name__}")
    return state


def _read_sharded(index_path: Path, read_one) -> dict[str, Tensor]:
    """Every shard listed in ``index_path``'s ``weight_map``; each must hold exactly its keys."""
    try:
        weight_map = json.loads(index_path.read_text())["weight_map"]
    except (ValueError, KeyError, TypeError) as error:
        raise ValueError(f"{index_path} must be JSON with a 'weight_map' object (name -> shard file), "
                         f"could not read it: {error!r}") from error
    if not isinstance(weight_map, dict) or not all(isinstance(v, str) for v in weight_map.values()):
        raise ValueError(f"{index_path}: 'weight_map' must map tensor names to shard file names, got {weight_map!r}")
    shards: dict[str, set[str]] = {}
    for key, shard in weight_map.items():
        shards.setdefault(shard, set()).add(key)
    state: dict[str, Tensor] = {}
    for shard, keys in sorted(shards.items()):
        if Path(shard).name != shard or shard in ("", ".", ".."):  # no ../ or absolute paths out of the folder
            raise ValueError(f"{index_path}: shard file names must be plain names inside the folder, got {shard!r}")
        part = read_one(index_path.parent / shard)
        if set(part) != keys:
            raise ValueError(f"{index_path.parent / shard} must hold the keys the index gives it: missing "
                             f"{sorted(keys - set(part))}, not in the index {sorted(set(part) - keys)}")
        state.update(part)
    return state


def weights_file(directory: str | Path) -> Path:
    """The file ``read_weights`` reads in ``directory``: the first of ``WEIGHT_FILES`` that exists.

    Raises:
        FileNotFoundError: if none exists (all are named).

    >>> import tempfile
    >>> weights_file(tempfile.mkdtemp())
    Traceback (most recent call last):
    ...
    FileNotFoundError: no weights in ...: expected one of model.safetensors, model.safetensors.index.json, ...
    """
    directory = Path(directory)
    for name in WEIGHT_FILES:
        if (directory / name).is_file():
            return directory / name
    raise FileNotFoundError(f"no weights in {directory}: expected one of {', '.join(WEIGHT_FILES)}")


def read_weights(directory: str | Path) -> dict[str, Tensor]:
    """Read a checkpoint folder's weights from ``weights_file(directory)``.

    Args:
        directory: the folder.

    Returns:
        ``{name: tensor}`` as stored (Hugging Face names), on the CPU.

    Raises:
        FileNotFoundError: if none of ``WEIGHT_FILES`` exists (all are named).
        ValueError: naming the file, for a truncated or corrupted file, a ``.bin`` whose pickle
            would run code, or a shard index that does not match its shards.

    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> _ = (Path(folder) / "model.safetensors").write_bytes(b"\\x05")  # one byte: truncated
    >>> read_weights(folder)
    Traceback (most recent call last):
    ...
    ValueError: .../model.safetensors is not a valid safetensors file (truncated or corrupted: ...
    """
    path = weights_file(directory)
    if path.name.endswith(".index.json"):
        return _read_sharded(path, _read_safetensors if path.name.startswith("model.") else _read_bin)
    return _read_safetensors(path) if path.suffix == ".safetensors" else _read_bin(path)


def write_weights(state_dict: dict[str, Tensor], directory: str | Path) -> Path:
    """Write ``model.safetensors`` (shared tensors are stored once per name, made contiguous).

    Returns:
        The path of the file written.
    """
    from safetensors.torch import save_file

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / WEIGHT_FILES[0]
    save_file({k: v.detach().contiguous().clone() for k, v in state_dict.items()}, str(path),
              metadata={"format": "pt"})
    return path


def drop_tied_copy(state: dict[str, Tensor], key: str, original_key: str) -> None:
    """Remove ``key``, a stored copy of the tied tensor ``original_key``, after checking that they
    are equal; if only the copy is stored, it takes the original's name.

    Raises:
        ValueError: naming both keys, if the copy differs from the original.

    >>> state = {"shared.weight": torch.zeros(2), "lm_head.weight": torch.ones(2)}
    >>> drop_tied_copy(state, "lm_head.weight", "shared.weight")
    Traceback (most recent call last):
    ...
    ValueError: checkpoint key 'lm_head.weight' must equal 'shared.weight' (they are tied), but it differs: ...
    """
    if key not in state:
        return
    copy = state.pop(key)
    if original_key not in state:
        state[original_key] = copy
        return
    original = state[original_key]
    if copy.shape != original.shape:
        raise ValueError(f"checkpoint key {key!r} must equal {original_key!r} (they are tied), but it differs: "
                         f"shape {tuple(copy.shape)} vs {tuple(original.shape)}")
    if not torch.equal(copy, original):
        raise ValueError(f"checkpoint key {key!r} must equal {original_key!r} (they are tied), but it differs: "
                         f"largest difference {(copy.float() - original.float()).abs().max().item():.3g}")


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
