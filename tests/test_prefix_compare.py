"""Chapter 4's comparison (llmarch.lab.prefix_compare, llmarch.lab.seq2seq_task): the task, the three
input layouts, the losses, the metric, a tiny end-to-end run and its cache.

Reference values are written out here (rows of ids, a cross-entropy from the logits, Python's
``sorted``), never taken from the functions under test. No timing is asserted.
"""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from llmarch.lab import prefix_compare as pc
from llmarch.lab import prefix_compare_report as report
from llmarch.lab.seq2seq_task import EOS, PAD, SEP, SortExamples, sample_examples, source_field, string_hash

TINY = {
    "tasks": {"varied": {"min_len": 2, "max_len": 4, "pad_to": None},
              "padded": {"min_len": 2, "max_len": 4, "pad_to": 4}},
    "heldout": {"modulus": 10, "size": 24, "seed": 7},
    "model": {"d_model": 16, "num_heads": 2, "num_layers": 2, "d_ff": 32},
    "train": {"steps": 6, "batch_size": 8, "lr": 1e-3, "warmup_steps": 2, "min_lr_ratio": 0.1,
              "weight_decay": 0.1, "clip": 1.0, "eval_every": 3},
    "seeds": [0, 1],
}


def example() -> SortExamples:
    """3 1 4 -> 1 3 4 and 5 9 -> 5 9, right-padded to 3."""
    return SortExamples(torch.tensor([[3, 1, 4], [5, 9, PAD]]), torch.tensor([[1, 3, 4], [5, 9, PAD]]),
                        torch.tensor([3, 2]))


def test_targets_are_the_sorted_sources_and_the_splits_are_disjoint():
    draw = dict(min_len=2, max_len=5, heldout_modulus=5)
    train = sample_examples(300, split="train", generator=torch.Generator().manual_seed(0), **draw)
    held = sample_examples(300, split="heldout", generator=torch.Generator().manual_seed(1), **draw)
    for ex in (train, held):
        for src, tgt, n in zip(ex.source.tolist(), ex.target.tolist(), ex.lengths.tolist()):
            assert tgt[:n] == sorted(src[:n]) and all(v == PAD for v in src[n:] + tgt[n:])
    as_strings = lambda ex: {tuple(s[:n]) for s, n in zip(ex.source.tolist(), ex.lengths.tolist())}  # noqa: E731
    assert not as_strings(train) & as_strings(held)
    assert bool((string_hash(held.source, held.lengths) % 5 == 0).all())


def test_source_field_left_pads_with_read_pad_tokens():
    field, lengths = source_field(example(), 5)
    assert field.tolist() == [[PAD, PAD, 3, 1, 4], [PAD, PAD, PAD, 5, 9]]
    assert lengths.tolist() == [5, 5]
    with pytest.raises(ValueError, match="width must be >= the longest source"):
        source_field(example(), 2)


def test_decoder_only_and_encoder_decoder_layouts():
    dec = pc.model_inputs("causal", example())
    x = -100
    assert dec["input_ids"].tolist() == [[3, 1, 4, SEP, 1, 3, 4, EOS], [5, 9, SEP, 5, 9, EOS, PAD, PAD]]
    assert dec["attention_mask"].tolist() == [[1] * 8, [1] * 6 + [0, 0]]
    assert dec["labels"].tolist() == [[x, x, x, x, 1, 3, 4, EOS], [x, x, x, 5, 9, EOS, x, x]]
    assert dec["prefix_lengths"].tolist() == [4, 3]
    enc = pc.model_inputs("encdec", example())
    assert enc["input_ids"].tolist() == [[3, 1, 4], [5, 9, PAD]]
    assert enc["attention_mask"].tolist() == [[1, 1, 1], [1, 1, 0]]
    assert enc["decoder_input_ids"].tolist() == [[SEP, 1, 3, 4], [SEP, 5, 9, PAD]]
    assert enc["labels"].tolist() == [[1, 3, 4, EOS], [5, 9, EOS, x]]
    padded = pc.model_inputs("prefix", example(), pad_to=4)
    assert padded["input_ids"][1].tolist() == [PAD, PAD, 5, 9, SEP, 5, 9, EOS, PAD]
    assert padded["prefix_lengths"].tolist() == [5, 5]


@pytest.mark.parametrize("arch", pc.ARCHITECTURES)
def test_target_loss_is_the_cross_entropy_of_the_target_tokens(arch):
    model = pc.build_model(arch, TINY, seed=0).eval()
    inputs = pc.model_inputs(arch, example())
    with torch.no_grad():
        loss = pc.target_loss(model, arch, inputs)
        if arch == "encdec":
            logits = model(inputs["input_ids"], inputs["decoder_input_ids"], attention_mask=inputs["attention_mask"])
            picked = [(0, t, tok) for t, tok in enumerate([1, 3, 4, EOS])] + \
                     [(1, t, tok) for t, tok in enumerate([5, 9, EOS])]
        else:
            prefix = inputs["prefix_lengths"] if arch == "prefix" else None
            logits = model(inputs["input_ids"], inputs["attention_mask"], prefix_lengths=prefix)
            # the logits at SEP (index 3, resp. 2) predict the first answer token, and so on
            picked = [(0, 3 + t, tok) for t, tok in enumerate([1, 3, 4, EOS])] + \
                     [(1, 2 + t, tok) for t, tok in enumerate([5, 9, EOS])]
    rows = torch.stack([logits[b, t] for b, t, _ in picked])
    expected = F.cross_entropy(rows, torch.tensor([tok for _, _, tok in picked]))
    torch.testing.assert_close(loss, expected, rtol=1e-5, atol=1e-6)


def test_parameter_counts_match_and_the_prefix_mask_is_the_only_difference():
    sizes = {arch: sum(p.numel() for p in pc.build_model(arch, TINY).parameters()) for arch in pc.ARCHITECTURES}
    assert sizes["causal"] == sizes["prefix"]
    assert abs(sizes["encdec"] - sizes["causal"]) / sizes["causal"] < 0.02
    causal, prefix = pc.build_model("causal", TINY, seed=3), pc.build_model("prefix", TINY, seed=3)
    assert all(torch.equal(a, b) for a, b in zip(causal.state_dict().values(), prefix.state_dict().values()))
    assert not causal.config.prefix_lm and prefix.config.prefix_lm


class Oracle(torch.nn.Module):
    """A stand-in model whose ``generate`` answers (a correct or a wrong) sorted string."""

    def __init__(self, arch: str, wrong: bool = False):
        super().__init__()
        self.arch, self.wrong = arch, wrong

    def generate(self, ids, max_new_tokens, eos_token_id=None, pad_token_id=None):
        digits = ids[:, :-1] if self.arch != "encdec" else ids
        digits = digits.masked_fill(digits == PAD, 99)           # padded sources: PAD is not a digit
        answer = digits.sort(dim=1).values[:, :max_new_tokens - 1]
        if self.wrong:
            answer = answer.flip(1)
        out = torch.cat([answer, torch.full((len(ids), 1), eos_token_id)], dim=1)
        start = ids if self.arch != "encdec" else torch.full((len(ids), 1), SEP)
        return torch.cat([start, out], dim=1)


@pytest.mark.parametrize("arch", ["causal", "encdec"])
def test_exact_match_counts_whole_answers(arch):
    ex = SortExamples(torch.tensor([[3, 1, 4], [5, 9, PAD], [2, 2, 7]]),
                      torch.tensor([[1, 3, 4], [5, 9, PAD], [2, 2, 7]]), torch.tensor([3, 2, 3]))
    assert pc.exact_match(Oracle(arch), arch, ex) == 1.0
    assert pc.exact_match(Oracle(arch), arch, ex, pad_to=4) == 1.0
    assert pc.exact_match(Oracle(arch, wrong=True), arch, ex) == 0.0   # reversed answers (none a palindrome)
    training, evaluating = Oracle(arch).train(), Oracle(arch).eval()
    pc.exact_match(training, arch, ex), pc.exact_match(evaluating, arch, ex)
    assert training.training and not evaluating.training          # each model keeps its mode


def test_tiny_run_same_examples_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMARCH_CACHE", str(tmp_path))
    result = pc.prefix_compare(TINY, workers=1)
    runs = result["runs"]
    assert len(runs) == len(TINY["tasks"]) * len(pc.ARCHITECTURES) * len(TINY["seeds"])
    for task in TINY["tasks"]:
        for seed in TINY["seeds"]:
            by_arch = {r["arch"]: r for r in runs if r["task"] == task and r["seed"] == seed}
            # the same examples: the same scored tokens; the decoder-only rows read one EOS more each
            assert len({r["target_tokens"] for r in by_arch.values()}) == 1
            examples = TINY["train"]["steps"] * TINY["train"]["batch_size"]
            assert by_arch["causal"]["tokens_read"] == by_arch["prefix"]["tokens_read"]
            assert by_arch["causal"]["tokens_read"] == by_arch["encdec"]["tokens_read"] + examples
            # with equal parameters the encoder-decoder does less arithmetic per step
            assert by_arch["encdec"]["flops_per_step"] < by_arch["causal"]["flops_per_step"]
            for r in by_arch.values():
                assert [rec["step"] for rec in r["records"]] == [3, 6]
                assert 0.0 <= r["exact_match"] <= 1.0 and r["heldout_loss"] > 0
    stored = list((tmp_path / "prefix_compare").glob("*.json"))
    assert len(stored) == 1 and json.loads(stored[0].read_text())["key"] == pc.cache_key(TINY)
    monkeypatch.setattr(pc, "_run_all", lambda *a, **k: pytest.fail("the cached result was not used"))
    assert pc.prefix_compare(TINY) == result
    table = report.markdown_table(result, "zh").splitlines()
    assert len(table) == 2 + len(TINY["tasks"]) * len(pc.ARCHITECTURES) and "±" in table[2]
    text = report.summary(result)
    assert "held-out loss" in text and max(len(line) for line in text.splitlines()) <= 88


def test_aggregate_reports_the_sample_spread():
    runs = [{"task": "t", "arch": a, "seed": s, "parameters": 1, "flops_per_step": 1, "tokens_read": 1,
             "target_tokens": 1, "heldout_loss": loss, "exact_match": 0.5, "cpu_seconds": 1.0}
            for a in pc.ARCHITECTURES for s, loss in enumerate([1.0, 2.0, 3.0])]
    agg = report.aggregate({"settings": {"tasks": {"t": {}}}, "runs": runs})
    mean, std = agg["t"]["causal"]["loss"]
    assert mean == pytest.approx(2.0) and std == pytest.approx(1.0)   # sample std of 1, 2, 3


def test_command_line_lists_the_experiments(capsys):
    from llmarch.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["lab", "prefix-compare", "--help"])
    assert exit_info.value.code == 0
    assert "--workers" in capsys.readouterr().out
