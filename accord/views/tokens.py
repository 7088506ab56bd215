"""The grammar of a view's policy spec, parsed in one place into a typed description.

A spec is a ``-``-separated list of tokens (:mod:`.policies` lists them with examples). :func:`parse_policy` turns it
into a :class:`Policy` whose image operations are typed values with their options and defaults filled in
(:class:`RandAugment`, :class:`AutoAugment`, ...). The loader pipeline (:mod:`.policies`), the device pipeline
(:mod:`.batched`) and config resolution all read that description; none of them reads token text.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

GEOMETRY = ("crop", "flip")
MAX_MAGNITUDE = 30  # RandAugment's magnitude bins are 0..30 (torchvision's 31); the TF scale extrapolates to 30
MAX_OPS = 30  # operations per image: more only multiplies the loader's time
AUGMIX_SEVERITIES = range(1, 11)  # torchvision's AugMix
AUTOAUGMENT_POLICIES = ("imagenet", "cifar10", "svhn")
CUTOUTS = ("cutout", "ccutout")
TOKENS = (
    "crop, flip, standard, none, randaug[_N_M[_pP][_bilinear]], tfrandaug[_N_M[_pP]], "
    "autoaug[_agmax][_imagenet|_cifar10|_svhn], trivialaug, augmix[_S], jitter[_B_C_S], lighting[_STD], cutout[_L], "
    "ccutout[_L]"
)


@dataclass(frozen=True)
class RandAugment:
    """torchvision's RandAugment(num_ops, magnitude of 31 bins), applied as a whole with probability ``p``."""

    num_ops: int = 2
    magnitude: int = 9
    p: float = 1.0
    bilinear: bool = False  # nearest (torchvision's default) or bilinear interpolation


@dataclass(frozen=True)
class TFRandAugment:
    """TensorFlow's reference RandAugment(N, M) on its 0-10 level scale (:mod:`.author_policies`), each layer with
    probability ``p``."""

    num_ops: int = 2
    magnitude: int = 9
    p: float = 1.0


@dataclass(frozen=True)
class AutoAugment:
    """AutoAugment with a learned policy (``None``: the data set's, ``DatasetFacts.autoaugment``: CIFAR-10's for
    28-32 px images, ImageNet's otherwise); ``agmax``: the AgMax authors' own version (:mod:`.author_policies`)."""

    policy: str | None = None
    agmax: bool = False

    def policy_for(self, default: str) -> str:
        """The token's own policy, else ``default`` (the data set's)."""
        return self.policy or default


@dataclass(frozen=True)
class TrivialAugment:
    """torchvision's TrivialAugmentWide."""


@dataclass(frozen=True)
class AugMix:
    """torchvision's AugMix at ``severity`` (1-10)."""

    severity: int = 3


@dataclass(frozen=True)
class ColorJitter:
    """torchvision's ColorJitter(brightness, contrast, saturation)."""

    brightness: float = 0.4
    contrast: float = 0.4
    saturation: float = 0.4


Operation = RandAugment | TFRandAugment | AutoAugment | TrivialAugment | AugMix | ColorJitter


@dataclass(frozen=True)
class Policy:
    """A parsed spec: its geometric part and the rest, kept apart so views can share a crop."""

    geometry: tuple[str, ...]
    operations: tuple[Operation, ...]
    cutout: int | None  # side in px, or None
    clip_cutout: bool = False  # the authors' CutOut, clipped at the border
    lighting: float | None = None  # PCA lighting std, on the float image before normalisation


def parse_policy(spec: str, image_size: int) -> Policy:
    """The :class:`Policy` of ``spec`` for images of ``image_size`` px (CutOut's default side is half of it); a
    ValueError naming the token and its form for anything else."""
    geometry: list[str] = []
    operations: list[Operation] = []
    cutout, clip, lighting = None, False, None
    for token in (t for t in spec.replace("standard", "crop-flip").split("-") if t and t != "none"):
        head, *args = token.split("_")
        if token in GEOMETRY:
            geometry.append(token)
        elif head == "lighting":
            values = _numbers(token, args, (0, 1), "lighting[_STD]")
            lighting = values[0] if values else 0.1
        elif head in CUTOUTS:
            if len(args) > 1 or (args and not args[0].isdigit()):
                raise ValueError(f"policy {spec!r}: expected {head} or {head}_L with L a side in pixels, got {token!r}")
            clip = head == "ccutout"
            cutout = int(args[0]) if args else image_size // 2
            if not 0 < cutout < image_size:  # RandomErasing cannot erase the whole image
                raise ValueError(f"policy {spec!r}: cutout side must be in 1..{image_size - 1}, got {cutout}")
        elif head in _OPERATIONS:
            operations.append(parse_operation(token))
        else:
            raise ValueError(f"policy {spec!r}: unknown token {token!r}; valid tokens: {TOKENS}")
    return Policy(tuple(geometry), tuple(operations), cutout, clip, lighting)


def parse_operation(token: str) -> Operation:
    """The image operation of one token (``randaug_2_14``, ``autoaug_agmax_svhn``, ``jitter_0.4_0.4_0.4``, ...)."""
    head, *args = token.split("_")
    if head not in _OPERATIONS:
        raise ValueError(f"{token!r} is not an image operation; valid tokens: {TOKENS}")
    return _OPERATIONS[head](token, args)


def is_operation(token: str) -> bool:
    """Whether ``token`` names an image operation (one :func:`parse_operation` reads)."""
    return token.split("_")[0] in _OPERATIONS


def is_cutout(token: str) -> bool:
    """Whether ``token`` is a CutOut, clipped (``ccutout[_L]``) or not (``cutout[_L]``)."""
    return token.split("_")[0] in CUTOUTS


def clip_cutouts(spec: str) -> str:
    """``spec`` with every ``cutout[_L]`` made the authors' clipped ``ccutout[_L]``."""
    return "-".join("c" + t if t.split("_")[0] == "cutout" else t for t in spec.split("-"))


def _with_probability(token: str, args: list[str], form: str) -> tuple[int, int, float]:
    """``N_M[_pP]`` -> (N, M, P); (2, 9, 1.0) without arguments."""
    p = 1.0
    if len(args) == 3 and args[2].startswith("p"):
        try:
            p = float(args[2][1:])
        except ValueError:
            p = -1.0
        args = args[:2]
    n, m = (int(a) for a in args) if len(args) == 2 and all(a.isdigit() for a in args) else (-1, -1)
    if args and not (0 <= n <= MAX_OPS and 0 <= m <= MAX_MAGNITUDE) or len(args) not in (0, 2) or not 0 <= p <= 1:
        raise ValueError(f"{token!r}: expected {form} with N in 0..{MAX_OPS}, M in 0..{MAX_MAGNITUDE} and P in [0, 1]")
    return (n, m, p) if args else (2, 9, p)


def _randaug(token: str, args: list[str]) -> RandAugment:
    bilinear = bool(args) and args[-1] == "bilinear"
    return RandAugment(*_with_probability(token, args[:-1] if bilinear else args, TOKEN_FORMS["randaug"]), bilinear)


def _tfrandaug(token: str, args: list[str]) -> TFRandAugment:
    return TFRandAugment(*_with_probability(token, args, TOKEN_FORMS["tfrandaug"]))


def _autoaug(token: str, args: list[str]) -> AutoAugment:
    agmax = bool(args) and args[0] == "agmax"
    args = args[1:] if agmax else args
    if len(args) > 1 or (args and args[0] not in AUTOAUGMENT_POLICIES):
        raise ValueError(
            f"{token!r}: expected {TOKEN_FORMS['autoaug']} "
            f"(AutoAugment policy one of {', '.join(AUTOAUGMENT_POLICIES)})"
        )
    return AutoAugment(args[0] if args else None, agmax)


def _trivialaug(token: str, args: list[str]) -> TrivialAugment:
    if args:
        raise ValueError(f"{token!r}: expected {TOKEN_FORMS['trivialaug']}")
    return TrivialAugment()


def _augmix(token: str, args: list[str]) -> AugMix:
    if len(args) > 1 or not all(a.isdigit() and int(a) in AUGMIX_SEVERITIES for a in args):
        raise ValueError(f"{token!r}: expected {TOKEN_FORMS['augmix']} with S in 1..10")
    return AugMix(int(args[0]) if args else 3)


def _jitter(token: str, args: list[str]) -> ColorJitter:
    return ColorJitter(*_numbers(token, args, (0, 3), TOKEN_FORMS["jitter"]))


def _numbers(token: str, args: list[str], counts: tuple[int, ...], form: str) -> list[float]:
    """The non-negative numbers of ``jitter_B_C_S`` / ``lighting_STD``; ValueError naming the token's form."""
    try:
        values = [float(a) for a in args]
    except ValueError:
        values = [-1.0]
    if len(args) not in counts or not all(0.0 <= v < float("inf") for v in values):
        raise ValueError(f"{token!r}: expected {form} with non-negative numbers")
    return values


TOKEN_FORMS = {
    "randaug": "randaug[_N_M[_pP][_bilinear]]",
    "tfrandaug": "tfrandaug[_N_M[_pP]]",
    "autoaug": "autoaug[_agmax][_imagenet|_cifar10|_svhn]",
    "trivialaug": "trivialaug",
    "augmix": "augmix[_S]",
    "jitter": "jitter[_B_C_S]",
}
_OPERATIONS: dict[str, Callable[[str, list[str]], Operation]] = {
    "randaug": _randaug,
    "tfrandaug": _tfrandaug,
    "autoaug": _autoaug,
    "trivialaug": _trivialaug,
    "augmix": _augmix,
    "jitter": _jitter,
}
