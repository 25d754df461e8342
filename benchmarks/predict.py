"""Benchmark `predict` against a naive loop shaped like the original's; prints JSON.

For each preset (seed, compact), on the same generated hidden videos and an untrained checkpoint:
  naive    the original's shape: its network as it wrote it (convrnn.reference, the same
           weights), batch 1, autograd on, each result appended to one growing NumPy array
           (np.concatenate, quadratic copying), then np.save
  naive_our_net  the same loop around our optimised network (isolates the loop's share)
  predict  infer.predict.run_predict: batched, inference_mode, chunked Zarr store, background
           writes; once per --batch-sizes value, the speed-up taken at the best of them
  predict --precision bf16   the same at that best batch size, bfloat16 convolutions
Also: peak RSS of `predict` for 200 and 1,000 videos (`--rss-preset`, tiny by default; the
store must not grow memory with N: target ratio <= 1.2) and the store's write rate in MB/s.
Each measurement runs in its own subprocess so that its peak RSS and threads are its own.

    python benchmarks/predict.py                               # the issue's sizes (slow on CPU)
    python benchmarks/predict.py --seed-videos 2 --compact-videos 8 --rss-videos 20,60 \
        --batch-sizes 1,2  # small
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.machine import machine  # noqa: E402

TARGETS = {"seed": 1.3, "compact": 3.0}  # predict / naive speed-up the issue asks for
RSS_RATIO_TARGET = 1.2


def make_shards(work: Path, n: int, distinct: int) -> Path:
    """Shards of `n` hidden videos: `distinct` generated ones, hard-linked to reach n ids."""
    from convrnn_video.ingest.pack import IngestConfig, run_ingest
    from convrnn_video.ingest.synth import SynthConfig, generate

    out = work / f"shards-{n}"
    if (out / "manifest.json").exists():
        return out
    data = work / f"data-{n}"
    k = min(n, distinct)
    generate(
        SynthConfig(
            out=data, train=0, val=0, unlabeled=0, hidden=k, seed=0, workers=2, progress=False
        )
    )
    hidden = data / "hidden"
    for i in range(k, n):  # copies of the generated videos under new ids
        shutil.copytree(
            hidden / f"video_{15000 + i % k}", hidden / f"video_{15000 + i}", copy_function=os.link
        )
    run_ingest(IngestConfig(data_root=data, out=out, workers=2, progress=False))
    return out


def make_checkpoint(work: Path, preset: str) -> Path:
    """An untrained checkpoint of `preset` (speed does not depend on the weights)."""
    from convrnn_video.convrnn import get_preset
    from convrnn_video.runtime.checkpoint import save_untrained

    path = work / f"{preset}.pt"
    return path if path.exists() else save_untrained(path, get_preset(preset))


def child_naive(shards: str, ckpt: str, out: Path, network: str) -> dict:
    """The original's shape: one video at a time, autograd on, a growing array, one .npy."""
    import numpy as np
    from convrnn_video.convrnn.reference import from_model
    from convrnn_video.runtime.checkpoint import load_model
    from convrnn_video.shards.loader import make_loader

    model, cfg, _ = load_model(ckpt, "cpu")
    if network == "reference":  # the network as the original wrote it, on the same weights
        model = from_model(model).eval()
    preds = np.zeros((0, cfg.frames_out, 3, 160, 240), dtype=np.float32)
    start = time.perf_counter()
    for batch in make_loader(
        shards,
        ["hidden"],
        mode="eval",
        batch_size=1,
        frames_in=cfg.frames_in,
        frames_out=cfg.frames_out,
    ):
        pred = model(batch["inputs"])  # autograd on, as in the original
        preds = np.concatenate([preds, pred.detach().numpy()])  # quadratic copying
    np.save(out / "preds.npy", preds)
    return {"seconds": time.perf_counter() - start, "videos": len(preds)}


def child_predict(
    shards: str, ckpt: str, out: Path, batch_size: int, precision: str = "fp32"
) -> dict:
    from convrnn_video.infer.config import PredictConfig
    from convrnn_video.infer.predict import run_predict

    start = time.perf_counter()
    s = run_predict(
        PredictConfig(
            shards=shards,
            ckpt=ckpt,
            out=str(out / "preds.zarr"),
            batch_size=batch_size or None,  # 0: predict picks
            precision=precision,
            progress=False,
            overwrite=True,
        )
    )
    return {"seconds": time.perf_counter() - start, "videos": s["predicted"]}


def child_write(out: Path, videos: int) -> dict:
    """Zarr write rate of the store alone: MB/s of uint8 frames written (uncompressed size)."""
    import numpy as np
    from convrnn_video.stores.predictions import prepare_store

    rng = np.random.default_rng(0)
    # smooth-ish frames compress like predictions do, unlike pure noise
    base = rng.integers(100, 160, size=(1, 11, 160, 240, 3), dtype=np.uint8)
    frames = np.repeat(base, 8, axis=0)
    store, _ = prepare_store(
        out / "write.zarr",
        attrs={},
        video_ids=range(videos),
        frame_shape=(11, 160, 240, 3),
        overwrite=True,
    )
    start = time.perf_counter()
    for lo in range(0, videos, 8):
        hi = min(videos, lo + 8)
        store.write(np.arange(lo, hi), frames[: hi - lo])
    seconds = time.perf_counter() - start
    return {
        "seconds": seconds,
        "videos": videos,
        "mb_per_s": videos * frames[0].nbytes / 1e6 / seconds,
    }


def rate(r: dict) -> float:
    return r["videos"] / r["seconds"]


def measure_preset(
    work: Path, preset: str, n: int, distinct: int, batch_sizes: list[int], repeats: int
) -> dict:
    """Every variant once per round, `repeats` rounds; medians of rates and of the ratios
    taken within a round (so that a change of machine load hits both sides of a ratio)."""
    shards, ckpt = make_shards(work, n, distinct), make_checkpoint(work, preset)
    runs: dict[str, list[dict]] = {}
    for _ in range(repeats):
        for net in ("reference", "optimised"):
            out = str(work / f"naive-{net}")
            runs.setdefault(net, []).append(run_child(["naive", str(shards), str(ckpt), out, net]))
        for b in batch_sizes:
            out = str(work / f"pred-{preset}-{b}")
            runs.setdefault(str(b), []).append(
                run_child(["predict", str(shards), str(ckpt), out, str(b)])
            )
        out = str(work / f"pred-{preset}-bf16")  # bf16 at the batch size predict picks itself
        runs.setdefault("bf16", []).append(
            run_child(["predict", str(shards), str(ckpt), out, "0", "bf16"])
        )
    med = {k: statistics.median(rate(r) for r in v) for k, v in runs.items()}
    best = max(batch_sizes, key=lambda b: med[str(b)])

    def ratio(key: str) -> float:
        return statistics.median(
            rate(a) / rate(b) for a, b in zip(runs[key], runs["reference"], strict=True)
        )

    speedup, bf16_speedup = ratio(str(best)), ratio("bf16")
    return {
        "videos": n,
        "repeats": repeats,
        "naive_videos_per_s": round(med["reference"], 4),
        "naive_our_net_videos_per_s": round(med["optimised"], 4),
        "predict_videos_per_s_by_batch": {str(b): round(med[str(b)], 4) for b in batch_sizes},
        "best_batch": best,
        "speedup": round(speedup, 3),
        "target": TARGETS[preset],
        "pass": speedup >= TARGETS[preset],
        "bf16_videos_per_s": round(med["bf16"], 4),
        "bf16_speedup": round(bf16_speedup, 3),
        "bf16_pass": bf16_speedup >= TARGETS[preset],
        "naive_peak_rss_mb": round(max(r["peak_rss_mb"] for r in runs["reference"]), 1),
        "predict_peak_rss_mb_by_batch": {
            str(b): round(max(r["peak_rss_mb"] for r in runs[str(b)]), 1) for b in batch_sizes
        },
    }


def run_child(args: list[str]) -> dict:
    proc = subprocess.run(
        [sys.executable, __file__, "--child", *args], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"child {args} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--seed-videos", type=int, default=16, help="videos timed for seed")
    ap.add_argument("--compact-videos", type=int, default=64, help="videos timed for compact")
    ap.add_argument("--batch-sizes", default="1,2,8", help="predict batch sizes to time")
    ap.add_argument("--rss-videos", default="200,1000", help="video counts for the RSS check")
    ap.add_argument("--rss-preset", default="tiny", help="preset used for the RSS check")
    ap.add_argument("--distinct", type=int, default=16, help="distinct generated videos")
    ap.add_argument("--repeats", type=int, default=3, help="rounds; medians are reported")
    ap.add_argument("--work", default=None, help="scratch folder (default: a temp dir)")
    ap.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.child:  # kind shards ckpt out [batch|videos]
        kind, *rest = args.child
        out = Path(rest[2] if kind != "write" else rest[0])
        out.mkdir(parents=True, exist_ok=True)
        if kind == "naive":
            r = child_naive(rest[0], rest[1], out, rest[3])
        elif kind == "predict":
            r = child_predict(rest[0], rest[1], out, int(rest[3]), *rest[4:])
        else:
            r = child_write(out, int(rest[1]))
        r["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(r))
        return

    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="bench-predict-"))
    work.mkdir(parents=True, exist_ok=True)
    batch_sizes = [int(b) for b in args.batch_sizes.split(",") if b]
    result: dict = {"torch_threads": os.cpu_count(), "presets": {}}
    try:
        for preset, n in (("seed", args.seed_videos), ("compact", args.compact_videos)):
            if n <= 0:
                continue
            result["presets"][preset] = measure_preset(
                work, preset, n, args.distinct, batch_sizes, args.repeats
            )
        rss = {}
        ckpt = make_checkpoint(work, args.rss_preset)
        for n in [int(v) for v in args.rss_videos.split(",") if v]:
            shards = make_shards(work, n, args.distinct)
            r = run_child(
                ["predict", str(shards), str(ckpt), str(work / f"rss-{n}"), str(batch_sizes[-1])]
            )
            rss[str(n)] = round(r["peak_rss_mb"], 1)
        if len(rss) >= 2:
            ratio = max(rss.values()) / min(rss.values())
            result["peak_rss_mb"] = {
                "preset": args.rss_preset,
                "by_videos": rss,
                "ratio": round(ratio, 3),
                "target": RSS_RATIO_TARGET,
                "pass": ratio <= RSS_RATIO_TARGET,
            }
        w = run_child(["write", str(work / "write"), "256"])
        result["zarr_write_mb_per_s"] = round(w["mb_per_s"], 1)
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)
    result["machine"] = machine()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
