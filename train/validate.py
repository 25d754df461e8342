"""One validation pass: the model and the copy-last-frame baseline on a whole split."""

from __future__ import annotations

import contextlib
from typing import Any

import torch

from train.ddp import DistEnv
from train.metrics import MetricAccumulator, copy_last_frame


def val_loss(metrics: dict[str, Any], loss: str, l1_weight: float) -> float:
    """The validation loss, defined like the training loss (per-pixel means)."""
    value = metrics["mse"]["mean"]
    if loss == "mse+l1":
        value += l1_weight * metrics["mae"]["mean"]
    return value


@torch.no_grad()
def evaluate(
    model: torch.nn.Module,
    loader,
    env: DistEnv,
    *,
    amp: bool = False,
    with_baseline: bool = True,
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Score `model` (and copy-last-frame) on every batch of `loader`; sums are added over
    ranks, so each rank may hold a different share of the split. -> (model, baseline) metrics."""
    was_training = model.training
    model.eval()
    ours, base = MetricAccumulator(), MetricAccumulator()
    autocast = (
        torch.autocast(device_type="cuda", dtype=torch.bfloat16)
        if amp and env.device.type == "cuda"
        else contextlib.nullcontext()
    )
    for batch in loader:
        inputs = batch["inputs"].to(env.device, non_blocking=True)  # (B, T_in, 3, H, W)
        targets = batch["targets"].to(env.device, non_blocking=True)  # (B, T_out, 3, H, W)
        with autocast:
            pred = model(inputs)
        ours.update(pred.float(), targets)
        if with_baseline:
            base.update(copy_last_frame(inputs, targets.shape[1]), targets)
    model.train(was_training)
    ours.all_reduce(env.device)
    if with_baseline:
        base.all_reduce(env.device)
    if ours.videos == 0:
        return {}, None
    return ours.compute(), (base.compute() if with_baseline else None)
