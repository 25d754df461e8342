"""`label`: the segmenter's masks of every frame of a split, in a resumable Zarr label store that
the masks trainer reads by video id (pseudo-labels for the videos without mask.npy).

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
location or a label store is written (`infer.store.claim_store`): a folder or bucket prefix that
holds anything else is refused, with or without --overwrite. Under torchrun
each rank labels the videos its eval loader gives it (every video once across ranks) and writes
only their chunks; rank 0 creates the store before and finishes it after.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import zarr
from convrnn_video.infer.config import LabelConfig
from convrnn_video.infer.errors import InferError
from convrnn_video.infer.store import identity_diffs, open_group, prepare_group, row_positions
from convrnn_video.shards.format import NUM_CLASSES

log = logging.getLogger(__name__)
# what a resumed run must match beside the precision (compared apart, with its own message)
IDENTITY = dict.fromkeys(("segmenter_sha256", "split", "frames", "height", "width"))


class LabelStore:
    """An open label store; `masks`, `video_ids` and `done` are Zarr arrays."""

    def __init__(self, group: zarr.Group, url: str | Path) -> None:
        missing = [name for name in ("masks", "video_ids", "done") if name not in group]
        if missing:
            raise InferError(f"{url} is not a label store (no {', '.join(missing)}); make one "
                             "with `python cli.py label`")  # fmt: skip
        self.group, self.url = group, str(url)
        self.masks, self.video_ids, self.done = group["masks"], group["video_ids"], group["done"]
        self._ids: np.ndarray | None = None

    @classmethod
    def open(cls, url: str | Path, mode: str = "r") -> LabelStore:
        group = open_group(url, mode)
        if group is None:
            raise InferError(f"no label store at {url}; make one with `python cli.py label`")
        return cls(group, url)

    @property
    def attrs(self) -> dict[str, Any]:
        return dict(self.group.attrs)

    def ids(self) -> np.ndarray:
        if self._ids is None:
            self._ids = np.asarray(self.video_ids[:], dtype=np.int64)
        return self._ids

    def positions(self, video_ids: Sequence[int]) -> np.ndarray:
        return row_positions(self.ids(), video_ids, self.url, self.attrs.get("split"))

    def read_ids(self, video_ids: Sequence[int]) -> np.ndarray:
        """uint8 (n, T, H, W) masks of the given videos; every one must be labelled."""
        pos = self.positions(video_ids)
        if not np.all(self.done.get_orthogonal_selection((pos,))):
            raise InferError(f"{self.url} is incomplete: rerun `python cli.py label` to finish it")
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
    (`infer.store.prepare_group`). -> (store, resumed). A location that is not a label store
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


def run_label(cfg: LabelConfig) -> dict[str, Any]:
    """Segment every frame of `cfg.split` into the label store at `cfg.out`; -> a summary."""
    import torch.distributed as dist
    from convrnn_video.infer.predict import file_sha256, rank_and_device, run_on_rank0
    from convrnn_video.infer.videos import split_videos
    from convrnn_video.shards.manifest import read_manifest, split_geometry
    from convrnn_video.train.checkpoint import load_model
    from convrnn_video.train.ddp import autocast, resolve_precision
    from convrnn_video.train.errors import TrainError

    cfg.validate()
    joined = not (dist.is_available() and dist.is_initialized())
    rank, world, device = rank_and_device(cfg.device)
    try:
        try:
            model, seg_cfg, _ = load_model(cfg.segmenter, device, task="segment")
        except TrainError as exc:
            raise InferError(str(exc)) from None
        ids, frames = split_videos(cfg.shards, cfg.split)
        _, height, width, _ = split_geometry(read_manifest(cfg.shards), cfg.split)
        precision = resolve_precision(cfg.precision, device)  # the masks' (segment_frames)
        attrs = {"segmenter": str(cfg.segmenter), "segmenter_sha256": file_sha256(cfg.segmenter),
                 "segmenter_config": seg_cfg.to_dict(), "split": cfg.split,
                 "shards": str(cfg.shards), "frames": frames, "height": height,
                 "width": width, "precision": precision,
                 "precision_asked": cfg.precision}  # fmt: skip
        resumed = run_on_rank0(lambda: prepare_labels(cfg.out, attrs, ids, cfg.overwrite)[1],
                               world, rank)  # fmt: skip
        store = LabelStore.open(cfg.out, "r+")
        done = np.asarray(store.done[:], dtype=bool)
        start, labelled = time.perf_counter(), 0
        if not done.all():
            labelled = _label_missing(cfg, store, done, model, frames, (rank, world, device),
                                      autocast(precision, device, warn=rank == 0))  # fmt: skip
        seconds = time.perf_counter() - start
        if world > 1:
            dist.barrier()
            counts = [None] * world
            dist.all_gather_object(counts, labelled)
            labelled = sum(counts)
        complete = store.finish() if rank == 0 else None
        if world > 1:
            dist.barrier()
    finally:
        if joined and world > 1:
            from convrnn_video.train.ddp import teardown

            teardown()
    return {
        "store": str(cfg.out), "split": cfg.split, "videos": len(ids), "labelled": labelled,
        "already_done": int(done.sum()), "resumed": resumed, "complete": complete,
        "precision": precision, "seconds": round(seconds, 3),
        "frames_per_s": round(labelled * frames / seconds, 1) if labelled else None,
    }  # fmt: skip


def _label_missing(cfg, store, done, model, frames, where, context) -> int:
    """Segment the loader's videos that are not done yet; -> how many were labelled."""
    import torch
    from convrnn_video.segment.apply import segment_frames
    from convrnn_video.shards.loader import make_loader
    from tqdm import tqdm

    rank, world, device = where
    loader = make_loader(cfg.shards, [cfg.split], mode="eval", batch_size=cfg.batch_size,
                         frames_in=frames, frames_out=0, rank=rank, world_size=world)  # fmt: skip
    # a bar on a terminal only (off one, \r-updates fill a log), and not under --quiet
    shown = cfg.progress and sys.stderr.isatty() and log.isEnabledFor(logging.INFO)
    bar = tqdm(total=int((~done).sum()) if world == 1 else None, unit="video", desc="label",
               disable=not shown or rank != 0)  # fmt: skip
    labelled = 0
    with torch.inference_mode():
        for batch in loader:
            pos = store.positions(batch["ids"])
            todo = ~done[pos]
            if not todo.any():
                continue
            video = batch["inputs"][torch.from_numpy(todo)]  # (n, T, C, H, W)
            ids = segment_frames(model, video, context)  # (n, T, H, W)
            store.write(pos[todo], ids.to(torch.uint8).cpu().numpy())
            labelled += int(todo.sum())
            bar.update(int(todo.sum()))
    bar.close()
    return labelled


def verify_labels(url: str | Path, shards: str | Path) -> list[str]:
    """Problems of a label store against the shards it labels (empty: it is sound)."""
    from convrnn_video.infer.videos import split_videos

    store = LabelStore.open(url)
    attrs, problems = store.attrs, []
    split = attrs.get("split")
    ids, frames = split_videos(shards, split)
    if not np.array_equal(store.ids(), ids):
        problems.append(f"{url}: its {len(store.ids())} video ids differ from split {split!r}'s "
                        f"{len(ids)} in {shards}")  # fmt: skip
    if store.masks.shape[1] != frames:
        problems.append(f"{url}: {store.masks.shape[1]} frames per video, the split has {frames}")
    if not attrs.get("segmenter_sha256"):
        problems.append(f"{url}: no segmenter_sha256 recorded")
    undone = int((~np.asarray(store.done[:], dtype=bool)).sum())
    if undone:
        problems.append(f"{url}: {undone} video(s) not labelled yet (rerun `label`)")
    for i in range(len(store.ids())):
        if store.done[i] and int(np.asarray(store.masks[i]).max(initial=0)) >= NUM_CLASSES:
            problems.append(
                f"{url}: video_{int(store.ids()[i])} holds class ids above {NUM_CLASSES - 1}"
            )
            break
    return problems
