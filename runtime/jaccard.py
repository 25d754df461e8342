"""The course's score: the Jaccard index (IoU) over 49 classes, by torchmetrics, per frame.

The course computes torchmetrics `JaccardIndex(task="multiclass", num_classes=49)` (average
"macro") once over the stacked masks of all evaluated videos. That metric streams: its state is
one 49 x 49 confusion matrix, summed batch by batch and, under DDP, over the ranks (torchmetrics
gathers every rank's state and sums it), so the score is exactly the course's for any number of
videos without holding them. Macro: the IoU of every class, averaged over the classes that
occur in the truth or in the prediction (a class absent from both is left out; one predicted but
absent scores 0).

`FrameJaccard` keeps one `MulticlassJaccardIndex` per predicted frame, so a report has the score
per frame, for the last frame (frame 22 of the course) and over all predicted frames together
(their confusion matrices merged).
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from convrnn_video.shards.format import NUM_CLASSES
from torchmetrics.classification import MulticlassJaccardIndex


def _metric(
    num_classes: int, average: str, device: torch.device | str, confmat: torch.Tensor | None = None
) -> MulticlassJaccardIndex:
    """A metric that never syncs by itself (`FrameJaccard.sync` does, on every rank at once),
    whose ids FrameJaccard.update has checked already; with `confmat` (K, K), holding that
    state (merged after an empty update, so torchmetrics counts it as fed)."""
    metric = MulticlassJaccardIndex(
        num_classes, average=average, validate_args=False, sync_on_compute=False
    ).to(device)
    if confmat is not None:
        nothing = torch.zeros(0, dtype=torch.long, device=device)
        metric.update(nothing, nothing)
        metric.merge_state({"confmat": confmat.to(device)})
    return metric


def macro_jaccard(confmat: torch.Tensor) -> float:
    """The course's score of one (K, K) int64 confusion matrix (rows truth, columns
    prediction), reduced by torchmetrics: what `FrameJaccard` reports for the pixels summed
    into it (benchmarks/paired.py scores resampled sums of per-video matrices with it)."""
    return float(_metric(confmat.shape[0], "macro", confmat.device, confmat).compute())


def _scores(confmat: torch.Tensor) -> tuple[float, list[float | None]]:
    """(macro IoU, per-class IoU) of a (K, K) confusion matrix, reduced by torchmetrics; a
    class absent from both truth and prediction has IoU None (and no part in the macro)."""
    k, device = confmat.shape[0], confmat.device
    each = _metric(k, "none", device, confmat).compute()  # (K,)
    present = (confmat.sum(0) + confmat.sum(1)) > 0  # (K,) in the truth or the prediction
    per_class = [float(v) if ok else None for v, ok in zip(each, present, strict=True)]
    return macro_jaccard(confmat), per_class


class FrameJaccard:
    """One torchmetrics Jaccard per predicted frame, fed batch by batch.

    >>> acc = FrameJaccard(); acc.update(pred_ids, true_ids); acc.compute()["last"]

    Under torch.distributed, `sync` (on every rank) first sums the states over the ranks.
    """

    def __init__(self, num_classes: int = NUM_CLASSES) -> None:
        self.num_classes = num_classes
        self.frames: list[MulticlassJaccardIndex] = []  # one per predicted frame
        self.videos = 0

    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        """Add one batch of class ids, pred and target (B, T, H, W), on any one device."""
        if pred.dim() != 4 or pred.shape != target.shape:
            raise ValueError(
                f"pred and target must both be (B, T, H, W); got {tuple(pred.shape)} and "
                f"{tuple(target.shape)}"
            )
        for name, ids in (("predicted", pred), ("true", target)):
            if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= self.num_classes):
                raise ValueError(f"{name} class ids must be in [0, {self.num_classes})")
        t = pred.shape[1]
        if not self.frames:
            self.frames = [_metric(self.num_classes, "macro", pred.device) for _ in range(t)]
        elif len(self.frames) != t:
            raise ValueError(f"frame count changed from {len(self.frames)} to {t}")
        for i, metric in enumerate(self.frames):
            metric.update(pred[:, i].long(), target[:, i].long())  # (B, H, W) each
        self.videos += pred.shape[0]

    def sync(self, device: torch.device | str = "cpu") -> None:
        """Sum the states over the DDP ranks (no-op without torch.distributed); every rank must
        call it, a rank that saw no batch included (`device`: where the collectives run, a GPU
        under NCCL)."""
        if not (dist.is_available() and dist.is_initialized()):
            return
        # a rank without batches knows no frame count: agree on it, and sum the videos
        frames = torch.tensor([len(self.frames)], device=device)
        videos = torch.tensor([self.videos], device=device)
        dist.all_reduce(frames, op=dist.ReduceOp.MAX)
        dist.all_reduce(videos)
        k = self.num_classes
        if not self.frames:
            empty = torch.zeros(k, k, dtype=torch.long, device=device)
            self.frames = [_metric(k, "macro", device, empty) for _ in range(int(frames.item()))]
        summed = []
        for metric in self.frames:
            with metric.sync_context():  # torchmetrics: every rank's confusion matrix, summed
                summed.append(_metric(k, "macro", metric.device, metric.confmat))
        self.frames, self.videos = summed, int(videos.item())

    def compute(self) -> dict:
        """{"mean": IoU over all predicted frames stacked, "last": IoU of the last frame,
        "per_frame": [IoU] * T, "per_class_last": [IoU | None] * K, "per_class": (all frames),
        "videos": n}."""
        if not self.frames or self.videos == 0:
            raise ValueError("FrameJaccard.compute() called before any update()")
        per_frame = [float(metric.compute()) for metric in self.frames]
        total = torch.stack([metric.confmat for metric in self.frames]).sum(0)  # (K, K)
        mean, per_class = _scores(total)
        last, per_class_last = _scores(self.frames[-1].confmat)
        return {
            "mean": mean,
            "last": last,
            "per_frame": per_frame,
            "per_class": per_class,
            "per_class_last": per_class_last,
            "videos": self.videos,
        }


def finish_scores(
    ours: FrameJaccard, base: FrameJaccard | None, device: torch.device | str
) -> tuple[dict, dict | None]:
    """A validation's end: sum both accumulators over ranks (every rank calls it) -> ({"jaccard":
    model}, {"jaccard": baseline} or None); ({}, None) when the split gave no video."""
    ours.sync(device)
    if base is not None:
        base.sync(device)
    if ours.videos == 0:
        return {}, None
    return {"jaccard": ours.compute()}, ({"jaccard": base.compute()} if base is not None else None)
