"""The masks task: the encoder-forecaster reads the class masks of frames 1-11 and forecasts the
masks of frames 12-22 (cross-entropy on class ids).

Training reads true masks where the shards have them (train) and the segmenter's masks of the
other splits from a label store (`python cli.py label`). Validation feeds the SEGMENTER's masks
of the input frames, never the true ones, as prediction on hidden videos must; it is scored with
the course's Jaccard against the true masks, beside copying the segmenter's mask of the last
input frame.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from convrnn_video.convrnn.extrapolate import class_centroids
from convrnn_video.convrnn.masks import check_masks
from convrnn_video.ingest.writer import sha256_file
from convrnn_video.runtime.checkpoint import load_model
from convrnn_video.runtime.distributed import DistEnv
from convrnn_video.runtime.jaccard import FrameJaccard, finish_scores
from convrnn_video.segment.apply import segment_frames
from convrnn_video.shards.manifest import read_manifest, split_geometry
from convrnn_video.stores.errors import StoreError
from convrnn_video.stores.labels import LabelStore
from convrnn_video.train.config import TrainConfig
from convrnn_video.train.errors import TrainError
from convrnn_video.train.tasks.base import StepContext
from convrnn_video.train.tasks.frames import ForecasterTask, teacher_prob
from convrnn_video.train.tasks.segment import crop_frames, settle_crop


def tracked_displacement(
    last: torch.Tensor, future: torch.Tensor, num_classes: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Where each object pixel of the future masks comes from in the last observed mask: for
    a pixel of class c (c > 0) in frame k that also shows in `last`, c's centroid in `last`
    minus its centroid in frame k, in pixels (x, y). last (B, H, W), future (B, T, H, W) ->
    (displacement (B, T, 2, H, W), weight (B, T, H, W): 1 on such pixels, else 0)."""
    b, t = future.shape[:2]
    c_last, n_last = class_centroids(last, num_classes)  # (B, K, 2), (B, K)
    c_fut, _ = class_centroids(future.flatten(0, 1), num_classes)  # (B*T, K, 2)
    shift = c_last.repeat_interleave(t, 0) - c_fut  # (B*T, K, 2)
    ids = future.flatten(0, 1).long()  # (B*T, H, W)
    n, k = shift.shape[:2]
    flat = ids + k * torch.arange(n, device=ids.device).view(n, 1, 1)  # rows of (B*T*K, 2)
    per_pixel = shift.reshape(n * k, 2)[flat]  # (B*T, H, W, 2)
    seen = (n_last.repeat_interleave(t, 0) > 0).flatten()[flat]  # (B*T, H, W)
    weight = (seen & (ids > 0)).float()
    return per_pixel.permute(0, 3, 1, 2).unflatten(0, (b, t)), weight.unflatten(0, (b, t))


def displacement_loss(
    motion: torch.Tensor, last: torch.Tensor, future: torch.Tensor, num_classes: int
) -> torch.Tensor:
    """L1, in grid cells, between a motion head's displacement (B, T, 2, h, w) and the
    tracked displacement of the objects (`tracked_displacement`), over the object pixels."""
    b, t, _, h, w = motion.shape
    cell = future.shape[-1] // w  # pixels per grid cell
    target, weight = tracked_displacement(last, future, num_classes)
    full = F.interpolate(motion.float().flatten(0, 1), size=future.shape[-2:], mode="bilinear",
                         align_corners=False).unflatten(0, (b, t))  # fmt: skip
    error = (full - target / cell).abs().sum(2)  # (B, T, H, W)
    return (error * weight).sum() / weight.sum().clamp(min=1.0)


def open_labels(cfg: TrainConfig):
    """The label store of --labels, checked against the run: TrainError for a store that is
    missing or incomplete, of a split the run does not train on or of other videos, or made by
    another segmenter than --segmenter. -> the open LabelStore."""
    try:
        store = LabelStore.open(cfg.labels)
        attrs, count = store.attrs, len(store.ids())
    except StoreError as exc:
        raise TrainError(f"--labels: {exc}") from None
    except (OSError, ValueError, KeyError) as exc:
        raise TrainError(f"--labels {cfg.labels} cannot be read: {exc}") from None
    manifest = read_manifest(cfg.shards)
    splits = manifest["splits"]
    unlabelled = [s for s in cfg.train_splits if s in splits and not splits[s].get("masks")]
    split = attrs.get("split")
    where = f"--labels {cfg.labels}"
    if not unlabelled:
        raise TrainError(
            f"{where}: every split of --train-splits {','.join(cfg.train_splits)} has true "
            "masks; add the split the store labels (--train-splits train,unlabeled) or drop "
            "--labels"
        )
    others = [s for s in unlabelled if s != split]
    if others:
        raise TrainError(
            f"{where} holds the labels of split {split!r}, but split {others[0]!r} of "
            f"--train-splits has no masks; label it with `python cli.py label --split "
            f"{others[0]}` or leave it out of --train-splits"
        )
    frames, height, width, _ = split_geometry(manifest, split)
    videos = int(splits[split]["videos"])
    stored = (int(attrs.get("frames") or 0), attrs.get("height"), attrs.get("width"))
    need = cfg.frames_in + cfg.frames_out
    if count != videos or stored[0] < need or stored[1:] != (height, width):
        raise TrainError(
            f"{where} does not match split {split!r} of {cfg.shards}: it holds {count} videos "
            f"of {stored[0]} frames of {stored[1]}x{stored[2]}, the shards {videos} videos of "
            f"{frames} frames of {height}x{width}; label these shards with `python cli.py "
            f"label --split {split}`"
        )
    if not attrs.get("complete"):
        raise TrainError(f"{where} is incomplete: rerun `python cli.py label` to finish it")
    made_by = attrs.get("segmenter_sha256")
    if cfg.segmenter and made_by and sha256_file(Path(cfg.segmenter)) != made_by:
        raise TrainError(
            f"{where} was made by the segmenter {attrs.get('segmenter')}, not --segmenter "
            f"{cfg.segmenter}: train and validate with one segmenter (relabel with `python "
            "cli.py label --segmenter ... --overwrite`, or pass the store's segmenter)"
        )
    return store


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
            raise TrainError("a training video has no masks and no --labels store is open")
        masks = batch["masks"].clone()
        missing = [i for i, ok in enumerate(present) if not ok]
        pseudo = self._labels.read_ids([batch["ids"][i] for i in missing])  # (n, T, H, W)
        t = masks.shape[1]
        masks[missing] = torch.from_numpy(pseudo[:, :t])
        return masks

    def train_step(self, net: torch.nn.Module, batch: dict, ctx: StepContext):
        cfg = ctx.cfg
        fi, fo = cfg.frames_in, cfg.frames_out
        masks = self._train_masks(batch, cfg)[:, : fi + fo]  # (B, T, H, W) uint8, on the host
        # checked and cropped on the host: on a GPU both would read values back every step
        check_masks("masks", masks, None, ctx.model_cfg.num_classes)
        if cfg.crop and min(cfg.crop) > 0:  # one window through all frames (fit_geometry
            # checked it fits), centred on an object of frame fi when biased (see crop_frames)
            masks, _ = crop_frames(masks, masks[:, fi - 1], tuple(cfg.crop), cfg.crop_object_bias)
        masks = masks.to(ctx.device, non_blocking=True).long()
        inputs, targets = masks[:, :fi], masks[:, fi : fi + fo]  # (B, T, h, w) each
        p = teacher_prob(ctx.step, cfg, ctx.model_cfg.autoregressive)
        tracked = ctx.model_cfg.motion and cfg.flow_weight > 0
        with ctx.autocast:
            logits, motion = net(inputs, targets=targets, teacher_prob=p, return_motion=True)
        k = logits.shape[2]  # logits (B, T_out, K, H, W); motion (B, T_out, 2, h, w) or None
        # class-last memory: the (N, K) view reads the logits without a copy
        loss = F.cross_entropy(logits.float().movedim(2, -1).reshape(-1, k), targets.reshape(-1))
        if not tracked:
            return loss, {}
        flow = displacement_loss(motion, inputs[:, -1], targets, k)
        return loss + cfg.flow_weight * flow, {}

    def preflight(self, cfg: TrainConfig, env: DistEnv, with_val: bool) -> None:
        """Load the segmenter (validation inputs) and open the label store, checking that it
        holds complete labels of the training split without masks, for these shards' videos,
        made by the same segmenter."""
        if with_val:
            self.segmenter(cfg, env.device)
        if cfg.labels:
            self._labels = open_labels(cfg)

    def fit_geometry(self, model_cfg, geometry, fresh: bool):
        model_cfg = super().fit_geometry(model_cfg, geometry, fresh)
        step = model_cfg.patch * model_cfg.downsampling
        settle_crop(self.cfg, step, (geometry[1], geometry[2]))  # before the run folder
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
            if not cfg.segmenter:
                raise TrainError(
                    "--task masks validates on the segmenter's masks: pass --segmenter"
                )
            self._segmenter, _, _ = load_model(cfg.segmenter, device, task="segment")
        return self._segmenter

    def evaluate(self, model, loader, env: DistEnv, autocast, with_baseline: bool):
        ours, base = FrameJaccard(), FrameJaccard()
        with torch.no_grad():
            for pred, last, true in self.val_forecasts(model, loader, env, autocast):
                true = true.to(env.device).long()  # (B, T_out, H, W)
                ours.update(pred.to(env.device), true)  # on the device the ranks' sums run on
                if with_baseline:
                    base.update(last[:, None].to(env.device).expand_as(true), true)
        return finish_scores(ours, base if with_baseline else None, env.device)

    def val_forecasts(self, model, loader, env: DistEnv, autocast):
        """Per val batch: (the forecast class ids (B, T_out, H, W) from the segmenter's masks of
        its input frames (those predict makes: segment_frames), the last of those (B, H, W),
        the true masks of the predicted frames (B, T_out, H, W))."""
        fi, fo = self.cfg.frames_in, self.cfg.frames_out
        segmenter = self.segmenter(self.cfg, env.device)
        for batch in loader:
            seen = segment_frames(segmenter, batch["inputs"], autocast)
            with autocast:
                logits = model(seen)  # (B, T_out, K, H, W)
            yield logits.float().argmax(2), seen[:, -1], batch["masks"][:, fi : fi + fo]

    def val_loss(self, metrics: dict[str, Any], cfg: TrainConfig) -> float:
        return 1.0 - metrics["jaccard"]["last"]  # the course's score: the last frame's

    def summary(self, metrics: dict[str, Any], baseline: dict[str, Any]) -> str:
        j, b = metrics["jaccard"], baseline["jaccard"]
        return (
            f"Jaccard last frame {j['last']:.4f}, all predicted {j['mean']:.4f} | copying the "
            f"segmenter's last input mask {b['last']:.4f}, all {b['mean']:.4f}"
        )
