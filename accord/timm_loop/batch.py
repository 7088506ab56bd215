"""The check that a batch is what a task's view count says it is, before any row is paired with another.

timm's ``fast_collate`` (and the prefetcher) lays out ``--aug-splits V`` views of ``B`` images view-major and repeats
the ``B`` labels ``V`` times. A task built for 2 views that is handed 3 splits would split the ``3B`` rows in two and
pair the wrong images without a word whenever ``3B`` is even; the repeated labels give it away, since the two halves
of ``[y, y, y]`` are not the same labels.
"""

from __future__ import annotations

from torch import Tensor


def view_major(method: str, input: Tensor, num_views: int) -> Tensor:
    """A ``(B, V, C, H, W)`` batch (torch's default collate of :class:`~accord.timm_loop.MultiViewDataset`'s stacked
    views, timm's ``--no-prefetcher`` path) as the ``(V*B, C, H, W)`` view-major batch; a 4-D batch is returned as
    is."""
    if input.dim() != 5:
        return input
    if input.shape[1] != num_views:
        hint = f"(timm: --aug-splits {num_views})" if num_views > 1 else "(timm: no --aug-splits)"
        raise ValueError(f"{method} takes {num_views} views per image: the batch has {input.shape[1]} {hint}")
    return input.transpose(0, 1).flatten(0, 1)


def check_view_batch(method: str, input: Tensor, target: Tensor, num_views: int, mixed: bool = False) -> None:
    """Raise ``ValueError`` in one line unless ``input`` is ``num_views`` views of ``B`` images and ``target`` holds
    ``B`` rows, or ``num_views * B`` rows whose view blocks are the same targets.

    ``mixed``: the target is the one the task's own view-aware mixer returned for this batch, whose view blocks
    legitimately differ (every view mixed with its own partner); its labels were checked before mixing.
    """
    rows, count = input.shape[0], target.shape[0]
    hint = f"(timm: --aug-splits {num_views})" if num_views > 1 else "(timm: no --aug-splits)"
    if rows % num_views:
        raise ValueError(f"{method} takes {num_views} views per image: {rows} rows do not split into them {hint}")
    batch = rows // num_views
    if count == batch or num_views == 1 and count == rows:
        return
    if count != rows:
        raise ValueError(
            f"{method} takes {num_views} views per image: {count} targets for {rows} rows; expected {batch} "
            f"(one per image) or {rows} (repeated per view) {hint}"
        )
    if mixed:
        return
    blocks = target.reshape(num_views, batch, *target.shape[1:])
    if not bool((blocks == blocks[:1]).all()):
        mixer = "; mix with accord.timm_loop.LoopMixer, not timm's Mixup" if target.is_floating_point() else ""
        raise ValueError(
            f"{method} takes {num_views} views per image: the {num_views} blocks of {batch} targets differ, so the "
            f"batch is not {num_views} views of the same images {hint}{mixer}"
        )
