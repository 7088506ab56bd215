"""The grammar of a view's policy, parsed in one place into a typed description.

A policy is a ``-``-separated list of tokens (:mod:`.policies` lists them with examples): the aliases ``standard``
(``crop-flip``) and ``none`` (nothing), and one token per registered :class:`~.augmentation.Augmentation`, whose
head (the text before the first ``_``) names its class in :data:`~.augmentation.REGISTRY`. :func:`parse_policy`
turns a policy into a :class:`Policy` of those typed values with their options and defaults filled in
(:class:`RandAugment`, :class:`AutoAugment`, ...). The loader pipeline (:mod:`.policies`), the device pipeline
(:mod:`.batched`) and config resolution all read that description; none of them reads token text.
"""

from __future__ import annotations

from dataclasses import dataclass

from .augmentation import ALIASES, REGISTRY, STAGES, Augmentation, Stage
from .image_operations import AugMix, AutoAugment, ColorJitter, RandAugment, TFRandAugment, TrivialAugment
from .pipeline_steps import CutOut, PCALighting, clip_cutouts

__all__ = [
    "AugMix",
    "AutoAugment",
    "ColorJitter",
    "CutOut",
    "PCALighting",
    "Policy",
    "RandAugment",
    "TFRandAugment",
    "TrivialAugment",
    "clip_cutouts",
    "is_cutout",
    "is_operation",
    "parse_operation",
    "parse_policy",
    "policy_tokens",
    "valid_tokens",
]


def valid_tokens() -> str:
    """Every token's form, for messages: the geometry first, then the aliases, then the rest in pipeline order."""
    forms = {stage: [cls.form for cls in REGISTRY.values() if cls.stage == stage] for stage in STAGES}
    return ", ".join([*forms["geometry"], *ALIASES, *(f for stage in STAGES[1:] for f in forms[stage])])


@dataclass(frozen=True)
class Policy:
    """A parsed policy: its augmentations in the order written; each stage's in :meth:`at`, so that views can share
    their geometry."""

    augmentations: tuple[Augmentation, ...]

    def at(self, stage: Stage) -> tuple[Augmentation, ...]:
        """The augmentations of ``stage``, in the order written."""
        return tuple(a for a in self.augmentations if a.stage == stage)

    @property
    def geometry(self) -> tuple[str, ...]:
        """The geometry tokens' names (``("crop", "flip")``)."""
        return tuple(a.name for a in self.at("geometry"))

    @property
    def operations(self) -> tuple[Augmentation, ...]:
        """The image operations (uint8 stage)."""
        return self.at("uint8")

    @property
    def cutout(self) -> int | None:
        """The side in px of its (last) CutOut, clipped or not; None without one."""
        return next((a.length for a in reversed(self.augmentations) if isinstance(a, CutOut)), None)

    @property
    def lighting(self) -> float | None:
        """The std of its (last) PCA lighting; None without one."""
        return next((a.std for a in reversed(self.augmentations) if isinstance(a, PCALighting)), None)


def policy_tokens(policy: str) -> list[str]:
    """The tokens of ``policy`` with the aliases written out (``standard-cutout`` -> crop, flip, cutout)."""
    tokens = [t for t in policy.split("-") if t]
    return [part for t in tokens for part in (ALIASES[t].split("-") if t in ALIASES else [t]) if part]


def parse_token(token: str, image_size: int) -> Augmentation:
    """The augmentation of one token (not an alias); a ValueError naming it and the valid tokens otherwise."""
    head, *args = token.split("_")
    if head not in REGISTRY:
        raise ValueError(f"unknown token {token!r}; valid tokens: {valid_tokens()}")
    return REGISTRY[head].parse(token, args, image_size)


def parse_policy(policy: str, image_size: int, channels: int | None = None) -> Policy:
    """The :class:`Policy` of ``policy`` for images of ``image_size`` px (CutOut's default side is half of it) and,
    when given, ``channels`` channels; a ValueError naming the policy, the token and its form for anything else,
    and the token for a colour-only one (``colour_only``) on images without 3 channels. Of the tokens of one
    ``slot`` (``lighting``; ``cutout`` and ``ccutout``) the last written counts."""
    augmentations: list[Augmentation] = []
    for token in policy_tokens(policy):
        try:
            augmentation = parse_token(token, image_size)
        except ValueError as e:
            raise ValueError(f"policy {policy!r}: {e}") from None
        if augmentation.slot is not None:  # the last of a slot's tokens counts
            augmentations = [a for a in augmentations if a.slot != augmentation.slot]
        augmentations.append(augmentation)
    parsed = Policy(tuple(augmentations))
    for augmentation in parsed.augmentations:
        if augmentation.colour_only and channels not in (None, 3):
            raise ValueError(
                f"policy {policy!r}: {augmentation.name} needs colour (3-channel) images; these have {channels}"
            )
    return parsed


def parse_operation(token: str) -> Augmentation:
    """The image operation of one token (``randaug_2_14``, ``autoaug_agmax_svhn``, ``jitter_0.4_0.4_0.4``, ...)."""
    if not is_operation(token):
        raise ValueError(f"{token!r} is not an image operation; valid tokens: {valid_tokens()}")
    return parse_token(token, image_size=0)


def is_operation(token: str) -> bool:
    """Whether ``token`` names an image operation (one :func:`parse_operation` reads)."""
    cls = REGISTRY.get(token.split("_")[0])
    return cls is not None and cls.stage == "uint8"


def is_cutout(token: str) -> bool:
    """Whether ``token`` is a CutOut, clipped (``ccutout[_L]``) or not (``cutout[_L]``)."""
    cls = REGISTRY.get(token.split("_")[0])
    return cls is not None and issubclass(cls, CutOut)
