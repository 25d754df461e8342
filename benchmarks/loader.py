"""Loader speed against the PNG-decode limit, peak memory vs dataset size, and how the train
split feeds many ranks x workers. Prints JSON.

    python benchmarks/loader.py                          # the issue sizes: 500; RSS 200, 2000
    python benchmarks/loader.py --videos 40 --rss 20 60  # a quick look
    python benchmarks/loader.py --partition-only         # reads per sample, 1/8/32 slots

Partition (`--partition-only`, also part of a full run): one train epoch of simulated DDP ranks x
loader workers ("slots": 1 = 1 x 1, 8 = 2 x 4, 32 = 8 x 4), each slot's stream taken from
`shards.partition.train_samples` for its quota of batches, over shards that are only counted
(the shard reader is replaced by one yielding keys, so the numbers are the partition's alone):
samples read per sample delivered, and how often each video came per epoch.

Synthetic videos (ingest.synth) and their shards are cached under --cache and reused. The
loader (train mode, one epoch of --videos unlabeled videos) runs with 0, 1 and 2 workers beside
a bare loop that only PIL-decodes the same PNG bytes in one process (the one-core decode limit).
Target: 2 workers >= 0.8 x twice that limit. Peak RSS (main process and largest worker), each
size in a fresh subprocess: the larger set within 1.2x of the smaller.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from convrnn_video.ingest.pack import IngestConfig, run_ingest  # noqa: E402
from convrnn_video.ingest.synth import SynthConfig, generate  # noqa: E402
from convrnn_video.shards.format import MANIFEST_NAME  # noqa: E402
from convrnn_video.shards.manifest import read_manifest  # noqa: E402

from benchmarks.machine import machine  # noqa: E402
from benchmarks.partition import partition_table  # noqa: E402


def cached_shards(cache: Path, videos: int, workers: int) -> Path:
    """Shards of the first `videos` synthetic unlabeled videos, generated and ingested once."""
    data = cache / "data"
    have = len(list((data / "unlabeled").glob("video_*"))) if (data / "unlabeled").is_dir() else 0
    if have < videos:  # synth resumes: the first videos stay the same
        generate(
            SynthConfig(
                out=data,
                train=0,
                val=0,
                unlabeled=videos,
                hidden=0,
                seed=0,
                workers=workers,
                overwrite=have > 0,
                progress=True,
            )
        )
    out = cache / f"shards-{videos}"
    if not (out / MANIFEST_NAME).exists():
        subset = cache / f"data-{videos}" / "unlabeled"
        subset.mkdir(parents=True, exist_ok=True)
        for i in range(videos):
            link = subset / f"video_{2000 + i}"
            if not link.exists():
                link.symlink_to(data / "unlabeled" / f"video_{2000 + i}")
        run_ingest(
            IngestConfig(
                data_root=subset.parent,
                out=out,
                workers=workers,
                videos_per_shard=50,
                progress=True,
            )
        )
    return out


def tar_reading(shards: Path, rounds: int = 3) -> dict[str, float]:
    """Milliseconds per video to read every member of the unlabeled shards: the loaders' lean
    reader (`shards/reader.py`) against `tarfile`'s stream mode (what webdataset uses), the
    files in the page cache, medians of `rounds`."""
    from convrnn_video.shards.reader import read_shard, split_shards

    manifest = read_manifest(shards)
    refs = split_shards(shards, manifest, "unlabeled")
    videos = sum(r.videos for r in refs)

    def ours() -> None:
        for ref in refs:
            for _ in read_shard(ref):
                pass

    def stream() -> None:
        for ref in refs:
            with tarfile.open(shards / ref.name, mode="r|") as tar:
                for member in tar:
                    tar.extractfile(member).read()

    out = {}
    for name, fn in (("reader_ms_per_video", ours), ("tarfile_stream_ms_per_video", stream)):
        times = []
        for _ in range(rounds):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        out[name] = round(1000 * statistics.median(times) / videos, 3)
    out["speedup"] = round(out["tarfile_stream_ms_per_video"] / out["reader_ms_per_video"], 2)
    return out


def decode_limit(shards: Path, frames: int) -> dict[str, float]:
    """Videos/s of a bare loop that PIL-decodes the first `frames` PNGs of every video."""
    import numpy as np
    from PIL import Image

    manifest = read_manifest(shards)
    names = [s["name"] for s in manifest["splits"]["unlabeled"]["shards"]]
    wanted = {f"f{t:02d}.png" for t in range(frames)}
    videos, seconds, cpu = 0, 0.0, 0.0
    for name in names:
        with tarfile.open(shards / name) as tar:
            blobs = [tar.extractfile(m).read() for m in tar if m.name.split(".", 1)[1] in wanted]
        videos += len(blobs) // frames
        start, start_cpu = time.perf_counter(), time.process_time()
        for blob in blobs:
            with Image.open(io.BytesIO(blob)) as im:
                np.asarray(im)
        seconds += time.perf_counter() - start
        cpu += time.process_time() - start_cpu
    return {
        "videos_per_s": round(videos / seconds, 1),
        "cpu_ms_per_video": round(1000 * cpu / videos, 1),
    }


def _children_cpu() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def loader_rate(
    shards: Path, workers: int, batch_size: int, shuffle_buffer: int
) -> dict[str, float]:
    """Videos/s over one epoch (worker start-up included), and after the first batch."""
    from convrnn_video.shards.loader import make_loader

    videos = read_manifest(shards)["splits"]["unlabeled"]["videos"]
    loader = make_loader(
        shards,
        "unlabeled",
        mode="train",
        batch_size=batch_size,
        workers=workers,
        samples_per_epoch=videos,
        shuffle_buffer=shuffle_buffer,
    )
    start, cpu0, kids0 = time.perf_counter(), time.process_time(), _children_cpu()
    seen = first = 0
    for i, batch in enumerate(loader):
        if i == 0:
            first, t_first = len(batch["keys"]), time.perf_counter()
        seen += len(batch["keys"])
    end = time.perf_counter()
    del loader  # its workers have exited: their CPU time is in RUSAGE_CHILDREN
    cpu = time.process_time() - cpu0 + _children_cpu() - kids0
    return {
        "videos_per_s": round(seen / (end - start), 1),
        "cpu_ms_per_video": round(1000 * cpu / seen, 1),  # main + workers: robust to a busy box
        "steady_videos_per_s": round((seen - first) / max(end - t_first, 1e-9), 1),
    }


def rss_child(shards: str, workers: int, batch_size: int, shuffle_buffer: int) -> None:
    """(In a fresh process) one epoch, then print the peak RSS of this process and its workers."""
    import resource

    loader_rate(Path(shards), workers, batch_size, shuffle_buffer)
    self_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    workers_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(
        json.dumps({"main_mb": round(self_kb / 1024, 1), "worker_mb": round(workers_kb / 1024, 1)})
    )


def peak_rss(shards: Path, workers: int, batch_size: int, shuffle_buffer: int) -> dict:
    cmd = [
        sys.executable,
        __file__,
        "--rss-child",
        str(shards),
        "--workers-rss",
        str(workers),
        "--batch-size",
        str(batch_size),
        "--shuffle-buffer",
        str(shuffle_buffer),
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    out, _ = proc.communicate()
    if proc.returncode:
        raise SystemExit(f"RSS child failed: {' '.join(cmd)}")
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=500, help="videos for the speed runs")
    parser.add_argument("--rss", type=int, nargs=2, default=[200, 2000], metavar=("SMALL", "LARGE"))
    parser.add_argument(
        "--cache",
        type=Path,
        default=Path(tempfile.gettempdir()) / "convrnn-bench",
        help="where synthetic videos and shards are kept between runs",
    )
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--shuffle-buffer", type=int, default=64, help="raw samples per worker")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--gen-workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--no-rss", action="store_true", help="skip the memory runs")
    parser.add_argument(
        "--partition-only", action="store_true", help="only the simulated ranks x workers table"
    )
    parser.add_argument("--rss-child", help=argparse.SUPPRESS)
    parser.add_argument("--workers-rss", type=int, default=2, help="loader workers in RSS runs")
    args = parser.parse_args()
    if args.rss_child:
        rss_child(args.rss_child, args.workers_rss, args.batch_size, args.shuffle_buffer)
        return
    if args.partition_only:
        table = {"partition": partition_table(args.batch_size), "machine": machine()}
        print(json.dumps(table, indent=2))
        return

    shards = cached_shards(args.cache, args.videos, args.gen_workers)
    result: dict = {"videos": args.videos, "batch_size": args.batch_size, "cpus": os.cpu_count()}
    result["tar_reading"] = tar_reading(shards)
    decode = decode_limit(shards, frames=22)
    limit = decode["videos_per_s"]
    result["decode_limit_1core"] = decode
    for workers in args.workers:
        rate = loader_rate(shards, workers, args.batch_size, args.shuffle_buffer)
        result[f"loader_workers{workers}"] = rate
    if 2 in args.workers:
        ratio = result["loader_workers2"]["videos_per_s"] / (2 * limit)
        result["workers2_over_2x_decode_limit"] = round(ratio, 3)
        result["decode_target_0.8_met"] = ratio >= 0.8
        # the same ratio from CPU time: what 2 free cores would give, however busy the box is
        cpu = decode["cpu_ms_per_video"] / result["loader_workers2"]["cpu_ms_per_video"]
        result["decode_cpu_over_loader_cpu"] = round(cpu, 3)
    if not args.no_rss:
        small, large = (cached_shards(args.cache, n, args.gen_workers) for n in args.rss)
        rss = {
            n: peak_rss(s, args.workers_rss, args.batch_size, args.shuffle_buffer)
            for n, s in zip(args.rss, (small, large), strict=True)
        }
        result["peak_rss_mb"] = {str(n): v for n, v in rss.items()}
        keys = [k for k in ("main_mb", "worker_mb") if rss[args.rss[0]][k] > 0]
        ratio = max(rss[args.rss[1]][k] / rss[args.rss[0]][k] for k in keys)
        result["rss_large_over_small"] = round(ratio, 3)
        result["rss_target_1.2_met"] = ratio <= 1.2
    result["partition"] = partition_table(args.batch_size)
    result["machine"] = machine()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
