"""SyncBatchNorm for distributed training: batch statistics over the global batch of all ranks.

Only BatchNorm layers that train are converted (their affine parameters take gradients); a frozen
layer (a frozen backbone stage, YOLACT's ``freeze_bn``) stays a plain BatchNorm in eval mode.
``torch.nn.SyncBatchNorm`` runs on CUDA only (and DDP refuses it on CPU); on CPU ranks (gloo)
``GlooSyncBatchNorm`` computes the same statistics with differentiable all-reduces, so
multi-machine CPU training can use it too.
"""

from __future__ import annotations

from functools import partial

import torch
import torch.distributed as dist
import torch.distributed.nn.functional as dist_fn
from torch import nn


class GlooSyncBatchNorm(nn.BatchNorm2d):
    """BatchNorm2d with statistics over all ranks, for CPU ranks (gloo), where neither
    ``nn.SyncBatchNorm``'s kernels nor DDP accept ``nn.SyncBatchNorm``.

    Two all-reduces per layer: sums and count give the global mean, then the summed squared
    deviations give the (biased) global variance; autograd carries the gradient through both
    (the backward of an all-reduce is an all-reduce), as torch's CUDA kernel does by hand.
    Outside training, or in a single process, it is a plain BatchNorm2d.
    """

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        if not (self.training and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(input)
        self._check_input_dim(input)
        channels = input.shape[1]
        dims = [0, 2, 3]
        shape = [1, channels, 1, 1]
        count = input.new_full((1,), float(input.numel() // channels))
        sums = dist_fn.all_reduce(torch.cat([input.sum(dims), count]))
        total = sums[-1]
        mean = sums[:channels] / total
        centred = input - mean.view(shape)
        var = dist_fn.all_reduce((centred * centred).sum(dims)) / total
        if self.track_running_stats:
            self._update_running_stats(mean.detach(), var.detach(), float(total))
        out = centred * torch.rsqrt(var + self.eps).view(shape)
        if self.affine:
            out = out * self.weight.view(shape) + self.bias.view(shape)
        return out

    @torch.no_grad()
    def _update_running_stats(self, mean: torch.Tensor, var: torch.Tensor, total: float) -> None:
        assert self.num_batches_tracked is not None and self.running_mean is not None
        assert self.running_var is not None
        self.num_batches_tracked.add_(1)
        factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
        unbiased = var * (total / max(total - 1.0, 1.0))
        self.running_mean.mul_(1 - factor).add_(mean, alpha=factor)
        self.running_var.mul_(1 - factor).add_(unbiased, alpha=factor)


SYNC_TYPES = (nn.SyncBatchNorm, GlooSyncBatchNorm)


def _trains(bn: nn.Module) -> bool:
    """A BatchNorm trains unless its affine parameters are frozen."""
    return all(p.requires_grad for p in bn.parameters(recurse=False))


def _rebuild(bn: nn.Module, cls: type[nn.Module]) -> nn.Module:
    """A ``cls`` layer sharing ``bn``'s parameters and buffers (the optimizer keeps its tensors)."""
    new = cls(bn.num_features, bn.eps, bn.momentum, bn.affine, bn.track_running_stats)
    if bn.affine:
        new.weight, new.bias = bn.weight, bn.bias
    new.running_mean, new.running_var = bn.running_mean, bn.running_var
    new.num_batches_tracked = bn.num_batches_tracked
    new.train(bn.training)
    return new


def _replace(model: nn.Module, pick, make) -> list[str]:
    done: list[str] = []
    for name, module in list(model.named_modules()):
        for child_name, child in list(module.named_children()):
            if pick(child):
                setattr(module, child_name, make(child))
                done.append(f"{name}.{child_name}" if name else child_name)
    return done


def convert_sync_batchnorm(model: nn.Module, cpu: bool) -> list[str]:
    """Replace every training BatchNorm2d of ``model`` (in place) by a synchronised one; frozen
    layers stay as they are. ``cpu``: GlooSyncBatchNorm, else ``nn.SyncBatchNorm``. Returns the
    converted layer names."""
    # BatchNorm2d only (what our models use): revert_sync_batchnorm restores that class.
    make = partial(_rebuild, cls=GlooSyncBatchNorm) if cpu else nn.SyncBatchNorm.convert_sync_batchnorm
    return _replace(model, lambda m: type(m) is nn.BatchNorm2d and _trains(m), make)


def revert_sync_batchnorm(model: nn.Module) -> int:
    """Synchronised layers back to plain BatchNorm2d (same parameters and buffers), so the trained
    model predicts, traces and exports as before. Returns how many layers were reverted."""
    return len(_replace(model, lambda m: isinstance(m, SYNC_TYPES), partial(_rebuild, cls=nn.BatchNorm2d)))
