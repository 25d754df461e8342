"""Does training beat copying the last frame? Train a preset for a wall-clock budget on a
generated set and print val MSE / SSIM per predicted frame beside copy-last-frame, as JSON.

    python benchmarks/train_quality.py --cache /tmp/tq               # 300/50 videos, 20 min
    python benchmarks/train_quality.py --cache /tmp/tq-small --train 16 --val 4 --minutes 1

The data (generated, then ingested) is kept in --cache and reused when the counts match.
Target: the model's mean val MSE over the predicted frames below copy-last-frame's.
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

from benchmarks.data import prepare_shards  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", type=Path, required=True, help="folder for data, shards, runs")
    ap.add_argument("--train", type=int, default=300, help="train videos to generate")
    ap.add_argument("--val", type=int, default=50, help="val videos to generate")
    ap.add_argument("--minutes", type=float, default=20.0, help="wall-clock training budget")
    ap.add_argument("--preset", default="compact")
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--frames-in", type=int, default=11)
    ap.add_argument("--frames-out", type=int, default=11)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--workers", type=int, default=0, help="loader workers")
    # 0: train free-running from the start, as validation runs (a short budget has no room
    # for a teacher-forcing phase)
    ap.add_argument("--ss-steps", type=int, default=0, help="scheduled-sampling decay steps")
    ap.add_argument("--val-every", type=int, default=None, help="steps (default: each epoch)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--precision", default="auto", help="train --precision: auto | fp32 | bf16")
    args = ap.parse_args()

    from train.config import TrainConfig
    from train.loop import run_training

    t0 = time.time()
    shards = prepare_shards(args.cache, args.train, args.val, args.seed, max(1, args.threads))
    prep_s = time.time() - t0
    out = args.cache / f"run-{time.strftime('%Y%m%d-%H%M%S')}"
    cfg = TrainConfig(
        shards=str(shards), out=str(out), preset=args.preset, batch_size=args.batch_size,
        lr=args.lr, frames_in=args.frames_in, frames_out=args.frames_out,
        train_splits=("train",), time_limit=args.minutes, epochs=10_000, threads=args.threads,
        workers=args.workers, val_every=args.val_every, seed=args.seed, progress=False,
        log_every=10, early_stop=0, ss_steps=args.ss_steps, precision=args.precision,
    )  # fmt: skip
    t1 = time.time()
    run = run_training(cfg)
    train_s = time.time() - t1

    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in records if r["kind"] == "train"]
    val = [r for r in records if r["kind"] == "val"]
    end = [r for r in records if r["kind"] == "end"][-1]
    last = val[-1]
    rates = [r["samples_per_s"] for r in train[1:]]  # the first interval includes warm-up
    model, copy = last["model"], last["copy_last"]
    result = {
        "benchmark": "train_quality",
        "preset": args.preset,
        "train_videos": args.train,
        "val_videos": args.val,
        "budget_min": args.minutes,
        "threads": args.threads,
        "precision": args.precision,
        "prepare_s": round(prep_s, 1),
        "train_s": round(train_s, 1),
        "steps": end["step"],
        "epochs": end["epoch"],
        "samples_per_s_median": round(statistics.median(rates), 2) if rates else None,
        "samples_per_s_overall": round(end["step"] * args.batch_size / train_s, 3),
        "val_step": last["step"],
        "val_mse": {"model": model["mse"], "copy_last": copy["mse"]},
        "val_ssim": {"model": model["ssim"], "copy_last": copy["ssim"]},
        "val_psnr_mean": {"model": model["psnr"]["mean"], "copy_last": copy["psnr"]["mean"]},
        "beats_copy_last": model["mse"]["mean"] < copy["mse"]["mean"],
        "curve": {
            "train": [[r["step"], r["loss"]] for r in train],
            "val": [[r["step"], r["loss"], r["model"]["ssim"]["mean"]] for r in val],
            "copy_last_val_mse": copy["mse"]["mean"],
        },
        "curves_png": str(run / "curves.png"),
        "run": str(run),
    }
    print("frame  model-MSE  copy-MSE   model-SSIM copy-SSIM", file=sys.stderr)
    for t, (a, b, c, d) in enumerate(
        zip(
            model["mse"]["per_frame"],
            copy["mse"]["per_frame"],
            model["ssim"]["per_frame"],
            copy["ssim"]["per_frame"],
            strict=True,
        )  # fmt: skip
    ):
        print(f"{t + 1:>5}  {a:.6f}   {b:.6f}   {c:.4f}     {d:.4f}", file=sys.stderr)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
