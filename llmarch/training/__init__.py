"""Training objectives, data and a small trainer.

The trainer's names are imported on first use (``from llmarch.training import Trainer``), so that
importing one objective does not load ``torch.distributed`` and the rest of the trainer.
"""

import importlib

# public name -> module of llmarch.training that defines it
_LAZY = {
    "Trainer": "trainer", "TrainingInterrupted": "interrupts", "TrainConfig": "train_config",
    "CausalLM": "objectives", "MaskedLM": "objectives", "SpanCorruption": "objectives",
    "make_objective": "objectives", "build_optimizer": "optim", "param_groups": "optim",
    "lr_at": "schedule", "warmup_cosine_scheduler": "schedule", "evaluate": "evaluation",
    "save_model": "checkpointing", "latest_checkpoint": "checkpointing", "init_distributed": "distributed",
    "wrap_model": "distributed", "build_model": "run_setup", "prepare_data": "run_setup", "load_run": "run_setup",
    "plot_loss_curve": "run_log", "read_log": "run_log",
    "PrefixLM": "objectives", "UniLM": "objectives", "GLM": "objectives",
    "sample_prefix_lengths": "prefix_lm", "prefix_lm_labels": "prefix_lm", "prefix_lm_loss": "prefix_lm",
    "UNILM_KINDS": "unilm", "UNILM_PROPORTIONS": "unilm", "UniLMBatch": "unilm", "sample_unilm_kinds": "unilm",
    "unilm_attention_masks": "unilm", "unilm_batch": "unilm", "unilm_loss": "unilm",
    "GLMExample": "glm", "check_spans": "glm", "glm_blank_infilling": "glm", "glm_loss": "glm",
    "glm_fill_blanks": "glm",
    "GLMBatch": "glm_sampling", "sample_glm_spans": "glm_sampling", "glm_batch": "glm_sampling",
}
__all__ = [
    "GLM",
    "GLMBatch",
    "GLMExample",
    "PrefixLM",
    "UNILM_KINDS",
    "UNILM_PROPORTIONS",
    "UniLM",
    "UniLMBatch",
    "check_spans",
    "glm_batch",
    "glm_blank_infilling",
    "glm_fill_blanks",
    "glm_loss",
    "prefix_lm_labels",
    "prefix_lm_loss",
    "sample_glm_spans",
    "sample_prefix_lengths",
    "sample_unilm_kinds",
    "unilm_attention_masks",
    "unilm_batch",
    "unilm_loss",
    "CausalLM",
    "MaskedLM",
    "SpanCorruption",
    "TrainConfig",
    "Trainer",
    "TrainingInterrupted",
    "build_model",
    "build_optimizer",
    "evaluate",
    "init_distributed",
    "latest_checkpoint",
    "load_run",
    "lr_at",
    "make_objective",
    "param_groups",
    "plot_loss_curve",
    "prepare_data",
    "read_log",
    "save_model",
    "warmup_cosine_scheduler",
    "wrap_model",
]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
