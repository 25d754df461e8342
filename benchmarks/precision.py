"""bf16 against fp32 on this machine: what it buys and what it costs. Prints JSON.

    python benchmarks/precision.py                                      # kernels only
    python benchmarks/precision.py --ckpt RUN/best.pt --shards SHARDS   # + a trained model

Kernels: convolutions of the shapes `seed` and `compact` run (channels_last, as the model runs
them) in float32 and bfloat16, in GFLOP/s; and `torch.tanh` against 2 sigmoid(2x) - 1 (the form
the cells use), outside autograd and forward + backward. With --ckpt and --shards:
`predict --split val` into two stores, fp32 and bf16, `evaluate` on each, and how far apart the
stored uint8 frames are.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.machine import machine  # noqa: E402
from benchmarks.timing import median_seconds  # noqa: E402

# (batch, in channels, out channels, height, width, kernel): seed's largest gate convolution,
# compact's batch-8 input projection and its 20x30 stage
CONVS = [(1, 128, 128, 160, 240, 5), (8, 80, 144, 40, 60, 3), (8, 48, 96, 20, 30, 3)]


def median_ms(fn: Callable[[], object], repeats: int) -> float:
    return 1e3 * median_seconds(fn, repeats, warmup=1)


def kernels(repeats: int) -> dict:
    convs = []
    for n, cin, cout, h, w, k in CONVS:
        x = torch.rand(n, cin, h, w).contiguous(memory_format=torch.channels_last)
        wt = torch.rand(cout, cin, k, k).contiguous(memory_format=torch.channels_last)
        gflop = 2 * n * h * w * cin * cout * k * k / 1e9
        rate = {}
        for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
            xd, wd = x.to(dtype), wt.to(dtype)
            pad = k // 2
            ms = median_ms(lambda xd=xd, wd=wd, p=pad: torch.conv2d(xd, wd, padding=p), repeats)
            rate[name] = round(gflop / ms * 1e3, 1)
        convs.append({"shape": [n, cin, cout, h, w, k], "gflops_per_s": rate})
    x = torch.randn(8, 32, 40, 60).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        tanh_ms = median_ms(lambda: torch.tanh(x), repeats * 5)
        sig_ms = median_ms(lambda: torch.sigmoid(x * 2) * 2 - 1, repeats * 5)
        plain_sigmoid_ms = median_ms(lambda: torch.sigmoid(x), repeats * 5)
    xg, grad = x.clone().requires_grad_(), torch.randn_like(x)
    tanh_bwd_ms = median_ms(lambda: torch.tanh(xg).backward(grad), repeats * 5)
    sig_bwd_ms = median_ms(lambda: (torch.sigmoid(xg * 2) * 2 - 1).backward(grad), repeats * 5)
    return {
        "convs": convs,
        "forward_backward_ms_8x32x40x60": {
            "torch.tanh": round(tanh_bwd_ms, 3),
            "2*sigmoid(2x)-1": round(sig_bwd_ms, 3),
        },
        "elementwise_ms_8x32x40x60": {
            "torch.tanh": round(tanh_ms, 3),
            "2*sigmoid(2x)-1": round(sig_ms, 3),
            "torch.sigmoid": round(plain_sigmoid_ms, 3),
        },
    }


def model_cost(ckpt: str, shards: str, work: Path) -> dict:
    import numpy as np
    from convrnn_video.infer.config import EvaluateConfig, PredictConfig
    from convrnn_video.infer.evaluate import run_evaluate
    from convrnn_video.infer.predict import run_predict
    from convrnn_video.stores.predictions import PredStore

    out: dict = {}
    for precision in ("fp32", "bf16"):
        store = work / f"{precision}.zarr"
        s = run_predict(
            PredictConfig(shards=shards, ckpt=ckpt, out=str(store), split="val",
                          precision=precision, progress=False)
        )  # fmt: skip
        report = run_evaluate(
            EvaluateConfig(preds=str(store), shards=shards, out=str(work / f"{precision}.json"),
                           progress=False)
        )  # fmt: skip
        model = report["model"]
        out[precision] = {
            "videos": s["videos"],
            "predict_s": s["seconds"],
            **{m: round(model[m]["mean"], 6) for m in ("mse", "mae", "psnr", "ssim")},
        }
    a = PredStore.open(work / "fp32.zarr").frames[:].astype(np.int16)
    b = PredStore.open(work / "bf16.zarr").frames[:].astype(np.int16)
    diff = np.abs(a - b)
    out["uint8_difference"] = {
        "fraction_changed": round(float((diff > 0).mean()), 4),
        "mean": round(float(diff.mean()), 4),
        "max": int(diff.max()),
    }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--repeats", type=int, default=7, help="timed runs per kernel (median)")
    ap.add_argument("--ckpt", help="a trained checkpoint, for the model comparison")
    ap.add_argument("--shards", help="shards with a val split, for the model comparison")
    args = ap.parse_args()
    check = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
    result = {
        "threads": torch.get_num_threads(),
        "cpu_bf16": bool(check()) if check is not None else None,
        "kernels": kernels(args.repeats),
    }
    if args.ckpt and args.shards:
        with tempfile.TemporaryDirectory(prefix="bench-precision-") as work:
            result["model"] = model_cost(args.ckpt, args.shards, Path(work))
    result["machine"] = machine()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
