"""Training throughput: 1 process x 2 threads against torchrun 2 processes x 1 thread, as JSON.

    python benchmarks/ddp.py --cache /tmp/ddp-bench                 # compact, 40 steps each
    python benchmarks/ddp.py --cache /tmp/ddp-bench --steps 8 --preset tiny

Both runs use the same global batch (--batch-size, split over the processes) and no
validation; samples/s is read from metrics.jsonl, leaving out the first log interval
(warm-up). Target: the two within 20% of each other.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.data import run_records  # noqa: E402
from benchmarks.machine import machine  # noqa: E402


def prepare_shards(cache: Path, videos: int) -> Path:
    from convrnn_video.ingest.pack import IngestConfig, run_ingest
    from convrnn_video.ingest.synth import SynthConfig, generate

    shards = cache / "shards"
    manifest = shards / "manifest.json"
    if (
        manifest.exists()
        and json.loads(manifest.read_text())["splits"]["train"]["videos"] == videos
    ):
        return shards
    data = cache / "data"
    generate(
        SynthConfig(
            out=data, train=videos, val=0, unlabeled=0, hidden=0, overwrite=True, progress=False
        )
    )
    run_ingest(IngestConfig(data_root=data, out=shards, workers=1, overwrite=True, progress=False))
    return shards


def run(cache: Path, shards: Path, procs: int, threads: int, args: argparse.Namespace) -> dict:
    out = cache / f"run-{procs}x{threads}"
    shutil.rmtree(out, ignore_errors=True)
    per_proc = args.batch_size // procs
    cmd = [
        "cli.py", "train", "--shards", str(shards), "--out", str(out), "--preset", args.preset,
        "--batch-size", str(per_proc), "--max-steps", str(args.steps), "--threads", str(threads),
        "--train-splits", "train", "--val-split", "", "--log-every", str(args.log_every),
        "--samples-per-epoch", str(per_proc * (args.steps + 1)), "--no-progress",
        "--ckpt-every", str(10 * args.steps), "--workers", str(args.workers),
    ]  # fmt: skip
    if procs > 1:
        launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
        cmd = [*launcher, f"--nproc_per_node={procs}", *cmd]
    else:
        cmd = [sys.executable, *cmd]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    t0 = time.time()
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    wall = time.time() - t0
    if done.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{done.stderr[-3000:]}")
    records = run_records(out)
    rates = [r["samples_per_s"] for r in records["train"]][1:]
    end = records["end"][-1]
    return {
        "processes": procs,
        "threads_per_process": threads,
        "batch_per_process": per_proc,
        "steps": end["step"],
        "samples_per_s": round(statistics.median(rates), 3) if rates else None,
        "wall_s": round(wall, 1),
        "ranks_agree": len(set(end["rank_steps"])) == 1 and max(end["rank_weight_diff"]) == 0,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", type=Path, required=True, help="folder for data, shards, runs")
    ap.add_argument("--videos", type=int, default=32, help="train videos to generate")
    ap.add_argument("--preset", default="compact")
    ap.add_argument("--batch-size", type=int, default=4, help="global batch (even)")
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--log-every", type=int, default=5)
    ap.add_argument("--workers", type=int, default=0)
    args = ap.parse_args()
    if args.batch_size % 2:
        sys.exit("--batch-size must be even (it is split over 2 processes)")
    shards = prepare_shards(args.cache, args.videos)
    single = run(args.cache, shards, 1, 2, args)
    multi = run(args.cache, shards, 2, 1, args)
    ratio = (
        multi["samples_per_s"] / single["samples_per_s"]
        if single["samples_per_s"] and multi["samples_per_s"]
        else None
    )
    print(
        json.dumps(
            {
                "benchmark": "ddp",
                "machine": machine(),
                "preset": args.preset,
                "global_batch": args.batch_size,
                "single": single,
                "ddp": multi,
                "ddp_over_single": round(ratio, 3) if ratio else None,
                "within_20_percent": ratio is not None and abs(1 - ratio) <= 0.2,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
