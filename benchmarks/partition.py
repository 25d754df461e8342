"""`loader.py --partition-only`: one train epoch of simulated DDP ranks x loader workers over
shards that are only counted (the shard reader yields keys, no I/O), so the numbers are the
partition's alone: samples read per sample delivered, and how often each video came."""

from __future__ import annotations

import contextlib
from collections import Counter

import convrnn_video.shards.partition as partition
from convrnn_video.shards.partition import StreamSpec, train_samples, worker_batches
from convrnn_video.shards.reader import ShardRef


@contextlib.contextmanager
def counted_reads():
    """Replace the partition's shard reader by one that yields each sample's key and index
    only (no I/O) and counts the samples read: -> a dict whose "reads" grows."""
    count = {"reads": 0}
    real = partition.read_shard

    def read(shard: ShardRef, on_error: str = "raise"):
        for i in range(shard.videos):
            count["reads"] += 1
            yield {"__key__": f"{shard.name}/{i}", "__index__": i}

    partition.read_shard = read
    try:
        yield count
    finally:
        partition.read_shard = real


def partition_epoch(shards: int, per_shard: int, ranks: int, workers: int, batch: int) -> dict:
    """One epoch of `ranks` x `workers` slots over `shards` shards of `per_shard` videos, with
    the loader's default epoch (every video once over the ranks): samples read per sample
    delivered, and the spread of the times each video came."""
    refs = tuple(
        ShardRef("mem://bench", f"s{i:03d}.tar", "unlabeled", per_shard, 22, False)
        for i in range(shards)
    )
    total = shards * per_shard
    spec = StreamSpec(
        shards=refs, mode="train", batch_size=batch, frames=22, frames_in=11, height=1,
        width=1, channels=3, masks=False, seed=0, epoch=0, rank=0, world_size=ranks,
        batches_per_rank=total // ranks // batch, shuffle_buffer=64, on_error="raise",
    )  # fmt: skip
    slots = ranks * workers
    seen: Counter = Counter()
    with counted_reads() as count:
        for slot in range(slots):
            stream = train_samples(spec, slot, slots)
            for _ in range(worker_batches(spec, slot % workers, workers) * batch):
                seen[next(stream)["__key__"]] += 1
    delivered = sum(seen.values())
    times = [seen.get(f"{r.name}/{i}", 0) for r in refs for i in range(per_shard)]
    return {
        "shards": shards,
        "videos": total,
        "slots": f"{ranks}x{workers}",
        "delivered": delivered,
        "reads_per_sample": round(count["reads"] / delivered, 2),
        "videos_0_times": sum(t == 0 for t in times),
        "videos_1_time": sum(t == 1 for t in times),
        "videos_2plus_times": sum(t >= 2 for t in times),
        "most_times": max(times),
    }


def partition_table(batch: int) -> list[dict]:
    """partition_epoch for 1, 8 and 32 slots on 10 shards (fewer than 32 slots) and on 48
    shards (more than 32: whole shards do not split evenly), 50 videos a shard."""
    return [
        partition_epoch(shards, 50, ranks, workers, batch)
        for shards in (10, 48)
        for ranks, workers in ((1, 1), (2, 4), (8, 4))
    ]
