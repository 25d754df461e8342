"""The Zarr (v3) store of predictions: layout, creation, resume checks, chunk-safe writes.

Layout of a store (a Zarr group); H, W, C are the split's geometry in the manifest (160, 240, 3
for the course's videos, C = 1 for grayscale):

    frames     uint8 (N, T_out, H, W, C)  predicted frames, one video per chunk, zstd-compressed
                                          (absent from the store of a mask forecaster)
    masks      uint8 (N, T_out, H, W)     class ids of the predicted frames (a frame model with
                                          --segmenter), or the forecast masks (a mask forecaster)
    motion     float16 (N, T_out, 2, h, w)  with predict --motion (a model with a motion output):
                                          per predicted frame k, the accumulated displacement
                                          D_k on the patch grid (h = H / patch), in pixels,
                                          (x, y): frame k at p shows the last input frame at
                                          p + D_k(p); its attrs say units, grid and axes
                                          (attrs["holds"] then ends with "motion")
    video_ids  int64 (N,)                 ids in increasing order, as in the manifest
    done       bool  (N,)                 one chunk per element: True once video i is written
    attrs      convrnn_store ("predictions", written first), holds (["frames"],
               ["frames", "masks"] or ["masks"]), task ("frames" | "masks", the checkpoint's),
               ckpt_sha256, ckpt, model_config, split, frames_in, frames_out, observed_frames,
               input_frames, first_frame, predicted_frames, video_frames, precision (resolved:
               fp32 | bf16), precision_asked, relabel_unseen, created, version, shards,
               complete; segmenter, segmenter_sha256, segmenter_config (None without one)

Frame numbers are image numbers (frame k of a video is `image_{k-1}`): the model reads
`input_frames`, the last `frames_in` of the `observed_frames` first frames, and the store holds
`predicted_frames`, the `frames_out` frames after them (`first_frame` is the first of those).
`video_frames` is how many frames a whole video of the dataset has (a labelled split's), so the
last frame of a video is image_{video_frames - 1}; None when the shards hold no labelled split.

Only a location that holds nothing, or a store of ours of the same kind, is ever written
(`claim_store`): Zarr's mode "w" deletes everything under a path or a bucket prefix, so a
folder or prefix with anything else in it is refused, with or without --overwrite.

A store of a mask forecaster (`predict --ckpt MASKS.pt --segmenter SEG.pt`) holds no frames:
`PredStore.frames` is None and only the masks can be read, submitted, scored or exported.
A video's frames and masks chunks are written before its `done` flag, so a killed run never
marks a video it has not stored. Every chunk has one writer (the rank that predicts that
video), so ranks never clobber each other; only rank 0 writes the attributes.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import zarr
from convrnn_video.stores.errors import StoreError
from convrnn_video.stores.group import OpenStore, identity_diffs, prepare_group

ARRAYS = ("video_ids", "done")  # every store, beside "frames" and/or "masks" (attrs["holds"])
# what a resumed run must match (the segmenter is compared apart, with its own message), and
# the value a store written before the attribute existed stands for
IDENTITY = {
    "task": "frames",
    "ckpt_sha256": None,
    "split": None,
    "frames_in": None,
    "frames_out": None,
    "first_frame": None,
    "precision": None,
    "relabel_unseen": False,
    "tracks_sha256": None,  # the track forecaster that moved the objects (predict --tracks)
    # how its floor stage played hits (convrnn.floor_play.rule) and how long it drew objects
    # first seen in the last input frame (infer.models.hit_rule); None: no floor, all drawn
    "hit_rule": None,
}


def store_holds(attrs: dict[str, Any]) -> tuple[str, ...]:
    """The prediction arrays of a store with these attributes: its "holds" attribute, else
    (stores written before it) frames, plus masks when a segmenter is named."""
    if attrs.get("holds"):
        return tuple(attrs["holds"])
    return ("frames", "masks") if attrs.get("segmenter_sha256") else ("frames",)


class PredStore(OpenStore):
    """An open prediction store; `video_ids`, `done`, `frames`, `masks` and `motion` are Zarr
    arrays, `frames` None in a mask forecaster's store, `masks` None without a segmenter,
    `motion` None unless predicted with --motion."""

    kind = "prediction store"
    make_hint = "run `python cli.py predict` first"

    def __init__(self, group: zarr.Group, url: str | Path) -> None:
        missing = [name for name in ARRAYS if name not in group]
        if not missing and "frames" not in group and "masks" not in group:
            missing = ["frames or masks"]
        if missing:
            raise StoreError(
                f"{url} is a Zarr group but not a prediction store "
                f"(no {', '.join(missing)}); point --preds at a store from predict"
            )
        super().__init__(group, url)
        self.frames, self.masks = group.get("frames"), group.get("masks")
        self.motion = group.get("motion")

    # --- reading -------------------------------------------------------------------------------

    def __len__(self) -> int:
        return int(self.video_ids.shape[0])

    def done_mask(self) -> np.ndarray:
        return np.asarray(self.done[:], dtype=bool)

    @property
    def shape(self) -> tuple[int, int, int]:
        """(T_out, H, W) of every video's prediction, whichever arrays the store holds."""
        array = self.frames if self.frames is not None else self.masks
        return tuple(int(v) for v in array.shape[1:4])

    def read(self, positions: Sequence[int]) -> np.ndarray:
        """uint8 (B, T_out, H, W, C) frames of the given rows (a store with frames)."""
        if self.frames is None:
            raise StoreError(
                f"{self.url} holds no frames: it was predicted by a mask forecaster "
                f"({self.attrs.get('ckpt')}), whose store has masks only"
            )
        return _read_rows(self.frames, positions)

    def read_masks(self, positions: Sequence[int]) -> np.ndarray:
        """uint8 (B, T_out, H, W) class ids of the given rows (a store with masks)."""
        if self.masks is None:
            raise StoreError(f"{self.url} holds no masks; {MAKE_MASKS}")
        return _read_rows(self.masks, positions)

    def read_motion(self, positions: Sequence[int]) -> np.ndarray:
        """float16 (B, T_out, 2, h, w) displacements in pixels of the given rows (a store
        predicted with --motion)."""
        if self.motion is None:
            raise StoreError(f"{self.url} holds no motion; predict with --motion to store it")
        return _read_rows(self.motion, positions)

    # --- writing -------------------------------------------------------------------------------

    def write(
        self,
        positions: Sequence[int],
        frames: np.ndarray | None,
        masks: np.ndarray | None = None,
        motion: np.ndarray | None = None,
    ) -> None:
        """Store frames (B, T_out, H, W, C) uint8, masks (B, T_out, H, W) uint8 and motion
        (B, T_out, 2, h, w) float16, each given exactly when the store has that array, at rows
        `positions`, then mark them done."""
        pos = np.asarray(positions, dtype=np.int64)
        arrays, given = (self.frames, self.masks, self.motion), (frames, masks, motion)
        if any((a is None) != (v is None) for a, v in zip(arrays, given, strict=True)):
            raise ValueError("frames, masks, motion must be given exactly when the store has them")
        if len(pos) == 0:
            return
        for array, values in zip(arrays, given, strict=True):
            if values is not None:
                _write_rows(array, pos, values)
        # after the frames, masks and motion: a crash in between leaves the video undone
        _write_rows(self.done, pos, np.ones(len(pos), dtype=bool))

    def finish(self) -> bool:
        """Record whether every video is done (rank 0 only); returns that flag."""
        complete = bool(self.done_mask().all())
        self.group.attrs.update(
            {"complete": complete, "finished": datetime.now(UTC).isoformat(timespec="seconds")}
        )
        return complete


MAKE_MASKS = (
    "predict with a segmenter to make them: `python cli.py predict --segmenter SEG.pt ...` "
    "(a segmenter is trained with `python cli.py train --task segment`)"
)


def _read_rows(array: zarr.Array, positions: Sequence[int]) -> np.ndarray:
    pos = np.asarray(positions, dtype=np.int64)
    if len(pos) and np.all(np.diff(pos) == 1):
        return array[int(pos[0]) : int(pos[-1]) + 1]
    return array.get_orthogonal_selection((pos,))


def _write_rows(array: zarr.Array, pos: np.ndarray, values: np.ndarray) -> None:
    if np.all(np.diff(pos) == 1):
        array[int(pos[0]) : int(pos[-1]) + 1] = values
    else:
        array.set_orthogonal_selection((pos,), values)


def _segmenter_diff(old: dict[str, Any], new: dict[str, Any]) -> str | None:
    """Why a store's masks (or their absence) do not fit this run's segmenter, or None."""
    had, has = old.get("segmenter_sha256"), new.get("segmenter_sha256")
    if had == has:
        rule = old.get("mask_rule", "argmax")  # a store from before the rule: the raw argmax
        if has is not None and rule != new.get("mask_rule"):
            now = new.get("mask_rule")
            return f"its masks were made by the rule {rule!r}, this run's by {now!r}"
        return None
    if had is None:
        return "the store has no masks (predicted without --segmenter)"
    mine = f"{old.get('segmenter')} (sha256 {had[:12]})"
    if has is None:
        return f"its masks come from segmenter {mine}; pass --segmenter with that file to resume"
    return (
        f"its masks come from segmenter {mine}, this run's is "
        f"{new.get('segmenter')} (sha256 {has[:12]})"
    )


def _resume_problems(
    store: PredStore,
    attrs: dict[str, Any],
    ids: np.ndarray,
    frame_shape: tuple[int, ...],
) -> list[str]:
    """Every way an existing store differs from what this run would write."""
    old = store.attrs
    diffs = identity_diffs(old, attrs, IDENTITY)
    segmenter = _segmenter_diff(old, attrs)
    if segmenter:
        diffs.append(segmenter)
    if not diffs and (len(store) != len(ids) or not np.array_equal(store.ids(), ids)):
        diffs.append(f"video ids: store has {len(store)} videos, the shards {len(ids)}")
    if not diffs and store_holds(old) != store_holds(attrs):
        diffs.append(f"arrays: store holds {store_holds(old)}, this run {store_holds(attrs)}")
    shape = tuple(frame_shape) if store.frames is not None else tuple(frame_shape[:3])
    found = store.frames.shape[1:] if store.frames is not None else store.masks.shape[1:]
    if not diffs and tuple(found) != shape:
        diffs.append(f"frame shape: store {tuple(found)}, this run {shape}")
    return diffs


def motion_attrs(cell: int) -> dict[str, Any]:
    """The motion array's attributes: what its numbers mean, on a grid of `cell`-pixel cells."""
    return {
        "units": "pixels",
        "grid": f"the patch grid: one value per {cell}x{cell}-pixel cell, at its centre",
        "cell_px": cell,
        "axis": ["x", "y"],
        "meaning": "frame k at pixel p shows the last input frame at p + D_k(p), D_k "
        "upsampled bilinearly from the grid (what moves, moves by about -D_k)",
    }


def prepare_store(
    url: str | Path,
    *,
    attrs: dict[str, Any],
    video_ids: Sequence[int],
    frame_shape: tuple[int, int, int, int],
    overwrite: bool,
    motion_grid: tuple[int, int, int] | None = None,
) -> tuple[PredStore, bool]:
    """Create the store, or reuse an existing one made by the same checkpoint (and segmenter)
    on the same split (`prepare_group`).

    `frame_shape` is (T_out, H, W, C). The arrays are those `store_holds(attrs)` names: frames
    (N, T_out, H, W, C) and/or masks (N, T_out, H, W) of class ids, and motion
    (N, T_out, 2, h, w) on the grid `motion_grid` (h, w, pixels per cell). Returns (store,
    resumed).
    A store from another checkpoint, task, segmenter, precision, split, frames or video set is
    refused unless `overwrite`; a location that is not a prediction store is always refused
    (`claim_store`).
    """
    ids = np.asarray(video_ids, dtype=np.int64)
    shapes = {"frames": tuple(frame_shape), "masks": tuple(frame_shape[:-1])}
    array_attrs = {}
    if "motion" in store_holds(attrs):
        if motion_grid is None:
            raise ValueError("a store holding motion needs its grid (h, w, pixels per cell)")
        h, w, cell = motion_grid
        shapes["motion"] = (frame_shape[0], 2, h, w)  # (T_out, 2, h, w)
        array_attrs["motion"] = motion_attrs(cell)
    group, resumed = prepare_group(
        url,
        "predictions",
        attrs=attrs,
        video_ids=ids,
        arrays={name: shapes[name] for name in store_holds(attrs)},
        array_attrs=array_attrs,
        overwrite=overwrite,
        problems=lambda g: _resume_problems(PredStore(g, url), attrs, ids, frame_shape),
    )
    return PredStore(group, url), resumed
