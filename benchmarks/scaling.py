"""What more compute buys: one training run of a task's recipe, scored at checkpoints along
the way (`train --snapshot-at`), beside the baselines that need no training.

    python benchmarks/scaling.py --cache /tmp/sc --task masks --minutes 80 --at 10,20,40
    python benchmarks/scaling.py --cache /tmp/sc --task frames --minutes 40 --at 10,20
    python benchmarks/scaling.py --cache /tmp/sc --task tracks --minutes 20 --at 1,2,5,10

masks: the masks task's defaults (`compact-masks-extrapolate`, 96x144 windows, cosine over
--minutes) on the true masks of generated train videos; frame 22 of val scored from the true
masks of frames 1-11 (benchmarks/motion.py), beside copying frame 11's mask and extrapolating
its objects. tracks: the same for the track forecaster (its defaults, on the same true masks).
frames: the frames task's defaults; val MSE and `energy` per snapshot beside
copy-last (benchmarks/train_quality.py). One run with a cosine over the whole budget: an early
snapshot is taken at a high learning rate, so it scores below a run whose budget ended there.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.data import prepare_shards, run_records  # noqa: E402
from benchmarks.machine import machine  # noqa: E402


def snapshots(run: Path, at: list[float]) -> dict[str, Path]:
    """{"10min": RUN/at-10min.pt, ..., "end": RUN/last.pt} of the snapshots that exist."""
    found = {f"{m:g}min": run / f"at-{m:g}min.pt" for m in at}
    found = {k: p for k, p in found.items() if p.exists()}
    return {**found, "end": run / "last.pt"}


def score_frames(ckpts: dict[str, Path], shards: Path) -> dict:
    import torch
    from convrnn_video.runtime.checkpoint import load_model

    from benchmarks.train_quality import score_splits

    out = {}
    for name, path in ckpts.items():
        model = load_model(path, torch.device("cpu"))[0]
        ours, copy, _ = score_splits(model, shards, ("val",), "fp32")
        out[name] = {k: {"model": ours[k]["mean"], "copy_last": copy[k]["mean"],
                         "model_last_frame": ours[k]["per_frame"][-1]}
                     for k in ("mse", "ssim", "energy")}  # fmt: skip
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cache", type=Path, required=True)
    ap.add_argument("--task", choices=("masks", "tracks", "frames"), default="masks")
    ap.add_argument("--preset", default=None, help="default: the task's")
    ap.add_argument("--train", type=int, default=1000)
    ap.add_argument("--val", type=int, default=100)
    ap.add_argument("--minutes", type=float, default=80.0, help="the run's budget")
    ap.add_argument("--at", default="10,20,40", help="snapshot minutes, comma-separated")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    import torch
    from convrnn_video.runtime.checkpoint import load_checkpoint
    from convrnn_video.train.config import TrainConfig
    from convrnn_video.train.loop import run_training

    at = [float(x) for x in args.at.split(",") if x]
    shards = prepare_shards(args.cache, args.train, args.val, args.seed, args.threads)
    run = args.cache / f"scaling-{args.task}-{time.strftime('%Y%m%d-%H%M%S')}"
    cfg = TrainConfig(
        task=args.task, shards=str(shards), out=str(run), preset=args.preset,
        train_splits=("train",), val_split="val" if args.task == "frames" else "",
        time_limit=args.minutes, snapshot_minutes=tuple(at), epochs=100_000,
        threads=args.threads, seed=args.seed, progress=False, log_every=20, early_stop=0,
        val_every=10**9,
    )  # fmt: skip
    torch.set_num_threads(args.threads)
    t = time.perf_counter()
    run_training(cfg)
    train_s = time.perf_counter() - t
    end = run_records(run)["end"][-1]
    ckpts = snapshots(run, at)
    steps = {k: load_checkpoint(p)["step"] for k, p in ckpts.items()}
    clock = {k: round(load_checkpoint(p)["clock_seconds"] / 60, 2) for k, p in ckpts.items()}
    if args.task in ("masks", "tracks"):
        from benchmarks.motion import score

        scores = score({k: str(p) for k, p in ckpts.items()}, shards)
    else:
        scores = score_frames(ckpts, shards)
    print(json.dumps({
        "benchmark": "scaling",
        "machine": machine(),
        "task": args.task,
        "recipe": {k: v for k, v in cfg.to_dict().items()
                   if k in ("preset", "batch_size", "lr", "lr_schedule", "warmup_steps",
                            "crop", "ss_steps", "time_limit", "threads")},
        "data": {"train": args.train, "val": args.val},
        "train_seconds": round(train_s, 1),
        "others_cores": end.get("others_cores"),  # other processes' busy cores: fewer steps
        "steps": steps,
        "clock_minutes": clock,
        "scores": scores,
        "run": str(run),
    }, indent=1))  # fmt: skip


if __name__ == "__main__":
    main()
