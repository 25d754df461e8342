"""`make_loader`: one streaming loader for every split, the split a parameter.

Train mode: shards reshuffled every epoch from (seed, epoch), a shuffle buffer of raw samples,
split across DDP ranks and loader workers, and an epoch of a fixed number of batches per rank.
Eval mode: every video exactly once across ranks and workers, in id order within a rank;
samples (not shards) are assigned, using the per-shard counts in the manifest. Who reads what
is `shards.partition`; the batch memory is `shards.buffers`; the checks of the arguments
and the choice of splits and shards are `shards.loader_args`.

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
from convrnn_video.shards.loader_args import (
    MODES,
    check_args,
    check_splits,
    frame_shape,
    named_splits,
    shard_refs,
    train_batches,
)
from convrnn_video.shards.manifest import read_manifest
from convrnn_video.shards.partition import StreamSpec, eval_samples, train_samples, worker_batches
from convrnn_video.shards.reader import Raw, bad_sample, decode_mask, decode_sample
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

__all__ = ["MODES", "VideoLoader", "make_loader"]


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
    check_args(
        mode, on_error, batch_size, frames_in, frames_out, rank, world_size,
        workers, shuffle_buffer, prefetch,
    )  # fmt: skip
    manifest = read_manifest(source)
    splits = named_splits(manifest, splits, mode)
    with_targets = check_splits(manifest, splits, source, mode, frames_in, frames_out, masks)
    height, width, channels = frame_shape(manifest, splits, source)
    refs = shard_refs(source, manifest, splits)
    batches_per_rank = 0
    if mode == "train":
        batches_per_rank = train_batches(
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
