"""`evaluate`: a store predicted from a labelled split, scored against the true future frames.

The frames scored are the ones the store holds (uint8, as exported), beside the copy-last-frame
baseline (the last input frame repeated). Metrics come from `runtime.metrics.MetricAccumulator`,
the same code that scores validation during training. Writes a JSON report and, beside it,
a plot of each metric against the frame index with both lines.

A store with masks (predict --segmenter) is also scored with the course's Jaccard index
(`runtime.jaccard.FrameJaccard`, equal to torchmetrics' over the stacked masks) against the true
masks of the shards, beside two baselines made with the same segmenter: its mask of the last
input frame (frame 11) copied to every predicted frame, and its masks of the true future frames
(the best this segmenter can do); beside them a motion baseline, `convrnn.extrapolate`: the
objects of its frame-11 mask moved along their velocity from its masks of the last input frames,
slowing per frame (a model that cannot beat it has not learned motion). Report key "jaccard":
per predicted frame, mean, last frame (frame 22) and per-class IoU of each. A masks-only store
(a mask-forecasting checkpoint: no `frames` array) gets the Jaccard part only.

Frames of any size are scored, RGB (3 channels) or grayscale (1): the metrics average over the
channels there are.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from convrnn_video.infer.config import EvaluateConfig
from convrnn_video.infer.errors import InferError, refuse_existing
from convrnn_video.infer.masks import load_segmenter
from convrnn_video.infer.scorer import JACCARD_LINES, Scorer
from convrnn_video.infer.videos import split_videos
from convrnn_video.ingest.writer import sha256_file
from convrnn_video.runtime.distributed import setup
from convrnn_video.runtime.errors import RunError
from convrnn_video.shards.loader import make_loader
from convrnn_video.stores.predictions import PredStore
from tqdm import tqdm

log = logging.getLogger(__name__)
LABELLED = ("val", "train")  # splits whose shards hold the future frames
LABELS = {"mse": "MSE", "mae": "MAE", "psnr": "PSNR (dB)", "ssim": "SSIM",
          "energy": "energy (true frames: 1)"}  # fmt: skip


def plot_report(report: dict[str, Any], path: Path) -> None:
    """Each metric against the frame index: the model and copy-last-frame (a store with
    frames); with masks, a panel of the Jaccard score of the model, copying the last input's
    mask, extrapolating its objects and the segmenter on the true frames."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    frames, jaccard = report["frames"], report.get("jaccard")
    metrics = list(LABELS) if "model" in report else []
    panels = len(metrics) + (jaccard is not None)
    fig, grid = plt.subplots(
        1, panels, figsize=(4 * panels, 3.6), constrained_layout=True, squeeze=False
    )
    axes = list(grid[0])
    for ax, name in zip(axes, metrics, strict=False):
        ax.plot(frames, report["model"][name]["per_frame"], "o-", label="model")
        ax.plot(
            frames, report["copy_last_frame"][name]["per_frame"], "s--", label="copy last frame"
        )
        ax.set_title(LABELS[name])
    if metrics:
        axes[0].legend()
    if jaccard is not None:
        ax = axes[-1]
        for key, style in zip(JACCARD_LINES, ("o-", "s--", "d-.", "^:"), strict=True):
            ax.plot(frames, jaccard[key]["per_frame"], style, label=JACCARD_LINES[key])
        ax.set_title("Jaccard (49 classes)")
        ax.set_ylim(0, 1)
        ax.legend(fontsize=8)
    for ax in axes:
        ax.set_xlabel("frame")
        ax.grid(alpha=0.3)
    fig.suptitle(f"{report['split']}: {report['videos']} videos")
    tmp = path.with_name(path.name + ".tmp")
    fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
    os.replace(tmp, path)


def _checked_store(cfg: EvaluateConfig) -> tuple[PredStore, str, int, int]:
    """(store, split, frames_in, frames_out) of a finished store of a labelled split whose
    videos are the ones of the shards."""
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
    # the true future starts after the observed frames (the store's first frame), which the
    # model's frames_in may be fewer than
    frames_in, frames_out = int(attrs.get("first_frame", attrs["frames_in"])), store.shape[0]
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
    return store, split, frames_in, frames_out


def _store_segmenter(cfg: EvaluateConfig, store: PredStore, device: torch.device):
    """The segmenter that made the store's masks (from --segmenter, else the path the store
    records), checked by its sha256; None for a store without masks."""
    if store.masks is None:
        if cfg.segmenter is not None:
            log.warning("evaluate: %s has no masks; --segmenter is not used", cfg.preds)
        return None
    attrs = store.attrs
    path, sha = Path(cfg.segmenter or attrs.get("segmenter") or ""), attrs.get("segmenter_sha256")
    if not path.is_file():
        raise InferError(
            f"the segmenter that made the masks of {cfg.preds} ({path}) is not there; pass "
            f"--segmenter with a copy of it (sha256 {str(sha)[:12]}...)"
        )
    if sha256_file(path) != sha:
        raise InferError(
            f"--segmenter {path} is not the segmenter that made the masks of {cfg.preds} "
            f"({attrs.get('segmenter')}, sha256 {str(sha)[:12]}...); the baselines must use "
            "the same one"
        )
    return load_segmenter(path, device)[0]


def run_evaluate(cfg: EvaluateConfig) -> dict[str, Any]:
    """Score the store at `cfg.preds` against `cfg.shards`; writes the report and its plot."""
    cfg.validate()
    device = _device(cfg.device)  # first: `--device cuda` without CUDA is one line, not a crash
    out, plot = Path(cfg.out), Path(cfg.out).with_suffix(".png")
    refuse_existing(out, plot, overwrite=cfg.overwrite)  # before any scoring
    store, split, frames_in, frames_out = _checked_store(cfg)
    segmenter = _store_segmenter(cfg, store, device)
    start = time.perf_counter()
    scorer = Scorer(store, segmenter, (frames_in, frames_out))
    scores = _score(cfg, scorer, split)
    report = _report(cfg, store, scores, time.perf_counter() - start)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps(report, indent=2) + "\n")
    os.replace(tmp, out)
    plot_report(report, plot)
    report["plot"] = str(plot)
    log.debug("evaluate: %s", {k: report[k] for k in ("preds", "videos", "seconds")})
    return report


def _report(
    cfg: EvaluateConfig, store: PredStore, scores: dict[str, Any], seconds: float
) -> dict[str, Any]:
    """The JSON report: where from, the frames scored, the scores, how long it took."""
    attrs = store.attrs
    frames_in, frames_out = int(attrs["frames_in"]), store.shape[0]
    first = int(attrs.get("first_frame", frames_in))
    report = {
        "preds": str(cfg.preds),
        "shards": str(cfg.shards),
        "split": attrs["split"],
        "videos": scores.pop("videos"),
        "ckpt": attrs.get("ckpt"),
        "ckpt_sha256": attrs.get("ckpt_sha256"),
        "frames": list(range(first, first + frames_out)),
        **scores,
        "seconds": round(seconds, 3),
    }
    if "jaccard" in report:
        seg = {"segmenter": attrs.get("segmenter"), "segmenter_sha256": attrs["segmenter_sha256"]}
        report["jaccard"] = {**seg, **report["jaccard"]}
    return report


def _device(name: str) -> torch.device:
    """The device `name` (auto, cpu, cuda, cuda:N) picks, by the same check as train and
    predict (`runtime.distributed.setup`, no process-wide settings): cuda without CUDA is an
    InferError."""
    try:
        return setup(name, tune=False).device
    except RunError as exc:
        raise InferError(str(exc)) from None


def _score(cfg: EvaluateConfig, scorer: Scorer, split: str) -> dict[str, Any]:
    """Run the shards of `split` through `scorer`; its result, once every video is scored."""
    loader = make_loader(
        cfg.shards,
        [split],
        mode="eval",
        batch_size=cfg.batch_size,
        frames_in=scorer.frames[0],
        frames_out=scorer.frames[1],
        masks=scorer.jaccard is not None,
    )
    # a bar on a terminal only (off one, \r-updates fill a log), and not under --quiet
    shown = cfg.progress and sys.stderr.isatty() and log.isEnabledFor(logging.INFO)
    for batch in tqdm(loader, unit="batch", desc="evaluate", disable=not shown):
        if batch["targets"] is None:
            raise InferError(f"the {split!r} shards in {cfg.shards} carry no future frames")
        scorer.add(batch, cfg.shards)
    if scorer.videos != len(scorer.store):
        raise InferError(
            f"the {split!r} shards in {cfg.shards} hold {scorer.videos} videos but the store "
            f"{len(scorer.store)}; evaluate with the shards it was predicted from"
        )
    return scorer.result()
