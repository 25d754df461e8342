"""train/tasks/frames.py: the terms of the frames loss and the validation loss that mirrors it."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from convrnn_video.runtime.metrics import MetricAccumulator, ssim_per_image
from convrnn_video.train.config import TrainConfig
from convrnn_video.train.loop import run_training
from convrnn_video.train.tasks.frames import (
    compute_loss,
    edge_difference,
    sharpness_difference,
    val_loss,
)
from train_helpers import records, small


def test_loss_terms_add_as_named() -> None:
    torch.manual_seed(0)
    y = torch.rand(2, 3, 3, 24, 32)
    pred = (y + 0.1 * torch.randn_like(y)).clamp(0, 1).requires_grad_()
    mse = F.mse_loss(pred, y).item()
    l1 = F.l1_loss(pred, y).item()
    ssim = ssim_per_image(pred.detach().flatten(0, 1), y.flatten(0, 1)).mean().item()
    for loss, want in (
        ("mse", mse),
        ("mse+l1", mse + 0.5 * l1),
        ("mse+ssim", mse + 2.0 * (1 - ssim)),
        ("mse+l1+ssim", mse + 0.5 * l1 + 2.0 * (1 - ssim)),
    ):
        cfg = TrainConfig(loss=loss, l1_weight=0.5, ssim_weight=2.0)
        value, reported_mse = compute_loss(pred, y, cfg)
        assert value.item() == pytest.approx(want, rel=1e-5), loss
        assert reported_mse.item() == pytest.approx(mse, rel=1e-6)
    value.backward()  # the SSIM term is differentiable
    assert pred.grad is not None and pred.grad.abs().sum() > 0
    # the validation loss is the same sum, from the metrics of a whole split
    acc = MetricAccumulator()
    acc.update(pred.detach(), y)
    assert val_loss(acc.compute(), cfg) == pytest.approx(want, rel=1e-4)


def white_square() -> torch.Tensor:
    """(1, 2, 3, 16, 16): two frames of a white square on black."""
    frames = torch.zeros(1, 2, 3, 16, 16)
    frames[..., 4:8, 4:8] = 1.0
    return frames


def test_the_edge_term_charges_a_faded_object_what_its_edges_lost() -> None:
    target = white_square()
    strength = target.diff(dim=-1).abs().mean() + target.diff(dim=-2).abs().mean()
    assert strength > 0
    assert edge_difference(target, target).item() == 0.0
    faded = (0.5 * target).requires_grad_()
    assert edge_difference(faded, target).item() == pytest.approx(0.5 * strength.item())
    cfg = TrainConfig(loss="mse", edge_weight=3.0)
    value, mse = compute_loss(faded, target, cfg)
    assert value.item() == pytest.approx(mse.item() + 1.5 * strength.item())
    value.backward()
    assert faded.grad is not None and faded.grad.abs().sum() > 0
    with pytest.raises(Exception, match="edge_weight must be >= 0"):
        dataclasses.replace(cfg, edge_weight=-1.0).validate()


def test_the_sharpness_term_charges_fading_not_a_wrong_place() -> None:
    target = white_square()
    elsewhere = torch.roll(target, 5, dims=-1)  # the object, whole, in the wrong place
    assert sharpness_difference(elsewhere, target).item() == 0.0
    assert edge_difference(elsewhere, target).item() > 0  # the pixel-level term pays there
    faded = (0.5 * target).requires_grad_()
    lost = sharpness_difference(faded, target)
    assert lost.item() == pytest.approx(edge_difference(faded, target).item())  # all lost
    cfg = TrainConfig(loss="mse", sharpness_weight=4.0)
    value, mse = compute_loss(faded, target, cfg)
    assert value.item() == pytest.approx(mse.item() + 4.0 * lost.item())
    value.backward()
    assert faded.grad is not None and faded.grad.abs().sum() > 0
    with pytest.raises(Exception, match="sharpness_weight must be >= 0"):
        dataclasses.replace(cfg, sharpness_weight=-1.0).validate()


def test_motion_weighting_charges_errors_on_moving_pixels_more() -> None:
    last = torch.zeros(1, 3, 8, 8)
    target = torch.zeros(1, 2, 3, 8, 8)
    target[:, :, :, :4] = 1.0  # the top half turns white at the first predicted frame, stays
    err = torch.zeros_like(target)
    moving, still = err.clone(), err.clone()
    moving[:, 0, :, 0, 0] = 0.5  # one pixel wrong where the frame changed
    still[:, 0, :, 7, 7] = 0.5  # one pixel wrong where nothing changed
    plain = TrainConfig(loss="mse+l1")
    weighted = dataclasses.replace(plain, motion_weight=3.0)
    costs = {}
    for name, e in (("moving", moving), ("still", still)):
        costs[name, 0] = compute_loss(target + e, target, plain, last)[0].item()
        costs[name, 3] = compute_loss(target + e, target, weighted, last)[0].item()
        # the reported MSE is the plain one either way
        assert compute_loss(target + e, target, weighted, last)[1].item() == pytest.approx(
            F.mse_loss(target + e, target).item()
        )
    assert costs["moving", 0] == pytest.approx(costs["still", 0])
    # weight 4 where the frame changed by 1 (half of frame 0), else 1: mean weight 1.75
    assert costs["moving", 3] == pytest.approx(costs["moving", 0] * 4 / 1.75)
    assert costs["still", 3] == pytest.approx(costs["still", 0] / 1.75)
    with pytest.raises(ValueError, match="needs the last input frame"):
        compute_loss(target, target, weighted)
    with pytest.raises(Exception, match="motion_weight must be >= 0"):
        dataclasses.replace(weighted, motion_weight=-1.0).validate()


def test_a_run_with_the_ssim_loss_validates_on_it(shard_root: Path, tmp_path: Path) -> None:
    cfg = small(shard_root, tmp_path / "run", loss="mse+l1+ssim", ssim_weight=0.5)
    run = run_training(cfg)
    val = records(run, "val")[-1]
    m = val["model"]
    want = m["mse"]["mean"] + cfg.l1_weight * m["mae"]["mean"] + 0.5 * (1 - m["ssim"]["mean"])
    assert val["loss"] == pytest.approx(want)
    train = records(run, "train")
    assert all(r["loss"] > r["mse"] for r in train)  # the extra terms are in the loss
    with pytest.raises(Exception, match="--loss must be one of"):
        dataclasses.replace(cfg, loss="ssim").validate()
