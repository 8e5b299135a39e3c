"""Models of the three families (plus prefix-LM), their configurations and generation."""

from .config import ModelConfig
from .presets import PRESETS, create_model, get_config

__all__ = ["ModelConfig", "PRESETS", "create_model", "get_config"]

# Each family adds its public names below (one import line and one __all__ line per family).
# decoder-only:
from .decoder_only import DecoderOnlyLM, GenerationMixin  # noqa: E402
__all__ += ["DecoderOnlyLM", "GenerationMixin"]
# encoder-only:
from .encoder_heads import EncoderOnlyForMaskedLM, EncoderOnlyForSequenceClassification, MaskedLMHead  # noqa: E402
from .encoder_only import EncoderOnly, Pooler  # noqa: E402
from .sentence_embedding import mean_pooling, sentence_embeddings, tokenize_batch  # noqa: E402
__all__ += ["EncoderOnly", "Pooler", "EncoderOnlyForMaskedLM", "EncoderOnlyForSequenceClassification", "MaskedLMHead",
            "mean_pooling", "sentence_embeddings", "tokenize_batch"]
# encoder-decoder:
from .beam_search import beam_search  # noqa: E402
from .encoder_decoder import EncoderDecoderLM  # noqa: E402
__all__ += ["EncoderDecoderLM", "beam_search"]
# prefix LM / UniLM / GLM (decoder-only with other masks):
from .prefix_lm import check_prefix_lengths, prefix_lm_attention_mask  # noqa: E402
__all__ += ["check_prefix_lengths", "prefix_lm_attention_mask"]
