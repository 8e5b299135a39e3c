"""``llmarch.lab.tang_run``: the command it documents matches its settings; the cache is keyed by
settings and source; a tiny run trains, caches and is read back without training."""

from __future__ import annotations

import json
import math
import shlex
from collections import Counter

import pytest
import torch

from llmarch.cli import build_parser
from llmarch.lab import tang_run
from llmarch.training.run_setup import parse_override
from llmarch.training.train_config import TrainConfig

TINY = {
    "preset": "gpt2",
    "overrides": {"num_layers": 1, "d_model": 16, "num_heads": 2, "d_ff": 32, "max_positions": 16},
    "data": "tang300",
    "tokenizer_text": "all",
    "train": {"seq_len": 16, "batch_size": 2, "steps": 3, "lr": 1e-3, "warmup_steps": 1, "min_lr_ratio": 0.1,
              "weight_decay": 0.1, "eval_every": 2, "eval_batches": 1, "dtype": "fp32", "device": "cpu"},
    "seeds": [0, 1],
    "samples": {"prompt": "《", "temperatures": [0.0, 1.0], "seed": 0},
}


def test_the_documented_command_trains_the_settings():
    argv = shlex.split(tang_run.COMMAND.replace("\\\n", " "))
    assert argv[:3] == ["python", "-m", "llmarch"]
    args = build_parser().parse_args(argv[3:])
    settings = tang_run.SETTINGS
    assert args.preset == settings["preset"] and args.data == settings["data"]
    assert args.tokenizer_text == settings["tokenizer_text"]
    assert dict(parse_override(item) for item in args.overrides) == settings["overrides"]
    defaults = TrainConfig().to_dict()  # a flag not given takes TrainConfig's default
    for key, value in settings["train"].items():
        assert getattr(args, key, defaults[key]) == value, key
    assert getattr(args, "seed", defaults["seed"]) == settings["seeds"][0] == settings["samples"]["seed"]


def test_unigram_entropy_is_the_entropy_of_character_frequencies():
    text = "床前明月光，疑是地上霜。举头望明月，低头思故乡。"
    counts = Counter(text)
    expected = sum(c / len(text) * math.log(len(text) / c) for c in counts.values())
    assert tang_run.unigram_entropy(text) == pytest.approx(expected, rel=1e-12)
    assert tang_run.unigram_entropy("aaaa") == 0.0


def test_cache_key_follows_the_settings():
    assert tang_run.cache_key(TINY) == tang_run.cache_key(json.loads(json.dumps(TINY)))
    changed = {**TINY, "train": {**TINY["train"], "steps": 4}}
    assert tang_run.cache_key(changed) != tang_run.cache_key(TINY)


def test_a_tiny_run_trains_caches_and_reads_back(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMARCH_CACHE", str(tmp_path))
    rng, threads = torch.random.get_rng_state(), torch.get_num_threads()
    result = tang_run.tang_run(TINY, workers=1)  # in this process
    assert torch.equal(torch.random.get_rng_state(), rng) and torch.get_num_threads() == threads
    assert [run["seed"] for run in result["runs"]] == [0, 1]
    for run in result["runs"]:
        assert [r["step"] for r in run["records"] if "loss" in r] == [1, 2, 3]
        assert [r["step"] for r in run["records"] if "eval_loss" in r] == [2, 3]
    samples = result["runs"][0]["samples"]
    assert list(samples) == ["0.0", "1.0"] and result["runs"][1]["samples"] == {}
    assert all(text.startswith("《") and len(text) == 16 for text in samples.values())  # max_positions chars
    assert result["vocab_size"] == 2577 and result["train_chars"] == 26532
    assert (tmp_path / "tang_run" / f"{result['key']}.json").is_file()

    def no_training(*args, **kwargs):
        raise AssertionError("the cached result must be used")

    monkeypatch.setattr(tang_run, "train_seed", no_training)
    assert tang_run.tang_run(TINY, workers=1) == result
    text = tang_run.summary(result)
    assert "final val loss over 2 seeds" in text and "--- sample, greedy (seed 0 model):" in text
    assert max(len(line) for line in text.splitlines()) <= 88
