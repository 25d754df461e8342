"""How long `train --task tracks` reads its training table before the first step, in one
process and in worker processes (`--workers`, train/tasks/track_table.py), side by side in
one run: the true masks of a labelled split's first videos, read into memory first, then turned
into the table (every object of every window of each video and its mirror image) --repeats
times each way, alternating; prints JSON with the medians and their ratio.

    python benchmarks/track_table.py --shards CACHE/shards --videos 1000 --workers 2

--shards is a folder `ingest` made (e.g. the cache of `mask_quality.py`), with masks in
--split (train by default).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from convrnn_video.convrnn import get_preset  # noqa: E402
from convrnn_video.train.contacts import read_masks  # noqa: E402
from convrnn_video.train.tasks.track_table import tables  # noqa: E402
from extrapolate import cpu_model  # noqa: E402

from convrnn_video import PipelineError  # noqa: E402

CHUNK = 32  # videos a chunk, as train/tasks/tracks.py reads them


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shards", required=True, help="a shard folder with masks")
    ap.add_argument("--split", default="train")
    ap.add_argument("--videos", type=int, default=1000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(1)  # as a training process reads (one thread)
    cfg = get_preset("tracks")
    try:
        masks = read_masks(args.shards, args.split, args.videos, cfg.frames_in + cfg.frames_out)
    except PipelineError as e:  # no shards, or a split without masks: one line, no traceback
        sys.exit(f"error: {e}")
    chunks = [masks[i : i + CHUNK] for i in range(0, len(masks), CHUNK)]
    seconds: dict[int, list[float]] = {0: [], args.workers: []}
    objects = {}
    for _ in range(args.repeats):
        for workers in seconds:
            start = time.perf_counter()
            objects[workers] = sum(len(t.features) for t in tables(chunks, cfg, workers))
            seconds[workers].append(round(time.perf_counter() - start, 2))
    one, many = (statistics.median(seconds[w]) for w in seconds)
    print(json.dumps({
        "benchmark": "track_table", "cpu": cpu_model(), "videos": len(masks),
        "objects": objects[0], "same_objects": objects[0] == objects[args.workers],
        "seconds_one_process": seconds[0], f"seconds_{args.workers}_workers": seconds[args.workers],
        "median_ratio": round(one / many, 2),
    }, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
