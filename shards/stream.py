"""`VideoStream`: the per-worker stream of uint8 batches behind `shards.loader`'s DataLoader.

Train mode: this worker's share of the shuffled samples of its rank (`shards.partition`), a
fixed number of batches, the batches of a resumed epoch skipped as raw samples. Eval mode: the
batches `shards.partition` gives this worker, in id order. Samples are decoded straight into
reused uint8 arrays (B, T, H, W, C) from `shards.buffers`; a damaged one raises, or is logged
and left out, as `on_error` says.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from convrnn_video.shards.buffers import BufferRing, release
from convrnn_video.shards.errors import ShardError
from convrnn_video.shards.format import MASK_SUFFIX
from convrnn_video.shards.partition import StreamSpec, eval_samples, train_samples, worker_batches
from convrnn_video.shards.reader import Raw, bad_sample, decode_mask, decode_sample
from torch.utils.data import IterableDataset, get_worker_info


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
        # in shards.loader's VideoLoader, where the round-robin order of the workers is known).
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
