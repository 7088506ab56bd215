"""RandAugment, AutoAugment, TrivialAugmentWide and AugMix on a whole uint8 batch, every image drawing its own
operations and magnitudes.

torchvision's v2 transforms draw one set of operations per call, so on a batched tensor every image would get the
same ones (kornia's RandAugment/AutoAugment/TrivialAugment do the same per batch, and kornia has no AugMix). Here
each policy first draws a :class:`Plan` for ``n`` images on the CPU, from a ``torch.Generator`` (the global CPU
generator by default, which checkpoints already save with ``torch.get_rng_state()``), then applies it: for every
step, each operation runs once, through :data:`~accord.views.batched_ops.OPS`, on the images that drew it.

What matches torchvision's per-image transform (``torchvision.transforms.v2``'s AutoAugment family, defaults as
:mod:`accord.views.policies` builds them):

- the operation sets and magnitude bins (torchvision's tables, stated in :mod:`.augmentation_spaces`, with the
  translation bins of each image size), the random sign of the signed operations (negative when a uniform draw is
  ``<= 0.5``), the interpolation (nearest; bilinear for AugMix) and the fill (zeros);
- RandAugment(N, M, 31 bins): N steps, each a uniform operation at bin M;
- TrivialAugmentWide(31 bins): one uniform operation at a uniform bin;
- AutoAugment(policy): a uniform sub-policy, each of its two operations applied when a uniform draw is ``<= p``,
  at its fixed bin of 10;
- AugMix(severity, width 3, depth 1-3, alpha 1, all ops): ``m ~ Dirichlet(a, a)``, chain weights
  ``Dirichlet(a, ..., a) * m[1]``, each chain of a uniform depth in 1..3 of uniform operations at a uniform bin
  below the severity (10 bins), ``mix = m[0] x + sum_i w_i chain_i(x)`` in float32, truncated to uint8.

The draws follow the same distributions but not torchvision's random stream (which draws scalars one by one from
the global generator): a run is repeatable from its own generator state, not from torchvision's.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor
from torch.distributions import Dirichlet

from .augmentation_spaces import (
    AUGMIX_SPACE,
    AUTOAUGMENT_POLICIES,
    AUTOAUGMENT_SPACE,
    RANDAUGMENT_SPACE,
    TRIVIALAUGMENT_SPACE,
)
from .batched_ops import OPS, Op


@dataclass
class Step:
    """One operation per image: ``ops[i]`` indexes the policy's ``names`` (-1: nothing), ``magnitudes[i]`` is its
    signed magnitude in torchvision's units."""

    ops: Tensor  # (n,) int64
    magnitudes: Tensor  # (n,) float32


@dataclass
class Plan:
    """Everything a policy drew for ``n`` images: its steps in order, or for AugMix its chains and weights."""

    steps: list[Step] = field(default_factory=list)
    chains: list[list[Step]] = field(default_factory=list)
    weights: Tensor | None = None  # AugMix: (n, 1 + width), the original image's weight first


class _Space:
    """An augmentation space: op names, a (ops, bins) float32 magnitude table for one image size and the signed
    flags, all built from torchvision's lambdas."""

    def __init__(self, table: dict, bins: int, height: int, width: int) -> None:
        self.names = list(table)
        rows = []
        for fn, _ in table.values():
            values = fn(bins, height, width)
            rows.append(torch.zeros(bins) if values is None else values.to(torch.float32))
        self.table = torch.stack(rows)
        self.signed = torch.tensor([signed for _, signed in table.values()])

    def magnitudes(self, ops: Tensor, bins: Tensor, generator: torch.Generator | None) -> Tensor:
        values = self.table[ops.clamp_min(0), bins]
        negative = (torch.rand(ops.shape, generator=generator) <= 0.5) & self.signed[ops.clamp_min(0)]
        return torch.where(negative, -values, values)


def sample_dirichlet(concentration: Tensor, generator: torch.Generator | None) -> Tensor:
    """Dirichlet draws, one per row of ``concentration``, from ``generator``: torch.distributions draws from the global
    generator only, so with a generator it runs under a seed drawn from that generator (the global state is kept)."""
    if generator is None:
        return Dirichlet(concentration).sample()
    seed = int(torch.randint(2**63 - 1, (), generator=generator))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return Dirichlet(concentration).sample()


class BatchedPolicy:
    """Base class: ``policy(x)`` augments a uint8 ``(B, C, H, W)`` batch on its own device, ``policy.sample`` draws
    the plan alone and ``policy.apply`` carries one out."""

    interpolation = "nearest"
    augmentation_space: dict = {}
    bins = 31
    ops: dict[str, Op] = OPS  # the functions the policy's operation names stand for

    def __init__(self) -> None:
        self._spaces: dict[tuple[int, int], _Space] = {}

    def space(self, height: int, width: int) -> _Space:
        if (height, width) not in self._spaces:
            self._spaces[height, width] = _Space(self.augmentation_space, self.bins, height, width)
        return self._spaces[height, width]

    def sample(self, n: int, height: int, width: int, generator: torch.Generator | None = None) -> Plan:
        raise NotImplementedError

    def __call__(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        if x.dtype != torch.uint8 or x.dim() != 4 or x.shape[1] not in (1, 3):
            raise ValueError(f"expected a uint8 batch (B, 1 or 3, H, W), got {x.dtype} {tuple(x.shape)}")
        return self.apply(x, self.sample(x.shape[0], x.shape[2], x.shape[3], generator))

    def apply(self, x: Tensor, plan: Plan) -> Tensor:
        return apply_steps(x, plan.steps, self.space(x.shape[2], x.shape[3]).names, self.interpolation, self.ops)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def apply_steps(
    x: Tensor, steps: list[Step], names: list[str], interpolation: str, functions: dict[str, Op] = OPS
) -> Tensor:
    """Carry out ``steps`` on ``x`` (a new tensor; ``x`` is left alone), ``functions[name]`` doing each operation.

    Before each step the rows are sorted by the operation they drew (a stable sort on the CPU, so the device never
    waits), then each operation runs once on its contiguous block of rows; the rows go back to the images' order
    once, at the end."""
    order: Tensor | None = None  # row r of `work` holds image order[r]
    work = x
    for step in steps if len(x) else ():
        ops, magnitudes = (step.ops, step.magnitudes) if order is None else (step.ops[order], step.magnitudes[order])
        sort = torch.argsort(ops, stable=True)
        order = sort if order is None else order[sort]
        ops, magnitudes = ops[sort], magnitudes[sort].to(x.device, non_blocking=True)
        work = work.index_select(0, sort.to(x.device, non_blocking=True))
        blocks, start = [], 0
        for k, count in enumerate(torch.bincount(ops + 1, minlength=len(names) + 1).tolist()):
            if count:
                block, drawn = work[start : start + count], magnitudes[start : start + count]
                skip = k == 0 or names[k - 1] == "Identity"  # k = op + 1; 0: nothing drawn
                blocks.append(block if skip else functions[names[k - 1]](block, drawn, interpolation))
                start += count
        work = torch.cat(blocks) if len(blocks) > 1 else blocks[0]
    if order is None:
        return x.clone()
    back = torch.empty_like(order)
    back[order] = torch.arange(len(order))  # index_select with the inverse: index_copy_ is slow on the CPU
    return work.index_select(0, back.to(x.device, non_blocking=True))


class BatchedRandAugment(BatchedPolicy):
    """RandAugment(num_ops, magnitude) of torchvision, per image."""

    augmentation_space = RANDAUGMENT_SPACE

    def __init__(self, num_ops: int = 2, magnitude: int = 9) -> None:
        super().__init__()
        if num_ops < 0 or not 0 <= magnitude < self.bins:
            raise ValueError(f"RandAugment needs num_ops >= 0 and magnitude in 0..{self.bins - 1}")
        self.num_ops, self.magnitude = num_ops, magnitude

    def sample(self, n: int, height: int, width: int, generator: torch.Generator | None = None) -> Plan:
        space, plan = self.space(height, width), Plan()
        for _ in range(self.num_ops):
            ops = torch.randint(len(space.names), (n,), generator=generator)
            bins = torch.full((n,), self.magnitude, dtype=torch.int64)
            plan.steps.append(Step(ops, space.magnitudes(ops, bins, generator)))
        return plan

    def __repr__(self) -> str:
        return f"BatchedRandAugment(num_ops={self.num_ops}, magnitude={self.magnitude})"


class BatchedTrivialAugment(BatchedPolicy):
    """TrivialAugmentWide of torchvision, per image."""

    augmentation_space = TRIVIALAUGMENT_SPACE

    def sample(self, n: int, height: int, width: int, generator: torch.Generator | None = None) -> Plan:
        space = self.space(height, width)
        ops = torch.randint(len(space.names), (n,), generator=generator)
        bins = torch.randint(self.bins, (n,), generator=generator)
        return Plan(steps=[Step(ops, space.magnitudes(ops, bins, generator))])


class BatchedAutoAugment(BatchedPolicy):
    """AutoAugment(policy) of torchvision (``imagenet``, ``cifar10`` or ``svhn``), per image."""

    augmentation_space = AUTOAUGMENT_SPACE
    bins = 10

    def __init__(self, policy: str = "imagenet") -> None:
        super().__init__()
        if policy.lower() not in AUTOAUGMENT_POLICIES:
            raise ValueError(f"AutoAugment policy must be one of imagenet, cifar10, svhn, got {policy!r}")
        self.policy = policy.lower()
        self.table = AUTOAUGMENT_POLICIES[self.policy]
        names = list(self.augmentation_space)
        self.sub_ops = torch.tensor([[names.index(op) for op, _, _ in sub] for sub in self.table])
        self.sub_probs = torch.tensor([[p for _, p, _ in sub] for sub in self.table], dtype=torch.float32)
        self.sub_bins = torch.tensor([[m or 0 for _, _, m in sub] for sub in self.table])

    def sample(self, n: int, height: int, width: int, generator: torch.Generator | None = None) -> Plan:
        space, plan = self.space(height, width), Plan()
        chosen = torch.randint(len(self.table), (n,), generator=generator)
        for j in range(2):
            ops = self.sub_ops[chosen, j]
            applied = torch.rand(n, generator=generator) <= self.sub_probs[chosen, j]
            magnitudes = space.magnitudes(ops, self.sub_bins[chosen, j], generator)
            plan.steps.append(Step(torch.where(applied, ops, -1), magnitudes))
        return plan

    def __repr__(self) -> str:
        return f"BatchedAutoAugment(policy={self.policy!r})"


class BatchedAugMix(BatchedPolicy):
    """AugMix(severity) of torchvision (mixture width 3, depth 1-3, alpha 1, all operations), per image."""

    augmentation_space = AUGMIX_SPACE
    interpolation = "bilinear"
    bins = 10  # torchvision's _PARAMETER_MAX

    def __init__(self, severity: int = 3, mixture_width: int = 3, chain_depth: int = -1, alpha: float = 1.0) -> None:
        super().__init__()
        if not 1 <= severity <= self.bins:
            raise ValueError(f"AugMix severity must be in 1..{self.bins}, got {severity}")
        self.severity, self.mixture_width, self.chain_depth, self.alpha = severity, mixture_width, chain_depth, alpha

    def sample(self, n: int, height: int, width: int, generator: torch.Generator | None = None) -> Plan:
        space, plan = self.space(height, width), Plan()
        m = sample_dirichlet(torch.full((n, 2), float(self.alpha)), generator)
        mixing = sample_dirichlet(torch.full((n, self.mixture_width), float(self.alpha)), generator)
        plan.weights = torch.cat([m[:, :1], mixing * m[:, 1:]], dim=1)
        longest = self.chain_depth if self.chain_depth > 0 else 3
        for _ in range(self.mixture_width):
            if self.chain_depth > 0:
                depth = torch.full((n,), self.chain_depth, dtype=torch.int64)
            else:
                depth = torch.randint(1, 4, (n,), generator=generator)
            chain = []
            for d in range(longest):
                ops = torch.randint(len(space.names), (n,), generator=generator)
                bins = torch.randint(self.severity, (n,), generator=generator)
                magnitudes = space.magnitudes(ops, bins, generator)
                chain.append(Step(torch.where(depth > d, ops, -1), magnitudes))
            plan.chains.append(chain)
        return plan

    def apply(self, x: Tensor, plan: Plan) -> Tensor:
        names = self.space(x.shape[2], x.shape[3]).names
        assert plan.weights is not None
        weights = plan.weights.to(x.device, non_blocking=True).view(x.shape[0], 1 + self.mixture_width, 1, 1, 1)
        mix = weights[:, 0] * x
        for i, chain in enumerate(plan.chains):
            mix.add_(weights[:, i + 1] * apply_steps(x, chain, names, self.interpolation))
        return mix.to(torch.uint8)

    def __repr__(self) -> str:
        return f"BatchedAugMix(severity={self.severity})"
