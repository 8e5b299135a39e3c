"""Chapter 4's three architectures at (almost) the same size: a causal decoder, a prefix LM and
an encoder-decoder, built from one shape so that experiments compare like with like.

The two decoder-only models share one configuration (``prefix_lm`` differs: it changes the mask,
not the weights). The encoder-decoder puts half of the layers in its encoder and half in its
decoder; each of its decoder layers carries a cross-attention block a decoder-only layer does not
have, so its feed-forward width is ``d_ff - d_model``: with that the parameter counts agree to
within the biases of the extra block. With equal parameters it does *less* arithmetic per token --
each token passes through half of the layers (Raffel et al. 2020, §3.2.2).
"""

from __future__ import annotations

__all__ = ["ARCHITECTURES", "matched_model", "eager_twin"]

#: The three architectures, in the order of the chapter's tables.
ARCHITECTURES = ("causal", "prefix", "encdec")


def matched_model(arch: str, *, num_layers: int, d_ff: int, seed: int, decoder_start_token_id: int | None = None,
                  **common):
    """A fresh model of ``arch`` ("causal", "prefix" or "encdec"), initialised from ``seed``.

    Args:
        arch: which of :data:`ARCHITECTURES`.
        num_layers: layers of a decoder-only model; the encoder-decoder gets ``num_layers // 2``
            encoder layers and the rest in its decoder.
        d_ff: feed-forward width of a decoder-only model (``d_ff - d_model`` in the
            encoder-decoder).
        seed: the initialisation; GPT-2's scheme (``init_weights`` with ``residual_layers =
            num_layers``) for all three. The global random state is left as it was.
        decoder_start_token_id: the encoder-decoder's first decoder input.
        **common: every other ``ModelConfig`` field, the same for the three (``vocab_size``,
            ``d_model``, ``num_heads``, ``position``, ``max_positions``, ...).

    >>> shape = dict(vocab_size=16, d_model=32, num_heads=2, max_positions=16, num_layers=2, d_ff=64)
    >>> sizes = [sum(p.numel() for p in matched_model(a, seed=0, decoder_start_token_id=0,
    ...                                              **shape).parameters()) for a in ARCHITECTURES]
    >>> sizes[0] == sizes[1], abs(sizes[2] / sizes[0] - 1) < 0.02
    (True, True)
    """
    import torch

    from ..models.config import ModelConfig
    from ..models.init import init_weights
    from ..models.presets import create_model

    if arch not in ARCHITECTURES:
        raise ValueError(f"arch must be one of {', '.join(ARCHITECTURES)}, got {arch!r}")
    if arch == "encdec":
        half = num_layers // 2
        config = ModelConfig("encoder_decoder", num_layers=half, num_decoder_layers=num_layers - half,
                             d_ff=d_ff - common["d_model"], decoder_start_token_id=decoder_start_token_id, **common)
    else:
        config = ModelConfig("decoder_only", num_layers=num_layers, d_ff=d_ff, prefix_lm=arch == "prefix", **common)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = create_model(config)
        # GPT-2's initialisation for all three (EncoderDecoderLM would otherwise keep PyTorch's defaults)
        init_weights(model, residual_layers=num_layers)
    return model


def eager_twin(model):
    """A copy of ``model`` with the same weights on the ``eager`` attention path: its attention is
    plain matrix products, which ``torch.utils.flop_counter`` counts (it does not count the fused
    CPU ``sdpa`` kernel)."""
    from ..models.presets import create_model

    twin = create_model(model.config.replace(backend="eager"))
    twin.load_state_dict(model.state_dict())
    return twin.train(model.training)
