"""`model_step.py --gpu`: videos/s of a training step and of a prediction on CUDA, for the
frame presets, the mask forecaster and the segmenter, eager and under torch.compile."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

import torch
import torch.nn.functional as F
from convrnn_video.convrnn import build_model, get_preset
from convrnn_video.runtime.device import autocast, resolve_precision
from convrnn_video.segment import build_segmenter
from convrnn_video.segment import get_preset as segmenter_preset

from benchmarks.timing import median_seconds

MODELS = ("seed", "compact", "seed-masks", "segmenter-small")
Call = Callable[[torch.nn.Module], None]
Workload = tuple[torch.nn.Module, Call, Call]  # a model, its training step, its prediction


def workload(name: str, args: argparse.Namespace, device, context) -> Workload:
    """(model, a training step of it, a prediction of it) on random inputs of `args`' shape:
    MSE for frames, cross-entropy for masks and the segmenter (which sees every frame of the
    batch's videos as one batch of images)."""
    b, fi, fo, h, w = args.batch, args.frames_in, args.frames_out, args.height, args.width
    torch.manual_seed(0)
    if name.startswith("segmenter"):
        model = build_segmenter(segmenter_preset("small")).to(device)
        x = torch.rand(b * (fi + fo), 3, h, w, device=device)  # every frame of b videos
        y = torch.randint(0, 49, (b * (fi + fo), h, w), device=device)

        def loss(m: torch.nn.Module) -> torch.Tensor:
            with context:
                logits = m(x)
            return F.cross_entropy(logits.float(), y)
    else:
        cfg = get_preset(name, frames_in=fi, frames_out=fo, height=h, width=w)
        model = build_model(cfg).to(device)
        if cfg.masks:
            x = torch.randint(0, cfg.num_classes, (b, fi, h, w), device=device)
            y = torch.randint(0, cfg.num_classes, (b, fo, h, w), device=device)
        else:
            x = torch.rand(b, fi, cfg.image_channels, h, w, device=device)
            y = torch.rand(b, fo, cfg.image_channels, h, w, device=device)

        def loss(m: torch.nn.Module) -> torch.Tensor:
            with context:
                out = m(x, y, 0.0)
            if cfg.masks:  # (B, T, K, H, W) logits
                return F.cross_entropy(out.float().movedim(2, -1).flatten(0, -2), y.flatten())
            return ((out.float() - y) ** 2).mean()

    def step(m: torch.nn.Module) -> None:
        loss(m).backward()

    def infer(m: torch.nn.Module) -> None:
        with torch.inference_mode(), context:
            m(x)

    return model, step, infer


def gpu_rates(args: argparse.Namespace, device: torch.device) -> list[dict[str, object]]:
    """On the GPU, at the training default precision: videos/s of a training step and of a
    prediction for every model of MODELS (the segmenter per frame: videos/s = frames/s / frames
    per video), eager and (--compile) compiled. Timed between torch.cuda.synchronize() calls;
    a `device` other than CUDA only checks the code."""
    cuda = device.type == "cuda"
    context = autocast(resolve_precision("auto", device), device, warn=False)
    rows = []
    for name in MODELS:
        model, step, infer = workload(name, args, device, context)
        row: dict[str, object] = {"model": name, "batch": args.batch,
                                  "frame": f"{args.height}x{args.width}"}  # fmt: skip
        variants = {"eager": model}
        if args.compile:
            variants["compiled"] = torch.compile(model)
        for label, m in variants.items():
            for kind, fn in (("train", step), ("infer", infer)):
                m.train(kind == "train")

                def call(m=m, fn=fn):
                    m.zero_grad(set_to_none=True)
                    fn(m)
                    if cuda:
                        torch.cuda.synchronize()

                seconds = median_seconds(call, args.repeats, max(args.warmup, 2))
                row[f"{label}_{kind}_videos_per_s"] = round(args.batch / seconds, 2)
        print(f"gpu {row}", file=sys.stderr, flush=True)
        rows.append(row)
        if cuda:
            row["peak_memory_gb"] = round(torch.cuda.max_memory_allocated() / 1e9, 2)
            del model, variants
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
    return rows
