"""The masks task: the encoder-forecaster reads the class masks of frames 1-11 and forecasts the
masks of frames 12-22 (cross-entropy on class ids).

Training reads true masks where the shards have them (train) and the segmenter's masks of the
other splits from a label store (`python cli.py label`). Validation feeds the SEGMENTER's masks
of the input frames, never the true ones, as prediction on hidden videos must; it is scored with
the course's Jaccard against the true masks, beside copying the segmenter's mask of the last
input frame.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from train.config import TrainConfig
from train.ddp import DistEnv
from train.errors import TrainError
from train.jaccard import FrameJaccard, finish_scores
from train.tasks.base import StepContext
from train.tasks.frames import ForecasterTask, teacher_prob
from train.tasks.segment import check_crop, crop_frames, segment_video_frames


def restrict_to_seen(logits: torch.Tensor, seen_ids: torch.Tensor) -> torch.Tensor:
    """Class ids from logits (B, T, K, H, W), allowing only background and the classes present
    in `seen_ids` (B, T_in, H, W): an object kind occurs at most once per video, so a class
    never seen in the input frames is usually a mistake. -> (B, T, H, W) int64."""
    b, k = logits.shape[0], logits.shape[2]
    seen = torch.zeros(b, k, dtype=torch.bool, device=logits.device)
    seen.scatter_(1, seen_ids.reshape(b, -1).long(), True)  # (B, K)
    seen[:, 0] = True
    masked = logits.masked_fill(~seen.view(b, 1, k, 1, 1), float("-inf"))
    return masked.argmax(2)


class MasksTask(ForecasterTask):
    name = "masks"
    baseline_key = "copy_mask"  # the segmenter's mask of the last input frame, copied forward
    curve_panels = (("jaccard", "val Jaccard (49 classes, predicted frames)"),)
    train_scalars = ()

    def __init__(self) -> None:
        self._segmenter: torch.nn.Module | None = None
        self._labels = None

    def loader_kwargs(self, cfg: TrainConfig, mode: str) -> dict[str, Any]:
        masks = True if mode == "eval" else "available"
        return {"frames_in": cfg.frames_in, "frames_out": cfg.frames_out, "masks": masks}

    def check_split(self, cfg: TrainConfig, split: str, entry: dict[str, Any]) -> str | None:
        if split == cfg.val_split and not entry.get("masks"):
            return f"val split {split!r} has no masks to score the forecast against"
        if split in cfg.train_splits and not entry.get("masks") and not cfg.labels:
            return (
                f"split {split!r} has no masks: make pseudo-masks with `python cli.py label "
                f"--split {split}` and pass them with --labels, or leave it out of --train-splits"
            )
        return None

    def _train_masks(self, batch: dict, cfg: TrainConfig) -> torch.Tensor:
        """The masks of every frame of the batch's videos: true ones where the shards have them,
        pseudo-masks from the label store for the others. -> (B, T, H, W) uint8."""
        present = batch.get("mask_present")
        if present is not None and all(present):
            return batch["masks"]
        if self._labels is None:
            from infer.labels import LabelStore

            self._labels = LabelStore.open(cfg.labels)
        masks = batch["masks"].clone()
        missing = [i for i, ok in enumerate(present) if not ok]
        pseudo = self._labels.read_ids([batch["ids"][i] for i in missing])  # (n, T, H, W)
        t = masks.shape[1]
        masks[missing] = torch.from_numpy(pseudo[:, :t])
        return masks

    def train_step(self, net: torch.nn.Module, batch: dict, ctx: StepContext):
        cfg = ctx.cfg
        masks = self._train_masks(batch, cfg).to(ctx.device, non_blocking=True).long()
        fi, fo = cfg.frames_in, cfg.frames_out
        masks = masks[:, : fi + fo]  # (B, T, H, W)
        if cfg.crop and min(cfg.crop) > 0:  # one window through all frames (fit_geometry
            # checked it fits), centred on an object of frame fi when biased (see crop_frames)
            masks, _ = crop_frames(masks, masks[:, fi - 1], tuple(cfg.crop), cfg.crop_object_bias)
        inputs, targets = masks[:, :fi], masks[:, fi : fi + fo]  # (B, T, h, w) each
        p = teacher_prob(ctx.step, cfg, ctx.model_cfg.autoregressive)
        with ctx.autocast:
            logits = net(inputs, targets=targets, teacher_prob=p)  # (B, T_out, K, H, W)
        k = logits.shape[2]
        # class-last memory: the (N, K) view reads the logits without a copy
        loss = F.cross_entropy(logits.float().movedim(2, -1).reshape(-1, k), targets.reshape(-1))
        return loss, {}

    def fit_geometry(self, model_cfg, geometry, fresh: bool):
        model_cfg = super().fit_geometry(model_cfg, geometry, fresh)
        step = model_cfg.patch * model_cfg.downsampling
        check_crop(self.cfg.crop, step, (geometry[1], geometry[2]))  # before the run folder
        return model_cfg

    def dummy_loss(self, model: torch.nn.Module) -> torch.Tensor:
        p = next(model.parameters())
        cfg = model.cfg
        x = torch.randint(0, cfg.num_classes, (1, cfg.frames_in, 64, 64), device=p.device)
        y = torch.randint(0, cfg.num_classes, (1, cfg.frames_out, 64, 64), device=p.device)
        return model(x, targets=y, teacher_prob=0.5).float().mean()

    def segmenter(self, cfg: TrainConfig, device: torch.device) -> torch.nn.Module:
        """The segmenter that makes the validation inputs (loaded once)."""
        if self._segmenter is None:
            from train.checkpoint import load_model

            if not cfg.segmenter:
                raise TrainError(
                    "--task masks validates on the segmenter's masks: pass --segmenter"
                )
            self._segmenter, _, _ = load_model(cfg.segmenter, device, task="segment")
        return self._segmenter

    def evaluate(self, model, loader, env: DistEnv, autocast, with_baseline: bool):
        cfg = self.cfg
        segmenter = self.segmenter(cfg, env.device)
        ours, base = FrameJaccard(), FrameJaccard()
        with torch.no_grad():
            for batch in loader:
                frames = batch["inputs"].to(env.device)  # (B, T_in, 3, H, W)
                seen = segment_video_frames(segmenter, frames, autocast)  # (B, T_in, H, W)
                fi, fo = cfg.frames_in, cfg.frames_out
                true = batch["masks"][:, fi : fi + fo].to(env.device).long()  # (B, T_out, H, W)
                with autocast:
                    logits = model(seen)  # (B, T_out, K, H, W)
                ours.update(logits.float().argmax(2), true)
                if with_baseline:
                    base.update(seen[:, -1:].expand_as(true), true)
        return finish_scores(ours, base if with_baseline else None, env.device)

    def val_loss(self, metrics: dict[str, Any], cfg: TrainConfig) -> float:
        return 1.0 - metrics["jaccard"]["last"]  # the course's score: the last frame's

    def summary(self, metrics: dict[str, Any], baseline: dict[str, Any]) -> str:
        j, b = metrics["jaccard"], baseline["jaccard"]
        return (
            f"Jaccard last frame {j['last']:.4f}, all predicted {j['mean']:.4f} | copying the "
            f"segmenter's last input mask {b['last']:.4f}, all {b['mean']:.4f}"
        )
