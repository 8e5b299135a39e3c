"""Data-parallel training with ``torch.distributed``: one process per device.

``torchrun --nproc_per_node=N`` (or ``python -m torch.distributed.run``) starts N copies of the
same command and tells each who it is through environment variables (``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``). ``init_distributed`` reads them; without them
the run is a single process and nothing here does anything.

Two ways to split the work, both data-parallel (each rank sees different rows of the batch):

* **DDP** (``DistributedDataParallel``): every rank holds the whole model and optimizer state;
  after ``backward`` the gradients are averaged by an all-reduce, so every replica takes the same
  step.
* **FSDP2** (``torch.distributed.fsdp.fully_shard``): every parameter, gradient and optimizer state
  is *sharded* -- a rank stores ``1/N`` of each -- and a layer's full weights are all-gathered just
  before it runs, then freed; gradients are reduce-scattered. Memory per rank falls by ~N.

The backend is ``gloo`` on CPU and ``nccl`` on CUDA.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

__all__ = ["DistributedContext", "init_distributed", "wrap_model", "unwrap_model", "all_reduce_mean",
           "any_rank", "STRATEGIES"]

STRATEGIES = ("ddp", "fsdp")


@dataclass(frozen=True)
class DistributedContext:
    """Who this process is: ``rank`` of ``world_size``, on ``device``."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    backend: str | None = None

    @property
    def is_main(self) -> bool:
        """Rank 0 writes files and prints."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def close(self) -> None:
        """Destroy the process group (if this context made one)."""
        if self.distributed and dist.is_initialized():
            dist.destroy_process_group()


def _resolve_device(device: str | None, local_rank: int) -> torch.device:
    if device in (None, "auto"):
        device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(device)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError("device must be 'cpu' here (CUDA is not available), got 'cuda'")
        device = torch.device("cuda", local_rank if device.index is None else device.index)
        torch.cuda.set_device(device)
    return device


def init_distributed(device: str | None = "auto") -> DistributedContext:
    """Join the process group described by torchrun's environment, or run alone.

    Args:
        device: ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"``. Under torchrun each
            rank takes ``cuda:LOCAL_RANK``.

    Returns:
        The ``DistributedContext``; ``world_size == 1`` without torchrun.

    Raises:
        ValueError: for a CUDA device when none is available.

    >>> init_distributed("cpu").world_size          # no torchrun environment: one process
    1
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank, local_rank = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    resolved = _resolve_device(device, local_rank)
    if world_size == 1:
        return DistributedContext(device=resolved)
    backend = "nccl" if resolved.type == "cuda" else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend=backend, device_id=resolved if resolved.type == "cuda" else None)
    return DistributedContext(rank=rank, world_size=world_size, local_rank=local_rank, device=resolved,
                              backend=backend)


# --8<-- [start:wrap_model]
def wrap_model(
    model: nn.Module, context: DistributedContext, strategy: str = "ddp"
) -> nn.Module:
    """Wrap ``model`` (already on ``context.device``) for data-parallel training.

    ``"ddp"``: ``DistributedDataParallel``. ``"fsdp"``: FSDP2 -- ``fully_shard`` each
    Transformer layer, then the whole model (which shards what is left: embeddings,
    final norm, head), in place. A single process returns ``model`` unchanged.

    Raises:
        ValueError: for an unknown ``strategy``.
    """
    if strategy not in STRATEGIES:
        raise ValueError(
            f"strategy must be one of {', '.join(STRATEGIES)}, got {strategy!r}"
        )
    if not context.distributed:
        return model
    if strategy == "ddp":
        from torch.nn.parallel import DistributedDataParallel

        return DistributedDataParallel(
            model,
            device_ids=[context.device] if context.device.type == "cuda" else None,
        )
    from torch.distributed.fsdp import fully_shard

    for module in model.modules():
        if isinstance(
            getattr(module, "layers", None), nn.ModuleList
        ):  # a TransformerStack
            for layer in module.layers:
                fully_shard(layer)
    fully_shard(model)
    return model
# --8<-- [end:wrap_model]


def unwrap_model(model: nn.Module) -> nn.Module:
    """The module inside a DDP wrapper (FSDP2 shards in place: the same object)."""
    return getattr(model, "module", model)


def all_reduce_mean(value: float, context: DistributedContext) -> float:
    """The mean of ``value`` over the ranks (``value`` itself in one process)."""
    if not context.distributed:
        return float(value)
    tensor = torch.tensor([float(value)], dtype=torch.float64,
                          device=context.device if context.backend == "nccl" else "cpu")
    dist.all_reduce(tensor)
    return float(tensor.item()) / context.world_size


def any_rank(flag: bool, context: DistributedContext) -> bool:
    """True when ``flag`` is true on at least one rank (so that all ranks stop together)."""
    if not context.distributed:
        return bool(flag)
    tensor = torch.tensor([int(flag)], device=context.device if context.backend == "nccl" else "cpu")
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return bool(tensor.item())
