"""The frames task: the encoder-forecaster predicts RGB frames, scored against copy-last."""

from __future__ import annotations

from typing import Any

import torch
from convrnn_video.runtime.distributed import DistEnv
from convrnn_video.runtime.metrics import MetricAccumulator, copy_last_frame, ssim_map
from convrnn_video.train.config import TrainConfig
from convrnn_video.train.errors import TrainError
from convrnn_video.train.tasks.base import StepContext, Task


def compute_loss(
    pred: torch.Tensor, target: torch.Tensor, cfg: TrainConfig, last: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(loss, mse) over (B, T, C, H, W): the MSE, plus l1_weight x the mean absolute error
    and ssim_weight x (1 - the mean SSIM) where --loss names them (per-pixel means), and
    edge_weight x `edge_difference` and sharpness_weight x `sharpness_difference` where they
    are above 0. With
    motion_weight, the MSE and L1 terms are means weighted by `motion_weights` (last: the last
    input frame (B, C, H, W)); the mse returned is always the plain one."""
    terms = cfg.loss.split("+")
    p = pred.float()
    err = p - target
    squared = err.pow(2)
    mse = squared.mean()
    weight = None
    if cfg.motion_weight > 0:
        if last is None:
            raise ValueError("motion_weight needs the last input frame")
        weight = motion_weights(target, last, cfg.motion_weight)
    loss = mse if weight is None else weighted_mean(squared, weight)
    if "l1" in terms:
        l1 = err.abs().mean() if weight is None else weighted_mean(err.abs(), weight)
        loss = loss + cfg.l1_weight * l1
    if "ssim" in terms:
        ssim = ssim_map(p.flatten(0, 1), target.flatten(0, 1)).mean()  # (B*T, C, H, W) each
        loss = loss + cfg.ssim_weight * (1.0 - ssim)
    if cfg.edge_weight > 0:
        loss = loss + cfg.edge_weight * edge_difference(p, target)
    if cfg.sharpness_weight > 0:
        loss = loss + cfg.sharpness_weight * sharpness_difference(p, target)
    return loss, mse.detach()


def neighbour_steps(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(..., H, W) -> the absolute differences between horizontal neighbours (..., H, W - 1)
    and between vertical ones (..., H - 1, W): the edges both edge terms compare."""
    return images.diff(dim=-1).abs(), images.diff(dim=-2).abs()


def edge_strength(images: torch.Tensor) -> torch.Tensor:
    """(..., C, H, W) -> (...): the mean absolute difference between horizontal and between
    vertical neighbours of each image, summed."""
    return sum(step.mean(dim=(-3, -2, -1)) for step in neighbour_steps(images))


def sharpness_difference(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The mean over frames of |edge_strength(pred) - edge_strength(target)|: how much edge a
    predicted frame lost (or gained) as a whole, wherever its objects are. Unlike the MSE and
    `edge_difference`, it does not pay for an object put in the wrong place, only for one
    erased or faded, which is the MSE's cheaper bet when the object's next place is uncertain."""
    return (edge_strength(pred) - edge_strength(target)).abs().mean()


def edge_difference(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The gradient-difference term: the mean over pixels of | |d pred| - |d target| | for
    the differences d between horizontal and between vertical neighbours ((..., H, W) each).
    A prediction that fades or blurs a moving object has weaker edges than the true frame and
    pays for it, where the MSE alone rewards fading an object whose next place is uncertain."""
    steps = zip(neighbour_steps(pred), neighbour_steps(target), strict=True)
    return sum((p - t).abs().mean() for p, t in steps)


def motion_weights(target: torch.Tensor, last: torch.Tensor, strength: float) -> torch.Tensor:
    """Per-pixel loss weights (B, T, 1, H, W): 1 + strength x the channel-mean change of the
    true frame from the one before it (the first predicted frame: from the last input)."""
    before = torch.cat([last.unsqueeze(1), target[:, :-1]], 1)
    return 1.0 + strength * (target - before).abs().mean(2, keepdim=True)


def weighted_mean(values: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """sum(weight x values) / sum(weight), weight broadcast over values' channels: a weighted
    per-pixel mean on the plain mean's scale (equal weights give the plain mean)."""
    return (values * weight).mean() / weight.mean()


def teacher_prob(step: int, cfg: TrainConfig, autoregressive: bool) -> float:
    """Scheduled sampling: the chance of feeding the true frame, 1 -> 0 over ss_steps."""
    if not autoregressive or cfg.ss_steps == 0:
        return 0.0
    return max(0.0, 1.0 - step / cfg.ss_steps)


def val_loss(metrics: dict[str, Any], cfg: TrainConfig) -> float:
    """The validation loss, defined like the training loss (per-pixel means)."""
    terms = cfg.loss.split("+")
    value = metrics["mse"]["mean"]
    if "l1" in terms:
        value += cfg.l1_weight * metrics["mae"]["mean"]
    if "ssim" in terms:
        value += cfg.ssim_weight * (1.0 - metrics["ssim"]["mean"])
    return value


class ForecasterTask(Task):
    """What the frames and masks tasks share: the ConvRNN encoder-forecaster and its config."""

    def model_config(self, cfg: TrainConfig):
        from convrnn_video.convrnn import get_preset

        try:
            return get_preset(cfg.preset, frames_in=cfg.frames_in, frames_out=cfg.frames_out)
        except (ValueError, KeyError) as exc:
            raise TrainError(f"preset {cfg.preset!r}: {exc}") from None

    def fit_geometry(self, model_cfg, geometry, fresh: bool):
        import dataclasses

        _, height, width, channels = geometry
        if not fresh and model_cfg.image_channels != channels and not model_cfg.masks:
            raise TrainError(
                f"the model reads {model_cfg.image_channels}-channel frames, the shards hold "
                f"{channels}-channel ones"
            )
        changes = {"height": height, "width": width}
        if fresh and not model_cfg.masks:
            changes["image_channels"] = channels
        try:
            return dataclasses.replace(model_cfg, **changes)
        except ValueError as exc:
            raise TrainError(f"frames of {height}x{width} do not fit the model: {exc}") from None


class FramesTask(ForecasterTask):
    name = "frames"
    baseline_key = "copy_last"
    curve_panels = (("psnr", "val PSNR (mean over predicted frames)"),
                    ("ssim", "val SSIM (mean over predicted frames)"),
                    ("energy", "val energy / true frames' (1: no fading)"))  # fmt: skip
    train_scalars = ("mse",)

    def loader_kwargs(self, cfg: TrainConfig, mode: str) -> dict[str, Any]:
        return {"frames_in": cfg.frames_in, "frames_out": cfg.frames_out, "masks": False}

    def train_step(self, net: torch.nn.Module, batch: dict, ctx: StepContext):
        inputs = batch["inputs"].to(ctx.device, non_blocking=True)  # (B, T_in, 3, H, W)
        targets = batch["targets"].to(ctx.device, non_blocking=True)  # (B, T_out, 3, H, W)
        p = teacher_prob(ctx.step, ctx.cfg, ctx.model_cfg.autoregressive)
        with ctx.autocast:
            pred = net(inputs, targets=targets, teacher_prob=p)
        loss, mse = compute_loss(pred, targets, ctx.cfg, last=inputs[:, -1])
        return loss, {"mse": mse}

    def dummy_loss(self, model: torch.nn.Module) -> torch.Tensor:
        p = next(model.parameters())
        cfg = model.cfg
        x = torch.rand(1, cfg.frames_in, cfg.image_channels, 64, 64, device=p.device)
        y = torch.rand(1, cfg.frames_out, cfg.image_channels, 64, 64, device=p.device)
        return model(x, targets=y, teacher_prob=0.5).float().mean()

    @torch.no_grad()
    def evaluate(self, model, loader, env: DistEnv, autocast, with_baseline: bool):
        ours, base = MetricAccumulator(), MetricAccumulator()
        for batch in loader:
            inputs = batch["inputs"].to(env.device, non_blocking=True)  # (B, T_in, 3, H, W)
            targets = batch["targets"].to(env.device, non_blocking=True)  # (B, T_out, 3, H, W)
            with autocast:
                pred = model(inputs)
            ours.update(pred.float(), targets)
            if with_baseline:
                base.update(copy_last_frame(inputs, targets.shape[1]), targets)
        ours.all_reduce(env.device)
        if with_baseline:
            base.all_reduce(env.device)
        if ours.videos == 0:
            return {}, None
        return ours.compute(), (base.compute() if with_baseline else None)

    def val_loss(self, metrics: dict[str, Any], cfg: TrainConfig) -> float:
        return val_loss(metrics, cfg)

    def summary(self, metrics: dict[str, Any], baseline: dict[str, Any]) -> str:
        m, b = metrics, baseline
        return (
            f"MSE {m['mse']['mean']:.5f} PSNR {m['psnr']['mean']:.2f} SSIM {m['ssim']['mean']:.4f}"
            f" | copy-last MSE {b['mse']['mean']:.5f} PSNR {b['psnr']['mean']:.2f} "
            f"SSIM {b['ssim']['mean']:.4f}"
        )
