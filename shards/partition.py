"""Which samples each DDP rank and loader worker reads, and in what order.

Train mode: one permutation of the shards per (seed, epoch, pass), the same on every rank, laid
end to end makes the epoch's tape of samples; each rank x worker slot takes one contiguous
segment of it, as long as its fixed quota of batches, so every rank gets the same number of
batches, every video comes once per epoch (when the quotas add up to the videos), and a shard
is read only by the few slots whose segments touch it.

Eval mode: every video exactly once. A rank takes a contiguous block of positions in id order
(from the per-shard counts in the manifest); batch b of a rank goes to worker b mod W, which
matches the DataLoader's round-robin, so a rank's output is in id order.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator
from dataclasses import dataclass

from convrnn_video.shards.errors import ShardError
from convrnn_video.shards.reader import Raw, ShardRef, read_shard, shuffle


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


def slot_quotas(spec: StreamSpec, slots: int) -> list[int]:
    """Train mode: the samples each of the `slots` rank x worker slots takes per epoch (slot
    rank * workers + worker makes worker_batches(...) batches)."""
    workers = slots // spec.world_size
    return [worker_batches(spec, s % workers, workers) * spec.batch_size for s in range(slots)]


def shard_order(spec: StreamSpec, n_pass: int) -> list[ShardRef]:
    """The shards of pass `n_pass` of the epoch, in the same order on every rank and worker."""
    order = list(spec.shards)
    random.Random(f"shards:{spec.seed}:{spec.epoch}:{n_pass}").shuffle(order)
    return order


def tape_pieces(spec: StreamSpec, start: int, stop: int) -> Iterator[tuple[ShardRef, int, int]]:
    """Positions [start, stop) of the epoch's tape as (shard, lo, hi): samples lo..hi-1 of the
    shard, in tape order. The tape is pass 0's shard order, then pass 1's, ...: position p is
    sample p mod N of pass p // N (N: the videos of all shards)."""
    n = spec.videos
    p = start
    while p < stop:
        n_pass, offset = divmod(p, n)
        end = min(stop, (n_pass + 1) * n) - n_pass * n  # this pass's part, as offsets
        at = 0
        for shard in shard_order(spec, n_pass):
            lo, hi = max(offset, at), min(end, at + shard.videos)
            if lo < hi:
                yield shard, lo - at, hi - at
            at += shard.videos
        p = (n_pass + 1) * n


def train_samples(spec: StreamSpec, slot: int, slots: int) -> Iterator[Raw]:
    """Slot `slot` of `slots`' samples: its quota of the epoch, then more if samples were
    skipped as damaged, each round through the shuffle buffer.

    The epoch is a tape of passes over the shards (`tape_pieces`), cut into one contiguous
    segment per slot, as long as its quota: every video comes once per epoch when the quotas
    add up to the videos (the default epoch), and a slot opens only the shards its segment
    touches, reading each up to the segment's end (a shard split among k slots is read about
    (k + 1) / 2 times, not once per slot). Round r (past the quota) takes the segment one
    epoch's worth further along the tape."""
    quotas = slot_quotas(spec, slots)
    total, first, quota = sum(quotas), sum(quotas[:slot]), quotas[slot]
    if quota == 0:  # a worker without batches
        return
    got = 0

    def samples(start: int) -> Iterator[Raw]:
        nonlocal got
        for shard, lo, hi in tape_pieces(spec, start, start + quota):
            for sample in read_shard(shard, spec.on_error):
                index = sample["__index__"]
                if index >= hi:
                    break
                if index >= lo:
                    got += 1
                    yield sample
                if index == hi - 1:  # stop reading the shard at the segment's end
                    break

    for n_round in itertools.count():
        rng = random.Random(f"samples:{spec.seed}:{spec.epoch}:{n_round}:{slot}")
        before = got
        yield from shuffle(samples(n_round * total + first), spec.shuffle_buffer, rng)
        if got == before:
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
