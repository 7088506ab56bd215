"""The registry of methods: one :class:`MethodSpec` per method, read by every part of accord.

A method is a loss module plus the facts around it: how many views it needs, how MixUp/CutMix treats
its views (:mod:`accord.views.mixing`), its name in reports. The loss factory, config resolution,
``accord compare``, ``accord grid``, ``accord report`` and ``accord bench`` all read this registry, so
adding a method is one loss module, one :func:`register` call and one YAML fragment in
``accord/configs/methods/`` (docs/adding-a-method.md walks through an example).
"""

from __future__ import annotations

import difflib
import inspect
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, cast, get_args

from torch import nn

from ..domains import Range
from ..models.multiview import BnMode
from ..views.mixing import ViewMixing
from .agmax import AgMaxLoss
from .agreement import AgreementLoss
from .classification import LabelSmoothingCrossEntropy, ViewCrossEntropy
from .jsd import JsdLoss
from .tied import TiedAugmentLoss

MethodKind = Literal["baseline", "agreement", "control"]
METHOD_KINDS: tuple[str, ...] = get_args(MethodKind)

#: Constructor arguments that accord fills from the run, never from the config's ``loss`` options.
RUN_ARGUMENTS = ("num_classes", "num_views", "num_splits")
#: The names a loss constructor gives its label smoothing: torch's, then timm's.
SMOOTHING_OPTIONS = ("label_smoothing", "smoothing")


class ScheduledLoss(Protocol):
    """A loss whose weights follow a schedule over training (``MethodSpec.progress``)."""

    def set_progress(self, progress: float) -> None: ...


@dataclass(frozen=True)
class MethodSpec:
    """Everything accord knows about one method that its loss class does not say itself.

    ``loss`` is built as ``loss(**fixed, **options)`` plus whichever of :data:`RUN_ARGUMENTS` its constructor
    takes (``num_splits`` is the number of views, as in timm's ``JsdCrossEntropy``); every option's default is
    the constructor's. ``views`` is the number of views the method needs (``None``: any, one by default);
    ``mixing`` is ``each`` (every view mixed with its own lambda and partner), ``first`` (Tied-Augment: view 1
    only, view 2's features mixed alike, so the loss takes ``feature_mix=``) or ``None`` (MixUp/CutMix refused,
    the default: a method is paired with the mixing configs only when it says how). ``bn``: how the authors'
    step runs BatchNorm over the views (``separate`` for Tied-Augment: one forward pass per view), what a timm
    task uses unless told otherwise.

    Read from the loss class, never restated here: :attr:`progress` (it has ``set_progress(t)``),
    :meth:`smoothing_option` (its label-smoothing option), :attr:`takes_feature_mix` (its ``forward`` takes
    ``feature_mix=``) and :attr:`clean_first` (its ``CLEAN_FIRST``: view 1 is the clean image).

    How reports treat it: ``kind`` is ``baseline`` (the one method every other is measured against, the
    config's default), ``agreement`` (a method with an agreement term between views: compared with each
    control as well) or ``control`` (another way to spend the same budget, e.g. label smoothing). ``bench``:
    ``accord bench`` times its training step against the baseline's on as many images (one method per loss
    family, so the ablations are left out). ``featured``: ``accord compare`` and ``accord grid`` run it beside
    the baseline when no ``--methods`` is given (``compare`` the agreement methods only).

    Presentation, read by the report layer only; a new method needs none of it: ``label`` (its name in
    tables and figures; default the name), ``note`` (what a control stands for, in a report's sentence;
    default the label) and ``colour`` (its matplotlib colour in every figure; ``None``: the next free one).
    """

    name: str
    loss: type[nn.Module]
    label: str = ""  # the method's name in reports ("" : its name)
    views: int | None = None
    mixing: ViewMixing | None = None
    fixed: Mapping[str, Any] = field(default_factory=dict)  # constructor arguments that define the method
    bn: BnMode = "concat"  # how BatchNorm sees the views in the authors' step (``MultiViewModel``'s bn_mode)
    kind: MethodKind = "agreement"
    bench: bool = False
    featured: bool = False  # run by ``accord compare`` (agreement) and ``accord grid`` (any kind) without --methods
    note: str = ""  # what a control stands for, in a report's sentence ("": its label)
    colour: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in METHOD_KINDS:
            raise ValueError(f"method {self.name!r}: unknown kind {self.kind!r}; valid: {', '.join(METHOD_KINDS)}")
        if self.mixing not in (*get_args(ViewMixing), None):
            valid = ", ".join(get_args(ViewMixing))
            raise ValueError(f"method {self.name!r}: unknown mixing {self.mixing!r}; valid: {valid}, None")
        if self.mixing == "first" and not self.takes_feature_mix:
            raise ValueError(
                f"method {self.name!r}: mixing 'first' hands the loss feature_mix=, which "
                f"{self.loss.__name__}.forward does not take"
            )
        object.__setattr__(self, "label", self.label or self.name)
        object.__setattr__(self, "note", self.note or self.label)

    @property
    def takes_feature_mix(self) -> bool:
        """Whether the loss's ``forward`` takes ``feature_mix=`` (the mixed-feature target of ``first`` mixing)."""
        return "feature_mix" in inspect.signature(self.loss.forward).parameters

    @property
    def progress(self) -> bool:
        """Whether the loss follows a weight schedule over training: it has ``set_progress(t)``."""
        return callable(getattr(self.loss, "set_progress", None))

    @property
    def clean_first(self) -> bool:
        """Whether view 1 is the clean image and the others its augmentations (the loss's ``CLEAN_FIRST``,
        AugMix's JSD: timm's ``AugMixDataset`` layout); otherwise every view is its own draw."""
        return bool(getattr(self.loss, "CLEAN_FIRST", False))

    def smoothing_option(self) -> str | None:
        """The loss option that takes label smoothing (timm's ``--smoothing``): torch's ``label_smoothing`` or
        timm's ``smoothing``, whichever the loss constructor takes; ``None`` if neither."""
        return next((name for name in SMOOTHING_OPTIONS if name in self.options()), None)

    def set_progress(self, loss: nn.Module, progress: float) -> None:
        """Give this method's ``loss`` the training progress in [0, 1]; a no-op unless the loss has a schedule."""
        if self.progress:
            cast(ScheduledLoss, loss).set_progress(progress)

    def default_views(self) -> int:
        """The number of views when none is asked for: the method's own, else one."""
        return self.views or 1

    def option_defaults(self) -> dict[str, Any]:
        """The default of each loss option with one: the loss constructor's, the one source of every default."""
        params = inspect.signature(self.loss).parameters
        return {n: params[n].default for n in self.options() if params[n].default is not inspect.Parameter.empty}

    def options(self) -> list[str]:
        """The loss options a config may set (``loss: {...}``)."""
        params = inspect.signature(self.loss).parameters
        return [p for p in params if p not in RUN_ARGUMENTS and p not in self.fixed and p != "self"]

    def option_types(self) -> dict[str, Any]:
        """The declared type of each loss option: the annotation of the loss constructor's parameter."""
        hints = typing.get_type_hints(self.loss.__init__)
        return {name: hints.get(name, Any) for name in self.options()}

    def option_domains(self) -> dict[str, Range]:
        """The range of each numeric loss option, as the loss class declares it (``OPTION_DOMAINS``)."""
        declared: dict[str, Range] = getattr(self.loss, "OPTION_DOMAINS", {})
        return {name: declared[name] for name in self.options() if name in declared}

    def check_options(self, options: Mapping[str, Any]) -> None:
        """Raise ``ValueError`` naming the valid options if ``options`` has a name the loss does not take."""
        valid = self.options()
        for key in options:
            if key not in valid:
                close = difflib.get_close_matches(key, valid, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise ValueError(
                    f"method {self.name!r} has no loss option {key!r}{hint}; valid: {', '.join(valid) or 'none'}"
                )

    def check_views(self, num_views: int) -> None:
        if self.views is not None and num_views != self.views:
            raise ValueError(f"method {self.name!r} needs {self.views} views, got {num_views}")

    def build_loss(self, num_classes: int, num_views: int, **options: Any) -> nn.Module:
        """The method's loss for ``num_classes`` classes and ``num_views`` views."""
        self.check_views(num_views)
        self.check_options(options)
        params = inspect.signature(self.loss).parameters
        run = {"num_classes": num_classes, "num_views": num_views, "num_splits": num_views}
        args = {k: v for k, v in run.items() if k in params} | dict(self.fixed) | options
        return self.loss(**args)


#: Every method by name, in the order reports list them.
METHODS: dict[str, MethodSpec] = {}


def register(spec: MethodSpec) -> MethodSpec:
    """Add ``spec`` to :data:`METHODS` (a method of the same name is replaced)."""
    METHODS[spec.name] = spec
    return spec


def method_spec(name: str) -> MethodSpec:
    """The registered method ``name``; ``ValueError`` naming the valid ones otherwise."""
    if name not in METHODS:
        close = difflib.get_close_matches(name, list(METHODS), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(f"unknown method {name!r}{hint}; valid: {', '.join(METHODS)}")
    return METHODS[name]


def method_of_loss(loss: type[nn.Module]) -> MethodSpec:
    """The registered method whose loss is the class ``loss`` with nothing fixed (``AgMaxLoss``: AgMax); a
    ``ValueError`` unless exactly one is."""
    found = [s for s in METHODS.values() if s.loss is loss and not s.fixed]
    if len(found) != 1:
        names = ", ".join(s.name for s in found) or "none"
        raise ValueError(f"{loss.__name__}: needs exactly one registered method with nothing fixed, found {names}")
    return found[0]


def baseline_method() -> str:
    """The name of the registered ``baseline`` method (the one the reports measure gains against)."""
    names = [s.name for s in METHODS.values() if s.kind == "baseline"]
    if len(names) != 1:
        raise RuntimeError(f"the registry needs exactly one baseline method, has {names or 'none'}")
    return names[0]


def featured_methods(*kinds: MethodKind) -> list[str]:
    """The baseline, then the ``featured`` methods of ``kinds`` (every kind when none is given), in registry order:
    what ``accord compare`` and ``accord grid`` run when no ``--methods`` is given."""
    base = baseline_method()
    return [base, *(n for n, s in METHODS.items() if s.featured and n != base and (not kinds or s.kind in kinds))]


def create_loss(method: str, num_classes: int, num_views: int, **options: Any) -> nn.Module:
    """Build the loss of ``method`` for ``num_views`` views; ``options`` go to its constructor."""
    return method_spec(method).build_loss(num_classes, num_views, **options)


for _spec in (
    MethodSpec("ce", ViewCrossEntropy, "baseline", mixing="each", kind="baseline", colour="C0"),
    MethodSpec(
        "ls", LabelSmoothingCrossEntropy, "label smoothing", mixing="each", kind="control", featured=True,
        note="label smoothing (another regulariser)", colour="C1",
    ),
    MethodSpec("agmax", AgMaxLoss, "AgMax", views=2, mixing="each", colour="C2", bench=True, featured=True),
    MethodSpec("agmax-mse", AgreementLoss, views=2, mixing="each", fixed={"term": "mse"}),
    MethodSpec("agmax-kl", AgreementLoss, views=2, mixing="each", fixed={"term": "kl"}),
    MethodSpec("agmax-ce", AgreementLoss, views=2, mixing="each", fixed={"term": "ce"}),
    # bn: the authors run one pass per view (ekurtulus/tied-augment pytorch/supervised/train.py#L20-L30)
    MethodSpec(
        "tied", TiedAugmentLoss, "Tied-Augment", views=2, mixing="first", bn="separate", colour="C3", bench=True,
        featured=True,
    ),
    MethodSpec("jsd", JsdLoss, "AugMix-JSD", views=3, bench=True),
    MethodSpec(
        "ce2", ViewCrossEntropy, "two-view CE", views=2, mixing="each", kind="control",
        note="two-view CE (as many augmented images, no agreement term)", colour="C4",
    ),
):  # fmt: skip
    register(_spec)
