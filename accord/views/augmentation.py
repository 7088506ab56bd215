"""What a policy token is: one :class:`Augmentation` subclass, registered under its token's head.

A policy (``crop-flip-randaug_2_14-cutout``) is a ``-``-separated list of tokens; a token's head (the text
before its first ``_``) names a registered class, whose :meth:`~Augmentation.parse` reads the rest into a frozen
dataclass of its options (``randaug_2_14`` -> ``RandAugment(num_ops=2, magnitude=14)``). The class gives both forms
of itself: :meth:`~Augmentation.loader`, a per-image transform for the loader's pipeline (:mod:`.policies`), and
:meth:`~Augmentation.device`, a transform of a whole batch on the training device that draws for every image on
its own (:mod:`.batched`). Its :attr:`~Augmentation.stage` says where in a view's pipeline it runs:

    geometry    on the uint8 image, first (crop, flip); views can share it (``same_crop``)
    uint8       the image operations, uint8 in and uint8 out (randaug, autoaug, jitter, ...)
    float       on the float image in [0, 1], before normalisation (lighting)
    normalised  after normalisation (cutout)

As torchvision v2's ``Transform`` does, an augmentation can be written as two methods: :meth:`~Augmentation.
make_params` draws one set of parameters per image of a batch, :meth:`~Augmentation.transform` applies them. The
base class then makes the device form of them (:class:`Drawn`) and the loader form runs that on a batch of one
(:class:`PerImage`). Tokens whose loader form is torchvision's own override :meth:`~Augmentation.loader` and
:meth:`~Augmentation.device` instead. docs/adding-an-augmentation.md shows a whole one.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable
from typing import Any, ClassVar, Literal, TypeVar

from torch import Tensor, nn

from ..data.datasets import DataInfo

Stage = Literal["geometry", "uint8", "float", "normalised"]
STAGES: tuple[Stage, ...] = typing.get_args(Stage)  # the order a view's pipeline runs them in
_CONVERTERS: dict[Any, Callable[[str], Any]] = {int: int, float: float, str: str}


class Augmentation:
    """A policy token's options (subclasses are frozen dataclasses) and its loader and device transforms.

    Class attributes: ``name``, the token's head (``randaug``); ``form``, its grammar for messages
    (``randaug[_N_M[_pP][_bilinear]]``); ``stage``, where it runs (module docstring); ``sizes``, for geometry
    that brings an image of any size to ``image_size`` (``crop``; a view without one gets the evaluation resize);
    ``colour_only``, for one that needs 3-channel images (policies on other images are refused when built);
    ``slot``, for one a policy holds once: a later token of the same slot replaces an earlier one.
    """

    name: ClassVar[str] = ""
    form: ClassVar[str] = ""
    stage: ClassVar[Stage] = "uint8"
    sizes: ClassVar[bool] = False  # geometry that brings an image of any size to image_size (else the eval resize)
    colour_only: ClassVar[bool] = False  # needs 3-channel images
    slot: ClassVar[str | None] = None  # at most one per policy: a later token of the same slot replaces it

    @classmethod
    def parse(cls, token: str, args: list[str], image_size: int) -> Augmentation:
        """The augmentation of ``token`` (``args``: its ``_``-separated parts after the head) for images of
        ``image_size`` px. By default the arguments are the dataclass's fields in order, all of them or none (the
        defaults), each read as its field's type (int, float or str); a ValueError raised by the class's own
        ``__post_init__`` is reported with the token. Override it for another grammar."""
        fields: list[dataclasses.Field] = (
            [f for f in dataclasses.fields(cls) if f.init] if dataclasses.is_dataclass(cls) else []
        )
        types = typing.get_type_hints(cls)
        if args and len(args) != len(fields):
            raise ValueError(f"{token!r}: expected {cls.form}")
        try:
            values = [_CONVERTERS[types[f.name]](a) for f, a in zip(fields, args, strict=False)]
        except (KeyError, ValueError):
            raise ValueError(f"{token!r}: expected {cls.form}") from None
        try:
            return cls(*values)
        except ValueError as e:
            raise ValueError(f"{token!r}: {e} (form {cls.form})") from None

    def loader(self, info: DataInfo) -> Callable[[Any], Any]:
        """The loader's per-image transform of one ``(C, H, W)`` image (uint8 at the geometry and uint8 stages,
        float after); by default the device form on a batch of one."""
        return PerImage(self.device(info))

    def device(self, info: DataInfo) -> Callable[[Tensor], Tensor]:
        """The transform of a ``(B, C, H, W)`` batch on its device, each image drawn on its own; by default
        :meth:`make_params` then :meth:`transform` (:class:`Drawn`). An ``nn.Module`` moves with the views."""
        return Drawn(self)

    def device_refusal(self) -> str:
        """Why the device path does not make this augmentation (then ``augment_on: loader`` must), or ``""``."""
        return ""

    def make_params(self, images: Tensor) -> dict[str, Any]:
        """One set of parameters per image (row) of ``images``, drawn on the CPU from torch's global generator, so
        that a checkpoint's ``torch.get_rng_state()`` resumes with the same views."""
        raise NotImplementedError(f"{type(self).__name__} defines neither make_params/transform nor loader/device")

    def transform(self, images: Tensor, params: dict[str, Any]) -> Tensor:
        """``images`` with :meth:`make_params`' parameters applied, image ``i`` with row ``i`` of each."""
        raise NotImplementedError(f"{type(self).__name__} defines neither make_params/transform nor loader/device")


class Drawn(nn.Module):
    """The device form made of :meth:`Augmentation.make_params` and :meth:`Augmentation.transform`."""

    def __init__(self, augmentation: Augmentation) -> None:
        super().__init__()
        self.augmentation = augmentation

    def forward(self, images: Tensor) -> Tensor:
        return self.augmentation.transform(images, self.augmentation.make_params(images))

    def extra_repr(self) -> str:
        return repr(self.augmentation)


class PerImage:
    """A batch transform as a loader transform: one ``(C, H, W)`` image in, the same out."""

    def __init__(self, policy: Callable[[Tensor], Tensor]) -> None:
        self.policy = policy

    def __call__(self, image: Tensor) -> Tensor:
        return self.policy(image.as_subclass(Tensor).unsqueeze(0))[0]

    def __repr__(self) -> str:
        return f"PerImage({self.policy!r})"


REGISTRY: dict[str, type[Augmentation]] = {}
"""Every policy token's class by its head, in the order they were registered."""
ALIASES = {"standard": "crop-flip", "none": ""}  # whole tokens that stand for others

A = TypeVar("A", bound=type[Augmentation])


def register(cls: A) -> A:
    """Add ``cls`` to :data:`REGISTRY` under ``cls.name`` (a class decorator); a ValueError for a name that is taken,
    empty, holds ``_`` or ``-``, or a ``form`` that does not start with it, or an unknown ``stage``."""
    name = cls.name
    if not name or "_" in name or "-" in name or name in ALIASES:
        raise ValueError(f"augmentation name {name!r}: a token head without '_' or '-', not {', '.join(ALIASES)}")
    if name in REGISTRY and REGISTRY[name] is not cls:
        raise ValueError(f"augmentation {name!r} is already registered ({REGISTRY[name].__qualname__})")
    if not cls.form.startswith(name) or cls.stage not in STAGES:
        raise ValueError(f"augmentation {name!r}: form must start with its name, stage be one of {STAGES}")
    REGISTRY[name] = cls
    return cls


def unregister(name: str) -> None:
    """Remove the augmentation registered as ``name`` (tests that add one clean up with it)."""
    REGISTRY.pop(name, None)


def parse_numbers(token: str, args: list[str], counts: tuple[int, ...], form: str) -> list[float]:
    """The non-negative numbers of a token such as ``jitter_B_C_S``, as many as one of ``counts``; a ValueError
    naming the token's form otherwise."""
    try:
        values = [float(a) for a in args]
    except ValueError:
        values = [-1.0]
    if len(args) not in counts or not all(0.0 <= v < float("inf") for v in values):
        raise ValueError(f"{token!r}: expected {form} with non-negative numbers")
    return values
