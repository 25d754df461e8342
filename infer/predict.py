"""`predict`: a checkpoint + one split of shards -> a resumable Zarr store of predictions.

The model is rebuilt from the checkpoint alone and run in batches under `torch.inference_mode`.
Two kinds of checkpoint are accepted (a track forecaster as a mask forecaster), and a frame
model can take a track forecaster beside it:

- a frame model (`train --task frames`): its predicted frames go to the store's `frames`; with
  a segmenter, the class ids of every stored frame go to `masks` beside them
  (`segment.apply.segment_frames`).
- a mask forecaster (`train --task masks`), which needs a segmenter: the segmenter makes the
  class masks of each video's input frames, the forecaster predicts the masks of the future
  frames from them, and those go to `masks`. That store holds NO `frames` array (its attribute
  "holds" is ["masks"], and `PredStore.frames` is None).
- a frame model with a track forecaster (`tracks`, `train --task tracks`) and a segmenter: the
  segmenter's objects of the last input frame move as wholes in the predicted frames, where
  the track forecaster moves them (`convrnn.objects.objects_moved`), and the stored masks are
  the track forecaster's; the store records its sha256 (`tracks_sha256`).

Which frames are the input, one rule here and in the Python API (`convrnn_video.Model.predict`):
the input is the last `frames_in` of a video's observed frames, and the prediction is the
`frames_out` frames after them. The observed frames are those a hidden video has (the manifest
knows how many), and the same first frames of a labelled video; shards without a hidden split
observe all of a labelled video but its last `frames_out` frames (`frame_plan`). The store
records the frame numbers it read and holds, which `submit` and `evaluate` go by.

With `motion` (`predict --motion`), a model with a motion output (`ModelConfig.motion`) also
stores the accumulated displacement of every predicted frame, in pixels on its patch grid, as
the store's `motion` array (stores/predictions.py); `show` draws it. A model without one is refused.

With `relabel_unseen`, a predicted class that the segmenter found in none of the input frames
(an object kind occurs at most once per video) is replaced by the best class it did find, or
background (`convrnn.masks.restrict_to_seen`); the frame path segments the input frames
for that too.

Precision follows the project's one policy (`runtime.device.resolve_precision`: "auto" is bf16
autocast where the device computes bf16 natively, float32 elsewhere), in one autocast context
around the forecaster and the segmenter; the store records the resolved precision. The
segmenter runs through `segment.apply.segment_frames` (one video's frames per forward pass), so
a store's masks are the same whatever the batch size, and equal to what `label`, validation and
the Python API give for the same frames in that precision. The frames, their size and channels
come from the split's geometry in the manifest (`shards.manifest.split_geometry`); a checkpoint
whose channels or strides do not fit it is refused in one line.

Videos go to the store one per chunk, then the video's `done` flag (see stores/predictions.py).
A rerun with the same checkpoint, task, segmenter, precision, relabelling and split skips every
batch whose videos are all done; a batch that was cut in the middle is predicted whole again
(same batch, same numbers) and only its missing videos are written, so a resumed store is
identical to an uninterrupted one.

Under `torchrun` each rank predicts the videos its loader gives it (every video exactly once
across ranks) and writes only their chunks; rank 0 creates the store before and finishes it after.
`run_predict` changes no process-wide setting (threads, allocator): the CLI command does that
(`runtime.device.tune_process`).
"""

from __future__ import annotations

import logging
import sys
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from convrnn_video.infer.batch import BatchRun, motion_grid, predict_batch
from convrnn_video.infer.config import PredictConfig
from convrnn_video.infer.errors import InferError
from convrnn_video.infer.models import load, log_models, resolve_checkpoint
from convrnn_video.infer.plan import frame_plan, store_attrs
from convrnn_video.infer.videos import split_videos
from convrnn_video.runtime.device import autocast, resolve_precision
from convrnn_video.runtime.distributed import rank_and_device, run_on_rank0, teardown
from convrnn_video.runtime.errors import RunError
from convrnn_video.shards.errors import ShardError
from convrnn_video.shards.loader import make_loader
from convrnn_video.shards.manifest import read_manifest, split_entry, split_geometry
from convrnn_video.stores.predictions import PredStore, prepare_store
from tqdm import tqdm

log = logging.getLogger(__name__)


def infer_device(device: str) -> tuple[int, int, torch.device]:
    """(rank, world size, device) of `runtime.distributed.rank_and_device`; a device that is
    not there is an InferError."""
    try:
        return rank_and_device(device)
    except RunError as exc:
        raise InferError(str(exc)) from None


def auto_batch_size(model_cfg: Any, device: torch.device) -> int:
    """Videos per forward pass when the user gives none: 8 on a GPU; on a CPU, 8 for a model
    whose recurrence runs on a patched grid, and 1 for a full-resolution one (`seed`), which
    measured fastest one video at a time (3.9 s per video at batch 1 against 4.7 s at 4)."""
    if device.type == "cuda" or int(getattr(model_cfg, "patch", 1)) > 1:
        return 8
    return 1


def run_predict(cfg: PredictConfig) -> dict[str, Any]:
    """Predict every video of `cfg.split` into the store at `cfg.out`; returns a summary."""
    cfg.validate()
    joined = not (dist.is_available() and dist.is_initialized())
    rank, world, device = infer_device(cfg.device)
    try:
        return _predict(cfg, rank, world, device)
    finally:
        if joined and world > 1:
            teardown()  # only a group this call created; together, so no rank aborts gloo


def _read_manifest(cfg: PredictConfig) -> dict[str, Any]:
    """The manifest of `cfg.shards`, checked to hold `cfg.split`."""
    try:
        manifest = read_manifest(cfg.shards)
        split_entry(manifest, cfg.split, cfg.shards)
    except ShardError as exc:
        raise InferError(str(exc)) from None
    return manifest


def _predict(cfg: PredictConfig, rank: int, world: int, device: torch.device) -> dict[str, Any]:
    ckpt, how = resolve_checkpoint(cfg.ckpt, cfg.runs)
    manifest = _read_manifest(cfg)
    model, model_cfg, payload, segmenter, seg_attrs, tracks = load(cfg, ckpt, device, manifest)
    precision = resolve_precision(cfg.precision, device)
    if rank == 0:
        log_models(cfg, f"{ckpt} ({how}), {precision}", model_cfg.masks)
    ids, _ = split_videos(cfg.shards, cfg.split)
    _, height, width, channels = split_geometry(manifest, cfg.split)
    frames_in, frames_out = int(model_cfg.frames_in), int(model_cfg.frames_out)
    plan = frame_plan(manifest, cfg.split, frames_in, frames_out)
    attrs = {**store_attrs(cfg, ckpt, model_cfg, payload, precision, plan), **seg_attrs}
    resumed = run_on_rank0(
        lambda: prepare_store(
            cfg.out,
            attrs=attrs,
            video_ids=ids,
            frame_shape=(frames_out, height, width, channels),
            overwrite=cfg.overwrite,
            motion_grid=motion_grid(model_cfg, height, width) if cfg.motion else None,
        )[1],
        world,
        rank,
    )
    store = PredStore.open(cfg.out, "r+")
    done = store.done_mask()
    todo = int((~done).sum())
    start, predicted = time.perf_counter(), 0
    if todo:
        context = autocast(precision, device, warn=rank == 0)
        run = BatchRun(model, model_cfg, segmenter, context, cfg.relabel_unseen, device, cfg.motion,
                       tracks, cfg.mirror)  # fmt: skip
        observed = plan["observed_frames"]
        predicted = _predict_batches(cfg, store, (done, todo, observed), run, rank, world)
    seconds = time.perf_counter() - start
    complete, predicted = _finish(store, predicted, rank, world)
    summary = {
        "store": str(cfg.out),
        "ckpt": str(ckpt),
        "ckpt_chosen": how,
        "task": attrs["task"],
        "holds": attrs["holds"],
        "segmenter": cfg.segmenter,
        "precision": precision,
        "relabel_unseen": cfg.relabel_unseen,
        "motion": cfg.motion,
        "tracks": cfg.tracks,
        "split": cfg.split,
        "videos": len(ids),
        "predicted": predicted,
        "already_done": len(ids) - todo,
        "resumed": resumed,
        "complete": complete,
        "seconds": round(seconds, 3),
        "videos_per_s": round(predicted / seconds, 3) if predicted and seconds else None,
        "rank": rank,
        "world_size": world,
    }
    log.debug("predict: %s", summary)
    return summary


def _predict_batches(
    cfg: PredictConfig,
    store: PredStore,
    todo: tuple[np.ndarray, int, int],
    run: BatchRun,
    rank: int,
    world: int,
) -> int:
    """Predict (and segment) every batch of this rank that holds a video not done yet; `todo`
    is (the store's done flags, how many are not done, the observed frames per video). Returns
    how many videos this rank wrote."""
    done, left, observed = todo
    frames_in = int(run.model_cfg.frames_in)
    loader = make_loader(
        cfg.shards,
        [cfg.split],
        mode="eval",
        batch_size=cfg.batch_size or auto_batch_size(run.model_cfg, run.device),
        frames_in=observed,  # the observed frames only: the model reads the last frames_in
        frames_out=0,
        workers=cfg.workers,
        rank=rank,
        world_size=world,
    )
    bar = tqdm(
        total=left if world == 1 else None,
        unit="video",
        desc="predict",
        # on a terminal only (off one, \r-updates fill a log), and not under --quiet
        disable=not (cfg.progress and sys.stderr.isatty() and log.isEnabledFor(logging.INFO))
        or rank != 0,
    )
    predicted, pending = 0, deque[Future]()
    with ThreadPoolExecutor(max_workers=1) as writer, torch.inference_mode():
        for batch in loader:
            pos = store.positions(batch["ids"])
            missing = ~done[pos]
            if not missing.any():
                continue
            # the whole batch, so a resumed batch gives the same numbers as an uninterrupted one
            arrays = predict_batch(run, batch["inputs"][:, -frames_in:])  # (B, T_in, ...)
            frames, masks, motion = (None if a is None else a[missing] for a in arrays)
            # write in the background while the next batch runs; at most 2 batches queued
            pending.append(writer.submit(store.write, pos[missing], frames, masks, motion))
            while len(pending) > 2:
                pending.popleft().result()
            predicted += int(missing.sum())
            bar.update(int(missing.sum()))
        for fut in pending:
            fut.result()
    bar.close()
    return predicted


def _finish(store: PredStore, predicted: int, rank: int, world: int) -> tuple[bool | None, int]:
    """(whether the store is complete (rank 0; None elsewhere), videos written by all ranks)."""
    if world > 1:
        dist.barrier()
    complete = store.finish() if rank == 0 else None
    if world > 1:
        counts = [None] * world
        dist.all_gather_object(counts, predicted)
        predicted = sum(counts)
        dist.barrier()
    return complete, predicted
