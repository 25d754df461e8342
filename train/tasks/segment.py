"""The segment task: a per-frame segmenter learns 49 class ids from the frames and masks of the
labelled splits; validation is the course's Jaccard score on the true val frames."""

from __future__ import annotations

import logging
from typing import Any

import torch
from convrnn_video.runtime.distributed import DistEnv
from convrnn_video.runtime.jaccard import FrameJaccard, finish_scores
from convrnn_video.segment.apply import segment_frames
from convrnn_video.train.config import TrainConfig
from convrnn_video.train.errors import TrainError
from convrnn_video.train.tasks.base import StepContext, Task

log = logging.getLogger(__name__)


def all_frames(batch: dict) -> torch.Tensor:
    """Inputs and targets of a loader batch as one (B, T, C, H, W) tensor of every frame."""
    if batch["targets"] is None:
        return batch["inputs"]
    return torch.cat([batch["inputs"], batch["targets"]], dim=1)


def sample_frames(
    frames: torch.Tensor, masks: torch.Tensor, k: int, flip: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """k distinct random frames of each video, each flipped left-right with probability 1/2
    when `flip`: (B, T, C, H, W), (B, T, H, W) -> (B*k, C, H, W), (B*k, H, W) int64.
    The frames may be on a GPU, the masks stay on the host (crop_frames reads them there).
    Draws from the global torch RNG (saved with every checkpoint, so resume replays it)."""
    b, t = masks.shape[:2]
    k = min(k, t)
    idx = torch.stack([torch.randperm(t)[:k] for _ in range(b)])  # (B, k)
    rows = torch.arange(b).unsqueeze(1)  # (B, 1)
    x = frames[rows, idx].flatten(0, 1)  # (B*k, C, H, W)
    y = masks[rows, idx].flatten(0, 1).long()  # (B*k, H, W)
    if flip:
        flipped = torch.rand(b * k) < 0.5  # (B*k,), drawn on the host whatever the device
        x = torch.where(flipped.to(x.device).view(-1, 1, 1, 1), x.flip(-1), x)
        y = torch.where(flipped.view(-1, 1, 1), y.flip(-1), y)
    return x, y


def crop_problem(crop: tuple[int, int] | None, stride: int, frame: tuple[int, int]) -> str | None:
    """Why the training windows do not fit the frames or the net's stride, or None (None or
    (0, 0): whole frames, nothing to check)."""
    if not crop or min(crop) <= 0:
        return None
    h, w = crop
    if h % stride or w % stride:
        return f"--crop {h} {w}: both sizes must be multiples of the model's stride {stride}"
    if h > frame[0] or w > frame[1]:
        return (
            f"--crop {h} {w} is larger than the frames {frame[0]}x{frame[1]}; pass a smaller "
            "--crop, or --crop 0 0 to train on whole frames"
        )
    return None


def check_crop(crop: tuple[int, int] | None, stride: int, frame: tuple[int, int]) -> None:
    """TrainError unless the training windows fit the frames and divide by the net's stride."""
    problem = crop_problem(crop, stride, frame)
    if problem:
        raise TrainError(problem)


def settle_crop(cfg: TrainConfig, stride: int, frame: tuple[int, int]) -> None:
    """check_crop, except that the task's default window (no --crop given) becomes whole
    frames where it does not fit them (small clips), with a note in the log."""
    if cfg.from_task_default("crop") and crop_problem(cfg.crop, stride, frame):
        log.info(
            "training on whole frames: the task's %dx%d windows do not fit %dx%d frames",
            *cfg.crop, *frame,
        )  # fmt: skip
        cfg.crop = (0, 0)
    check_crop(cfg.crop, stride, frame)


def crop_frames(
    x: torch.Tensor, y: torch.Tensor, size: tuple[int, int], object_bias: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """One random window of `size` (h, w) from every frame and its mask, the same window for
    both: (N, C, H, W), (N, H, W) -> (N, C, h, w), (N, h, w).

    With probability `object_bias` a window is centred (as far as the frame allows) on a
    random object pixel (class > 0) of its mask, else it is placed uniformly; a mask without
    objects always gets a uniform window. Most pixels are floor, so biased windows show the
    net more of what it gets wrong for the same FLOPs. Draws from the global torch RNG. `y`
    should be on the host: the windows are chosen from its values (on a GPU every frame's
    read-back would wait for the queued kernels); `x` may be anywhere."""
    n, _, height, width = x.shape
    h, w = size
    if h > height or w > width:
        raise ValueError(f"crop {h}x{w} is larger than the frames {height}x{width}")
    top = torch.randint(0, height - h + 1, (n,))  # (N,) uniform windows
    left = torch.randint(0, width - w + 1, (n,))
    biased = torch.rand(n) < object_bias  # (N,)
    pick = torch.rand(n)  # (N,) which object pixel, as a fraction of the frame's object pixels
    xs, ys = [], []
    for i in range(n):
        if biased[i]:
            pixels = (y[i] > 0).flatten().nonzero().squeeze(1)  # (P,) flat indices
            if pixels.numel():
                at = int(pixels[int(pick[i] * pixels.numel())])
                cy, cx = divmod(at, width)
                top[i] = min(max(cy - h // 2, 0), height - h)
                left[i] = min(max(cx - w // 2, 0), width - w)
        r, c = int(top[i]), int(left[i])
        xs.append(x[i, :, r : r + h, c : c + w])
        ys.append(y[i, r : r + h, c : c + w])
    return torch.stack(xs), torch.stack(ys)  # (N, C, h, w), (N, h, w)


def weighted_cross_entropy(logits: torch.Tensor, y: torch.Tensor, object_weight: float):
    """Cross-entropy with object pixels (class > 0) weighted `object_weight` against the
    floor's 1, normalised by the total weight: (N, K, H, W) float32, (N, H, W) -> scalar."""
    per_pixel = torch.nn.functional.cross_entropy(logits, y, reduction="none")  # (N, H, W)
    weight = 1 + (object_weight - 1) * (y > 0).to(per_pixel.dtype)  # (N, H, W)
    return (per_pixel * weight).sum() / weight.sum()


class SegmentTask(Task):
    name = "segment"
    baseline_key = "copy_mask"  # the true mask of the last input frame, copied forward
    curve_panels = (("jaccard", "val Jaccard (49 classes, all frames)"),)
    train_scalars = ("ce",)

    def model_config(self, cfg: TrainConfig):
        from convrnn_video.segment import get_preset

        try:
            return get_preset(cfg.preset)
        except (ValueError, KeyError) as exc:
            raise TrainError(f"segmenter preset {cfg.preset!r}: {exc}") from None

    def loader_kwargs(self, cfg: TrainConfig, mode: str) -> dict[str, Any]:
        return {"frames_in": cfg.frames_in, "frames_out": cfg.frames_out, "masks": True}

    def check_split(self, cfg: TrainConfig, split: str, entry: dict[str, Any]) -> str | None:
        if not entry.get("masks"):
            return f"split {split!r} has no masks; --task segment trains and validates on " \
                "splits with mask.npy (train, val)"  # fmt: skip
        return None

    def train_step(self, net: torch.nn.Module, batch: dict, ctx: StepContext):
        from convrnn_video.segment.loss import soft_dice

        frames = all_frames(batch)  # (B, T, 3, H, W)
        cfg = ctx.cfg
        masks = batch["masks"][:, : frames.shape[1]]  # the decoded frames' masks
        x, y = sample_frames(frames, masks, cfg.frames_per_video, cfg.flip)
        if cfg.crop and min(cfg.crop) > 0:  # (0, 0): whole frames; checked by fit_geometry
            x, y = crop_frames(x, y, (cfg.crop[0], cfg.crop[1]), cfg.crop_object_bias)
        x, y = x.to(ctx.device, non_blocking=True), y.to(ctx.device, non_blocking=True)
        with ctx.autocast:
            logits = net(x).float()  # (B*k, K, h, w)
        if cfg.object_weight != 1:
            ce = weighted_cross_entropy(logits, y, cfg.object_weight)
        else:
            ce = torch.nn.functional.cross_entropy(logits, y)
        loss = ce
        if cfg.dice_weight > 0:
            loss = ce + cfg.dice_weight * (1 - soft_dice(logits, y))
        return loss, {"ce": ce.detach()}

    def dummy_loss(self, model: torch.nn.Module) -> torch.Tensor:
        p = next(model.parameters())
        cfg = model.cfg
        side = 4 * cfg.stride
        x = torch.rand(2, cfg.in_channels, side, side, device=p.device)
        return model(x).float().mean()

    def evaluate(self, model, loader, env: DistEnv, autocast, with_baseline: bool):
        ours, base = FrameJaccard(), FrameJaccard()
        for batch in loader:
            t = batch["inputs"].shape[1] + (
                0 if batch["targets"] is None else batch["targets"].shape[1]
            )
            masks = batch["masks"][:, :t].to(env.device).long()  # (B, T, H, W)
            # the masks predict and label would make of these frames (segment_frames)
            pred = segment_frames(model, all_frames(batch), autocast)  # (B, T, H, W)
            ours.update(pred, masks)
            if with_baseline:
                t_in = batch["inputs"].shape[1]
                copied = masks[:, t_in - 1 : t_in].expand(-1, masks.shape[1] - t_in, -1, -1)
                base.update(copied, masks[:, t_in:])
        return finish_scores(ours, base if with_baseline else None, env.device)

    def val_loss(self, metrics: dict[str, Any], cfg: TrainConfig) -> float:
        return 1.0 - metrics["jaccard"]["mean"]

    def summary(self, metrics: dict[str, Any], baseline: dict[str, Any]) -> str:
        j, b = metrics["jaccard"], baseline["jaccard"]
        return (
            f"Jaccard {j['mean']:.4f} (last frame {j['last']:.4f}) | true mask of the last "
            f"input frame copied to the last frame {b['last']:.4f}"
        )

    def fit_geometry(self, model_cfg, geometry, fresh: bool):
        import dataclasses

        _, height, width, channels = geometry
        if not fresh and model_cfg.in_channels != channels:
            raise TrainError(
                f"the segmenter reads {model_cfg.in_channels}-channel frames, the shards hold "
                f"{channels}-channel ones"
            )
        try:
            model_cfg = dataclasses.replace(
                model_cfg, in_channels=channels, height=height, width=width
            )
        except ValueError as exc:
            raise TrainError(
                f"frames of {height}x{width} do not fit the segmenter: {exc}"
            ) from None
        settle_crop(self.cfg, model_cfg.stride, (height, width))  # before the run folder
        return model_cfg
