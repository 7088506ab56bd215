"""BatchNorm over the global batch of several processes, on any backend.

torch's ``nn.SyncBatchNorm`` runs on GPUs only (DDP refuses it on CPU modules), so with gloo on the CPU the
statistics are all-reduced here instead: ``mean = sum_r sum x / N`` then ``var = sum_r sum (x - mean)^2 / N``
(two passes, as numerically close to one process's BatchNorm as the sums allow), both with gradient, so the
backward pass is that of BatchNorm on the whole batch. Running statistics update as in ``nn.BatchNorm``
(unbiased variance). On CUDA, :func:`convert_sync_batchnorm` uses torch's own ``SyncBatchNorm``.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm


def _global_sum(x: Tensor) -> Tensor:
    from torch.distributed.nn.functional import all_reduce

    return all_reduce(x)


class GlobalBatchNorm(_BatchNorm):
    """``nn.BatchNorm{1,2,3}d`` whose training statistics cover every process's rows (identical to it in
    one process and in eval mode). Same parameters, buffers and state-dict keys as BatchNorm."""

    def _check_input_dim(self, input: Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"expected at least 2D input, got {input.dim()}D")

    def forward(self, input: Tensor) -> Tensor:
        if not (self.training and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(input)
        dims = [d for d in range(input.dim()) if d != 1]
        shape = [1, -1] + [1] * (input.dim() - 2)
        x = input.float()
        count = _global_sum(torch.tensor([x.numel() / x.shape[1]], dtype=x.dtype, device=x.device))
        mean = _global_sum(x.sum(dims)) / count
        centred = x - mean.view(shape)
        var = _global_sum(centred.square().sum(dims)) / count
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
                self.running_mean.lerp_(mean.detach().to(self.running_mean.dtype), factor)
                unbiased = var.detach() * count / (count - 1).clamp_min(1)
                self.running_var.lerp_(unbiased.to(self.running_var.dtype), factor)
        out = centred * torch.rsqrt(var + self.eps).view(shape)
        if self.affine:
            out = out * self.weight.view(shape) + self.bias.view(shape)
        return out.to(input.dtype)


def convert_sync_batchnorm(module: nn.Module, device: torch.device) -> nn.Module:
    """Every BatchNorm layer of ``module`` made global-batch: torch's SyncBatchNorm on CUDA,
    :class:`GlobalBatchNorm` elsewhere. Parameters and buffers are kept (the same tensors)."""
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(module)
    return _convert(module)


def _convert(module: nn.Module) -> nn.Module:
    if isinstance(module, _BatchNorm) and not isinstance(module, GlobalBatchNorm):
        m = module
        out = GlobalBatchNorm(m.num_features, m.eps, m.momentum, m.affine, m.track_running_stats)
        if module.affine:
            out.weight, out.bias = module.weight, module.bias
        out.running_mean, out.running_var = module.running_mean, module.running_var
        out.num_batches_tracked = module.num_batches_tracked
        out.train(module.training)
        module = out
    for name, child in module.named_children():
        module.add_module(name, _convert(child))
    return module
