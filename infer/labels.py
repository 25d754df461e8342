"""`label`: the segmenter's masks of every frame of a split, into a label store
(stores/labels.py) that the masks trainer reads by video id (pseudo-labels for the videos
without mask.npy).

A rerun with the same segmenter, precision and split continues where it stopped (a store
made in another precision is refused: its masks would mix two roundings). Under torchrun each
rank labels the videos its eval loader gives it (every video once across ranks) and writes only
their chunks; rank 0 creates the store before and finishes it after.
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from convrnn_video.infer.config import LabelConfig
from convrnn_video.infer.errors import InferError
from convrnn_video.infer.predict import infer_device
from convrnn_video.infer.videos import split_videos
from convrnn_video.ingest.writer import sha256_file
from convrnn_video.runtime.checkpoint import load_model
from convrnn_video.runtime.device import autocast, resolve_precision
from convrnn_video.runtime.distributed import run_on_rank0, teardown
from convrnn_video.runtime.errors import RunError
from convrnn_video.segment.apply import segment_frames
from convrnn_video.segment.objects import RULE
from convrnn_video.shards.format import NUM_CLASSES
from convrnn_video.shards.loader import make_loader
from convrnn_video.shards.manifest import read_manifest, split_geometry
from convrnn_video.stores.labels import LabelStore, prepare_labels
from tqdm import tqdm

log = logging.getLogger(__name__)


def run_label(cfg: LabelConfig) -> dict[str, Any]:
    """Segment every frame of `cfg.split` into the label store at `cfg.out`; -> a summary."""
    cfg.validate()
    joined = not (dist.is_available() and dist.is_initialized())
    rank, world, device = infer_device(cfg.device)
    try:
        try:
            model, seg_cfg, _ = load_model(cfg.segmenter, device, task="segment")
        except RunError as exc:
            raise InferError(str(exc)) from None
        ids, frames = split_videos(cfg.shards, cfg.split)
        _, height, width, _ = split_geometry(read_manifest(cfg.shards), cfg.split)
        precision = resolve_precision(cfg.precision, device)  # the masks' (segment_frames)
        attrs = {"segmenter": str(cfg.segmenter),
                 "segmenter_sha256": sha256_file(Path(cfg.segmenter)),
                 "segmenter_config": seg_cfg.to_dict(), "split": cfg.split,
                 "shards": str(cfg.shards), "frames": frames, "height": height,
                 "width": width, "precision": precision, "mask_rule": RULE,
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
            teardown()
    return {
        "store": str(cfg.out), "split": cfg.split, "videos": len(ids), "labelled": labelled,
        "already_done": int(done.sum()), "resumed": resumed, "complete": complete,
        "precision": precision, "seconds": round(seconds, 3),
        "frames_per_s": round(labelled * frames / seconds, 1) if labelled else None,
    }  # fmt: skip


def _label_missing(cfg, store, done, model, frames, where, context) -> int:
    """Segment the loader's videos that are not done yet; -> how many were labelled."""
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
