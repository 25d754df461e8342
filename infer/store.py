"""The Zarr (v3) store of predictions: layout, creation, resume checks, chunk-safe writes.

Layout of a store (a Zarr group):

    frames     uint8 (N, T_out, 160, 240, 3)  one video per chunk, zstd-compressed
    video_ids  int64 (N,)                     ids in increasing order, as in the manifest
    done       bool  (N,)                     one chunk per element: True once frames[i] is written
    attrs      ckpt_sha256, ckpt, model_config, split, frames_in, frames_out, first_frame,
               created, version, shards, complete

A video's frames chunk is written before its `done` flag, so a killed run never marks a video
it has not stored. Every chunk has one writer (the rank that predicts that video), so ranks
never clobber each other; only rank 0 writes the attributes.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import zarr
from zarr.errors import GroupNotFoundError

from infer.errors import InferError

ARRAYS = ("frames", "video_ids", "done")
# what a resumed run must match
IDENTITY = ("ckpt_sha256", "split", "frames_in", "frames_out", "precision")


def store_location(url: str | Path) -> str | Path:
    """A local Path for plain paths and file:// URLs; other fsspec URLs are passed to Zarr as is."""
    text = str(url)
    if text.startswith("file://"):
        return Path(text[len("file://") :])
    if "://" in text:
        return text
    return Path(text)


def _open_group(url: str | Path, mode: str) -> zarr.Group | None:
    """The group at `url`, or None when nothing is there."""
    location = store_location(url)
    if isinstance(location, Path) and not location.exists():
        return None
    try:
        return zarr.open_group(location, mode=mode)
    except (GroupNotFoundError, FileNotFoundError):
        return None


class PredStore:
    """An open prediction store; `frames`, `video_ids`, `done` are Zarr arrays."""

    def __init__(self, group: zarr.Group, url: str | Path) -> None:
        missing = [name for name in ARRAYS if name not in group]
        if missing:
            raise InferError(
                f"{url} is a Zarr group but not a prediction store "
                f"(no {', '.join(missing)}); point --preds at a store from predict"
            )
        self.group, self.url = group, str(url)
        self.frames, self.video_ids, self.done = group["frames"], group["video_ids"], group["done"]

    @classmethod
    def open(cls, url: str | Path, mode: str = "r") -> PredStore:
        """Open an existing store (mode "r" to read, "r+" to write chunks)."""
        group = _open_group(url, mode)
        if group is None:
            raise InferError(f"no prediction store at {url}; run `python cli.py predict` first")
        return cls(group, url)

    # --- reading -------------------------------------------------------------------------------

    @property
    def attrs(self) -> dict[str, Any]:
        return dict(self.group.attrs)

    def __len__(self) -> int:
        return int(self.video_ids.shape[0])

    def ids(self) -> np.ndarray:
        return np.asarray(self.video_ids[:], dtype=np.int64)

    def done_mask(self) -> np.ndarray:
        return np.asarray(self.done[:], dtype=bool)

    def positions(self, video_ids: Sequence[int]) -> np.ndarray:
        """Row of each id in the store (ids are sorted, so a binary search)."""
        ids = self.ids()
        wanted = np.asarray(video_ids, dtype=np.int64)
        pos = np.searchsorted(ids, wanted)
        bad = [int(v) for v, p in zip(wanted, pos, strict=True) if p >= len(ids) or ids[p] != v]
        if bad:
            raise InferError(
                f"video(s) {', '.join(f'video_{v}' for v in bad[:5])} are not in "
                f"{self.url} (split {self.attrs.get('split')!r}, {len(ids)} videos)"
            )
        return pos

    def read(self, positions: Sequence[int]) -> np.ndarray:
        """uint8 (B, T_out, H, W, 3) frames of the given rows."""
        pos = np.asarray(positions, dtype=np.int64)
        if len(pos) and np.all(np.diff(pos) == 1):
            return self.frames[int(pos[0]) : int(pos[-1]) + 1]
        return self.frames.get_orthogonal_selection((pos,))

    # --- writing -------------------------------------------------------------------------------

    def write(self, positions: Sequence[int], frames: np.ndarray) -> None:
        """Store frames (B, T_out, H, W, 3) uint8 at rows `positions`, then mark them done."""
        pos = np.asarray(positions, dtype=np.int64)
        if len(pos) == 0:
            return
        if np.all(np.diff(pos) == 1):
            rows = slice(int(pos[0]), int(pos[-1]) + 1)
            self.frames[rows] = frames
            self.done[rows] = True  # after the frames: a crash in between leaves it undone
        else:
            self.frames.set_orthogonal_selection((pos,), frames)
            self.done.set_orthogonal_selection((pos,), np.ones(len(pos), dtype=bool))

    def finish(self) -> bool:
        """Record whether every video is done (rank 0 only); returns that flag."""
        complete = bool(self.done_mask().all())
        self.group.attrs.update(
            {"complete": complete, "finished": datetime.now(UTC).isoformat(timespec="seconds")}
        )
        return complete


def prepare_store(
    url: str | Path,
    *,
    attrs: dict[str, Any],
    video_ids: Sequence[int],
    frame_shape: tuple[int, int, int, int],
    overwrite: bool,
) -> tuple[PredStore, bool]:
    """Create the store, or reuse an existing one made by the same checkpoint on the same split.

    `frame_shape` is (T_out, H, W, 3). Returns (store, resumed). A store from another checkpoint,
    split or video set is refused unless `overwrite`.
    """
    ids = np.asarray(video_ids, dtype=np.int64)
    location = store_location(url)
    existing = _open_group(url, "r+")
    if existing is not None and not overwrite:
        store = PredStore(existing, url)
        old = store.attrs
        diffs = [
            f"{k}: store has {old.get(k)!r}, this run {attrs.get(k)!r}"
            for k in IDENTITY
            if old.get(k) != attrs.get(k)
        ]
        if not diffs and (len(store) != len(ids) or not np.array_equal(store.ids(), ids)):
            diffs.append(f"video ids: store has {len(store)} videos, the shards {len(ids)}")
        if not diffs and tuple(store.frames.shape[1:]) != tuple(frame_shape):
            diffs.append(f"frame shape: store {store.frames.shape[1:]}, model {frame_shape}")
        if diffs:
            raise InferError(
                f"{url} holds predictions of another run ({'; '.join(diffs)}); "
                "pass --overwrite to replace it or choose another --out"
            )
        return store, True
    local = existing is None and isinstance(location, Path) and location.exists()
    if local and (location.is_file() or any(location.iterdir())):
        raise InferError(
            f"{location} exists and is not a Zarr store; remove it or choose another --out"
        )
    group = zarr.open_group(location, mode="w")  # "w" clears an old store (overwrite)
    n = len(ids)
    group.create_array(
        "frames",
        shape=(n, *frame_shape),
        chunks=(1, *frame_shape),
        dtype="uint8",
        fill_value=0,
        dimension_names=("video", "frame", "y", "x", "channel"),
    )
    group.create_array(
        "video_ids",
        shape=(n,),
        chunks=(max(n, 1),),
        dtype="int64",
        fill_value=-1,
        dimension_names=("video",),
    )
    # One chunk per flag: each rank sets only the flags of its own videos, never a shared chunk.
    group.create_array(
        "done", shape=(n,), chunks=(1,), dtype="bool", fill_value=False, dimension_names=("video",)
    )
    if n:
        group["video_ids"][:] = ids
    group.attrs.update(
        {**attrs, "complete": False, "created": datetime.now(UTC).isoformat(timespec="seconds")}
    )
    return PredStore(group, url), False
