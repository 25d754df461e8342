"""`evaluate`: a store predicted from a labelled split, scored against the true future frames.

The frames scored are the ones the store holds (uint8, as exported), beside the copy-last-frame
baseline (the last input frame repeated). Metrics come from `train.metrics.MetricAccumulator`,
the same code that scores validation during training. Writes a JSON report and, beside it,
a plot of each metric against the frame index with both lines.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from infer.config import EvaluateConfig
from infer.errors import InferError
from infer.store import PredStore
from infer.videos import split_videos

log = logging.getLogger(__name__)
LABELLED = ("val", "train")  # splits whose shards hold the future frames
LABELS = {"mse": "MSE", "mae": "MAE", "psnr": "PSNR (dB)", "ssim": "SSIM"}


def stored_frames(store: PredStore, positions) -> torch.Tensor:
    """(B, T_out, 3, H, W) float in [0, 1] from the store's uint8 (B, T_out, H, W, 3)."""
    u8 = torch.from_numpy(store.read(positions))
    return u8.permute(0, 1, 4, 2, 3).float().div_(255)  # (B, T_out, 3, H, W)


def plot_report(report: dict[str, Any], path: Path) -> None:
    """Each metric against the frame index: the model and copy-last-frame."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    frames = report["frames"]
    fig, axes = plt.subplots(1, 4, figsize=(16, 3.6), constrained_layout=True)
    for ax, name in zip(axes, LABELS, strict=True):
        ax.plot(frames, report["model"][name]["per_frame"], "o-", label="model")
        ax.plot(
            frames, report["copy_last_frame"][name]["per_frame"], "s--", label="copy last frame"
        )
        ax.set_xlabel("frame")
        ax.set_title(LABELS[name])
        ax.grid(alpha=0.3)
    axes[0].legend()
    fig.suptitle(f"{report['split']}: {report['videos']} videos")
    tmp = path.with_name(path.name + ".tmp")
    fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
    os.replace(tmp, path)


def run_evaluate(cfg: EvaluateConfig) -> dict[str, Any]:
    """Score the store at `cfg.preds` against `cfg.shards`; writes the report and its plot."""
    from shards.loader import make_loader
    from train.metrics import MetricAccumulator, copy_last_frame

    cfg.validate()
    store = PredStore.open(cfg.preds)
    attrs = store.attrs
    split = attrs.get("split")
    if split not in LABELLED:
        raise InferError(
            f"{cfg.preds} holds predictions of the {split!r} split, which has no ground truth; "
            "predict the val split (`python cli.py predict --split val --out val.zarr`) and "
            "evaluate that store"
        )
    missing = int((~store.done_mask()).sum())
    if missing:
        raise InferError(
            f"{cfg.preds} is incomplete: {missing} of {len(store)} videos are not "
            "predicted yet; rerun the same `predict` command to finish it"
        )
    frames_in, frames_out = int(attrs["frames_in"]), int(store.frames.shape[1])
    ids, frames_per_video = split_videos(cfg.shards, split)
    if frames_per_video < frames_in + frames_out:
        raise InferError(
            f"the {split!r} videos in {cfg.shards} have {frames_per_video} frames, "
            f"the store needs {frames_in} inputs + {frames_out} true future frames"
        )
    if not np.array_equal(ids, store.ids()):
        raise InferError(
            f"the {split!r} shards in {cfg.shards} hold other videos than the store "
            f"({len(ids)} vs {len(store)}); evaluate with the shards it was "
            "predicted from"
        )

    model_acc, copy_acc = MetricAccumulator(), MetricAccumulator()
    loader = make_loader(
        cfg.shards,
        [split],
        mode="eval",
        batch_size=cfg.batch_size,
        frames_in=frames_in,
        frames_out=frames_out,
    )
    start, seen = time.perf_counter(), 0
    for batch in tqdm(loader, unit="batch", desc="evaluate", disable=not cfg.progress):
        target = batch["targets"]
        if target is None:
            raise InferError(f"the {split!r} shards in {cfg.shards} carry no future frames")
        pred = stored_frames(store, store.positions(batch["ids"]))
        if pred.shape != target.shape:
            raise InferError(
                f"store frames {tuple(pred.shape[1:])} do not match the shards' "
                f"future frames {tuple(target.shape[1:])}; wrong --shards?"
            )
        model_acc.update(pred, target)
        copy_acc.update(copy_last_frame(batch["inputs"], frames_out), target)
        seen += len(batch["ids"])
    if seen != len(store):
        raise InferError(
            f"the {split!r} shards in {cfg.shards} hold {seen} videos but the store "
            f"{len(store)}; evaluate with the shards it was predicted from"
        )

    first = int(attrs.get("first_frame", frames_in))
    report = {
        "preds": str(cfg.preds),
        "shards": str(cfg.shards),
        "split": split,
        "videos": seen,
        "ckpt": attrs.get("ckpt"),
        "ckpt_sha256": attrs.get("ckpt_sha256"),
        "frames": list(range(first, first + frames_out)),
        "model": model_acc.compute(),
        "copy_last_frame": copy_acc.compute(),
        "seconds": round(time.perf_counter() - start, 3),
    }
    out = Path(cfg.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps(report, indent=2) + "\n")
    os.replace(tmp, out)
    plot = out.with_suffix(".png")
    plot_report(report, plot)
    report["plot"] = str(plot)
    log.debug("evaluate: %s", {k: report[k] for k in ("preds", "videos", "seconds")})
    return report
