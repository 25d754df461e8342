"""`make_loader`: one streaming loader for every split, the split a parameter.

Train mode: shards reshuffled every epoch from (seed, epoch), a shuffle buffer of raw samples,
split across DDP ranks and loader workers, and an epoch of a fixed number of batches per rank.
Eval mode: every video exactly once across ranks and workers, in id order within a rank;
samples (not shards) are assigned, using the per-shard counts in the manifest. Who reads what
is `shards.partition`; the batch memory is `shards.buffers`.

Workers decode PNGs straight into a uint8 batch array (B, T, H, W, C); the float conversion to
(B, T, C, H, W) in [0, 1] happens once per batch in the main process. T, H, W and C (3 for RGB,
1 for grayscale) come from the manifest. Memory is bounded by the shuffle buffer and the
prefetched batches, not by the dataset.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from convrnn_video.shards.buffers import BufferRing, DeviceBatches, FloatBuffers, release, to_float
from convrnn_video.shards.errors import ShardError
from convrnn_video.shards.format import MASK_SUFFIX
from convrnn_video.shards.manifest import read_manifest, split_entry, split_geometry
from convrnn_video.shards.partition import StreamSpec, eval_samples, train_samples, worker_batches
from convrnn_video.shards.reader import (
    ON_ERROR,
    Raw,
    ShardRef,
    bad_sample,
    decode_mask,
    decode_sample,
    split_shards,
)
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

__all__ = ["MODES", "VideoLoader", "make_loader"]

MODES = ("train", "eval")
DEFAULT_SPLITS = {"train": ("train", "unlabeled"), "eval": ("val",)}


class VideoStream(IterableDataset):
    """The per-worker stream of uint8 batches described by a StreamSpec."""

    def __init__(self, spec: StreamSpec) -> None:
        self.spec = spec

    def __iter__(self) -> Iterator[dict[str, Any]]:
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info else (0, 1)
        ring = BufferRing(shared=info is not None)
        if self.spec.mode == "train":
            return self._train(worker, workers, ring)
        return self._eval(worker, workers, ring)

    def _train(self, worker: int, workers: int, ring: BufferRing) -> Iterator[dict[str, Any]]:
        spec = self.spec
        slots, slot = spec.world_size * workers, spec.rank * workers + worker
        stream = train_samples(spec, slot, slots)
        # A resumed epoch: this worker's share of the batches already trained on is skipped
        # as raw samples, not decoded (the rest, < workers batches, is dropped after decoding
        # in VideoLoader, where the round-robin order of the workers is known).
        skip = spec.skip_batches // workers
        for b in range(worker_batches(spec, worker, workers)):
            if b < skip:
                for _ in range(spec.batch_size):
                    next(stream)
                continue
            batch = _Batch(spec, ring)
            while not batch.full:
                batch.add(next(stream))
            yield batch.done()

    def _eval(self, worker: int, workers: int, ring: BufferRing) -> Iterator[dict[str, Any]]:
        for _, group in itertools.groupby(
            eval_samples(self.spec, worker, workers), key=lambda bs: bs[0]
        ):
            batch = _Batch(self.spec, ring)
            for _, sample in group:
                batch.add(sample)
            if batch.count:
                yield batch.done()
            else:  # every sample skipped: hand the buffers back to the ring
                release(batch.inputs)
                release(batch.targets)


class _Batch:
    """Decodes samples straight into preallocated uint8 arrays (B, T, H, W, C)."""

    def __init__(self, spec: StreamSpec, ring: BufferRing) -> None:
        self.spec = spec
        fi, fo = spec.frames_in, spec.frames - spec.frames_in
        frame = (spec.height, spec.width, spec.channels)
        self.inputs, self._inputs = ring.get((spec.batch_size, fi, *frame))
        self.targets, self._targets = (
            ring.get((spec.batch_size, fo, *frame)) if fo else (None, None)
        )
        self.keys: list[str] = []
        self.ids: list[int] = []
        self.masks: list[np.ndarray] = []
        self.mask_present: list[bool] = []

    @property
    def count(self) -> int:
        return len(self.keys)

    @property
    def full(self) -> bool:
        return self.count == self.spec.batch_size

    def add(self, sample: Raw) -> None:
        try:
            i = self.count
            outs = [*self._inputs[i], *(self._targets[i] if self._targets is not None else ())]
            meta = decode_sample(sample, outs)
            mask, present = None, False
            if self.spec.masks and (self.spec.masks is True or MASK_SUFFIX in sample):
                shape = (int(meta["frames"]), self.spec.height, self.spec.width)
                mask, present = decode_mask(sample, shape), True
            elif self.spec.masks == "available":  # a split without masks: zeros, flagged
                mask = np.zeros((int(meta["frames"]), *outs[0].shape[:2]), dtype=np.uint8)
        except ShardError as exc:
            bad_sample(str(exc).removesuffix("."), self.spec.on_error)
            return
        self.keys.append(sample["__key__"])
        self.ids.append(int(meta["id"]))
        if mask is not None:
            self.masks.append(mask)
            self.mask_present.append(present)

    def done(self) -> dict[str, Any]:
        n = self.count
        return {  # uint8 (B, T, H, W, C), no copy here
            "inputs": self.inputs[:n],
            "targets": self.targets[:n] if self.targets is not None else None,
            "keys": self.keys,
            "ids": self.ids,
            "masks": torch.from_numpy(np.stack(self.masks)) if self.masks else None,
            "mask_present": self.mask_present if self.spec.masks else None,
        }


class VideoLoader:
    """Iterable of model-ready batches; `len()` is the number of batches this rank gets.

    In train mode each new pass over the loader advances the epoch by one (reshuffling);
    `set_epoch(e)` sets it explicitly (as the trainer does on resume).
    """

    def __init__(
        self,
        spec: StreamSpec,
        frames_in: int,
        frames_out: int | None,
        workers: int,
        prefetch: int,
        device: torch.device | None = None,
    ) -> None:
        self.spec = spec
        self.frames_in, self.frames_out = frames_in, frames_out
        self.workers, self.prefetch = workers, prefetch
        self.device = device

    @property
    def epoch(self) -> int:
        return self.spec.epoch

    def set_epoch(self, epoch: int) -> None:
        self.spec = replace(self.spec, epoch=epoch, skip_batches=0)

    def __len__(self) -> int:
        if self.spec.mode == "train":
            return self.spec.batches_per_rank - self.spec.skip_batches
        lo, hi = self.spec.rank_range()
        return -(-(hi - lo) // self.spec.batch_size)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        dataset = VideoStream(self.spec)
        kwargs: dict[str, Any] = {}
        if self.workers:
            kwargs = {"prefetch_factor": self.prefetch, "persistent_workers": False}
        # The DataLoader draws its workers' base seed from this generator, not from the global
        # RNG: the trainer's random streams (scheduled sampling, frame sampling) stay the same
        # whether or not a run was resumed at this epoch's start.
        rng = torch.Generator().manual_seed(self.spec.seed * 1_000_003 + self.spec.epoch)
        loader = DataLoader(
            dataset, batch_size=None, num_workers=self.workers, generator=rng, **kwargs
        )
        inputs, targets = FloatBuffers(), FloatBuffers()
        on_device = None  # a GPU: uint8 sent there and converted there (shards.buffers)
        if self.device is not None and self.device.type != "cpu":
            on_device = DeviceBatches(self.device)
        drop = self.spec.skip_batches % max(self.workers, 1) if self.spec.mode == "train" else 0
        for batch in _clean_errors(loader):
            if drop:  # resumed epoch: the last skipped batches, decoded by their workers
                drop -= 1
                release(batch["inputs"])
                release(batch["targets"])
                continue
            if on_device is not None:
                converted = (
                    on_device.to_float(batch["inputs"]),
                    on_device.to_float(batch["targets"]),
                )
            else:
                converted = to_float(batch["inputs"], inputs), to_float(batch["targets"], targets)
            release(batch["inputs"])  # the worker may now reuse these uint8 buffers
            release(batch["targets"])
            yield {
                "inputs": converted[0],
                "targets": converted[1],
                "keys": batch["keys"],
                "ids": batch["ids"],
                "masks": batch["masks"],
                "mask_present": batch["mask_present"],
            }
        if self.spec.mode == "train":
            self.set_epoch(self.spec.epoch + 1)


def _clean_errors(loader: DataLoader) -> Iterator[dict[str, Any]]:
    """Re-raise a worker's ShardError with its own message, not the worker's traceback."""
    try:
        yield from loader
    except ShardError as exc:
        text = str(exc)
        if "Original Traceback" not in text:
            raise
        last = [line for line in text.splitlines() if line.strip()][-1]
        raise ShardError(last.removeprefix("shards.errors.ShardError: ")) from None


def make_loader(
    source: str | Path,
    splits: str | Sequence[str] | None = None,
    *,
    mode: str = "train",
    batch_size: int,
    frames_in: int = 11,
    frames_out: int = 11,
    workers: int = 0,
    seed: int = 0,
    epoch: int = 0,
    samples_per_epoch: int | None = None,
    rank: int = 0,
    world_size: int = 1,
    on_error: str = "raise",
    shuffle_buffer: int = 64,
    masks: bool | str = False,
    prefetch: int = 2,
    start_batch: int = 0,
    device: torch.device | None = None,
) -> VideoLoader:
    """A streaming loader over the shards at `source` (a folder or an fsspec URL).

    Batches are dicts: "inputs" float32 (B, frames_in, C, H, W) in [0, 1]; "targets" float32
    (B, frames_out, C, H, W), or None for hidden; "keys" ["video_15000", ...]; "ids" [15000,
    ...]; "masks" uint8 (B, T, H, W) when `masks=True`, else None. `masks="available"` reads
    the masks of the splits that have them and gives zeros for the others, with "mask_present"
    [bool] * B saying which are real (None when masks are not asked for). H, W and C (3 for
    RGB, 1 for grayscale) are the splits' geometry in the manifest
    (`shards.manifest.split_geometry`); splits read together must share them.

    mode="train": shuffled; `samples_per_epoch` is per rank (default: all videos of `splits`
    divided by `world_size`), so every rank gets `samples_per_epoch // batch_size` batches.
    mode="eval": every video once across ranks and workers, id order within a rank; the last
    batch of a rank may be short. `on_error="skip"` logs and leaves out damaged samples.
    Default splits: train + unlabeled (train mode), val (eval mode). `start_batch` (train
    mode) resumes an epoch: the first batches are skipped as raw samples, not decoded, and the
    rest are exactly the batches an uninterrupted pass gives (with on_error="raise").
    `device` (a GPU): "inputs" and "targets" come on it, sent as uint8 and converted there.
    """
    _check_args(
        mode, on_error, batch_size, frames_in, frames_out, rank, world_size,
        workers, shuffle_buffer, prefetch,
    )  # fmt: skip
    manifest = read_manifest(source)
    splits = _named_splits(manifest, splits, mode)
    with_targets = _check_splits(manifest, splits, source, mode, frames_in, frames_out, masks)
    height, width, channels = _frame_shape(manifest, splits, source)
    refs = _shard_refs(source, manifest, splits)
    batches_per_rank = 0
    if mode == "train":
        batches_per_rank = _train_batches(
            refs, splits, batch_size, samples_per_epoch, world_size, start_batch
        )
    spec = StreamSpec(
        shards=refs,
        mode=mode,
        batch_size=batch_size,
        frames=frames_in + (frames_out if with_targets else 0),
        frames_in=frames_in,
        height=height,
        width=width,
        channels=channels,
        masks=masks,
        seed=seed,
        epoch=epoch,
        rank=rank,
        world_size=world_size,
        batches_per_rank=batches_per_rank,
        shuffle_buffer=shuffle_buffer,
        on_error=on_error,
        skip_batches=start_batch if mode == "train" else 0,
    )
    frames_out = frames_out if with_targets else None
    return VideoLoader(spec, frames_in, frames_out, workers, prefetch, device)


def _named_splits(
    manifest: dict[str, Any], splits: str | Sequence[str] | None, mode: str
) -> list[str]:
    """`splits` as a list; None: the mode's default splits the manifest has."""
    if splits is None:
        splits = [s for s in DEFAULT_SPLITS[mode] if s in manifest["splits"]] or list(
            DEFAULT_SPLITS[mode]
        )
    return [splits] if isinstance(splits, str) else list(splits)


def _shard_refs(
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


def _train_batches(
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


def _check_args(
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


def _check_splits(
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


def _frame_shape(
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
