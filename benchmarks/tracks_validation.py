"""What a validation of `train --task tracks` costs: the first (read the val videos, segment
them, keep what scoring needs) against the later ones (move objects and count), beside what a
later one read before the cache (the loader's pass over the val videos alone).

    python benchmarks/tracks_validation.py --shards /tmp/sc/shards --segmenter SEG.pt \
        --tracks runs/tracks/last.pt
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.machine import machine  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shards", required=True, help="shards with a val split that has masks")
    ap.add_argument("--segmenter", required=True, help="segmenter checkpoint")
    ap.add_argument("--tracks", required=True, help="track forecaster checkpoint")
    ap.add_argument("--repeats", type=int, default=3, help="later validations timed")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()

    from convrnn_video import PipelineError

    try:  # a bad checkpoint or shard folder: one line, no traceback
        result = measure(args)
    except PipelineError as e:
        sys.exit(f"error: {e}")
    print(json.dumps(result, indent=1))


def measure(args: argparse.Namespace) -> dict:
    """The first and the later validations' seconds, the loader's pass, the scores."""
    import torch
    from convrnn_video.runtime.checkpoint import load_model
    from convrnn_video.runtime.device import autocast
    from convrnn_video.runtime.distributed import DistEnv
    from convrnn_video.shards.loader import make_loader
    from convrnn_video.train.config import TrainConfig
    from convrnn_video.train.tasks.tracks import TracksTask

    torch.set_num_threads(args.threads)
    model, model_cfg, _ = load_model(args.tracks, torch.device("cpu"), task="tracks")
    cfg = TrainConfig(task="tracks", shards=args.shards, segmenter=args.segmenter,
                      frames_in=model_cfg.frames_in, frames_out=model_cfg.frames_out,
                      threads=args.threads).validate()  # fmt: skip
    task = TracksTask()
    task.setup(cfg)
    env, fp32 = DistEnv(), autocast("fp32", torch.device("cpu"))
    loader = make_loader(
        args.shards, "val", mode="eval", batch_size=task.val_batch_size(cfg), masks=True,
        frames_in=cfg.frames_in, frames_out=cfg.frames_out,
    )  # fmt: skip
    t = time.perf_counter()
    first, _ = task.evaluate(model, loader, env, fp32, with_baseline=True)
    first_s = time.perf_counter() - t
    later, again = [], None
    for _ in range(args.repeats):
        t = time.perf_counter()
        again, _ = task.evaluate(model, loader, env, fp32, with_baseline=False)
        later.append(time.perf_counter() - t)
    t, videos = time.perf_counter(), 0
    for batch in loader:  # what every later validation read before the cache
        videos += len(batch["ids"])
    read_s = time.perf_counter() - t
    return {
        "benchmark": "tracks_validation",
        "machine": machine(),
        "videos": videos,
        "first_s": round(first_s, 1),
        "later_s_median": round(statistics.median(later), 2),
        "loader_pass_s": round(read_s, 1),
        "later_same_scores": again == first,
        "jaccard_frame22": round(first["jaccard"]["last"], 4),
    }


if __name__ == "__main__":
    main()
