"""The one refusal of MixUp/CutMix: a method whose ``MethodSpec.mixing`` is None (AugMix-JSD's loss compares the
views of one clean image) trains on no mixed batch. Config resolution, the run builder and timm's loop call it."""

from __future__ import annotations

from ..errors import UserError
from ..views.mixing import ViewMixing
from .registry import method_spec


def check_mixing(method: str, fix: str) -> ViewMixing:
    """How ``method`` mixes its views (``MethodSpec.mixing``); :class:`~accord.errors.UserError` (one line, ending
    in ``fix``) if it refuses MixUp/CutMix."""
    mixing = method_spec(method).mixing
    if mixing is None:
        raise UserError(f"method {method!r} refuses MixUp/CutMix ({fix})")
    return mixing
