"""The Zarr label store: the segmenter's masks of every frame of a split, which `label` writes
and the masks trainer reads by video id (pseudo-labels for the videos without mask.npy).

Layout of a label store (a Zarr group):

    masks      uint8 (N, T, H, W)  class ids of every frame, one video per chunk, compressed
    video_ids  int64 (N,)          the split's ids in increasing order
    done       bool  (N,)          one chunk per flag: True once masks[i] is written
    attrs      convrnn_store ("labels", written first), segmenter, segmenter_sha256,
               segmenter_config, split, shards, frames, height, width, precision (resolved:
               fp32 | bf16, what `segment.apply.segment_frames` ran in), precision_asked,
               created, complete

A video's masks are written before its flag, so a killed run never marks a video it has not
stored, and a rerun with the same segmenter, precision and split continues where it stopped (a
store made in another precision is refused: its masks would mix two roundings). Only an empty
location or a label store is written (`stores.group.claim_store`): a folder or bucket prefix
that holds anything else is refused, with or without --overwrite.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import zarr
from convrnn_video.stores.errors import StoreError
from convrnn_video.stores.group import OpenStore, identity_diffs, prepare_group

# what a resumed run must match beside the precision (compared apart, with its own message)
IDENTITY = {
    **dict.fromkeys(("segmenter_sha256", "split", "frames", "height", "width")),
    "mask_rule": "argmax",
}  # segment.objects.RULE; before it, the raw argmax


class LabelStore(OpenStore):
    """An open label store; `masks`, `video_ids` and `done` are Zarr arrays."""

    kind = "label store"
    make_hint = "make one with `python cli.py label`"

    def __init__(self, group: zarr.Group, url: str | Path) -> None:
        missing = [name for name in ("masks", "video_ids", "done") if name not in group]
        if missing:
            raise StoreError(f"{url} is not a label store (no {', '.join(missing)}); make one "
                             "with `python cli.py label`")  # fmt: skip
        super().__init__(group, url)
        self.masks = group["masks"]

    def read_ids(self, video_ids: Sequence[int]) -> np.ndarray:
        """uint8 (n, T, H, W) masks of the given videos; every one must be labelled."""
        pos = self.positions(video_ids)
        if not np.all(self.done.get_orthogonal_selection((pos,))):
            raise StoreError(f"{self.url} is incomplete: rerun `python cli.py label` to finish it")
        return np.stack([self.masks[int(p)] for p in pos]) if len(pos) else np.zeros((0,))

    def write(self, positions: np.ndarray, masks: np.ndarray) -> None:
        """Masks (n, T, H, W) uint8 at rows `positions`, then their flags."""
        for p, m in zip(positions, masks, strict=True):
            self.masks[int(p)] = m
        for p in positions:  # after the masks: a crash in between leaves the video undone
            self.done[int(p)] = True

    def finish(self) -> bool:
        complete = bool(np.all(self.done[:]))
        self.group.attrs.update({"complete": complete})
        return complete


def prepare_labels(url: str | Path, attrs: dict[str, Any], ids: np.ndarray, overwrite: bool):
    """Create the store, or reuse one from the same segmenter, precision, split and videos
    (`stores.group.prepare_group`). -> (store, resumed). A location that is not a label store
    is refused (`claim_store`)."""

    def problems(group: zarr.Group) -> list[str]:
        store = LabelStore(group, url)
        old = store.attrs
        diffs = identity_diffs(old, attrs, IDENTITY)
        made, now = old.get("precision"), attrs.get("precision")
        if made != now:  # one store, one precision: its masks would mix two roundings
            diffs.append(
                f"precision: its masks were made in {made}, this run's in {now} (pass "
                f"--precision {made} to resume it)"
                if made
                else f"precision: it does not record the precision of its masks (made before "
                f"label stores recorded it), this run's is {now}"
            )
        if not diffs and not np.array_equal(store.ids(), ids):
            diffs.append(f"video ids: store has {len(store.ids())}, the shards {len(ids)}")
        return diffs

    shape = (attrs["frames"], attrs["height"], attrs["width"])
    group, resumed = prepare_group(url, "labels", attrs=attrs, video_ids=ids,
                                   arrays={"masks": shape}, overwrite=overwrite,
                                   problems=problems)  # fmt: skip
    return LabelStore(group, url), resumed
