"""The trainer's side of the data: checking the manifest and building the shard loaders."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator

from convrnn_video.runtime.distributed import DistEnv
from convrnn_video.shards.errors import ShardError
from convrnn_video.shards.manifest import observed_frames, read_manifest, video_frames
from convrnn_video.train.config import TrainConfig
from convrnn_video.train.errors import TrainError
from convrnn_video.train.task_defaults import TASK_DEFAULTS

log = logging.getLogger(__name__)


def settle_from_shards(cfg: TrainConfig) -> TrainConfig:
    """A new run takes what the user left out from the shards' manifest: --frames-in (the
    frames of a hidden video; without hidden videos half of a whole one), --frames-out (the
    rest of a whole video), and the task's training splits the shards hold (said in one line
    when one is missing). A manifest that cannot be read is left to `check_shards` to report.
    -> cfg, changed in place."""
    task = cfg.task or "frames"  # None: frames, as `validate` settles it
    if cfg.resume or not cfg.shards or task not in TASK_DEFAULTS:
        return cfg
    try:
        manifest = read_manifest(cfg.shards)
        whole = video_frames(manifest)
    except ShardError:
        return cfg
    if cfg.frames_in is None:
        cfg.frames_in = min(observed_frames(manifest) or whole // 2, whole - 1)
    if cfg.frames_out is None:
        cfg.frames_out = max(whole - cfg.frames_in, 1)
    if cfg.train_splits is None:
        want = tuple(TASK_DEFAULTS[task]["train_splits"])
        if task in ("masks", "tracks") and cfg.labels:
            want = ("train", "unlabeled")
        have = tuple(s for s in want if s in manifest["splits"])
        if have and have != want:
            missing = ", ".join(s for s in want if s not in have)
            log.info("the shards have no %s split: training on %s", missing, ", ".join(have))
            cfg.train_splits = have
    return cfg


def check_shards(cfg: TrainConfig, task) -> tuple[bool, tuple[int, int, int, int]]:
    """Check the manifest has every split asked for, long enough videos of one frame size,
    and what the task needs of each split; -> (has a val split, the training splits'
    (frames, height, width, channels))."""
    from convrnn_video.shards.errors import ShardError
    from convrnn_video.shards.manifest import read_manifest, split_geometry

    try:
        manifest = read_manifest(cfg.shards)
    except ShardError as exc:
        raise TrainError(str(exc)) from None
    splits = manifest["splits"]
    present = ", ".join(splits) or "none"
    need = cfg.frames_in + cfg.frames_out
    for split in cfg.train_splits:
        if split not in splits:
            raise TrainError(
                f"split {split!r} (from --train-splits) is not in {cfg.shards}/manifest.json "
                f"(present: {present})"
            )
    for split in (*cfg.train_splits, cfg.val_split):
        if split in splits and int(splits[split]["frames"]) < need:
            raise TrainError(
                f"split {split!r} has {splits[split]['frames']} frames per video; "
                f"--frames-in {cfg.frames_in} + --frames-out {cfg.frames_out} needs {need}"
            )
    for split in (*cfg.train_splits, cfg.val_split):
        problem = task.check_split(cfg, split, splits[split]) if split in splits else None
        if problem:
            raise TrainError(problem)
    used = [s for s in (*cfg.train_splits, cfg.val_split) if s in splits]
    sizes = {s: split_geometry(manifest, s)[1:] for s in used}  # (H, W, C) of each split
    if len(set(sizes.values())) > 1:
        raise TrainError(f"the splits trained and validated on differ in frame size: {sizes}")
    geometry = split_geometry(manifest, cfg.train_splits[0])
    if not cfg.val_split:
        log.info("no validation (--val-split ''); best.pt will follow last.pt")
        return False, geometry
    if cfg.val_split not in splits:
        log.warning(
            "warning: no %r split in %s (present: %s): training without validation; "
            "best.pt will follow last.pt",
            cfg.val_split, cfg.shards, present,
        )  # fmt: skip
        return False, geometry
    return True, geometry


def make_batches(
    cfg: TrainConfig,
    task,
    env: DistEnv,
    mode: str,
    splits: list[str],
    epoch: int,
    batch_size: int,
    start_batch: int = 0,
):
    """This rank's loader: train mode is shuffled by (seed, epoch) with equal batch counts on
    every rank; eval mode gives every video of `splits` once across ranks, or with
    --val-videos N each rank the first N / ranks of its own (N in all, give or take a batch).
    On a GPU the frames come already on it (sent as uint8, converted there)."""
    from convrnn_video.shards.loader import make_loader

    own = task.train_batches(cfg, env, epoch, start_batch) if mode == "train" else None
    if own is not None:
        return own
    loader = make_loader(
        cfg.shards, splits, mode=mode, batch_size=batch_size, **task.loader_kwargs(cfg, mode),
        workers=cfg.workers, seed=cfg.seed, epoch=epoch,
        samples_per_epoch=cfg.samples_per_epoch if mode == "train" else None,
        rank=env.rank, world_size=env.world_size, start_batch=start_batch, device=env.device,
    )  # fmt: skip
    if mode == "eval" and cfg.val_videos:  # each rank its share of the first --val-videos
        return first_videos(loader, -(-cfg.val_videos // env.world_size))
    return loader


def first_videos(batches: Iterable[dict], videos: int) -> Iterator[dict]:
    """The batches of `batches` up to the one that holds its `videos`-th video (kept whole);
    the rest is not read."""
    seen = 0
    for batch in batches:
        yield batch
        seen += len(batch["keys"])
        if seen >= videos:
            return
