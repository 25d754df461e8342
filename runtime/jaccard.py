"""The course's score: the Jaccard index (IoU) over 49 classes, streamed batch by batch.

The course computes torchmetrics `JaccardIndex(task="multiclass", num_classes=49)` once over
the stacked masks of all evaluated videos. That number is a function of one 49 x 49 confusion
matrix, so summing confusion matrices over batches (and over DDP ranks) gives exactly the same
score for any number of videos without holding them. The reduction follows torchmetrics'
macro average: the IoU of every class, averaged over the classes that occur in the truth or in
the prediction (a class absent from both is left out; one predicted but absent scores 0).

`FrameJaccard` keeps one matrix per predicted frame, so a report has the score per frame, for
the last frame (frame 22 of the course) and over all predicted frames together.
"""

from __future__ import annotations

import torch
from convrnn_video.shards.format import NUM_CLASSES


def confusion(pred: torch.Tensor, target: torch.Tensor, num_classes: int) -> torch.Tensor:
    """The (K, K) int64 confusion matrix of two class-id tensors of one shape; rows are the
    truth, columns the prediction (as torchmetrics)."""
    if pred.shape != target.shape:
        raise ValueError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} differ")
    p, t = pred.reshape(-1).long(), target.reshape(-1).long()
    if p.numel() and (int(p.min()) < 0 or int(p.max()) >= num_classes):
        raise ValueError(f"predicted class ids must be in [0, {num_classes})")
    if t.numel() and (int(t.min()) < 0 or int(t.max()) >= num_classes):
        raise ValueError(f"true class ids must be in [0, {num_classes})")
    flat = torch.bincount(t * num_classes + p, minlength=num_classes * num_classes)
    return flat.view(num_classes, num_classes).cpu()


def jaccard_scores(confmat: torch.Tensor) -> tuple[float, list[float | None]]:
    """(macro IoU, per-class IoU) of a (K, K) confusion matrix; a class absent from both truth
    and prediction has IoU None and is left out of the macro average."""
    cm = confmat.double()
    inter = torch.diag(cm)
    union = cm.sum(0) + cm.sum(1) - inter
    present = union > 0
    iou = torch.where(present, inter / union.clamp_min(1), torch.zeros_like(inter))
    macro = float(iou[present].mean()) if bool(present.any()) else 0.0
    per_class = [float(v) if ok else None for v, ok in zip(iou, present, strict=True)]
    return macro, per_class


class FrameJaccard:
    """Confusion matrices per predicted frame, summed over batches: (T, K, K) int64.

    >>> acc = FrameJaccard(); acc.update(pred_ids, true_ids); acc.compute()["last"]
    """

    def __init__(self, num_classes: int = NUM_CLASSES) -> None:
        self.num_classes = num_classes
        self.matrices: torch.Tensor | None = None  # (T, K, K)
        self.videos = 0

    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        """Add one batch of class ids, pred and target (B, T, H, W)."""
        if pred.dim() != 4 or pred.shape != target.shape:
            raise ValueError(
                f"pred and target must both be (B, T, H, W); got {tuple(pred.shape)} and "
                f"{tuple(target.shape)}"
            )
        k, t = self.num_classes, pred.shape[1]
        batch = torch.stack([confusion(pred[:, i], target[:, i], k) for i in range(t)])
        if self.matrices is None:
            self.matrices = torch.zeros(t, k, k, dtype=torch.int64)
        elif self.matrices.shape[0] != t:
            raise ValueError(f"frame count changed from {self.matrices.shape[0]} to {t}")
        self.matrices += batch
        self.videos += pred.shape[0]

    def all_reduce(self, device: torch.device | str = "cpu") -> None:
        """Sum over DDP ranks (no-op without torch.distributed); every rank must call it, a
        rank that saw no batch included."""
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()):
            return
        k = self.num_classes
        frames = torch.tensor([0 if self.matrices is None else self.matrices.shape[0]])
        frames = frames.to(device)
        dist.all_reduce(frames, op=dist.ReduceOp.MAX)
        t = int(frames.item())
        mats = self.matrices if self.matrices is not None else torch.zeros(t, k, k)
        flat = torch.cat([mats.flatten().double(), torch.tensor([float(self.videos)])])
        flat = flat.to(device)  # float64 holds integer counts exactly up to 2**53
        dist.all_reduce(flat)
        flat = flat.cpu()
        self.matrices = flat[:-1].view(t, k, k).round().long()
        self.videos = int(flat[-1].item())

    def compute(self) -> dict:
        """{"mean": IoU over all predicted frames stacked, "last": IoU of the last frame,
        "per_frame": [IoU] * T, "per_class_last": [IoU | None] * K, "per_class": (all frames),
        "videos": n}."""
        if self.matrices is None or self.videos == 0:
            raise ValueError("FrameJaccard.compute() called before any update()")
        per_frame = [jaccard_scores(m)[0] for m in self.matrices]
        mean, per_class = jaccard_scores(self.matrices.sum(0))
        last, per_class_last = jaccard_scores(self.matrices[-1])
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
    ours.all_reduce(device)
    if base is not None:
        base.all_reduce(device)
    if ours.videos == 0:
        return {}, None
    return {"jaccard": ours.compute()}, ({"jaccard": base.compute()} if base is not None else None)
