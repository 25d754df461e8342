"""The arguments of `make_loader`, checked and resolved against the manifest.

`check_args` reports every bad argument at once; `named_splits` picks the splits (the mode's
defaults when none are named); `check_splits` and `frame_shape` check that the splits can give
the frames, masks and one frame size asked for; `shard_refs` lists their shards and
`train_batches` the batches per rank of a train epoch. Each problem is one ShardError.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from convrnn_video.shards.errors import ShardError
from convrnn_video.shards.manifest import split_entry, split_geometry
from convrnn_video.shards.reader import ON_ERROR, ShardRef, split_shards

__all__ = [
    "DEFAULT_SPLITS",
    "MODES",
    "check_args",
    "check_splits",
    "frame_shape",
    "named_splits",
    "shard_refs",
    "train_batches",
]

MODES = ("train", "eval")
DEFAULT_SPLITS = {"train": ("train", "unlabeled"), "eval": ("val",)}


def named_splits(
    manifest: dict[str, Any], splits: str | Sequence[str] | None, mode: str
) -> list[str]:
    """`splits` as a list; None: the mode's default splits the manifest has."""
    if splits is None:
        splits = [s for s in DEFAULT_SPLITS[mode] if s in manifest["splits"]] or list(
            DEFAULT_SPLITS[mode]
        )
    return [splits] if isinstance(splits, str) else list(splits)


def shard_refs(
    source: str | Path, manifest: dict[str, Any], splits: list[str]
) -> tuple[ShardRef, ...]:
    """The shards of `splits` (each split once, in the order given); a ShardError when they
    hold no videos."""
    refs = tuple(
        ref for split in dict.fromkeys(splits) for ref in split_shards(source, manifest, split)
    )
    if sum(r.videos for r in refs) == 0:
        raise ShardError(f"no videos in split(s) {', '.join(splits)} of {source}")
    return refs


def train_batches(
    refs: tuple[ShardRef, ...],
    splits: list[str],
    batch_size: int,
    samples_per_epoch: int | None,
    world_size: int,
    start_batch: int,
) -> int:
    """Batches per rank in a train epoch over the shards `refs` of `splits`; a ShardError for
    an epoch of less than one batch or a `start_batch` outside it."""
    total = sum(r.videos for r in refs)
    per_rank = samples_per_epoch if samples_per_epoch is not None else total // world_size
    batches_per_rank = per_rank // batch_size
    if batches_per_rank < 1:
        raise ShardError(
            f"an epoch of {per_rank} samples per rank is less than one batch of {batch_size} "
            f"({total} videos in {', '.join(splits)}, world_size {world_size}); lower the "
            "batch size or set samples_per_epoch"
        )
    if not 0 <= start_batch <= batches_per_rank:
        raise ShardError(
            f"start_batch {start_batch} is outside the epoch's {batches_per_rank} batches"
        )
    return batches_per_rank


def check_args(
    mode: str, on_error: str, batch_size: int, frames_in: int, frames_out: int, rank: int,
    world_size: int, workers: int, shuffle_buffer: int, prefetch: int,
) -> None:  # fmt: skip
    """Raise one ShardError listing every bad argument of make_loader."""
    problems = []
    if mode not in MODES:
        problems.append(f"mode must be one of {MODES}, got {mode!r}")
    if on_error not in ON_ERROR:
        problems.append(f"on_error must be one of {ON_ERROR}, got {on_error!r}")
    if batch_size < 1:
        problems.append(f"batch_size must be >= 1, got {batch_size}")
    if frames_in < 1 or frames_out < 0:
        problems.append(
            f"frames_in must be >= 1 and frames_out >= 0, got {frames_in}, {frames_out}"
        )
    if not 0 <= rank < world_size:
        problems.append(f"rank {rank} is not in [0, world_size={world_size})")
    if workers < 0 or shuffle_buffer < 1 or prefetch < 1:
        problems.append("workers must be >= 0, shuffle_buffer and prefetch >= 1")
    if problems:
        raise ShardError("make_loader: " + "; ".join(problems))


def check_splits(
    manifest: dict[str, Any],
    splits: list[str],
    source: str | Path,
    mode: str,
    frames_in: int,
    frames_out: int,
    masks: bool | str,
) -> bool:
    """Check that `splits` can give the frames and masks asked for; True when the batches
    have targets (False for hidden: no frames after the inputs)."""
    entries = {split: split_entry(manifest, split, source) for split in splits}
    # a split with no frames after the inputs (hidden) gives inputs only
    hidden = [s for s, e in entries.items() if s == "hidden" or int(e["frames"]) <= frames_in]
    if hidden and (len(hidden) < len(entries) or mode == "train"):
        raise ShardError(
            f"split(s) {', '.join(hidden)} have no frames after the first {frames_in}: they "
            "cannot be trained on or mixed with labelled splits in one loader"
        )
    for split, entry in entries.items():
        n = int(entry["frames"])
        if frames_in > n or (split not in hidden and frames_in + frames_out > n):
            raise ShardError(
                f"frames_in={frames_in} + frames_out={frames_out}, but {split} videos have {n}"
            )
        if masks is True and not entry.get("masks"):
            raise ShardError(f"masks=True but the {split} split has no masks")
    return not hidden and frames_out > 0


def frame_shape(
    manifest: dict[str, Any], splits: list[str], source: str | Path
) -> tuple[int, int, int]:
    """(height, width, channels) shared by `splits`; ShardError naming them if they differ."""
    shapes = {split: split_geometry(manifest, split)[1:] for split in splits}
    if len(set(shapes.values())) > 1:
        found = ", ".join(f"{split} {h}x{w}x{c}" for split, (h, w, c) in shapes.items())
        raise ShardError(
            f"splits of different frame sizes cannot share one loader ({found}, as HxWxC) "
            f"in {source}"
        )
    return shapes[splits[0]]
