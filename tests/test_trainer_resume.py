"""Checkpoints: exact resume for every objective, the run folder's format, and refusing another model.

Exact resume compares a run of N steps with a run stopped after k steps and resumed to N in the
same process (same thread count): the same computation on the same values, so the losses,
gradient norms and final weights are compared for exact equality.
"""

from __future__ import annotations

import json

import pytest
import torch

import llmarch
from llmarch.training.checkpointing import latest_checkpoint
from llmarch.training.run_setup import build_model
from llmarch.training.tokenizers import CharTokenizer, load_tokenizer
from llmarch.training.train_config import TrainConfig
from llmarch.training.trainer import Trainer

TEXT = "床前明月光，疑是地上霜。举头望明月，低头思故乡。\n" * 12
TOKENIZER = CharTokenizer.train(TEXT)
IDS = torch.tensor(TOKENIZER.encode(TEXT))
TINY = {"num_layers": 1, "d_model": 32, "num_heads": 2, "d_ff": 64, "dropout": 0.1}
CASES = {"causal_lm": ("gpt2", TINY), "mlm": ("bert-base", TINY),
         "span_corruption": ("t5-small", {**TINY, "head_dim": 16})}


def _trainer(preset, overrides, out, seed=0, **config):
    model, objective = build_model(preset, base_vocab=TOKENIZER.vocab_size, seq_len=16, overrides=overrides, seed=seed)
    options = dict(seq_len=16, batch_size=4, grad_accum=2, steps=6, warmup_steps=2, lr=5e-3, eval_every=3,
                   eval_batches=2, save_every=3, plot=False, device="cpu")
    return Trainer(model, objective, IDS[:240], IDS[240:], config=TrainConfig(**{**options, **config}),
                   base_vocab=TOKENIZER.vocab_size, out_dir=out, tokenizer=TOKENIZER, bar=False)


@pytest.mark.parametrize("name", list(CASES))
def test_resumed_run_equals_uninterrupted_run(tmp_path, name):
    preset, overrides = CASES[name]
    full = _trainer(preset, overrides, tmp_path / "full")
    full_records = full.fit()

    first = _trainer(preset, overrides, tmp_path / "split")
    first.fit(until=3)
    # a fresh process would build the model with other random weights: the checkpoint must replace them
    resumed = _trainer(preset, overrides, tmp_path / "split", seed=123)
    assert resumed.resume() == 3
    resumed_records = resumed.fit()

    def steps(records, key):
        return [(r["step"], r[key]) for r in records if key in r]

    for key in ("loss", "grad_norm", "lr", "eval_loss"):  # same computation, same values: exact
        assert steps(resumed_records, key) == steps(full_records, key), key
    for (k, a), b in zip(full.module.state_dict().items(), resumed.module.state_dict().values()):
        assert torch.equal(a, b), k
    log = [json.loads(line) for line in (tmp_path / "split" / "log.jsonl").read_text().splitlines()]
    assert steps(log, "loss") == steps(full_records, "loss")  # the log has each step once


def test_run_folder_is_a_checkpoint_folder(tmp_path):
    trainer = _trainer("gpt2", TINY, tmp_path, steps=4, save_every=1, keep_checkpoints=2)
    trainer.fit()
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["step-00000003", "step-00000004"]
    assert latest_checkpoint(tmp_path).name == "step-00000004"
    model = llmarch.from_pretrained(tmp_path)
    for (k, a), b in zip(trainer.module.state_dict().items(), model.state_dict().values()):
        assert torch.equal(a, b), k
    assert load_tokenizer(tmp_path).encode("明月") == TOKENIZER.encode("明月")
    run = json.loads((tmp_path / "run.json").read_text())
    assert run["model_type"] == "gpt2" and run["objective"]["name"] == "causal_lm"
    assert run["train"]["steps"] == 4 and run["base_vocab"] == TOKENIZER.vocab_size
    state = torch.load(tmp_path / "trainer_state.pt", weights_only=True)
    assert state["step"] == 4 and state["tokens"] == 4 * 2 * 4 * 16


def test_formats_for_models_without_a_hugging_face_twin(tmp_path):
    trainer = _trainer("transformer-base", TINY, tmp_path, steps=1, warmup_steps=0)  # sinusoidal positions: no HF format
    trainer.fit()
    assert json.loads((tmp_path / "config.json").read_text())["model_type"] == "llmarch"
    model = llmarch.from_pretrained(tmp_path)
    for (k, a), b in zip(trainer.module.state_dict().items(), model.state_dict().values()):
        assert torch.equal(a, b), k


def test_an_unfinished_checkpoint_is_ignored(tmp_path):
    _trainer("gpt2", TINY, tmp_path, steps=3, save_every=3).fit()
    partial = tmp_path / "checkpoints" / ".tmp-step-00000006"  # as a kill during a save leaves it
    partial.mkdir()
    (partial / "model.safetensors").write_bytes(b"\0" * 10)
    assert latest_checkpoint(tmp_path).name == "step-00000003"
    resumed = _trainer("gpt2", TINY, tmp_path, steps=4)
    assert resumed.resume() == 3


def test_resuming_another_model_is_refused(tmp_path):
    _trainer("gpt2", TINY, tmp_path, steps=3, save_every=3).fit()
    other = _trainer("gpt2", {**TINY, "d_model": 48}, tmp_path)
    with pytest.raises(ValueError, match="holds a run of another model: d_model is 32 there, 48 here"):
        other.resume()
    with pytest.raises(FileNotFoundError, match="no checkpoint to resume from"):
        _trainer("gpt2", TINY, tmp_path / "empty").resume()
