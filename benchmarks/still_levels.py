"""How much does snapping still pixels help? Score one frames checkpoint with each
`ModelConfig.still_levels` (the same weights, eval mode, exactly as `predict` runs) beside
copy-last-frame, per predicted frame, and print JSON.

    python benchmarks/still_levels.py --ckpt /tmp/tq/run-X/best.pt --shards /tmp/tq/shards
    python benchmarks/still_levels.py --ckpt RUN/best.pt --shards /tmp/tq/real-shards \
        --splits train,val,unlabeled --levels 0,3                  # the nine real samples

For each level: the mean of every metric over the predicted frames, the first frame's value
(where copying is hardest to beat) and in how many frames the model beats copy-last.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.machine import machine  # noqa: E402
from benchmarks.train_quality import METRICS, beats, score_splits  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ckpt", type=Path, required=True, help="a frames checkpoint")
    ap.add_argument("--shards", required=True, help="shards with the videos to score")
    ap.add_argument("--splits", default="val", help="comma-separated splits")
    ap.add_argument("--levels", default="0,0.5,1,2,3,4", help="still_levels to try")
    ap.add_argument("--precision", default="auto")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    import torch
    from convrnn_video.runtime.checkpoint import load_model
    from convrnn_video.shards.errors import ShardError
    from convrnn_video.train.errors import TrainError

    torch.set_num_threads(args.threads)
    try:
        levels_tried = [float(v) for v in args.levels.split(",")]
        trained, _, _ = load_model(args.ckpt, torch.device("cpu"), task="frames")
        rows, copy, videos = score_levels(trained, levels_tried, args)
    except (TrainError, ShardError, ValueError) as exc:
        sys.exit(f"error: {exc}")
    print(json.dumps({
        "benchmark": "still_levels", "machine": machine(),
        "ckpt": str(args.ckpt),
        "trained_still_levels": trained.cfg.still_levels,
        "shards": args.shards,
        "splits": args.splits,
        "videos": videos,
        "copy_last": {"mean": {k: round(copy[k]["mean"], 6) for k in METRICS},
                      "frame_1": {k: round(copy[k]["per_frame"][0], 6) for k in METRICS}},
        "levels": rows,
    }, indent=1))  # fmt: skip


def score_levels(trained, levels_tried: list[float], args) -> tuple[list[dict], dict, int]:
    """(one row per level, copy-last metrics, videos scored): `trained`'s weights rebuilt with
    each still_levels, in eval mode."""
    import dataclasses

    from convrnn_video.convrnn import build_model

    rows = []
    for levels in levels_tried:
        model = build_model(dataclasses.replace(trained.cfg, still_levels=levels))
        model.load_state_dict(trained.state_dict())
        model.eval()
        m, copy, videos = score_splits(model, args.shards, args.splits.split(","), args.precision)
        won = beats(m, copy)
        rows.append({
            "still_levels": levels,
            "mean": {k: round(m[k]["mean"], 6) for k in METRICS},
            "frame_1": {k: round(m[k]["per_frame"][0], 6) for k in METRICS},
            "frames_won": {k: v["frames_won"] for k, v in won.items()},
        })  # fmt: skip
        print(f"still_levels {levels}: {rows[-1]['frames_won']}", file=sys.stderr, flush=True)
    return rows, copy, videos


if __name__ == "__main__":
    main()
