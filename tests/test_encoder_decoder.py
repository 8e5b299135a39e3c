"""EncoderDecoderLM: presets, invariants of the encoder-decoder and its errors."""

from __future__ import annotations

import pytest
import torch

import llmarch
from llmarch import EncoderDecoderLM, KVCache, get_config

TINY = dict(num_layers=2, num_decoder_layers=2, d_model=32, num_heads=4, d_ff=64, vocab_size=50, dropout=0.0,
            attention_dropout=0.0)


def tiny(name: str = "t5-small", **overrides) -> EncoderDecoderLM:
    if name == "t5-small":
        overrides = {"head_dim": 8, **overrides}
    return llmarch.create_model(name, **{**TINY, **overrides}).eval()


def batch(vocab=50, src_len=9, tgt_len=6):
    g = torch.Generator().manual_seed(0)
    src = torch.randint(3, vocab, (2, src_len), generator=g)
    mask = torch.ones_like(src)
    mask[1, 5:] = 0
    tgt = torch.randint(3, vocab, (2, tgt_len), generator=g)
    return src, mask, tgt


@pytest.mark.parametrize("name, paper", [("transformer-base", 65e6), ("transformer-big", 213e6)])
def test_original_transformer_sizes_are_within_3_percent_of_the_paper(name, paper):
    """Vaswani et al. (2017), Table 3, with the shared 37,000-token source/target vocabulary."""
    with torch.device("meta"):
        model = llmarch.create_model(name)
    count = sum(p.numel() for p in model.parameters())
    assert abs(count - paper) / paper < 0.03, count


def test_original_transformer_is_post_ln_with_sinusoids():
    model = tiny("transformer-base", embedding_scale=32 ** 0.5)
    assert model.encoder.final_norm is None and model.decoder.final_norm is None  # post-LN: none needed
    assert all(layer.norm_position == "post" for layer in model.encoder.layers)
    assert type(model.embeddings.positions).__name__ == "SinusoidalPositionalEmbedding"
    assert model.lm_head.weight is model.embeddings.tokens.weight  # the output projection is the shared embedding


@pytest.mark.parametrize("name", ["t5-small", "transformer-base"])
def test_incremental_decoding_equals_the_full_forward(name):
    model = tiny(name)
    src, mask, tgt = batch()
    full = model(src, tgt, attention_mask=mask)
    encoded = model.encode(src, mask)
    cache = KVCache.dynamic(model.config.decoder_layers, cross_attention=True)
    steps = [model.decode(tgt[:, :3], encoded, mask, cache=cache)]
    steps += [model.decode(tgt[:, i:i + 1], None, mask, cache=cache) for i in range(3, tgt.shape[1])]
    torch.testing.assert_close(torch.cat(steps, dim=1), full, atol=1e-5, rtol=0)


def test_cross_attention_keys_and_values_are_computed_once_per_generation():
    model = tiny()
    calls = {"encoder": 0, "cross_k": 0}
    hooks = [model.encoder.register_forward_hook(lambda *a: calls.__setitem__("encoder", calls["encoder"] + 1)),
             model.decoder.layers[0].cross_attn.k_proj.register_forward_hook(
                 lambda *a: calls.__setitem__("cross_k", calls["cross_k"] + 1))]
    try:
        out = model.generate(batch()[0], 7)
    finally:
        for hook in hooks:
            hook.remove()
    assert out.shape == (2, 8)
    assert calls == {"encoder": 1, "cross_k": 1}


def test_the_target_never_sees_the_future_and_padding_is_invisible():
    model = tiny()
    src, mask, tgt = batch()
    logits = model(src, tgt, attention_mask=mask)
    changed_future = tgt.clone()
    changed_future[:, 4:] = 3
    torch.testing.assert_close(model(src, changed_future, attention_mask=mask)[:, :4], logits[:, :4])
    changed_padding = src.clone()
    changed_padding[1, 5:] = 7  # what hides under the source padding does not matter
    torch.testing.assert_close(model(changed_padding, tgt, attention_mask=mask), logits)


def test_eager_and_sdpa_agree():
    src, mask, tgt = batch()
    torch.manual_seed(0)
    eager = tiny(backend="eager")
    sdpa = tiny(backend="sdpa")
    sdpa.load_state_dict(eager.state_dict())
    torch.testing.assert_close(eager(src, tgt, mask), sdpa(src, tgt, mask), atol=1e-5, rtol=0)


def test_untied_head_and_output_scale():
    tied = tiny(output_scale=32 ** -0.5)
    hidden = torch.randn(2, 3, 32)
    torch.testing.assert_close(tied.logits(hidden), hidden * 32 ** -0.5 @ tied.embeddings.tokens.weight.T)
    untied = tiny("t5-v1_1-small", head_dim=8)
    assert untied.config.output_scale is None
    assert untied.lm_head.weight.data_ptr() != untied.embeddings.tokens.weight.data_ptr()


def test_missing_decoder_input_ids_is_a_clear_error():
    with pytest.raises(ValueError, match="decoder_input_ids is required.*decoder_start_token_id=0.*got None"):
        tiny()(batch()[0])


def test_mismatched_batch_sizes_are_a_clear_error():
    src, mask, tgt = batch()
    with pytest.raises(ValueError, match=r"decoder_input_ids must have the batch size of input_ids \(2\), got 1"):
        tiny()(src, tgt[:1])


def test_mask_of_the_wrong_shape_is_a_clear_error():
    src, mask, tgt = batch()
    with pytest.raises(ValueError, match=r"attention_mask must have shape \(2, 9\) \(that of input_ids\), got \(2, 4\)"):
        tiny()(src, tgt, attention_mask=mask[:, :4])


def test_source_longer_than_absolute_positions_allow():
    model = tiny("transformer-base", max_positions=8)
    src, mask, tgt = batch(src_len=9)
    with pytest.raises(ValueError, match="input_ids must be at most max_positions = 8 tokens long, got 9"):
        model(src, tgt)
    with pytest.raises(ValueError, match="max_new_tokens .* must be at most max_positions = 8 tokens long, got 20"):
        model.generate(src[:, :8], 20)


def test_relative_positions_have_no_length_limit():
    model = tiny()
    src = torch.randint(3, 50, (1, 300))
    assert model.generate(src, 2).shape == (1, 3)


def test_generate_needs_a_decoder_start_token():
    model = tiny(decoder_start_token_id=None)
    with pytest.raises(ValueError, match="decoder_start_token_id must be set"):
        model.generate(batch()[0], 3)


def test_wrong_architecture_is_refused():
    with pytest.raises(ValueError, match="config.architecture must be 'encoder_decoder', got 'decoder_only'"):
        EncoderDecoderLM(get_config("gpt2"))


def test_preset_scales_follow_an_overridden_d_model():
    assert get_config("transformer-base", d_model=64).embedding_scale == 8.0      # sqrt(d_model)
    assert get_config("t5-small", d_model=64, head_dim=16).output_scale == 0.125  # d_model ** -0.5
    assert get_config("t5-small", d_model=64, output_scale=None).output_scale is None  # explicit wins
    assert get_config("t5-v1_1-small", d_model=64).output_scale is None             # no scale to derive
    assert get_config("t5-small").output_scale == 512 ** -0.5
