"""Distributed data parallel training under ``torchrun``: process-group setup from torchrun's
environment (gloo on CPU, NCCL on CUDA), the DDP wrapper, and small collective helpers.

The same ``Trainer`` runs single-process or distributed: each rank reads its shard of the training
images (DistributedSampler), DDP averages gradients, rank 0 evaluates and writes checkpoints.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from engine.segmenter import Segmenter


@dataclass(frozen=True)
class DistContext:
    rank: int
    world_size: int
    local_rank: int
    backend: str

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        dist.barrier()

    def all_true(self, flag: bool) -> bool:
        """True only when ``flag`` holds on every rank (keeps ranks in step on skip decisions)."""
        t = torch.tensor([1 if flag else 0], dtype=torch.int32, device=self._device())
        dist.all_reduce(t, op=dist.ReduceOp.MIN)
        return bool(t.item())

    def sync_buffers(self, module: nn.Module) -> None:
        """Copy rank 0's buffers (BatchNorm running statistics) to every rank. DDP broadcasts them
        before each forward; after the last one the ranks differ until this is called."""
        for buf in module.buffers():
            dist.broadcast(buf, 0)

    def _device(self) -> torch.device:
        return torch.device("cuda", self.local_rank) if self.backend == "nccl" else torch.device("cpu")


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1 and "RANK" in os.environ


def init_distributed(
    device: str | None = None, timeout_s: float = 3600.0, backend: str | None = None
) -> DistContext | None:
    """Join the process group torchrun describes; None when not launched distributed.

    NCCL when this rank uses CUDA, else gloo (``backend`` forces one: gloo suits exchanging Python
    objects whatever the device). Each CUDA rank takes GPU ``LOCAL_RANK``.
    """
    if not launched_by_torchrun():
        return None
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() and (device is None or device in ("", "auto") or device.startswith("cuda"))
    backend = backend or ("nccl" if use_cuda else "gloo")
    if use_cuda:
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        dist.init_process_group(backend, timeout=datetime.timedelta(seconds=timeout_s))
    return DistContext(rank, world, local_rank, backend)


def device_for(ctx: DistContext) -> str:
    return f"cuda:{ctx.local_rank}" if ctx.backend == "nccl" else "cpu"


def shard_bounds(count: int, rank: int, world_size: int) -> tuple[int, int]:
    """[start, stop) of rank's contiguous share of ``count`` items; shares differ by at most one."""
    return count * rank // world_size, count * (rank + 1) // world_size


def shutdown(ctx: DistContext | None) -> None:
    if ctx is not None and dist.is_initialized():
        dist.destroy_process_group()


class LossModule(nn.Module):
    """Wraps a segmenter so that DDP's forward runs ``segmenter.losses``: whatever submodules the
    segmenter calls inside, DDP sees one forward and syncs all of ``segmenter.model``'s gradients."""

    def __init__(self, segmenter: Segmenter) -> None:
        super().__init__()
        self.model = segmenter.model
        self._segmenter = [segmenter]  # a list: not registered as a submodule

    def forward(self, images: list[torch.Tensor], targets: list[dict]) -> dict[str, torch.Tensor]:
        return self._segmenter[0].losses(images, targets)


def wrap_ddp(segmenter: Segmenter, ctx: DistContext, find_unused_parameters: bool = False) -> nn.Module:
    """DDP over the segmenter's losses. Rank 0's weights are broadcast to all ranks here."""
    ids = [ctx.local_rank] if ctx.backend == "nccl" else None
    return nn.parallel.DistributedDataParallel(
        LossModule(segmenter), device_ids=ids, find_unused_parameters=find_unused_parameters
    )
