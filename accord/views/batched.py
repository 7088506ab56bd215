"""Views augmented batch-wise on the training device instead of per image in loader workers.

The loader then only collates un-augmented uint8 images; :class:`BatchedViews` turns that batch ``(B, C, H, W)``
into the same view-major ``(V*B, C, H, W)`` float batch that :func:`~accord.views.multiview.collate_views`
produces (rows ``[j*B, (j+1)*B)`` are view ``j``), drawing every image's crop, flip and CutOut on its own.
torchvision v2 transforms draw one parameter set for a whole batched tensor, so they cannot do this; the crop and
flip are one gather each (:mod:`accord.views.batched_geometry`), CutOut is kornia's ``RandomErasing``, which draws
per sample. Each token's registered class gives its device form (:meth:`~accord.views.augmentation.Augmentation.
device`), run here stage by stage; the built-in ones do what they do in :mod:`accord.views.policies`:

    crop     pad 4 px of zeros, then a random crop back to the image size (28-32 px images)
    flip     horizontal flip with probability 1/2
    jitter   colour jitter (brightness, contrast, saturation) per image, in its own order (uint8)
    lighting PCA lighting on the float image before normalisation
    cutout   after normalisation, one square of zeros of side ``cutout_L`` or half the image side
    ccutout  the authors' CutOut, centre anywhere, clipped at the border
    standard alias of crop-flip; ``none`` adds nothing

The image operations ``randaug[_N_M]``, ``autoaug[_imagenet|_cifar10|_svhn]``, ``trivialaug`` and ``augmix[_S]``
(and the authors' own ``tfrandaug[_N_M[_pP]]`` and ``autoaug_agmax[_POLICY]``, :mod:`accord.views.author_policies`)
run after the geometry on the uint8 batch, through :mod:`accord.views.batched_policies`: every image draws its own
operations and magnitudes, as torchvision's per-image transforms do (kornia's RandAugment, TrivialAugment and
AutoAugment choose their operations once per call, and kornia has no AugMix). Float input is quantised to uint8
levels first, as those operations work on uint8. Jitter, lighting and clipped CutOut are
:mod:`accord.views.batched_photometric`'s.

ImageNet-size datasets (image folders) come in different sizes, so there is no un-augmented batch, and
RandomResizedCrop needs each whole image: there the loader makes every view's crop and flip as uint8
(:class:`~accord.views.loader_crops.ViewCrops`) and the module takes the view-major ``(V*B, C, S, S)`` crops and
makes the rest of each view.

Randomness comes from torch's global generator of the batch's device (crop, flip; kornia samples CutOut's
parameters there too, ``.to(device)`` moving its sampler with the module) and, for the image operations, from
torch's global CPU generator (their plans are drawn on the CPU and only sent to the device): a trainer that saves
and restores ``torch.get_rng_state()`` and ``torch.cuda.get_rng_state()`` resumes with the same views, and
``torch.manual_seed`` makes runs repeat.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import kornia.augmentation  # noqa: F401 - the device CutOut's; config resolution reports it missing from here
import torch
from torch import Tensor, nn
from torch.utils.data import Dataset, Subset
from torchvision.transforms import v2

from ..data.datasets import DataInfo, TensorImageDataset
from .augmentation import Augmentation
from .loader_crops import ViewCrops
from .tokens import parse_policy, parse_token, policy_tokens


def check_batched_policy(policy: str, image_size: int) -> None:
    """Refuse, in one line naming it, a token of ``policy`` that :class:`BatchedViews` does not make per image
    (every registered augmentation is made on the device but those whose ``device_refusal`` says why not)."""
    parse_policy(policy, image_size)  # a malformed or unknown token: the grammar's own one-line error
    for token in policy_tokens(policy):
        if why := parse_token(token, image_size).device_refusal():
            raise ValueError(
                f"augment_on: device does not support the token {token!r} of view {policy!r} ({why}); "
                "use augment_on: loader"
            )


class Uint8Images:
    """What the loader does to a training image when the views are made on the device: make it a uint8 tensor.

    It draws nothing, so a whole batch of an in-memory dataset (:class:`~accord.data.datasets.TensorImageDataset`,
    through any :class:`~torch.utils.data.Subset`) is fetched with one index instead of image by image
    (:meth:`fetch_batch`, which :class:`~accord.views.multiview.ViewDataset` calls for the loader).
    """

    def __init__(self) -> None:
        self.per_image = v2.Compose([v2.ToImage(), v2.ToDtype(torch.uint8, scale=True), v2.ToPureTensor()])

    def __call__(self, image: Any) -> Tensor:
        return self.per_image(image)

    @staticmethod
    def fetch_batch(dataset: Dataset, indices: Sequence[int]) -> list[tuple[Tensor, int]] | None:
        """``[(image, label)]`` of ``indices`` gathered in one index, or ``None`` for another kind of dataset."""
        index = torch.as_tensor(list(indices), dtype=torch.int64)
        while isinstance(dataset, Subset):
            index = torch.as_tensor(dataset.indices, dtype=torch.int64)[index]
            dataset = dataset.dataset
        if not isinstance(dataset, TensorImageDataset):
            return None
        images = dataset.images.index_select(0, index)
        return list(zip(images.unbind(0), dataset.targets[index].tolist(), strict=True))


def loader_transform(policies: Sequence[str], info: DataInfo, same_crop: bool = False) -> Uint8Images | ViewCrops:
    """The loader's transform of ``augment_on: device``: each image as it is, a uint8 tensor (28-32 px datasets),
    or each view's crop and flip as uint8 (ImageNet-size image folders, :mod:`~accord.views.loader_crops`)."""
    return Uint8Images() if info.fixed_size else ViewCrops(policies, info, same_crop)


class BatchedViews(nn.Module):
    """``V`` augmented, normalised views of a batch of un-augmented images, each image drawn on its own.

    Args:
        policies: one policy per view, as the config's ``view_policies`` (``["crop-flip", "crop-flip-cutout"]``).
        info: the dataset's size, channels, mean and std. Small (28-32 px) datasets: the module crops and flips;
            larger ones: the loader did (:class:`~accord.views.loader_crops.ViewCrops`).
        same_crop: draw one crop and flip per image and share it between the views (every view must then use
            the same crop/flip tokens), as :func:`~accord.views.multiview.build_multiview_transform` does.

    Call it on ``(B, C, H, W)`` images (small datasets) or the loader's view-major ``(V*B, C, S, S)`` crops (larger
    ones), uint8 or float in ``[0, 1]``, on the module's device (move the module with ``.to(device)``); it returns
    float32 ``(V*B, C, H, W)``, view-major.
    """

    def __init__(self, policies: Sequence[str], info: DataInfo, same_crop: bool = False) -> None:
        super().__init__()
        if not policies:
            raise ValueError("at least one view policy is needed")
        for policy in policies:
            check_batched_policy(policy, info.image_size)
        parsed = [parse_policy(policy, info.image_size, info.in_chans) for policy in policies]
        if same_crop and any(p.geometry != parsed[0].geometry for p in parsed):
            raise ValueError(f"same_crop needs every view to use the same crop/flip tokens, got {list(policies)}")
        self.info, self.num_views, self.same_crop = info, len(policies), same_crop
        self.cropped_in_loader = not info.fixed_size  # ViewCrops made each view's geometry
        if info.fixed_size and info.train_crop != "pad":
            raise ValueError(f"augment_on: device crops fixed-size images with pad-4 crops; {info.name} asks for "
                             f"{info.train_crop} crops (use augment_on: loader)")  # fmt: skip
        self.register_buffer("mean", torch.tensor(info.mean, dtype=torch.float32).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(info.std, dtype=torch.float32).view(1, -1, 1, 1), persistent=False)
        # views with the same policy are augmented in one call; groups[k] lists the views of pipelines[k]
        distinct = list(dict.fromkeys(parsed))
        self.groups = [[j for j, p in enumerate(parsed) if p == one] for one in distinct]
        on_device = not (same_crop or self.cropped_in_loader)
        self.shared_geometry = self._stage(parsed[0].at("geometry")) if same_crop and info.fixed_size else nn.Identity()
        self.geometry = nn.ModuleList(self._stage(p.at("geometry")) if on_device else nn.Identity() for p in distinct)
        self.operations: list[list[Callable[[Tensor], Tensor]]] = [
            [op.device(info) for op in p.at("uint8")] for p in distinct
        ]
        # the image operations that are modules, registered so that .to(device) moves them with the views
        self.operation_modules = nn.ModuleList(op for ops in self.operations for op in ops if isinstance(op, nn.Module))
        self.before_normalising = nn.ModuleList(self._stage(p.at("float")) for p in distinct)
        self.after_normalising = nn.ModuleList(self._stage(p.at("normalised")) for p in distinct)

    def _stage(self, augmentations: Sequence[Augmentation]) -> nn.Module:
        """The device forms of one stage's augmentations in order, as one module."""
        forms = [a.device(self.info) for a in augmentations]
        modules = [f if isinstance(f, nn.Module) else _Call(f) for f in forms]
        return nn.Sequential(*modules) if modules else nn.Identity()

    def forward(self, images: Tensor) -> Tensor:
        size, chans = self.info.image_size, self.info.in_chans
        rows = f"{self.num_views} views x B" if self.cropped_in_loader else "B"
        if images.dim() != 4 or tuple(images.shape[1:]) != (chans, size, size):
            raise ValueError(f"expected images ({rows}, {chans}, {size}, {size}), got {tuple(images.shape)}")
        if self.cropped_in_loader and images.shape[0] % self.num_views:
            raise ValueError(f"expected the loader's crops ({rows}, ...), got {images.shape[0]} rows")
        if images.device != self.mean.device:
            raise ValueError(f"images are on {images.device} but BatchedViews on {self.mean.device}: call .to(device)")
        batch = images.shape[0] // self.num_views if self.cropped_in_loader else images.shape[0]
        # the geometry moves pixels, so it runs on the uint8 batch as it comes (float input stays float)
        x = self.shared_geometry(images if images.dtype == torch.uint8 else images.float())
        out = torch.empty(self.num_views * batch, chans, size, size, device=x.device)
        for views, geometry, operations, before, after in zip(
            self.groups, self.geometry, self.operations, self.before_normalising, self.after_normalising, strict=True
        ):
            if self.cropped_in_loader:  # the group's views, each its own crops
                group = torch.cat([x[j * batch : (j + 1) * batch] for j in views])
            else:
                group = geometry(x.repeat(len(views), 1, 1, 1))
            if operations:  # uint8 in, uint8 out, as in the loader's pipeline; float input is quantised first
                if group.dtype != torch.uint8:
                    group = group.mul(255.0).round_().to(torch.uint8)
                for operation in operations:
                    group = operation(group)
            if group.dtype == torch.uint8:
                group = group.float().div_(255.0)
            group = after((before(group) - self.mean) / self.std)
            for k, j in enumerate(views):
                out[j * batch : (j + 1) * batch] = group[k * batch : (k + 1) * batch]
        return out

    def extra_repr(self) -> str:
        return f"views={self.num_views}, groups={self.groups}, same_crop={self.same_crop}, operations={self.operations}"


class _Call(nn.Module):
    """A device form that is a plain callable, as a module of a stage's ``nn.Sequential``."""

    def __init__(self, function: Callable[[Tensor], Tensor]) -> None:
        super().__init__()
        self.function = function

    def forward(self, x: Tensor) -> Tensor:
        return self.function(x)

    def extra_repr(self) -> str:
        return repr(self.function)
