"""`predict`: a checkpoint + one split of shards -> a resumable Zarr store of predicted frames.

The model is rebuilt from the checkpoint alone and run in batches under `torch.inference_mode`.
Frames go to the store one video per chunk, then the video's `done` flag (see infer/store.py).
With a segmenter, the class ids of every stored frame go to the store's `masks` beside them
(infer/masks.py), before the same `done` flag.
A rerun with the same checkpoint and split skips every batch whose videos are all done; a batch
that was cut in the middle is predicted whole again (same batch, same numbers) and only its
missing videos are written, so a resumed store is identical to an uninterrupted one.

Under `torchrun` each rank predicts the videos its loader gives it (every video exactly once
across ranks) and writes only their chunks; rank 0 creates the store before and finishes it after.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from tqdm import tqdm

from infer.config import PredictConfig
from infer.errors import InferError
from infer.store import PredStore, prepare_store
from infer.videos import split_videos

log = logging.getLogger(__name__)
FRAME_SHAPE = (160, 240, 3)  # (H, W, C) of a stored frame


def project_version() -> str:
    """The installed package version, else the one in pyproject.toml beside this package."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("convrnn-video")
    except PackageNotFoundError:
        import tomllib

        pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
        try:
            return tomllib.loads(pyproject.read_text())["project"]["version"]
        except (OSError, KeyError, ValueError):
            return "unknown"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def resolve_checkpoint(ckpt: str | None, runs: str) -> tuple[Path, str]:
    """(checkpoint path, how it was chosen); without `ckpt`, the newest run's best.pt."""
    from train.errors import TrainError
    from train.runs import find_checkpoint

    try:
        path = find_checkpoint(ckpt, root=Path(runs))
    except TrainError as exc:
        raise InferError(str(exc)) from None
    how = "given" if ckpt is not None else f"newest run under {runs}/"
    return path, how


def load_predictor(path: Path, device: torch.device) -> tuple[torch.nn.Module, Any, dict]:
    """(model in eval mode, ModelConfig, payload) from a checkpoint, with clear errors."""
    from train.checkpoint import load_model
    from train.errors import TrainError

    try:
        return load_model(path, device, task="frames")
    except TrainError as exc:
        raise InferError(str(exc)) from None


def to_uint8(pred: torch.Tensor) -> np.ndarray:
    """(B, T, 3, H, W) float in [0, 1] -> (B, T, H, W, 3) uint8, the store's layout."""
    u8 = (pred.clamp(0, 1) * 255).round_().to(torch.uint8)
    return u8.permute(0, 1, 3, 4, 2).contiguous().cpu().numpy()  # (B, T, H, W, 3)


def _distributed(device: str) -> tuple[int, int, torch.device]:
    """(rank, world size, device): the trainer's process setup (device, threads per local
    rank, allocator, the process group under torchrun)."""
    from train.ddp import setup
    from train.errors import TrainError

    try:
        env = setup(device)
    except TrainError as exc:
        raise InferError(str(exc)) from None
    return env.rank, env.world_size, env.device


def auto_batch_size(model_cfg: Any, device: torch.device) -> int:
    """Videos per forward pass when the user gives none: 8 on a GPU; on a CPU, 8 for a model
    whose recurrence runs on a patched grid, and 1 for a full-resolution one (`seed`), which
    measured fastest one video at a time (3.9 s per video at batch 1 against 4.7 s at 4)."""
    if device.type == "cuda" or int(getattr(model_cfg, "patch", 1)) > 1:
        return 8
    return 1


def _on_rank0(fn, world: int, rank: int):
    """Run fn on rank 0 and share its result, or its InferError, with every rank."""
    box: list[Any] = [None]
    if rank == 0:
        try:
            box[0] = ("ok", fn())
        except InferError as exc:
            box[0] = ("error", str(exc))
    if world > 1:
        dist.broadcast_object_list(box, src=0)
    status, value = box[0]
    if status == "error":
        raise InferError(value)
    return value


def run_predict(cfg: PredictConfig) -> dict[str, Any]:
    """Predict every video of `cfg.split` into the store at `cfg.out`; returns a summary."""
    cfg.validate()
    joined = not (dist.is_available() and dist.is_initialized())
    rank, world, device = _distributed(cfg.device)
    try:
        return _predict(cfg, rank, world, device)
    finally:
        if joined and world > 1:
            from train.ddp import teardown

            teardown()  # only a group this call created; together, so no rank aborts gloo


def _segmenter_attrs(path: str | None, device: torch.device, rank: int):
    """(segmenter or None, the store attributes that name it)."""
    if path is None:
        return None, {"segmenter": None, "segmenter_sha256": None, "segmenter_config": None}
    from infer.masks import load_segmenter

    seg, seg_cfg, payload = load_segmenter(path, device)
    if rank == 0:
        log.info("predict: segmenter %s (masks of every predicted frame)", path)
    return seg, {
        "segmenter": str(path),
        "segmenter_sha256": file_sha256(Path(path)),
        "segmenter_config": seg_cfg.to_dict(),
        "segmenter_step": int(payload.get("step", 0) or 0),
    }


def _store_attrs(cfg: PredictConfig, ckpt: Path, model_cfg: Any, payload: dict) -> dict:
    """The attributes that describe (and, on resume, must match) the store of this run."""
    frames_in, frames_out = int(model_cfg.frames_in), int(model_cfg.frames_out)
    return {
        "ckpt_sha256": file_sha256(ckpt),
        "ckpt": str(ckpt),
        "split": cfg.split,
        "model_config": model_cfg.to_dict(),
        "frames_in": frames_in,
        "frames_out": frames_out,
        "first_frame": frames_in,
        "train_step": int(payload.get("step", 0) or 0),
        "shards": str(cfg.shards),
        "version": project_version(),
        "precision": cfg.precision,
    }


def _predict(cfg: PredictConfig, rank: int, world: int, device: torch.device) -> dict[str, Any]:
    ckpt, how = resolve_checkpoint(cfg.ckpt, cfg.runs)
    if rank == 0:
        log.info("predict: checkpoint %s (%s)", ckpt, how)
    model, model_cfg, payload = load_predictor(ckpt, device)
    segmenter, seg_attrs = _segmenter_attrs(cfg.segmenter, device, rank)
    frames_in, frames_out = int(model_cfg.frames_in), int(model_cfg.frames_out)
    ids, frames_per_video = split_videos(cfg.shards, cfg.split)
    if frames_per_video < frames_in:
        raise InferError(
            f"checkpoint {ckpt} expects {frames_in} input frames, but split {cfg.split!r} in "
            f"{cfg.shards} has {frames_per_video} frames per video; use the shards the model "
            "was trained for, or another checkpoint"
        )
    attrs = {**_store_attrs(cfg, ckpt, model_cfg, payload), **seg_attrs}
    resumed = _on_rank0(
        lambda: prepare_store(
            cfg.out,
            attrs=attrs,
            video_ids=ids,
            frame_shape=(frames_out, *FRAME_SHAPE),
            overwrite=cfg.overwrite,
        )[1],
        world,
        rank,
    )
    store = PredStore.open(cfg.out, "r+")
    done = store.done_mask()
    todo = int((~done).sum())
    start, predicted = time.perf_counter(), 0
    if todo:
        models = (model, segmenter)
        predicted = _predict_batches(cfg, store, done, todo, models, model_cfg, rank, world, device)
    seconds = time.perf_counter() - start
    complete, predicted = _finish(store, predicted, rank, world)
    summary = {
        "store": str(cfg.out),
        "ckpt": str(ckpt),
        "ckpt_chosen": how,
        "segmenter": cfg.segmenter,
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
    done: np.ndarray,
    todo: int,
    models: tuple[torch.nn.Module, torch.nn.Module | None],
    model_cfg: Any,
    rank: int,
    world: int,
    device: torch.device,
) -> int:
    """Predict (and segment) every batch of this rank that holds a video not done yet; returns
    how many videos this rank wrote."""
    from infer.masks import segment_u8
    from shards.loader import make_loader
    from train.ddp import bf16_autocast

    model, segmenter = models
    frames_in, frames_out = int(model_cfg.frames_in), int(model_cfg.frames_out)
    loader = make_loader(
        cfg.shards,
        [cfg.split],
        mode="eval",
        batch_size=cfg.batch_size or auto_batch_size(model_cfg, device),
        frames_in=frames_in,
        frames_out=frames_out,
        workers=cfg.workers,
        rank=rank,
        world_size=world,
    )
    bar = tqdm(
        total=todo if world == 1 else None,
        unit="video",
        desc="predict",
        disable=not cfg.progress or rank != 0,
    )
    predicted, pending = 0, deque[Future]()
    with ThreadPoolExecutor(max_workers=1) as writer, torch.inference_mode():
        for batch in loader:
            pos = store.positions(batch["ids"])
            missing = ~done[pos]
            if not missing.any():
                continue
            inputs = batch["inputs"][:, -frames_in:].to(device)  # (B, T_in, 3, H, W)
            with bf16_autocast(cfg.precision == "bf16", device, rank == 0):
                pred = model(inputs)
            frames = to_uint8(pred.float())[missing]  # (b, T_out, H, W, 3)
            # the masks of the stored (uint8) frames, in float32 whatever the precision
            masks = segment_u8(segmenter, frames) if segmenter is not None else None
            # write in the background while the next batch runs; at most 2 batches queued
            pending.append(writer.submit(store.write, pos[missing], frames, masks))
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
