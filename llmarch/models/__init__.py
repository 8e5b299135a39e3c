"""Models of the three families (plus prefix-LM), their configurations and generation."""

from .config import ModelConfig
from .presets import PRESETS, create_model, get_config

__all__ = ["ModelConfig", "PRESETS", "create_model", "get_config"]

# Each family adds its public names below (one import line and one __all__ line per family).
# decoder-only:
# encoder-only:
# encoder-decoder:
