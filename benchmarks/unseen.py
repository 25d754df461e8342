"""The course path on generated val videos that no screen has chosen a rule on: is a mask
forecaster past halfway from copying frame 11's mask to the ceiling there too?

The val videos of every cache here are ids 1000-1099 (benchmarks/mask_quality.py,
extrapolate.py), and the floor stage's rules were chosen on them; the next 200 (1100-1299)
served as the unseen check and were screened on in turn. A margin measured on a set that
picked the rules says little, so this script writes the val videos of ids [first, first +
videos) (by default 1300-1699, 400 of them), ingests them, and runs the two commands a user
runs: `predict` (the given checkpoint and segmenter, on the val split) and `evaluate`. It
prints frame 22's Jaccard of the forecast beside copying, extrapolation and the segmenter on
the true frame (the ceiling), and how far from halfway the forecast is. Each video comes from
(seed, id) alone, so every run writes the same videos; a cache with them is reused.

    python benchmarks/unseen.py --cache /tmp/unseen --ckpt TRACKS.pt --segmenter SEG.pt
    python benchmarks/unseen.py --cache /tmp/unseen-s --ckpt TRACKS.pt --segmenter SEG.pt \\
        --videos 8                                                          # a smoke run

Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.machine import machine  # noqa: E402

FIRST = 1300  # the first id no screen has used (docs/benchmarks.md, "400 more unseen videos")


def write_videos(data: Path, first: int, videos: int, seed: int) -> float:
    """The val videos of ids [first, first + videos) under data/val (those already there are
    kept) -> seconds taken. Exits with an error when the split holds anything else: a cache
    is one set of ids, and nothing in it is deleted."""
    from convrnn_video.ingest.synth.config import FRAMES
    from convrnn_video.ingest.synth.writer import write_video

    start = time.perf_counter()
    split = data / "val"
    try:
        split.mkdir(parents=True, exist_ok=True)
    except OSError as e:  # --cache is a file, or not writable
        sys.exit(f"error: cannot make {split}: {e.strerror}")
    wanted = {f"video_{i}" for i in range(first, first + videos)}
    other = sorted(f.name for f in split.iterdir() if f.name not in wanted)
    if other:
        sys.exit(
            f"error: {split} holds {len(other)} entries outside ids {first}-"
            f"{first + videos - 1} (first: {other[0]}); give another --cache"
        )
    for i in range(first, first + videos):
        if not (split / f"video_{i}").is_dir():
            write_video(split, i, seed, True, FRAMES, 1)
    return time.perf_counter() - start


def ingest_once(data: Path, shards: Path, first: int, videos: int, workers: int) -> None:
    """`ingest` of data into shards, unless the shards already hold exactly these ids."""
    from convrnn_video.ingest.pack import IngestConfig, run_ingest

    manifest = shards / "manifest.json"
    if manifest.exists():
        split = json.loads(manifest.read_text())["splits"].get("val", {})
        ids = [(s["first_id"], s["last_id"]) for s in split.get("shards", [])]
        if split.get("videos") == videos and ids and ids[0][0] == first:
            return  # the ids run on from first (`write_videos` holds no other)
    run_ingest(IngestConfig(data_root=data, out=shards, workers=workers, overwrite=True,
                            progress=False))  # fmt: skip


def course_path(args, data: Path) -> tuple[dict, float]:
    """`ingest`, `predict` and `evaluate` of the videos under `data` into args.cache ->
    (evaluate's report, the seconds `predict` took). A missing or broken checkpoint (any
    pipeline error) ends the script in one `error:` line."""
    from convrnn_video.infer.config import EvaluateConfig, PredictConfig
    from convrnn_video.infer.evaluate import run_evaluate
    from convrnn_video.infer.predict import run_predict

    from convrnn_video import PipelineError

    shards = args.cache / "shards"
    store, out = args.cache / "preds.zarr", args.cache / "report.json"
    try:
        ingest_once(data, shards, args.first, args.videos, args.workers)
        t = time.perf_counter()
        run_predict(PredictConfig(shards=str(shards), out=str(store), ckpt=args.ckpt,
                                  segmenter=args.segmenter, split="val",
                                  precision=args.precision, overwrite=True,
                                  progress=False))  # fmt: skip
        seconds = time.perf_counter() - t
        return run_evaluate(EvaluateConfig(preds=str(store), shards=str(shards), out=str(out),
                                           overwrite=True, progress=False)), seconds  # fmt: skip
    except PipelineError as e:
        sys.exit(f"error: {e}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", type=Path, required=True, help="folder for videos, shards, store")
    ap.add_argument("--ckpt", required=True, help="mask forecaster (a track forecaster's .pt)")
    ap.add_argument("--segmenter", required=True, help="trained segmenter (.pt)")
    ap.add_argument("--first", type=int, default=FIRST, help="first video id (val: 1000-1999)")
    ap.add_argument("--videos", type=int, default=400)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--precision", default="auto", help="predict's: auto, fp32, bf16")
    ap.add_argument("--workers", type=int, default=2, help="ingest processes")
    args = ap.parse_args()
    if args.first < 1000 or args.first + args.videos > 2000 or args.videos < 1:
        ap.error("the videos must be val ids: 1000 <= first and first + videos <= 2000")

    wall = time.time()
    data = args.cache / "data"
    write_seconds = write_videos(data, args.first, args.videos, args.seed)
    report, predict_seconds = course_path(args, data)
    jac = report["jaccard"]
    last = {row: round(jac[row]["last"], 4) for row in
            ("model", "copy_last_input", "extrapolate_objects", "segmenter_on_true")}  # fmt: skip
    halfway = (last["copy_last_input"] + last["segmenter_on_true"]) / 2
    print(json.dumps({
        "benchmark": "unseen",
        "ids": [args.first, args.first + args.videos - 1],
        "seed": args.seed,
        "ckpt": args.ckpt,
        "segmenter": args.segmenter,
        "frame22": last,
        "model_frames_12_22": round(jac["model"]["mean"], 4),
        "halfway": round(halfway, 4),
        "model_minus_halfway": round(last["model"] - halfway, 4),
        "seconds": {"write": round(write_seconds, 1), "predict": round(predict_seconds, 1),
                    "evaluate": report["seconds"]},
        "machine": machine(),
        "wall_minutes": round((time.time() - wall) / 60, 2),
    }, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
