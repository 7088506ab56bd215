"""BatchNorm over the global batch of several processes, on any backend.

torch's ``nn.SyncBatchNorm`` runs on GPUs only (DDP refuses it on CPU modules), so with gloo on the CPU the
statistics are all-reduced here instead, with gradient, so the backward pass is that of BatchNorm on the whole
batch. Each process sends its count ``n_r``, ``n_r mu_r`` and ``M2_r + n_r mu_r^2`` (``M2_r`` its centred sum
of squares) in one all-reduce per layer; the merge ``mean = sum n_r mu_r / N``,
``var = sum (M2_r + n_r mu_r^2) / N - mean^2`` runs in float64 (Chan et al.'s parallel variance).
Running statistics update as in ``nn.BatchNorm``
(unbiased variance). On CUDA, :func:`convert_sync_batchnorm` uses torch's own ``SyncBatchNorm``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm

from ..collectives import distributed, sum_over_processes


class GlobalBatchNorm(_BatchNorm):
    """``nn.BatchNorm{1,2,3}d`` whose training statistics cover every process's rows (identical to it in
    one process and in eval mode). Same parameters, buffers and state-dict keys as BatchNorm."""

    def _check_input_dim(self, input: Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"expected at least 2D input, got {input.dim()}D")

    def forward(self, input: Tensor) -> Tensor:
        if not (self.training and distributed()):
            return super().forward(input)
        dims = [d for d in range(input.dim()) if d != 1]
        shape = [1, -1] + [1] * (input.dim() - 2)
        x = input.float()
        n = x.numel() // x.shape[1]
        local_mean = x.mean(dims)
        local_m2 = (x - local_mean.view(shape)).square().sum(dims)  # this process's centred sum of squares
        # one all-reduce per layer: sum_r n_r mu_r, sum_r (M2_r + n_r mu_r^2) and N, merged in float64
        mu, m2 = local_mean.double(), local_m2.double()
        total = sum_over_processes(torch.cat([n * mu, m2 + n * mu.square(), mu.new_full((1,), n)]))
        c = x.shape[1]
        count = total[2 * c]
        mean64 = total[:c] / count
        var = (total[c : 2 * c] / count - mean64.square()).clamp_min(0).float()
        mean = mean64.float()
        centred = x - mean.view(shape)
        batches, running_mean, running_var = self.num_batches_tracked, self.running_mean, self.running_var
        if batches is not None and running_mean is not None and running_var is not None:  # track_running_stats
            with torch.no_grad():
                batches.add_(1)
                factor = 1.0 / float(batches) if self.momentum is None else self.momentum
                running_mean.lerp_(mean.detach().to(running_mean.dtype), factor)
                unbiased = var.detach() * count / (count - 1).clamp_min(1)
                running_var.lerp_(unbiased.to(running_var.dtype), factor)
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
