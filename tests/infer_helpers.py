"""Helpers shared by the infer tests: tiny untrained checkpoints (frame model, segmenter),
`predict` in-process, a masks checkpoint's forecast by hand, the CLI in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def tiny_checkpoint(path: Path, seed: int = 0, **overrides) -> Path:
    """Save an untrained `tiny` model the way the trainer does (model config beside weights)."""
    from convrnn_video.convrnn import get_preset
    from convrnn_video.runtime.checkpoint import save_untrained

    return save_untrained(path, get_preset("tiny", **overrides), seed)


def motion_checkpoint(path: Path, step: tuple[float, float], preset: str = "tiny-motion") -> Path:
    """Save a new motion model whose motion head gives the displacement `step` (x, y, in grid
    cells) at every cell and frame: its weights zero, its bias `step`, so the accumulated
    displacement of predicted frame k (from 1) is k * step everywhere."""
    import torch
    from convrnn_video.convrnn import get_preset
    from convrnn_video.runtime.checkpoint import load_checkpoint, save_checkpoint, save_untrained

    payload = load_checkpoint(save_untrained(path, get_preset(preset)))
    payload["model"]["flow_head.bias"] = torch.tensor(step)  # the weights start at zero
    return save_checkpoint(path, payload)


# An untrained `tiny` segmenter with BatchNorm (running stats at their init) gives one class
# everywhere; with GroupNorm and the flat head it gives a dozen classes on the shards' frames,
# so mask tests compare pictures, not constants.
VARIED_SEGMENTER = {"head": "flat", "norm": "group", "norm_group_size": 2}


def tiny_segmenter(path: Path, seed: int = 0, **overrides) -> Path:
    """Save an untrained `tiny` segmenter (varied outputs) as a segment-task checkpoint."""
    from convrnn_video.runtime.checkpoint import save_untrained
    from convrnn_video.segment import get_preset

    return save_untrained(path, get_preset("tiny", **{**VARIED_SEGMENTER, **overrides}), seed)


def predict(shards: Path, ckpt: Path, out, **kw) -> dict:
    """`run_predict` of a checkpoint over the shards into `out`, without a progress bar."""
    from convrnn_video.infer.config import PredictConfig
    from convrnn_video.infer.predict import run_predict

    return run_predict(
        PredictConfig(shards=str(shards), ckpt=str(ckpt), out=str(out), progress=False, **kw)
    )


def by_hand(shards: Path, split: str, ckpt: Path, seg: Path, batch_size: int, relabel=False):
    """(forecast masks (N, T_out, H, W) uint8, the segmenter's input masks (N, T_in, H, W)):
    the segmenter on each video's input frames, then the forecaster on the loader's batches."""
    import numpy as np
    import torch
    from convrnn_video.convrnn.masks import restrict_to_seen
    from convrnn_video.runtime.checkpoint import load_model
    from convrnn_video.segment.objects import whole_objects
    from convrnn_video.shards.loader import make_loader

    model, cfg, _ = load_model(ckpt, "cpu", task="masks")
    segmenter, _, _ = load_model(seg, "cpu", task="segment")
    loader = make_loader(
        str(shards), [split], mode="eval", batch_size=batch_size,
        frames_in=cfg.frames_in, frames_out=cfg.frames_out,
    )  # fmt: skip
    out, inputs = [], []
    with torch.inference_mode():
        for batch in loader:
            seen = torch.stack([segmenter(v).argmax(1) for v in batch["inputs"]])  # (B, T, H, W)
            seen = whole_objects(seen, segmenter.cfg.num_classes)  # as every command segments
            logits = model(seen)  # (B, T_out, K, H, W)
            ids = restrict_to_seen(logits, seen) if relabel else logits.argmax(2)
            out.append(ids.to(torch.uint8).numpy())
            inputs.append(seen.numpy())
    return np.concatenate(out), np.concatenate(inputs)


def run_cli(
    *args: str, cwd: Path | None = None, timeout: float = 300, check: bool = True
) -> subprocess.CompletedProcess:
    """`python cli.py ARGS` as a subprocess (from `cwd`), with the repository importable."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "cli.py"), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"cli {args} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return proc


def assert_frames_close(a, b, what: object = "") -> None:
    """uint8 frames equal but for rounding: within one grey level, on under 0.1 % of values.
    On AVX2 the convolutions run NCHW, where oneDNN picks kernels by batch, threads and
    process: the same video in another forward pass can land one level off on a few values."""
    import numpy as np

    diff = np.abs(np.asarray(a, dtype=np.int16) - np.asarray(b, dtype=np.int16))
    share = float((diff > 0).mean()) if diff.size else 0.0
    assert diff.max(initial=0) <= 1 and share < 1e-3, (what, int(diff.max(initial=0)), share)
