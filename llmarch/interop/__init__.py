"""Hugging Face checkpoints <-> llmarch (safetensors, strict keys)."""

from .checkpoint import load_state_dict_strict, read_weights, write_weights
from .hf import from_pretrained, save_pretrained

__all__ = ["from_pretrained", "save_pretrained", "load_state_dict_strict", "read_weights", "write_weights"]
