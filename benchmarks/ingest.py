"""Ingest speed: videos/s with 1 and 2 workers against the same validation in one bare loop.

    python benchmarks/ingest.py                 # 500 videos (the issue's size)
    python benchmarks/ingest.py --videos 40     # a quick look

Synthetic videos (half train with masks, half unlabeled) are generated once under --cache.
The bare loop runs `ingest.validate.load_video` (read + full PNG decode + mask checks) over the
same videos in one process and writes nothing. Target: 2 workers >= 1.6x the bare loop.
Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from convrnn_video.ingest.pack import IngestConfig, run_ingest  # noqa: E402
from convrnn_video.ingest.scan import scan_root  # noqa: E402
from convrnn_video.ingest.synth import SynthConfig, generate  # noqa: E402
from convrnn_video.ingest.validate import load_video  # noqa: E402

from benchmarks.machine import machine  # noqa: E402


def cached_data(cache: Path, videos: int, workers: int) -> Path:
    """A DATA_ROOT of `videos` synthetic videos (train with masks + unlabeled), made once."""
    data = cache / f"ingest-data-{videos}"
    train = min(videos // 2, 1000)
    generate(
        SynthConfig(
            out=data,
            train=train,
            val=0,
            unlabeled=videos - train,
            hidden=0,
            seed=0,
            workers=workers,
            progress=True,
        )
    )
    return data


def _cpu() -> float:
    """CPU seconds of this process and its finished children (pool workers)."""
    me, kids = (resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def bare_loop(data: Path) -> dict[str, float]:
    """Videos/s of the same validation as ingest, in one loop in this process."""
    videos = [v for split in scan_root(data).splits.values() for v in split]
    start, cpu = time.perf_counter(), _cpu()
    for video in videos:
        members, problems = load_video(video)
        assert members is not None, problems
    seconds, cpu = time.perf_counter() - start, _cpu() - cpu
    return {
        "videos_per_s": round(len(videos) / seconds, 1),
        "cpu_ms_per_video": round(1000 * cpu / len(videos), 1),
    }


def ingest_rate(data: Path, out: Path, workers: int) -> dict[str, float]:
    """Videos/s of a full ingest (scan, check, write tars, manifest) with `workers` processes."""
    shutil.rmtree(out, ignore_errors=True)
    start, cpu = time.perf_counter(), _cpu()
    cfg = IngestConfig(data_root=data, out=out, workers=workers, videos_per_shard=50)
    cfg.progress = False
    manifest = run_ingest(cfg)
    seconds, cpu = time.perf_counter() - start, _cpu() - cpu
    videos = sum(e["videos"] for e in manifest["splits"].values())
    return {
        "videos_per_s": round(videos / seconds, 1),
        "cpu_ms_per_video": round(1000 * cpu / videos, 1),  # main + pool workers
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=500)
    parser.add_argument(
        "--cache",
        type=Path,
        default=Path(tempfile.gettempdir()) / "convrnn-bench",
        help="where the synthetic videos are kept between runs",
    )
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--gen-workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()

    data = cached_data(args.cache, args.videos, args.gen_workers)
    bare_loop(data)  # warm the page cache so every run reads the same way
    result: dict = {"videos": args.videos, "cpus": os.cpu_count()}
    result["bare_loop"] = bare_loop(data)
    with tempfile.TemporaryDirectory() as tmp:
        for workers in args.workers:
            result[f"ingest_workers{workers}"] = ingest_rate(data, Path(tmp) / "shards", workers)
    if 2 in args.workers:
        bare = result["bare_loop"]
        ratio = result["ingest_workers2"]["videos_per_s"] / bare["videos_per_s"]
        result["workers2_over_bare_loop"] = round(ratio, 3)
        result["target_1.6_met"] = ratio >= 1.6
        # what 2 free cores would give, from CPU time (robust to a busy machine)
        cpu = 2 * bare["cpu_ms_per_video"] / result["ingest_workers2"]["cpu_ms_per_video"]
        result["cpu_bound_2core_speedup"] = round(cpu, 3)
    result["machine"] = machine()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
