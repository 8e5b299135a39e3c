"""The trainer's parts: AdamW groups, schedule, clipping + accumulation, autocast, evaluation, log, errors."""

from __future__ import annotations

import copy
import json
import math

import pytest
import torch
import torch.nn.functional as F

from llmarch.training.objectives import CausalLM
from llmarch.training.optim import param_groups
from llmarch.training.run_setup import build_model
from llmarch.training.schedule import lr_at, warmup_cosine_scheduler
from llmarch.training.train_config import TrainConfig
from llmarch.training.trainer import Trainer

TINY = {"num_layers": 1, "d_model": 32, "num_heads": 2, "d_ff": 64}
SIZES = {"gpt2": TINY, "llama-tiny": {**TINY, "num_kv_heads": 1}, "bert-base": TINY,
         "t5-small": {**TINY, "head_dim": 16}}
VOCAB = 23


def _ids(n=600, seed=0):
    return torch.randint(0, VOCAB, (n,), generator=torch.Generator().manual_seed(seed))


def _config(**kw):
    base = dict(seq_len=16, batch_size=4, steps=4, warmup_steps=1, lr=1e-2, eval_every=0, save_every=0,
                eval_batches=2, plot=False)
    return TrainConfig(**{**base, **kw})


@pytest.mark.parametrize("preset", list(SIZES))
def test_param_groups_decay_only_weight_matrices(preset):
    model, _ = build_model(preset, base_vocab=VOCAB, seq_len=16, overrides=SIZES[preset])
    decayed, plain = (set(g["names"]) for g in param_groups(model, 0.1))
    # independent rule: biases, norm gains and embedding tables (token, position, T5 buckets) are not decayed
    expected_plain = {name for name, p in model.named_parameters()
                      if name.endswith("bias") or "norm" in name or "embeddings." in name or "position_bias" in name}
    assert plain == expected_plain
    assert decayed == {name for name, _ in model.named_parameters()} - expected_plain
    assert all("proj" in name or "lm_head" in name or "dense" in name or "pooler" in name for name in decayed)
    with pytest.raises(ValueError, match="weight_decay must be >= 0, got -1"):
        param_groups(model, -1)


def test_schedule_is_linear_warmup_then_cosine():
    max_lr, min_lr, warmup, total = 3e-3, 3e-4, 5, 50
    for step in range(total + 3):
        if step < warmup:
            expected = max_lr * (step + 1) / warmup
        else:
            progress = min(1.0, (step - warmup) / (total - warmup))
            expected = min_lr + (max_lr - min_lr) * (1 + math.cos(math.pi * progress)) / 2
        assert lr_at(step, max_lr=max_lr, total_steps=total, warmup_steps=warmup, min_lr=min_lr) == pytest.approx(
            expected, rel=1e-12)
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(2))], lr=max_lr)
    scheduler = warmup_cosine_scheduler(optimizer, total_steps=total, warmup_steps=warmup, min_lr_ratio=0.1)
    for step in range(total):
        assert optimizer.param_groups[0]["lr"] == pytest.approx(
            lr_at(step, max_lr=max_lr, total_steps=total, warmup_steps=warmup, min_lr=min_lr), rel=1e-12)
        optimizer.step()
        scheduler.step()
    with pytest.raises(ValueError, match="warmup_steps must be <= total_steps = 10, got 11"):
        lr_at(0, max_lr=1.0, total_steps=10, warmup_steps=11)


def test_accumulated_clipped_gradient_equals_full_batch_gradient():
    """grad_accum=2 gives the gradient of the mean loss over both micro-batches, clipped to grad_clip."""
    model, objective = build_model("gpt2", base_vocab=VOCAB, seq_len=16, overrides={**TINY, "dropout": 0.0,
                                                                                     "attention_dropout": 0.0})
    reference = copy.deepcopy(model)
    ids = _ids()
    trainer = Trainer(model, objective, ids, config=_config(grad_accum=2, grad_clip=0.05, steps=1, warmup_steps=0),
                      base_vocab=VOCAB, bar=False)
    seen = {}
    trainer.optimizer.register_step_pre_hook(
        lambda opt, args, kwargs: seen.update({n: p.grad.clone() for n, p in model.named_parameters()}))
    record = trainer.train_step()
    # the same gradient, computed here in one pass over both micro-batches
    windows = torch.cat([trainer.windows.batch_at(0), trainer.windows.batch_at(1)])
    logits = reference(windows[:, :-1])
    F.cross_entropy(logits.flatten(0, 1), windows[:, 1:].flatten()).backward()
    grads = {n: p.grad for n, p in reference.named_parameters()}
    norm = torch.linalg.vector_norm(torch.stack([g.norm() for g in grads.values()]))
    assert record["grad_norm"] == pytest.approx(float(norm), rel=1e-5)
    assert norm > 0.05  # so clipping acted
    for name, grad in grads.items():
        torch.testing.assert_close(seen[name], grad * (0.05 / norm), rtol=1e-4, atol=1e-7)


def test_bf16_autocast_on_cpu_keeps_fp32_weights():
    losses = {}
    for dtype in ("fp32", "bf16"):
        torch.manual_seed(0)
        model, objective = build_model("gpt2", base_vocab=VOCAB, seq_len=16, overrides=TINY)
        trainer = Trainer(model, objective, _ids(), config=_config(dtype=dtype, device="cpu", steps=2),
                          base_vocab=VOCAB, bar=False)
        losses[dtype] = [r["loss"] for r in trainer.fit()]
        assert all(p.dtype == torch.float32 for p in model.parameters())
    assert all(math.isfinite(x) for x in losses["bf16"])
    assert losses["bf16"][0] == pytest.approx(losses["fp32"][0], abs=0.05)  # bf16 rounding, ~1e-2 relative


def test_evaluate_equals_cross_entropy_over_sequential_windows():
    model, objective = build_model("gpt2", base_vocab=VOCAB, seq_len=16, overrides=TINY)
    ids = _ids(200, seed=1)
    trainer = Trainer(model, objective, _ids(), ids, config=_config(eval_batches=100), base_vocab=VOCAB, bar=False)
    result = trainer.evaluate()
    n = (ids.numel() - 1) // 16
    inputs = torch.stack([ids[i * 16: i * 16 + 16] for i in range(n)])
    targets = torch.stack([ids[i * 16 + 1: i * 16 + 17] for i in range(n)])
    with torch.no_grad():
        expected = F.cross_entropy(model.eval()(inputs).flatten(0, 1), targets.flatten())
    assert result["eval_tokens"] == n * 16
    assert result["eval_loss"] == pytest.approx(float(expected), rel=1e-5)
    assert result["eval_ppl"] == pytest.approx(math.exp(result["eval_loss"]), rel=1e-9)


def test_jsonl_log_and_loss_curve(tmp_path):
    model, objective = build_model("gpt2", base_vocab=VOCAB, seq_len=16, overrides=TINY)
    trainer = Trainer(model, objective, _ids(), _ids(100, 2), config=_config(steps=4, eval_every=2, plot=True),
                      base_vocab=VOCAB, out_dir=tmp_path, bar=False)
    records = trainer.fit()
    lines = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert lines == records
    assert [r["step"] for r in lines if "loss" in r] == [1, 2, 3, 4]
    assert [r["step"] for r in lines if "eval_loss" in r] == [2, 4]
    assert {"lr", "grad_norm", "tokens", "tokens_per_s", "elapsed_s"} <= set(lines[0])
    assert [r for r in lines if "loss" in r][-1]["tokens"] == 4 * 4 * 16
    assert (tmp_path / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("preset, objective", [("bert-base", "mlm"), ("t5-small", "span_corruption"),
                                               ("llama-tiny", "causal_lm")])
def test_every_family_trains(preset, objective):
    model, chosen = build_model(preset, base_vocab=VOCAB, seq_len=16, overrides=SIZES[preset])
    assert chosen.name == objective
    # a skewed text (token 5 four times in five): learning the frequencies alone lowers the loss a lot
    ids = torch.where(torch.rand(600) < 0.8, 5, _ids(600))
    records = Trainer(model, chosen, ids, config=_config(steps=12, lr=1e-2, dtype="fp32"), base_vocab=VOCAB,
                      bar=False).fit()
    losses = [r["loss"] for r in records]
    assert sum(losses[-3:]) < 0.7 * sum(losses[:3]), losses


def test_bad_input_errors():
    model, objective = build_model("gpt2", base_vocab=VOCAB, seq_len=16, overrides={**TINY, "max_positions": 8})
    with pytest.raises(ValueError, match="seq_len must be <= the model's context max_positions = 8, got 16"):
        Trainer(model, objective, _ids(), config=_config(), base_vocab=VOCAB)
    model, objective = build_model("gpt2", base_vocab=VOCAB, seq_len=16, overrides=TINY)
    with pytest.raises(ValueError, match="ids must not be empty"):
        Trainer(model, objective, torch.zeros(0, dtype=torch.long), config=_config(), base_vocab=VOCAB)
    with pytest.raises(ValueError, match="seq_len must be at most len"):
        Trainer(model, objective, _ids(10), config=_config(), base_vocab=VOCAB)
    with pytest.raises(ValueError, match="batch_size must be a positive int, got 0"):
        _config(batch_size=0)
    with pytest.raises(ValueError, match="dtype 'fp16' needs a CUDA device"):
        Trainer(model, objective, _ids(), config=_config(dtype="fp16", device="cpu"), base_vocab=VOCAB)
    with pytest.raises(ValueError, match="objective 'mlm' trains an encoder_only model, but the preset is decoder_only"):
        build_model("gpt2", base_vocab=VOCAB, seq_len=16, objective="mlm", overrides=TINY)
    assert isinstance(objective, CausalLM)


def test_progress_bar_and_plain_lines():
    import io

    from llmarch.training.progress import Progress

    outputs = {}
    for bar in (True, False):
        stream = io.StringIO()
        progress = Progress(3, bar=bar, every=1, stream=stream)
        for step in (1, 2, 3):
            progress.update(step, loss=1.5, lr=1e-3, tokens_per_s=2048.0)
        progress.write("evaluated")
        progress.close()
        outputs[bar] = stream.getvalue()
    assert "3/3" in outputs[True] and "loss=1.5000" in outputs[True] and "tok_s=2,048" in outputs[True]
    assert "evaluated" in outputs[True]
    assert outputs[False].splitlines()[-2] == "step 3/3 | loss 1.5000 | lr 1.00e-03 | 2,048 tok/s | eta 0:00:00"
