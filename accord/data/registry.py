"""The registry of data sets: one :class:`DatasetSpec` per name, with its loader and the facts accord needs.

A data set is a name, a loader (``data_dir``, ``image_size`` -> the train and test sets, classes, channels)
and its facts: normalisation, image size, and what the size implies for training and evaluation (the crop,
the AutoAugment policy, the MixUp defaults, the evaluation crop). Config resolution, the loaders, the views,
exports and ``accord predict`` read these facts; nothing else in accord names data sets.
:func:`register` adds one (docs/adding-a-dataset.md).
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, NamedTuple

from torch.utils.data import Dataset

from ..errors import UserError

TrainCrop = Literal["pad", "resized"]  # pad-4 RandomCrop of fixed-size images, or RandomResizedCrop
AutoAugmentPolicy = Literal["cifar10", "imagenet", "svhn"]  # torchvision's AutoAugment policies


@dataclass(frozen=True)
class DatasetFacts:
    """What is known of a data set before loading it."""

    mean: tuple[float, ...]  # normalisation, one value per channel
    std: tuple[float, ...]
    image_size: int  # default side in pixels
    fixed_size: bool  # every image is image_size px and used at that size (no other image_size; eval whole at 1.0)
    train_crop: TrainCrop = "resized"  # what the ``crop`` token of a policy is
    autoaugment: AutoAugmentPolicy = "imagenet"  # the policy of a bare ``autoaug`` token
    crop_pct: float = 0.875  # evaluation crop (timm's crop_pct) when a config leaves it null
    mixup_alpha: float = 0.2  # MixUp's Beta(alpha, alpha) when a config leaves it null (AgMax: 1.0 at 28-32 px)
    cutmix_prob: float = 1.0  # mix_prob of CutMix when a config leaves it null (AgMax: 0.5 at 28-32 px)

    def __post_init__(self) -> None:
        if len(self.mean) != len(self.std) or not self.mean:
            raise ValueError(f"mean and std need one value per channel each, got {self.mean} and {self.std}")
        if not all(math.isfinite(s) and s > 0 for s in self.std):
            raise ValueError(f"std must be positive, got {self.std}")
        if self.image_size < 1:
            raise ValueError(f"image_size must be positive, got {self.image_size}")
        if not 0.0 < self.crop_pct <= 1.0:
            raise ValueError(f"crop_pct must be in (0, 1], got {self.crop_pct}")
        if self.mixup_alpha <= 0 or not 0.0 <= self.cutmix_prob <= 1.0:
            raise ValueError(f"mixup_alpha must be positive and cutmix_prob in [0, 1], got {self}")


class Loaded(NamedTuple):
    """What a loader returns: ``(image, label)`` data sets of uint8 ``(C, H, W)`` images, and their classes."""

    train: Dataset
    test: Dataset  # the reported split: the official test set, or an image folder's val/
    num_classes: int
    in_chans: int
    class_names: Sequence[str] | None = None  # label order; None where the files do not name them


#: ``loader(data_dir, image_size)``: ``data_dir`` is the config's (None: the data set's default place).
Loader = Callable[[Path | None, int | None], Loaded]


@dataclass(frozen=True)
class DatasetSpec:
    """A data set: its config name, loader, facts, and (where known without loading) its class names."""

    name: str
    loader: Loader
    facts: DatasetFacts
    class_names: Callable[[Path | None], Sequence[str] | None] | None = None  # from data_dir, without loading
    val_folder: bool = False  # its test split may select the model (``val_source: folder``)
    label: str = ""  # how run names write it (FashionMNIST-ResNet8-...); the name when empty
    description: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if not self.name.isidentifier():
            raise ValueError(f"data set name {self.name!r}: use letters, digits and _ (it is a config value)")
        if not callable(self.loader):
            raise ValueError(f"data set {self.name!r}: loader must be callable, got {self.loader!r}")
        if not isinstance(self.facts, DatasetFacts):
            raise ValueError(f"data set {self.name!r}: facts must be a DatasetFacts, got {self.facts!r}")


#: Every registered data set, by name (built-ins: :mod:`.builtin`).
REGISTRY: dict[str, DatasetSpec] = {}


def register(spec: DatasetSpec) -> DatasetSpec:
    """Add ``spec`` (a data set of the same name is replaced); returns it."""
    if not isinstance(spec, DatasetSpec):
        raise ValueError(f"register() takes a DatasetSpec, got {spec!r}")
    REGISTRY[spec.name] = spec
    return spec


def dataset_spec(name: str) -> DatasetSpec:
    """The registered data set ``name``; ``ValueError`` naming the valid ones otherwise."""
    if name not in REGISTRY:
        close = difflib.get_close_matches(str(name), list(REGISTRY), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise UserError(f"unknown dataset {name!r}{hint}; valid: {', '.join(REGISTRY)}")
    return REGISTRY[name]


def dataset_names() -> tuple[str, ...]:
    return tuple(REGISTRY)


class _Facts(Mapping[str, DatasetFacts]):
    """The facts of every registered data set by name (a live view of :data:`REGISTRY`)."""

    def __getitem__(self, name: str) -> DatasetFacts:
        return REGISTRY[name].facts  # KeyError for an unknown name, as a mapping's

    def __iter__(self) -> Iterator[str]:
        return iter(REGISTRY)

    def __len__(self) -> int:
        return len(REGISTRY)


DATASET_FACTS: Mapping[str, DatasetFacts] = _Facts()
