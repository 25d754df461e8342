"""The motion output (convrnn/motion.py): sampling, accumulation, a new model copies the last
frame, and the displacement moves content without resampling it step after step."""

from __future__ import annotations

import pytest
import torch
from convrnn_video.convrnn import build_model, get_preset
from convrnn_video.convrnn.motion import accumulate, carry_mask, sample, warp_from


def square(h: int = 16, w: int = 24, top: int = 4, left: int = 6) -> torch.Tensor:
    img = torch.zeros(1, 1, h, w)
    img[..., top : top + 4, left : left + 4] = 1.0
    return img


def shift(dx: float, dy: float, h: int, w: int) -> torch.Tensor:
    """A constant displacement field (1, 2, h, w)."""
    return torch.tensor([float(dx), float(dy)]).view(1, 2, 1, 1).expand(1, 2, h, w).clone()


def test_sample_moves_by_whole_pixels_exactly() -> None:
    img = square()
    # sampling at x + (-2, -1): the content appears 2 px right and 1 px down
    moved = sample(img, shift(-2, -1, 16, 24))
    assert torch.allclose(moved[..., 5:9, 8:12], torch.ones(1, 1, 4, 4), atol=1e-5)
    assert moved.sum().item() == pytest.approx(16, abs=1e-4)


def test_accumulated_constant_steps_add_up() -> None:
    total = None
    for _ in range(3):
        total = accumulate(shift(-1, 0.5, 4, 6), total)
    assert torch.allclose(total, shift(-3, 1.5, 4, 6), atol=1e-5)


def test_warp_from_grid_displacement_scales_to_pixels() -> None:
    img = square(32, 48, top=8, left=8)
    # a grid of 8x12 cells for a 32x48 frame: one cell is 4 px
    moved = warp_from(img, shift(-1, 0, 8, 12))
    assert torch.allclose(moved[..., 8:12, 12:16], torch.ones(1, 1, 4, 4), atol=1e-5)


def test_carried_masks_keep_class_ids_and_move_by_the_displacement() -> None:
    mask = torch.zeros(1, 32, 48, dtype=torch.uint8)
    mask[0, 8:16, 8:16] = 7
    mask[0, 20:24, 30:40] = 42
    # frame 1: a cell (4 px) to the right, frame 2: two cells; on an 8x12 grid
    motion = torch.stack([shift(-1, 0, 8, 12), shift(-2, 0, 8, 12)], 1)  # (1, 2, 2, 8, 12)
    carried = carry_mask(mask, motion)
    assert carried.shape == (1, 2, 32, 48) and carried.dtype == torch.uint8
    assert set(carried.unique().tolist()) <= {0, 7, 42}  # ids stay ids, none blended
    assert torch.equal(carried[0, 0, :, 4:], mask[0, :, :-4])
    assert torch.equal(carried[0, 1, :, 8:], mask[0, :, :-8])


def test_one_sampling_keeps_an_object_sharp_where_repeated_sampling_blurs() -> None:
    img = torch.zeros(1, 1, 32, 48)
    img[..., 8:12, 8] = 1.0  # a one-pixel-wide bar
    step = shift(-0.125, 0, 8, 12)  # half a pixel a step: bilinear weights at every sampling
    once, again, total = img, img, None
    for _ in range(6):
        total = accumulate(step, total)
        once = warp_from(img, total)  # from the anchor along the accumulated displacement
        again = warp_from(again, step)  # from the previous frame, resampled each step
    # 3 px on: the anchor sampled once is the bar again; resampled 6 times it is smeared
    assert torch.allclose(once[..., 8:12, 11], torch.ones(4), atol=1e-5)
    assert again.max() < 0.5 and again.sum().item() == pytest.approx(4, abs=1e-3)


@pytest.mark.parametrize("autoregressive", [True, False])
def test_new_motion_model_copies_the_last_frame_and_learns_motion(autoregressive: bool) -> None:
    cfg = get_preset("compact-motion", autoregressive=autoregressive, frames_out=3)
    model = build_model(cfg)
    x = torch.rand(2, cfg.frames_in, 3, 32, 48)
    with torch.no_grad():
        pred = model.eval()(x)
    assert pred.shape == (2, 3, 3, 32, 48)
    torch.testing.assert_close(pred, x[:, -1:].expand_as(pred), atol=1e-5, rtol=0)
    model.train()
    model(x, torch.rand(2, 3, 3, 32, 48)).square().mean().backward()
    assert model.flow_head.weight.grad.abs().sum() > 0  # the displacement gets a gradient


@pytest.mark.parametrize("autoregressive", [True, False])
def test_new_mask_motion_model_equals_copy_bonus_and_learns_motion(autoregressive: bool) -> None:
    cfg = get_preset("compact-masks-motion", autoregressive=autoregressive, frames_out=3)
    model = build_model(cfg)
    plain = build_model(get_preset("compact-masks", autoregressive=autoregressive, frames_out=3))
    plain.load_state_dict(model.state_dict(), strict=False)  # all but the flow head
    ids = torch.randint(0, 49, (2, cfg.frames_in, 32, 48))
    with torch.no_grad():
        moved, still = model.eval()(ids), plain.eval()(ids)
    torch.testing.assert_close(moved, still, atol=1e-4, rtol=0)  # zero displacement: copying
    model.train()
    model(ids, torch.randint(0, 49, (2, 3, 32, 48))).logsumexp(2).mean().backward()
    assert model.flow_head.weight.grad.abs().sum() > 0


def test_motion_needs_a_residual_output() -> None:
    with pytest.raises(ValueError, match="motion needs output 'residual'"):
        get_preset("tiny", motion=True)
    with pytest.raises(ValueError, match="motion needs output 'residual'"):
        get_preset("tiny-masks", motion=True)


def test_tracked_displacement_points_back_to_each_objects_last_place() -> None:
    from convrnn_video.train.tasks.masks import displacement_loss, tracked_displacement

    last = torch.zeros(1, 16, 24, dtype=torch.long)
    last[0, 4:8, 4:8] = 5
    future = torch.zeros(1, 2, 16, 24, dtype=torch.long)
    future[0, 0, 4:8, 6:10] = 5  # 2 px right
    future[0, 1, 5:9, 8:12] = 5  # 4 px right, 1 down
    future[0, 1, 0:2, 0:2] = 7  # a newcomer: nothing to point back to
    shift, weight = tracked_displacement(last, future, 49)
    assert shift[0, 0, :, 5, 7].tolist() == [-2.0, 0.0]
    assert shift[0, 1, :, 6, 9].tolist() == [-4.0, -1.0]
    assert weight.sum() == 32 and weight[0, 1, 0, 0] == 0 and weight[0, 0, 0, 0] == 0
    # a zero displacement on a 4x6 grid (4 px cells): mean |error| in cells over the 32 pixels
    motion = torch.zeros(1, 2, 2, 4, 6, requires_grad=True)
    loss = displacement_loss(motion, last, future, 49)
    assert loss.item() == pytest.approx((2 / 4 + 5 / 4) / 2)
    loss.backward()
    assert motion.grad.abs().sum() > 0


@pytest.mark.parametrize("autoregressive", [True, False])
def test_a_new_extrapolating_mask_model_predicts_the_extrapolation(autoregressive: bool) -> None:
    from convrnn_video.convrnn.extrapolate import extrapolate_masks

    cfg = get_preset("compact-masks-extrapolate", autoregressive=autoregressive, frames_out=4)
    ids = torch.zeros(2, cfg.frames_in, 32, 48, dtype=torch.long)
    for t in range(cfg.frames_in):  # a square sliding 2 px a frame to the right
        ids[:, t, 8:16, 2 + 2 * t : 10 + 2 * t] = 9
    with torch.no_grad():
        pred = build_model(cfg).eval()(ids).argmax(2)  # (B, 4, H, W)
    expected = extrapolate_masks(ids, 4).long()
    assert torch.equal(pred, expected) and not torch.equal(expected[:, -1], ids[:, -1])
    with pytest.raises(ValueError, match="pick one"):
        get_preset("compact-masks-extrapolate", motion=True)
