"""`make_loader`: one streaming loader for every split, the split a parameter.

Train mode: shards reshuffled every epoch from (seed, epoch), a shuffle buffer of raw samples,
split across DDP ranks and loader workers, and an epoch of a fixed number of batches per rank.
Eval mode: every video exactly once across ranks and workers, in id order within a rank;
samples (not shards) are assigned, using the per-shard counts in the manifest. Who reads what
is `shards.partition`; the batch memory is `shards.buffers`; the checks of the arguments
and the choice of splits and shards are `shards.loader_args`; each worker's stream of
batches is `shards.stream`.

Workers decode PNGs straight into a uint8 batch array (B, T, H, W, C); the float conversion to
(B, T, C, H, W) in [0, 1] happens once per batch in the main process. T, H, W and C (3 for RGB,
1 for grayscale) come from the manifest. Memory is bounded by the shuffle buffer and the
prefetched batches, not by the dataset.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from convrnn_video.shards.buffers import DeviceBatches, FloatBuffers, release, to_float
from convrnn_video.shards.errors import ShardError
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
from convrnn_video.shards.partition import StreamSpec
from convrnn_video.shards.stream import VideoStream
from torch.utils.data import DataLoader

__all__ = ["MODES", "VideoLoader", "make_loader"]


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
