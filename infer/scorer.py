"""The accumulators of one evaluation: `Scorer` scores a store batch by batch.

Frames (a store with frames): the store's uint8 frames beside the copy-last-frame baseline, by
`runtime.metrics.MetricAccumulator`. Masks (a store with masks and the segmenter that made
them): the Jaccard index (`runtime.jaccard.FrameJaccard`) of the store's masks and of three
baselines made with the same segmenter, in the precision the store's masks were made in: its
mask of the last input frame copied, its objects moved by `convrnn.extrapolate`, and its masks
of the true future frames (the ceiling).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from convrnn_video.convrnn.extrapolate import FIT_FRAMES, extrapolate_masks
from convrnn_video.infer.errors import InferError
from convrnn_video.runtime.device import autocast
from convrnn_video.runtime.jaccard import FrameJaccard
from convrnn_video.runtime.metrics import MetricAccumulator, copy_last_frame
from convrnn_video.segment.apply import segment_frames
from convrnn_video.shards.buffers import frames_to_float
from convrnn_video.stores.predictions import PredStore

JACCARD_LINES = {  # the Jaccard scores of a store with masks, and their labels in the plot
    "model": "model (the store's masks)",
    "copy_last_input": "copy the last input's mask",
    "extrapolate_objects": "extrapolate frame 11's objects",
    "segmenter_on_true": "segmenter on true frames (ceiling)",
}


def stored_frames(store: PredStore, positions) -> torch.Tensor:
    """(B, T_out, C, H, W) float in [0, 1] from the store's uint8 (B, T_out, H, W, C)."""
    return frames_to_float(store.read(positions))  # (B, T_out, C, H, W)


class Scorer:
    """The accumulators of one evaluation: frame metrics of the model and of copy-last-frame
    (a store with frames), the Jaccard lines (a store with masks and its segmenter)."""

    def __init__(
        self, store: PredStore, segmenter: torch.nn.Module | None, frames: tuple[int, int]
    ) -> None:
        self.store, self.segmenter, self.frames = store, segmenter, frames
        # the baselines' masks in the precision the store's masks were made in (stores from
        # before the segmenter followed the run's precision: float32, what they were made in)
        if segmenter is not None:
            device = next(segmenter.parameters()).device
            self.autocast = autocast(store.attrs.get("precision") or "fp32", device, warn=False)
        self.metrics = None
        if store.frames is not None:
            self.metrics = {"model": MetricAccumulator(), "copy_last_frame": MetricAccumulator()}
        self.jaccard = None if segmenter is None else {k: FrameJaccard() for k in JACCARD_LINES}
        self.videos = 0

    def add(self, batch: dict[str, Any], where: str) -> None:
        """Score one loader batch (`where` names the shards, for errors)."""
        pos = self.store.positions(batch["ids"])
        if self.metrics is not None:
            self._add_frames(batch, pos, where)
        if self.jaccard is not None:
            masks = self.store.read_masks(pos)  # (B, T_out, H, W)
            _score_masks(self.jaccard, batch, masks, (self.segmenter, self.autocast), self.frames)
        self.videos += len(batch["ids"])

    def _add_frames(self, batch: dict[str, Any], pos: np.ndarray, where: str) -> None:
        target = batch["targets"]  # (B, T_out, C, H, W)
        pred = stored_frames(self.store, pos)
        if pred.shape != target.shape:
            raise InferError(
                f"store frames {tuple(pred.shape[1:])} do not match the future frames "
                f"{tuple(target.shape[1:])} of the shards in {where}; wrong --shards?"
            )
        self.metrics["model"].update(pred, target)
        last = copy_last_frame(batch["inputs"], self.frames[1])
        self.metrics["copy_last_frame"].update(last, target)

    def result(self) -> dict[str, Any]:
        """{"model", "copy_last_frame": frame metrics (a store with frames); "jaccard": {"model",
        "copy_last_input", "extrapolate_objects", "segmenter_on_true": FrameJaccard results}
        (with masks); "videos"}."""
        scores: dict[str, Any] = {"videos": self.videos}
        if self.metrics is not None:
            scores.update({key: acc.compute() for key, acc in self.metrics.items()})
        if self.jaccard is not None:
            scores["jaccard"] = {key: acc.compute() for key, acc in self.jaccard.items()}
        return scores


def _score_masks(
    jaccard: dict[str, Any],
    batch: dict[str, Any],
    pred_masks: np.ndarray,
    segmenter: tuple[torch.nn.Module, Any],
    frames: tuple[int, int],
) -> None:
    """Add one batch to the Jaccard accumulators (the store's masks, the segmenter's mask of
    the last input frame repeated, its objects extrapolated, the segmenter on the true future
    frames); `segmenter` is (the segmenter, the autocast context of the store's precision)."""
    model, context = segmenter
    frames_in, frames_out = frames
    true = batch["masks"][:, frames_in : frames_in + frames_out]  # (B, T_out, H, W)
    if tuple(pred_masks.shape[1:]) != tuple(true.shape[1:]):
        raise InferError(
            f"store masks {tuple(pred_masks.shape[1:])} do not match the true masks "
            f"{tuple(true.shape[1:])} of the shards; wrong --shards?"
        )
    # one pass per frame, so frame 11's mask is the one segmented alone (the copy baseline's)
    inputs = batch["inputs"]  # (B, T_in, C, H, W)
    window = range(max(frames_in - FIT_FRAMES, 0), frames_in)  # the last input frames
    seen = [segment_frames(model, inputs[:, t : t + 1], context) for t in window]
    seen = torch.cat(seen, 1).cpu()  # (B, F, H, W)
    jaccard["model"].update(torch.from_numpy(pred_masks), true)
    jaccard["copy_last_input"].update(seen[:, -1:].expand_as(true), true)  # (B, T_out, H, W)
    jaccard["extrapolate_objects"].update(extrapolate_masks(seen, frames_out), true)
    on_true = segment_frames(model, batch["targets"], context).cpu()  # (B, T_out, H, W)
    jaccard["segmenter_on_true"].update(on_true, true)
