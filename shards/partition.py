"""Which samples each DDP rank and loader worker reads, and in what order.

Train mode: shards are partitioned among the rank x worker slots from one permutation per
(seed, epoch, pass), the same on every rank; with fewer shards than slots, samples are
partitioned instead. Each worker has a fixed quota of batches and cycles through its part
until the quota is met, so every rank gets the same number of batches.

Eval mode: every video exactly once. A rank takes a contiguous block of positions in id order
(from the per-shard counts in the manifest); batch b of a rank goes to worker b mod W, which
matches the DataLoader's round-robin, so a rank's output is in id order.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator
from dataclasses import dataclass

from shards.errors import ShardError
from shards.reader import Raw, ShardRef, read_shard, shuffle


@dataclass(frozen=True)
class StreamSpec:
    """Everything a worker needs to produce its batches (picklable)."""

    shards: tuple[ShardRef, ...]
    mode: str
    batch_size: int
    frames: int  # frames decoded per video (frames_in + frames_out, or frames_in for hidden)
    frames_in: int
    height: int  # frame size and channels, the same for every split of the loader
    width: int
    channels: int  # 3 (RGB) or 1 (grayscale)
    masks: bool | str  # True, False or "available" (see make_loader)
    seed: int
    epoch: int
    rank: int
    world_size: int
    batches_per_rank: int  # train mode
    shuffle_buffer: int
    on_error: str
    skip_batches: int = 0  # train mode: the rank's batches of this epoch already consumed

    @property
    def videos(self) -> int:
        return sum(s.videos for s in self.shards)

    def rank_range(self) -> tuple[int, int]:
        """Eval mode: the rank's contiguous block [lo, hi) of positions in id order."""
        n = self.videos
        return n * self.rank // self.world_size, n * (self.rank + 1) // self.world_size


def worker_batches(spec: StreamSpec, worker: int, workers: int) -> int:
    """Train mode: how many of the rank's batches worker `worker` of `workers` makes."""
    return spec.batches_per_rank // workers + (worker < spec.batches_per_rank % workers)


def train_samples(spec: StreamSpec, slot: int, slots: int) -> Iterator[Raw]:
    """Endless passes over slot `slot` of `slots`' part of the shards, each pass reshuffled."""
    seen = 0

    def samples(order: list[ShardRef]) -> Iterator[Raw]:
        nonlocal seen
        if len(order) >= slots:  # whole shards per slot
            for shard in order[slot::slots]:
                for sample in read_shard(shard, spec.on_error):
                    seen += 1
                    yield sample
        else:  # fewer shards than ranks x workers: every slot reads all, keeps its share
            for shard in order:
                for sample in read_shard(shard, spec.on_error):
                    seen += 1
                    if seen % slots == slot:
                        yield sample

    for n_pass in itertools.count():
        order = list(spec.shards)  # the same order on every rank and worker
        random.Random(f"shards:{spec.seed}:{spec.epoch}:{n_pass}").shuffle(order)
        rng = random.Random(f"samples:{spec.seed}:{spec.epoch}:{n_pass}:{slot}")
        before = seen
        yield from shuffle(samples(order), spec.shuffle_buffer, rng)
        if seen == before:
            raise ShardError(
                f"no readable samples for rank {spec.rank} in "
                f"{', '.join(s.url for s in spec.shards)}"
            )


def eval_samples(spec: StreamSpec, worker: int, workers: int) -> Iterator[tuple[int, Raw]]:
    """(batch index within the rank, sample) for this worker's batches, in id order; shards
    holding none of its samples are not opened."""
    lo, hi = spec.rank_range()

    def batch_of(position: int) -> int:
        return (position - lo) // spec.batch_size

    start = 0
    for shard in spec.shards:
        end = start + shard.videos
        wanted = range(max(start, lo), min(end, hi))
        if wanted and any(
            batch_of(p) % workers == worker for p in _batch_starts(wanted, lo, spec.batch_size)
        ):
            for sample in read_shard(shard, spec.on_error):
                p = start + sample["__index__"]
                if lo <= p < min(hi, end) and batch_of(p) % workers == worker:
                    yield batch_of(p), sample
        start = end


def _batch_starts(wanted: range, lo: int, batch_size: int) -> list[int]:
    """One position per batch that `wanted` touches."""
    first, last = (wanted.start - lo) // batch_size, (wanted.stop - 1 - lo) // batch_size
    return [max(wanted.start, lo + b * batch_size) for b in range(first, last + 1)]
