"""One trainer, every family: an *objective* turns a window of token ids into a loss.

The trainer samples windows ``(batch, seq_len + 1)`` of a tokenized corpus and hands each to the
objective, which builds the model's inputs and targets:

* ``causal_lm`` (decoder-only, GPT): inputs ``w[:, :-1]``, targets ``w[:, 1:]`` -- the next
  token at every position (``llmarch.training.causal_lm``).
* ``mlm`` (encoder-only, BERT): ``w[:, :-1]`` corrupted 80/10/10, loss on the 15% selected
  tokens (``llmarch.training.masked_lm``). Needs one extra id, ``[MASK]``.
* ``span_corruption`` (encoder-decoder, T5): ``w[:, :-1]`` with noise spans replaced by
  sentinels; the decoder predicts the sentinels and the hidden spans
  (``llmarch.training.span_corruption``). Needs a decoder-start id and the sentinels.
* ``prefix_lm`` (decoder-only with a bidirectional prefix): each row split at a random point;
  next-token loss on the part after it only (``llmarch.training.prefix_lm``).
* ``unilm`` (decoder-only weights, UniLM's four masks mixed per row): cloze loss on 15% of the
  tokens (``llmarch.training.unilm``). Needs ``[MASK]``.
* ``glm`` (decoder-only with 2D positions): autoregressive blank infilling
  (``llmarch.training.glm``). Needs ``[MASK]``, ``[S]`` and ``[E]``.

The extra ids are placed *above* the tokenizer's vocabulary: ``tokenizer.vocab_size`` is the
first one, so the tokenizer's own ids keep their meaning. Random draws (masking, spans) come from
a ``torch.Generator`` the trainer seeds from the run's seed and the step, so a resumed run draws
the same corruption as an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..models.config import ModelConfig
from .causal_lm import mean_cross_entropy
from .glm import glm_loss
from .glm_sampling import glm_batch
from .masked_lm import mask_tokens, masked_lm_loss
from .prefix_lm import prefix_lm_labels, sample_prefix_lengths
from .seq2seq_loss import label_smoothed_cross_entropy, shift_right
from .span_corruption import random_spans_noise_mask, span_corruption
from .unilm import unilm_batch, unilm_loss

__all__ = ["Objective", "CausalLM", "MaskedLM", "SpanCorruption", "PrefixLM", "UniLM", "GLM", "OBJECTIVES",
           "DEFAULT_OBJECTIVE", "make_objective"]


@dataclass
class Objective:
    """The interface every objective implements (see the module docstring)."""

    name = "objective"
    architecture = ""

    def extra_ids(self, seq_len: int) -> int:
        """How many ids the objective reserves above the tokenizer's vocabulary."""
        return 0

    def configure(self, config: ModelConfig, base_vocab: int, seq_len: int, eos_token_id: int | None) -> ModelConfig:
        """``config`` with the vocabulary size and special ids this objective needs."""
        return config.replace(vocab_size=base_vocab + self.extra_ids(seq_len), eos_token_id=eos_token_id,
                              bos_token_id=eos_token_id, pad_token_id=None)

    def build_model(self, config: ModelConfig) -> nn.Module:
        """A freshly initialised model for this objective."""
        from ..models.presets import create_model

        return create_model(config)

    def loss(self, model: nn.Module, window: Tensor, *, config: ModelConfig, base_vocab: int,
             generator: torch.Generator | None = None) -> tuple[Tensor, int]:
        """``(mean loss, number of predicted tokens)`` of one batch of windows ``(batch, seq_len + 1)``.

        ``model`` may be wrapped (DDP): only called, so ``config`` (the model's) is passed
        separately; ``base_vocab`` is the tokenizer's vocabulary size; ``generator`` draws the
        objective's randomness (masks, spans)."""
        raise NotImplementedError

    def to_dict(self) -> dict:
        return {"name": self.name, **dataclasses.asdict(self)}


# --8<-- [start:causal_lm]
@dataclass
class CausalLM(Objective):
    """Next-token prediction: the mean cross-entropy of ``model(w[:, :-1])`` against
    ``w[:, 1:]``.

    The same loss as ``causal_lm_loss(model(w), w)``, with the window's last token used
    only as a target (so ``seq_len`` inputs give ``seq_len`` predictions). The model
    computes it (``targets=``): the same number as
    ``F.cross_entropy(logits.flatten(0, 1), targets.flatten())``, without storing the
    ``(batch, seq, vocab)`` logits (``llmarch.nn.linear_cross_entropy``).

    >>> from llmarch import create_model
    >>> model = create_model(
    ...     "gpt2", num_layers=1, d_model=16, num_heads=2, d_ff=32, vocab_size=7
    ... )
    >>> loss, n = CausalLM().loss(
    ...     model, torch.randint(7, (2, 5)), config=model.config, base_vocab=7
    ... )
    >>> loss.shape, n
    (torch.Size([]), 8)
    """

    name = "causal_lm"
    architecture = "decoder_only"

    def loss(self, model, window, *, config, base_vocab, generator=None):
        inputs, targets = window[:, :-1], window[:, 1:]
        return model(inputs, targets=targets), targets.numel()
# --8<-- [end:causal_lm]


@dataclass
class _Cloze(Objective):
    """The objectives that predict masked tokens: ``[MASK]`` is id ``base_vocab``."""

    mlm_probability: float = 0.15

    def extra_ids(self, seq_len):
        return 1  # [MASK]


@dataclass
class MaskedLM(_Cloze):
    """BERT's masked LM on ``w[:, :-1]``; ``[MASK]`` is id ``base_vocab``.

    Args:
        mlm_probability: share of tokens predicted (BERT: 0.15).
    """

    name = "mlm"
    architecture = "encoder_only"

    def configure(self, config, base_vocab, seq_len, eos_token_id):
        # The MLM head replaces BERT's pooler (Hugging Face's BertForMaskedLM has none).
        return config.replace(vocab_size=base_vocab + 1, pad_token_id=None, pooler=False)

    def build_model(self, config):
        from ..models.encoder_heads import EncoderOnlyForMaskedLM

        return EncoderOnlyForMaskedLM(config)

    def loss(self, model, window, *, config, base_vocab, generator=None):
        tokens = window[:, :-1]
        # random replacements come from the whole vocabulary, [MASK] included (as BERT's reference code)
        inputs, labels = mask_tokens(tokens, mask_token_id=base_vocab, vocab_size=config.vocab_size,
                                     mlm_probability=self.mlm_probability, generator=generator)
        return masked_lm_loss(model(inputs), labels), int((labels != -100).sum())


@dataclass
class SpanCorruption(Objective):
    """T5's span corruption on ``w[:, :-1]``: the decoder start (and padding) id is
    ``base_vocab``; the sentinels are the top ids of the vocabulary.

    Args:
        noise_density: share of corrupted tokens (T5: 0.15).
        mean_noise_span_length: mean span length (T5: 3).
        label_smoothing: epsilon of the target distribution (0: plain cross-entropy).
    """

    noise_density: float = 0.15
    mean_noise_span_length: float = 3.0
    label_smoothing: float = 0.0
    name = "span_corruption"
    architecture = "encoder_decoder"

    def extra_ids(self, seq_len):
        noise = random_spans_noise_mask(seq_len, self.noise_density, self.mean_noise_span_length,
                                        generator=torch.Generator().manual_seed(0))
        # decoder start + sentinels: span_corruption wants every id below vocab_size - (noise tokens + 1)
        # (one sentinel per span and a closing one need fewer; the spare ids stay unused)
        return 1 + int(noise.sum()) + 1

    def configure(self, config, base_vocab, seq_len, eos_token_id):
        start = base_vocab
        return config.replace(vocab_size=base_vocab + self.extra_ids(seq_len), pad_token_id=start,
                              decoder_start_token_id=start, eos_token_id=eos_token_id)

    def loss(self, model, window, *, config, base_vocab, generator=None):
        vocab = config.vocab_size
        pairs = [span_corruption(row, vocab, noise_density=self.noise_density,
                                 mean_noise_span_length=self.mean_noise_span_length, generator=generator)
                 for row in window[:, :-1].cpu()]
        inputs = torch.stack([p[0] for p in pairs]).to(window.device)  # equal lengths: fixed by seq_len
        targets = torch.stack([p[1] for p in pairs]).to(window.device)
        start = config.decoder_start_token_id
        logits = model(inputs, shift_right(targets, start, start))
        return label_smoothed_cross_entropy(logits, targets, self.label_smoothing), targets.numel()


# --8<-- [start:prefix_objectives]
@dataclass
class PrefixLM(Objective):
    """Prefix LM on ``w``: a random split point ``p`` per row (uniform in ``[1, seq_len]``); the
    first ``p`` inputs are the bidirectional prefix, and only the tokens after it are predicted.
    The model gets ``config.prefix_lm = True``, so ``generate`` reads the prompt as the prefix."""

    name = "prefix_lm"
    architecture = "decoder_only"

    def configure(self, config, base_vocab, seq_len, eos_token_id):
        return super().configure(config, base_vocab, seq_len, eos_token_id).replace(prefix_lm=True)

    def loss(self, model, window, *, config, base_vocab, generator=None):
        inputs = window[:, :-1]
        prefix = sample_prefix_lengths(inputs.shape[0], inputs.shape[1], max_length=inputs.shape[1],
                                       generator=generator).to(window.device)
        targets = prefix_lm_labels(window, prefix)[:, 1:]  # logits at t predict w[t + 1], none inside the prefix
        logits = model(inputs, prefix_lengths=prefix)
        return mean_cross_entropy(logits.flatten(0, 1), targets.flatten()), int((targets != -100).sum())


@dataclass
class UniLM(_Cloze):
    """UniLM on ``w[:, :-1]``: each row draws bidirectional / left-to-right / right-to-left /
    seq2seq (1/3, 1/6, 1/6, 1/3) and is trained as a cloze task under that mask; ``[MASK]`` is
    id ``base_vocab``.

    Args:
        mlm_probability: share of tokens masked (UniLM: 0.15).
    """

    name = "unilm"
    architecture = "decoder_only"

    def loss(self, model, window, *, config, base_vocab, generator=None):
        batch = unilm_batch(window[:, :-1], mask_token_id=base_vocab, vocab_size=config.vocab_size,
                            mlm_probability=self.mlm_probability, generator=generator)
        logits = model(batch.input_ids, self_attention_mask=batch.self_attention_mask)
        return unilm_loss(logits, batch.labels), int((batch.labels != -100).sum())


@dataclass
class GLM(Objective):
    """GLM's blank infilling on ``w[:, :-1]``; ``[MASK]``, ``[S]``, ``[E]`` are ids ``base_vocab``,
    ``+ 1``, ``+ 2``. The model's learned positions become GLM's 2D ones (``learned_2d``).

    Args:
        mask_ratio: share of tokens blanked (GLM: 0.15).
        mean_span_length: Poisson mean of the span lengths (GLM: 3).
    """

    mask_ratio: float = 0.15
    mean_span_length: float = 3.0
    name = "glm"
    architecture = "decoder_only"

    def extra_ids(self, seq_len):
        return 3  # [MASK], [S], [E]

    def configure(self, config, base_vocab, seq_len, eos_token_id):
        if config.position not in ("learned", "learned_2d"):
            raise ValueError("objective 'glm' needs learned positions (they become GLM's 2D positions), "
                             f"got position={config.position!r}")
        return super().configure(config, base_vocab, seq_len, eos_token_id).replace(position="learned_2d")

    def loss(self, model, window, *, config, base_vocab, generator=None):
        b = glm_batch(window[:, :-1], mask_token_id=base_vocab, start_token_id=base_vocab + 1,
                      end_token_id=base_vocab + 2, mask_ratio=self.mask_ratio,
                      mean_span_length=self.mean_span_length, generator=generator)
        logits = model(b.input_ids, b.attention_mask, position_ids=b.position_ids,
                       block_position_ids=b.block_position_ids, prefix_lengths=b.prefix_lengths)
        return glm_loss(logits, b.labels), int((b.labels != -100).sum())
# --8<-- [end:prefix_objectives]


OBJECTIVES: dict[str, type[Objective]] = {"causal_lm": CausalLM, "mlm": MaskedLM, "span_corruption": SpanCorruption,
                                          "prefix_lm": PrefixLM, "unilm": UniLM, "glm": GLM}
DEFAULT_OBJECTIVE = {"decoder_only": "causal_lm", "encoder_only": "mlm", "encoder_decoder": "span_corruption"}


def make_objective(name: str | None, architecture: str, **options) -> Objective:
    """The objective ``name`` (default: the family's own), checked against ``architecture``.

    Raises:
        ValueError: for an unknown name, or an objective of another family.

    >>> make_objective(None, "encoder_only").name
    'mlm'
    >>> make_objective("mlm", "decoder_only")
    Traceback (most recent call last):
    ...
    ValueError: objective 'mlm' trains an encoder_only model, but the preset is decoder_only; use objective 'causal_lm'
    """
    name = name or DEFAULT_OBJECTIVE.get(architecture)
    if name not in OBJECTIVES:
        raise ValueError(f"objective must be one of {', '.join(OBJECTIVES)}, got {name!r}")
    cls = OBJECTIVES[name]
    if cls.architecture != architecture:
        raise ValueError(f"objective {name!r} trains an {cls.architecture} model, but the preset is {architecture}; "
                         f"use objective {DEFAULT_OBJECTIVE.get(architecture)!r}")
    return cls(**options)
