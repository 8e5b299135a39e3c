"""Chapter 5's matched pair on text: a causal language model and a bidirectional masked one.

The two differ only where the families differ -- the attention mask and the objective: the
causal model (``DecoderOnlyLM``) predicts every next token, the bidirectional one
(``EncoderOnlyForMaskedLM``) predicts the 15% of tokens BERT's recipe masks. Everything else is
one shape: pre-LN, GELU, the same width, depth, heads and positions, no dropout, the same
character vocabulary, the same windows of the same corpus in the same order (the package's
``Trainer`` draws batch ``s`` from the seed and ``s``), the same optimizer and schedule. The masked
model carries BERT's head (one ``d x d`` dense layer and a LayerNorm on top of the tied output
matrix), ``d^2 + 3d`` parameters more than the causal one.

Each training run uses one thread and leaves the caller's thread count and global random state
as they were, so it can run in a worker process beside others (``llmarch.lab.parallel_runs``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

__all__ = ["KINDS", "OBJECTIVES", "TrainedText", "text_model_config", "train_text_model"]

#: The two kinds, in the order of the chapter's tables.
KINDS = ("causal", "bidirectional")

#: The objective each kind trains with (``llmarch.training.objectives``).
OBJECTIVES = {"causal": "causal_lm", "bidirectional": "mlm"}


@dataclass
class TrainedText:
    """A trained model with what it was trained on.

    Attributes:
        model: the model, in eval mode, on the CPU.
        tokenizer: the character tokenizer (vocabulary from the whole corpus).
        train_ids, val_ids: the corpus' training and validation ids, 1-D.
        records: the ``Trainer``'s log records (``loss`` every step, ``eval_loss`` every
            ``eval_every`` steps).
        seconds: wall time of the training.
    """

    model: object
    tokenizer: object
    train_ids: object
    val_ids: object
    records: list
    seconds: float


def text_model_config(kind: str, *, vocab_size: int, position: str, d_model: int, num_layers: int, num_heads: int,
                      d_ff: int, max_positions: int, **options):
    """The ``ModelConfig`` of ``kind`` ("causal" or "bidirectional"): pre-LN, GELU, no dropout;
    ``options`` are further ``ModelConfig`` fields (e.g. ``embedding_scale``).

    >>> shape = dict(vocab_size=10, position="none", d_model=16, num_layers=1, num_heads=2, d_ff=32,
    ...              max_positions=8)
    >>> [text_model_config(kind, **shape).architecture for kind in KINDS]
    ['decoder_only', 'encoder_only']
    """
    from ..models.config import ModelConfig

    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    return ModelConfig("decoder_only" if kind == "causal" else "encoder_only", vocab_size=vocab_size,
                       d_model=d_model, num_layers=num_layers, num_heads=num_heads, d_ff=d_ff,
                       max_positions=max_positions, position=position, norm_position="pre", activation="gelu",
                       dropout=0.0, attention_dropout=0.0, **options)


def train_text_model(kind: str, *, corpus: str, position: str, model: dict, train: dict, seed: int) -> TrainedText:
    """Train a ``kind`` model on ``corpus`` with the package's ``Trainer``, on one thread.

    Args:
        kind: "causal" (next-token prediction) or "bidirectional" (masked LM, 15%).
        corpus: a corpus name (``"tang300"``, ``"psalms"``) or a text file.
        position: the positions (``ModelConfig.position``: ``"learned"``, ``"none"`` ...).
        model: ``d_model``, ``num_layers``, ``num_heads``, ``d_ff`` (and any other
            ``ModelConfig`` field, passed on by ``text_model_config``).
        train: ``TrainConfig`` fields (``seq_len``, ``batch_size``, ``steps``, ``lr`` ...);
            ``max_positions`` is ``seq_len``.
        seed: initialisation, data order and masks.

    >>> run = train_text_model("bidirectional", corpus="tang300", position="none", seed=0,
    ...                        model=dict(d_model=16, num_layers=1, num_heads=2, d_ff=32),
    ...                        train=dict(seq_len=8, batch_size=2, steps=2, warmup_steps=1,
    ...                                   eval_every=0))
    >>> type(run.model).__name__, run.model.training, [r["step"] for r in run.records if "loss" in r]
    ('EncoderOnlyForMaskedLM', False, [1, 2])
    """
    import torch

    from ..training.run_setup import build_model, prepare_data
    from ..training.train_config import TrainConfig
    from ..training.trainer import Trainer

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.random.fork_rng(devices=[]):  # the trainer seeds the global RNG (dropout)
            tokenizer, train_ids, val_ids = prepare_data(corpus, tokenizer_text="all")
            options = {"eval_batches": 20, "dtype": "fp32", "device": "cpu", **train}
            config = TrainConfig(**options, seed=seed, save_every=0, log_every=options["steps"], plot=False)
            shape = text_model_config(kind, vocab_size=tokenizer.vocab_size, position=position,
                                      max_positions=config.seq_len, **model)
            net, objective = build_model(shape, base_vocab=tokenizer.vocab_size, seq_len=config.seq_len,
                                         eos_token_id=tokenizer.eos_token_id, objective=OBJECTIVES[kind], seed=seed)
            trainer = Trainer(net, objective, train_ids, val_ids, config=config, base_vocab=tokenizer.vocab_size,
                              bar=False)
            start = time.perf_counter()
            records = trainer.fit()
            seconds = time.perf_counter() - start
    finally:
        torch.set_num_threads(threads)
    return TrainedText(net.eval(), tokenizer, train_ids, val_ids, records, round(seconds, 1))
