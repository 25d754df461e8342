"""The defaults that may differ between CPU classes, screened on this machine. Prints JSON.

    python benchmarks/defaults.py                                  # full size, 5 rounds
    python benchmarks/defaults.py --height 32 --width 48 --rounds 1   # a quick check

One full training step of the frames recipe (forward, loss, backward, clip to norm 1, Adam) of
`compact`, 11 -> 11 frames of --height x --width, in these arms:

- layout: fp32, the convolutions channels_last against NCHW (convrnn.forecaster picks one per
  CPU class: `prefers_channels_last`);
- loss: mse, mse+l1, mse+l1+ssim (the default), at the machine's layout and precision;
- threads: 1 against 2;
- batch: 2, 4 (the default), 8 videos, as samples/s;
- segmenter: the `small` segmenter's step (8 frames of 64x96, its default windows, forward,
  cross-entropy, backward, Adam).

Every arm that is not named otherwise runs the training defaults: the layout this machine gets,
`--precision auto` (runtime.device.resolve_precision), the loss mse+l1+ssim, batch 4, torch's
threads. The arms take turns within every round (so a change of machine load hits them alike);
the medians of wall-clock and process CPU seconds are reported, and the ratios between the
arms of each screen come from the same run. CPU seconds are what a shared machine inflates
least; with 2 threads they add both cores' time.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from convrnn_video.convrnn import build_model, get_preset  # noqa: E402
from convrnn_video.convrnn.blocks import machine_prefers_channels_last  # noqa: E402
from convrnn_video.runtime.device import autocast, keep_freed_memory, resolve_precision  # noqa: E402
from convrnn_video.segment import build_segmenter  # noqa: E402
from convrnn_video.segment import get_preset as segmenter_preset  # noqa: E402
from convrnn_video.train.config import TrainConfig  # noqa: E402
from convrnn_video.train.tasks.frames import compute_loss  # noqa: E402

from benchmarks.machine import machine  # noqa: E402

CPU = torch.device("cpu")


def frames_step(
    channels_last: bool, loss: str, batch: int, precision: str, args: argparse.Namespace
) -> Callable[[], None]:
    """One training step of compact as the trainer runs it, on fixed random frames."""
    torch.manual_seed(0)
    cfg = get_preset("compact", height=args.height, width=args.width)
    model = build_model(cfg, channels_last=channels_last).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    train_cfg = TrainConfig(loss=loss)
    shape = (batch, cfg.frames_in, cfg.image_channels, args.height, args.width)
    x, y = torch.rand(shape), torch.rand(shape)
    context = autocast(precision, CPU, warn=False)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        with context:
            pred = model(x, targets=y, teacher_prob=0.0)
        value, _ = compute_loss(pred, y, train_cfg, last=x[:, -1])
        value.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()

    return step


def segmenter_step(precision: str) -> Callable[[], None]:
    """One training step of the small segmenter on 8 random 64x96 frames."""
    torch.manual_seed(0)
    model = build_segmenter(segmenter_preset("small")).train()
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    x = torch.rand(8, 3, 64, 96)
    y = torch.randint(0, 49, (8, 64, 96))
    context = autocast(precision, CPU, warn=False)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        with context:
            logits = model(x)
        F.cross_entropy(logits.float(), y).backward()
        opt.step()

    return step


def arms(args: argparse.Namespace, precision: str) -> dict[str, tuple[Callable[[], None], int]]:
    """name -> (step, torch threads); the default arm is built once and shared by the screens."""
    default_cl = machine_prefers_channels_last()
    other = "nchw" if default_cl else "channels_last"
    threads = torch.get_num_threads()
    default = frames_step(default_cl, "mse+l1+ssim", 4, precision, args)
    out = {
        "default": (default, threads),
        f"layout_{other}": (frames_step(not default_cl, "mse+l1+ssim", 4, "fp32", args), threads),
        "loss_mse": (frames_step(default_cl, "mse", 4, precision, args), threads),
        "loss_mse+l1": (frames_step(default_cl, "mse+l1", 4, precision, args), threads),
        "threads_1": (default, 1),
        "batch_2": (frames_step(default_cl, "mse+l1+ssim", 2, precision, args), threads),
        "batch_8": (frames_step(default_cl, "mse+l1+ssim", 8, precision, args), threads),
        "segmenter_small": (segmenter_step(precision), threads),
    }
    if precision != "fp32":  # the layout screen is in fp32: its own default arm
        step = frames_step(default_cl, "mse+l1+ssim", 4, "fp32", args)
        out["layout_default_fp32"] = (step, threads)
    return out


def run(args: argparse.Namespace) -> dict:
    precision = resolve_precision(args.precision, CPU)
    threads = torch.get_num_threads()
    steps = arms(args, precision)
    wall: dict[str, list[float]] = {k: [] for k in steps}
    cpu: dict[str, list[float]] = {k: [] for k in steps}
    for rnd in range(args.warmup + args.rounds):
        for name, (step, n_threads) in steps.items():
            torch.set_num_threads(n_threads)
            start, start_cpu = time.perf_counter(), time.process_time()
            step()
            if rnd >= args.warmup:
                wall[name].append(time.perf_counter() - start)
                cpu[name].append(time.process_time() - start_cpu)
        torch.set_num_threads(threads)
        print(f"round {rnd + 1}/{args.warmup + args.rounds}", file=sys.stderr, flush=True)
    med = {k: statistics.median(v) for k, v in wall.items()}
    med_cpu = {k: statistics.median(v) for k, v in cpu.items()}
    default_cl = machine_prefers_channels_last()
    layout = "channels_last" if default_cl else "nchw"
    other = "nchw" if default_cl else "channels_last"
    fp32_default = "layout_default_fp32" if "layout_default_fp32" in med else "default"

    def ratio(a: str, b: str, table: dict[str, float]) -> float:
        return round(table[a] / table[b], 3)

    return {
        "preset": "compact",
        "frames": "11->11",
        "frame": f"{args.height}x{args.width}",
        "precision": precision,
        "default_layout": layout,
        "threads": threads,
        "rounds": args.rounds,
        "step_s": {k: round(v, 4) for k, v in med.items()},
        "step_cpu_s": {k: round(v, 4) for k, v in med_cpu.items()},
        "step_min_s": {k: round(min(v), 4) for k, v in wall.items()},
        "screens": {
            # > 1: the other layout's step takes longer than the default's
            f"layout_fp32_{other}_over_{layout}": ratio(f"layout_{other}", fp32_default, med),
            f"layout_fp32_{other}_over_{layout}_cpu": ratio(
                f"layout_{other}", fp32_default, med_cpu
            ),
            "loss_step_over_mse": {
                "mse+l1": ratio("loss_mse+l1", "loss_mse", med),
                "mse+l1+ssim": ratio("default", "loss_mse", med),
            },
            "threads_1_over_2_wall": ratio("threads_1", "default", med),
            "samples_per_s": {
                "batch_2": round(2 / med["batch_2"], 3),
                "batch_4": round(4 / med["default"], 3),
                "batch_8": round(8 / med["batch_8"], 3),
            },
            "segmenter_small_frames_per_s": round(8 / med["segmenter_small"], 2),
        },
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--height", type=int, default=160)
    ap.add_argument("--width", type=int, default=240)
    ap.add_argument("--rounds", type=int, default=5, help="timed rounds (medians)")
    ap.add_argument("--warmup", type=int, default=1, help="untimed rounds first")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--precision", default="auto", help="auto | fp32 | bf16 (layout arms: fp32)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    keep_freed_memory()  # as the trainer does
    result = run(args)
    result["machine"] = machine()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
