"""Generator speed: videos/s with 1 and 2 workers, and where one video's time goes. Prints JSON.

    python benchmarks/synth.py                     # 200 videos per worker count (the issue's)
    python benchmarks/synth.py --videos 20         # a quick look

Target: at least 8 videos/s with 2 workers on a 2-core machine (17,000 videos in well under an
hour). Videos are a mix of the splits in the real proportions (hidden ones have 11 frames).
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from convrnn_video.ingest.synth import SynthConfig, generate  # noqa: E402
from convrnn_video.ingest.synth.config import FULL_COUNTS  # noqa: E402
from convrnn_video.ingest.synth.png import encode_frames  # noqa: E402
from convrnn_video.ingest.synth.render import render  # noqa: E402
from convrnn_video.ingest.synth.sliding import simulate  # noqa: E402
from convrnn_video.ingest.synth.writer import video_rng  # noqa: E402

from benchmarks.machine import machine  # noqa: E402


def split_counts(videos: int) -> dict[str, int]:
    """`videos` spread over the splits like the real set (1000/1000/13000/2000)."""
    total = sum(FULL_COUNTS.values())
    counts = {s: max(1, round(videos * n / total)) for s, n in FULL_COUNTS.items()}
    counts["unlabeled"] += videos - sum(counts.values())
    return counts


def breakdown(videos: int, png_compress: int) -> dict[str, float]:
    """Milliseconds per video spent simulating, rendering and PNG-encoding (one process).

    The wall times are only as good as the machine is quiet; the CPU time per video is not
    disturbed by other processes (it is what each worker needs of one core).
    """
    sim = ren = enc = pil = pil_cpu = 0.0
    png_bytes = 0
    cpu0 = time.process_time()
    for i in range(videos):
        t0 = time.perf_counter()
        scene = simulate(video_rng(0, 2000 + i))
        t1 = time.perf_counter()
        rgb, _ = render(scene, 22)
        t2 = time.perf_counter()
        png_bytes += sum(len(png) for png in encode_frames(rgb, png_compress))
        t3, c3 = time.perf_counter(), time.process_time()
        for frame in rgb:  # the same frames through Pillow, at the same zlib level
            Image.fromarray(frame).save(io.BytesIO(), format="PNG", compress_level=png_compress)
        pil, pil_cpu = pil + time.perf_counter() - t3, pil_cpu + time.process_time() - c3
        sim, ren, enc = sim + t1 - t0, ren + t2 - t1, enc + t3 - t2
    cpu_ms = 1000 * (time.process_time() - cpu0 - pil_cpu) / videos  # CPU time, Pillow's aside
    return {
        "cpu_ms_per_video": round(cpu_ms, 1),
        "videos_per_s_per_core_by_cpu_time": round(1000 / cpu_ms, 1),
        "simulate_ms": round(1000 * sim / videos, 1),
        "render_ms": round(1000 * ren / videos, 1),
        "png_encode_ms": round(1000 * enc / videos, 1),
        "png_kb_per_frame": round(png_bytes / videos / 22 / 1024, 1),
        # per frame, ours (ingest/synth/png.py) against Pillow's encoder at the same zlib level
        "png_encode_ms_per_frame": round(1000 * enc / videos / 22, 2),
        "pillow_encode_ms_per_frame": round(1000 * pil / videos / 22, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=200, help="videos per worker count")
    parser.add_argument("--workers", default="1,2", help="comma-separated worker counts")
    parser.add_argument("--png-compress", type=int, default=SynthConfig.png_compress)
    args = parser.parse_args()

    counts = split_counts(args.videos)
    result = {"videos": sum(counts.values()), "counts": counts, "png_compress": args.png_compress}
    for workers in (int(w) for w in args.workers.split(",")):
        with tempfile.TemporaryDirectory() as tmp:
            cfg = SynthConfig(
                out=Path(tmp) / "data",
                workers=workers,
                progress=False,
                png_compress=args.png_compress,
                **counts,
            )
            start = time.perf_counter()
            generate(cfg)
            seconds = time.perf_counter() - start
            size = sum(p.stat().st_size for p in cfg.out.rglob("*") if p.is_file())
        result[f"workers_{workers}"] = {
            "seconds": round(seconds, 2),
            "videos_per_s": round(result["videos"] / seconds, 2),
            "mb_written": round(size / 2**20, 1),
        }
    result["per_video_1_process"] = breakdown(min(args.videos, 20), args.png_compress)
    full = sum(FULL_COUNTS.values())
    best = max(v["videos_per_s"] for k, v in result.items() if k.startswith("workers_"))
    result["full_set_minutes_at_best"] = round(full / best / 60, 1)
    result["machine"] = machine()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
