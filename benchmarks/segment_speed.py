"""Segmenter training speed on this machine: forward + backward ms per frame. Prints JSON.

    python benchmarks/segment_speed.py                          # tiny and small, fp32 and bf16
    python benchmarks/segment_speed.py --presets small --variant base_channels=8,levels=5

One optimizer-free step = forward, segmentation_loss, backward, on random frames and masks of
--batch frames at --height x --width, in float32 and under bf16 autocast, with the input in
channels_last (as the model runs), with glibc keeping freed memory as the trainer does
(runtime.device.keep_freed_memory). Uses the threads torch is given
(--threads, default 1).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from convrnn_video.runtime.device import keep_freed_memory
from convrnn_video.segment import build_segmenter, get_preset  # noqa: E402
from convrnn_video.segment.loss import segmentation_loss  # noqa: E402
from convrnn_video.segment.summary import gflop_per_frame  # noqa: E402

from benchmarks.machine import machine  # noqa: E402


def step_ms(
    cfg, batch: int, height: int, width: int, bf16: bool, repeats: int
) -> tuple[float, float]:
    """Median wall-clock ms and median process CPU ms of one forward + loss + backward over
    `batch` frames (CPU time is what a busy, shared machine does not inflate)."""
    torch.manual_seed(0)
    model = build_segmenter(cfg).train()
    x = torch.rand(batch, cfg.in_channels, height, width)
    y = torch.randint(0, cfg.num_classes, (batch, height, width))

    def run() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = segmentation_loss(model(x), y)
        loss.backward()
        model.zero_grad(set_to_none=True)

    run()
    wall, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        run()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return 1e3 * statistics.median(wall), 1e3 * statistics.median(cpu)


def parse_variant(text: str) -> dict:
    """'base_channels=8,levels=5' -> {'base_channels': 8, 'levels': 5}."""
    out = {}
    for item in text.split(","):
        key, value = item.split("=")
        out[key] = int(value) if value.lstrip("-").isdigit() else value
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--presets", default="tiny,small", help="comma-separated preset names")
    ap.add_argument("--variant", action="append", default=[], help="overrides of each preset")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--height", type=int, default=160)
    ap.add_argument("--width", type=int, default=240)
    ap.add_argument("--repeats", type=int, default=5, help="timed steps (median)")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    keep_freed_memory()  # as the trainer does
    variants = [{}] + [parse_variant(v) for v in args.variant]
    rows = []
    for name in args.presets.split(","):
        for overrides in variants:
            cfg = get_preset(name, **overrides)
            row = {
                "preset": name,
                "overrides": overrides,
                "config": cfg.to_dict(),
                "gflop_per_frame": round(gflop_per_frame(cfg, args.height, args.width), 3),
                "ms_per_frame": {},
                "cpu_ms_per_frame": {},
            }
            for precision in ("fp32", "bf16"):
                ms, cpu_ms = step_ms(
                    cfg, args.batch, args.height, args.width, precision == "bf16", args.repeats
                )
                row["ms_per_frame"][precision] = round(ms / args.batch, 2)
                row["cpu_ms_per_frame"][precision] = round(cpu_ms / args.batch, 2)
            rows.append(row)
    result = {
        "threads": torch.get_num_threads(),
        "batch": args.batch,
        "frame": f"{args.height}x{args.width}",
        "step": "forward + cross-entropy + backward (no optimizer)",
        "rows": rows,
    }
    result["machine"] = machine()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
