"""How many pixels accord decodes of an image, and makes of it: one bound for every image path.

An image folder's file is refused (skipped and named like an unreadable one) when it has more than
:data:`MAX_PIXELS` pixels, or when the largest image a pipeline makes of it would: the evaluation resize, which
gives the short side ``floor(image_size / crop_pct)`` before the centre crop, as timm's (a view without a crop
token, and the loader's crops of device views, start with it too; a random resized crop makes ``image_size``
squared). A 1x300000 strip
is 300 kilopixels and a few hundred bytes, and 256 x 76.8 million pixels resized.
"""

from __future__ import annotations

import math

#: Images with more pixels than this are not decoded (a 144-megapixel PNG takes 2.3 GB to decode), nor are those
#: that a pipeline would make into more; about 67 megapixels, more than any photo in a classification data set.
MAX_PIXELS = 64 * 2**20

#: timm's ``DEFAULT_CROP_PCT``: the evaluation crop of image folders unless a config sets ``crop_pct``.
DEFAULT_CROP_PCT = 0.875

#: The largest evaluation resize (short side) of a square image that stays within :data:`MAX_PIXELS` (8192): the
#: bound of ``floor(image_size / crop_pct)``, so of ``image_size`` at ``crop_pct`` 1.0.
MAX_RESIZE_SIDE = math.isqrt(MAX_PIXELS)


def eval_resize_side(image_size: int, crop_pct: float = DEFAULT_CROP_PCT) -> int:
    """The short side the evaluation resize gives every image: ``floor(image_size / crop_pct)``, rounded down as
    timm does (:func:`accord.views.eval_crop.eval_geometry`)."""
    if not 0.0 < crop_pct <= 1.0:
        raise ValueError(f"crop_pct must be in (0, 1], got {crop_pct}")
    return math.floor(image_size / crop_pct)


def pixel_excess(width: int, height: int, resize_side: int | None = None) -> str | None:
    """Why a ``width`` x ``height`` image is refused, or None: it has more than :data:`MAX_PIXELS` pixels, or
    resizing its short side to ``resize_side`` (torchvision's ``Resize(int)``) would make more."""
    if width * height > MAX_PIXELS:
        return f"{width}x{height} pixels, more than the {MAX_PIXELS / 1e6:.0f} megapixels accord decodes"
    if resize_side is None or min(width, height) < 1:
        return None
    short, long = sorted((width, height))
    made = (resize_side, int(resize_side * long / short))
    if made[0] * made[1] <= MAX_PIXELS:
        return None
    shape = f"{made[1]}x{made[0]}" if width > height else f"{made[0]}x{made[1]}"
    return (
        f"{width}x{height} pixels: its short side resized to {resize_side} px makes {shape}, more than the "
        f"{MAX_PIXELS / 1e6:.0f} megapixels accord makes of one image"
    )
