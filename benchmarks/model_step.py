"""Time a training step (forward + backward) and a prediction (forward only) of the model
presets, side by side with the naive reference on the same weights; print JSON.

    python benchmarks/model_step.py                       # seed and compact, B=1, 11->11, 160x240
    python benchmarks/model_step.py --height 32 --width 48 --repeats 1   # a quick small run
    python benchmarks/model_step.py --conv-floor   # + the convolutions alone: a speed-up ceiling
    python benchmarks/model_step.py --presets seed --compile   # + torch.compile, its break-even
    python benchmarks/model_step.py --gpu     # on CUDA: videos/s of seed, compact, seed-masks and
                                              # the small segmenter, eager and torch.compile

The optimised model runs at the training default precision (`--precision auto`: bf16 autocast
where the CPU computes bf16 natively, see runtime.device.resolve_precision) and in float32; the
naive reference always in float32, the baseline the speed-ups are quoted against.

Reports medians over --repeats timed runs (after --warmup untimed ones), the speedup over the
naive reference, and achieved GFLOP/s beside a plain fp32 matmul measured in the same run.
FLOPs are those the original code performs (`convrnn.summary.conv_macs`, x 2; a training step
counted as 3 x forward), so the rates of both implementations are comparable; the FLOPs this
implementation actually executes are listed too.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import resource
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from convrnn_video.convrnn import PRESETS, build_model, get_preset  # noqa: E402
from convrnn_video.convrnn.reference import from_model  # noqa: E402
from convrnn_video.convrnn.summary import conv_macs  # noqa: E402
from convrnn_video.runtime.device import autocast, resolve_precision

from benchmarks.conv_floor import conv_floor, train_step  # noqa: E402
from benchmarks.gpu_rates import gpu_rates  # noqa: E402
from benchmarks.machine import machine  # noqa: E402
from benchmarks.timing import median_seconds  # noqa: E402


def matmul_gflops(n: int, repeats: int) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    return 2 * n**3 / median_seconds(lambda: a @ b, max(repeats, 3), 1) / 1e9


def predict(model: torch.nn.Module, x: torch.Tensor, context=contextlib.nullcontext()) -> None:
    with torch.inference_mode(), context:
        model(x)


def time_models(
    models: dict[str, tuple[torch.nn.Module, object]],
    x: torch.Tensor,
    y: torch.Tensor,
    repeats: int,
    warmup: int,
) -> dict[str, dict[str, float]]:
    """Median (and min) seconds of a training step and a prediction of each (model, autocast
    context); the models take turns within every repetition so that a change of machine load
    hits them alike. Also the median process CPU seconds (what a shared machine inflates
    least)."""
    times: dict[str, dict[str, list[float]]] = {
        k: {"train": [], "infer": [], "train_cpu": [], "infer_cpu": []} for k in models
    }
    for rep in range(warmup + repeats):
        for label, (model, context) in models.items():
            for kind in ("train", "infer"):
                start, start_cpu = time.perf_counter(), time.process_time()
                if kind == "train":
                    model.train()
                    train_step(model, x, y, context)
                else:
                    model.eval()
                    predict(model, x, context)
                if rep >= warmup:
                    times[label][kind].append(time.perf_counter() - start)
                    times[label][f"{kind}_cpu"].append(time.process_time() - start_cpu)
    return {
        label: {
            "train_s": statistics.median(t["train"]),
            "infer_s": statistics.median(t["infer"]),
            "train_min_s": min(t["train"]),
            "infer_min_s": min(t["infer"]),
            "train_cpu_s": statistics.median(t["train_cpu"]),
            "infer_cpu_s": statistics.median(t["infer_cpu"]),
        }
        for label, t in times.items()
    }


def compile_model(
    model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, context
) -> tuple[torch.nn.Module, dict[str, float]]:
    """torch.compile(model) and the seconds of its first training step and first prediction,
    compilation included (the steady-state times come from the timed runs)."""
    compiled = torch.compile(model)
    info = {}
    for kind in ("train", "infer"):
        compiled.train(kind == "train")
        start = time.perf_counter()
        if kind == "train":
            train_step(compiled, x, y, context)
        else:
            predict(compiled, x, context)
        info[f"{kind}_first_call_s"] = round(time.perf_counter() - start, 1)
    print(f"compile: {info}", file=sys.stderr, flush=True)
    return compiled, info


def bench_preset(name: str, args: argparse.Namespace) -> dict[str, object]:
    cfg = get_preset(
        name,
        frames_in=args.frames_in,
        frames_out=args.frames_out,
        height=args.height,
        width=args.width,
    )
    torch.manual_seed(0)
    model = build_model(cfg)
    x = torch.rand(args.batch, cfg.frames_in, cfg.image_channels, cfg.height, cfg.width)
    y = torch.rand(args.batch, cfg.frames_out, cfg.image_channels, cfg.height, cfg.width)
    gflop = 2 * args.batch * conv_macs(cfg) / 1e9
    row: dict[str, object] = {
        "preset": name,
        "batch": args.batch,
        "frames": f"{cfg.frames_in}->{cfg.frames_out}",
        "frame": f"{cfg.height}x{cfg.width}",
        "params": sum(p.numel() for p in model.parameters()),
        "gflop_forward": round(gflop, 2),
        "gflop_forward_executed": round(2 * args.batch * conv_macs(cfg, executed=True) / 1e9, 2),
    }
    precision = resolve_precision(args.precision, torch.device("cpu"))
    fp32 = contextlib.nullcontext()
    default = autocast(precision, torch.device("cpu"), warn=False)
    row["precision"] = precision
    row["layout"] = "channels_last" if model.channels_last else "nchw"
    other = "nchw" if model.channels_last else "channels_last"
    runs = {"optimised": (model, default)}
    if precision != "fp32":
        runs["optimised_fp32"] = (model, fp32)
    if args.compare_contiguous:  # the same network in the other memory layout
        twin = build_model(cfg, channels_last=not model.channels_last)
        twin.load_state_dict(model.state_dict())
        runs[f"optimised_{other}"] = (twin, default)
    if args.compile:
        compiled, row["compile"] = compile_model(model, x, y, default)
        runs["compiled"] = (compiled, default)
    if not args.no_naive:
        runs["naive"] = (from_model(model), fp32)
    for label, t in time_models(runs, x, y, args.repeats, args.warmup).items():
        row[label] = {
            **{k: round(v, 4) for k, v in t.items()},
            "train_gflops_per_s": round(3 * gflop / t["train_s"], 1),
            "infer_gflops_per_s": round(gflop / t["infer_s"], 1),
        }
        print(f"{name} {label}: {row[label]}", file=sys.stderr, flush=True)
    if args.conv_floor:
        # at the default precision: the floor of the implementation being measured
        row["conv_floor"] = conv_floor(model, x, y, args.repeats, default)
        print(f"{name} conv floor: {row['conv_floor']}", file=sys.stderr, flush=True)
    if "naive" in row:
        opt, naive = row["optimised"], row["naive"]
        if "conv_floor" in row:  # the best speed-up possible at identical math (see conv_floor)
            floor = row["conv_floor"]
            row["ceiling_train"] = round(naive["train_s"] / floor["train_s"], 2)
            row["ceiling_infer"] = round(naive["infer_s"] / floor["infer_s"], 2)
        row["speedup_train"] = round(naive["train_s"] / opt["train_s"], 2)
        row["speedup_infer"] = round(naive["infer_s"] / opt["infer_s"], 2)
        if "optimised_fp32" in row:
            f32 = row["optimised_fp32"]
            row["speedup_train_fp32"] = round(naive["train_s"] / f32["train_s"], 2)
            row["speedup_infer_fp32"] = round(naive["infer_s"] / f32["infer_s"], 2)
        if "compiled" in row:
            comp, info = row["compiled"], row["compile"]
            row["speedup_train_compiled"] = round(naive["train_s"] / comp["train_s"], 2)
            row["speedup_infer_compiled"] = round(naive["infer_s"] / comp["infer_s"], 2)
            for kind in ("train", "infer"):  # calls after which compiling has paid for itself
                cost = info[f"{kind}_first_call_s"] - comp[f"{kind}_s"]  # the one-off compile
                saved = opt[f"{kind}_s"] - comp[f"{kind}_s"]  # per call, against eager
                info[f"{kind}_compile_s"] = round(cost, 1)
                info[f"break_even_{kind}_calls"] = round(cost / saved) if saved > 0 else None
        if f"optimised_{other}" in row:
            twin = row[f"optimised_{other}"]
            row[f"speedup_train_{other}"] = round(naive["train_s"] / twin["train_s"], 2)
            row[f"speedup_infer_{other}"] = round(naive["infer_s"] / twin["infer_s"], 2)
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--presets", default="seed,compact", help="comma-separated preset names")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--frames-in", type=int, default=11)
    p.add_argument("--frames-out", type=int, default=11)
    p.add_argument("--height", type=int, default=160)
    p.add_argument("--width", type=int, default=240)
    p.add_argument("--repeats", type=int, default=3, help="timed runs (the median is reported)")
    p.add_argument("--warmup", type=int, default=1, help="untimed runs first")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--no-naive", action="store_true", help="skip the naive reference")
    p.add_argument(
        "--compare-layout",
        "--compare-contiguous",
        dest="compare_contiguous",
        action="store_true",
        help="also time the optimised model in the other memory layout (channels_last or "
        "NCHW; the default follows the CPU class)",
    )
    p.add_argument("--matmul-size", type=int, default=2048)
    p.add_argument("--precision", default="auto", help="the optimised model's: auto | fp32 | bf16")
    p.add_argument("--compile", action="store_true", help="also time torch.compile(model)")
    p.add_argument(
        "--conv-floor",
        action="store_true",
        help="also time every convolution of the network alone: the floor under any "
        "implementation of the same math, and the speed-up ceiling it implies",
    )
    p.add_argument(
        "--gpu",
        action="store_true",
        help="time the models on CUDA instead (with --compile: also compiled)",
    )
    args = p.parse_args()
    unknown = [n for n in args.presets.split(",") if n not in PRESETS]
    if unknown:
        raise SystemExit(f"error: --presets: unknown {', '.join(unknown)}; choose from "
                         f"{', '.join(sorted(PRESETS))}")  # fmt: skip
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.gpu:
        if not torch.cuda.is_available():
            raise SystemExit("error: --gpu: no CUDA device here")
        torch.backends.cudnn.benchmark = True  # as training sets it (runtime.distributed.setup)
        rates = gpu_rates(args, torch.device("cuda"))
        result = {"torch": torch.__version__, "gpu": rates, "machine": machine()}
        print(json.dumps(result, indent=2))
        return
    result = {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "matmul_fp32_gflops_per_s": round(matmul_gflops(args.matmul_size, args.repeats), 1),
        "presets": [bench_preset(n, args) for n in args.presets.split(",")],
    }
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    result["machine"] = machine()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
