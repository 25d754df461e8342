"""runtime/metrics.py against hand-computed values and a plain NumPy SSIM."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from convrnn_video.runtime.metrics import (
    MetricAccumulator,
    copy_last_frame,
    gaussian_window,
    spectral_energies,
    ssim_per_image,
)


def const(value: float, b: int = 1, t: int = 1, h: int = 16, w: int = 16) -> torch.Tensor:
    return torch.full((b, t, 3, h, w), value)


def test_constant_frames_match_hand_computed_values() -> None:
    acc = MetricAccumulator()
    acc.update(const(0.5), const(0.25))
    m = acc.compute()
    assert m["mse"]["mean"] == pytest.approx(0.0625)
    assert m["mae"]["mean"] == pytest.approx(0.25)
    assert m["psnr"]["mean"] == pytest.approx(10 * math.log10(16))
    # no variance anywhere: SSIM reduces to the luminance term (2ab + C1) / (a^2 + b^2 + C1)
    c1 = 0.01**2
    assert m["ssim"]["mean"] == pytest.approx((2 * 0.5 * 0.25 + c1) / (0.25 + 0.0625 + c1))


def test_identical_frames() -> None:
    x = torch.rand(2, 3, 3, 20, 24)
    acc = MetricAccumulator()
    acc.update(x, x)
    m = acc.compute()
    assert m["mse"]["mean"] == 0 and m["mae"]["mean"] == 0
    assert m["psnr"]["mean"] == pytest.approx(100.0)  # capped, not infinite
    assert m["ssim"]["per_frame"] == pytest.approx([1.0, 1.0, 1.0])


def test_psnr_is_averaged_per_video_frame_not_from_the_mean_mse() -> None:
    # video 0 has MSE 0.01 (20 dB), video 1 MSE 0.0001 (40 dB): PSNR 30, not 10log10(1/0.00505)
    pred = torch.cat([const(0.1), const(0.01)])
    acc = MetricAccumulator()
    acc.update(pred, torch.zeros_like(pred))
    m = acc.compute()
    assert m["psnr"]["mean"] == pytest.approx(30.0)
    assert m["mse"]["mean"] == pytest.approx(0.00505)


def test_per_frame_values_and_batch_split_invariance() -> None:
    target = torch.zeros(4, 3, 3, 16, 16)
    pred = torch.stack([const(v, b=4)[:, 0] for v in (0.1, 0.2, 0.3)], dim=1)  # frame t: 0.1(t+1)
    whole = MetricAccumulator()
    whole.update(pred, target)
    halves = MetricAccumulator()
    halves.update(pred[:1], target[:1])
    halves.update(pred[1:], target[1:])
    a, b = whole.compute(), halves.compute()
    assert a["mse"]["per_frame"] == pytest.approx([0.01, 0.04, 0.09])
    assert a["mae"]["per_frame"] == pytest.approx([0.1, 0.2, 0.3])
    assert a["mse"]["mean"] == pytest.approx(0.14 / 3)
    for name in ("mse", "mae", "psnr", "ssim"):
        assert a[name]["per_frame"] == pytest.approx(b[name]["per_frame"])
    assert halves.videos == 4


def numpy_ssim(x: np.ndarray, y: np.ndarray) -> float:
    """Textbook SSIM of (C, H, W) images: 11x11 Gaussian window, valid positions, loops."""
    g = gaussian_window().numpy()
    win = np.outer(g, g)
    c1, c2 = 0.01**2, 0.03**2
    vals = []
    for c in range(x.shape[0]):
        for i in range(x.shape[1] - 10):
            for j in range(x.shape[2] - 10):
                a, b = x[c, i : i + 11, j : j + 11], y[c, i : i + 11, j : j + 11]
                ma, mb = (win * a).sum(), (win * b).sum()
                va = (win * (a - ma) ** 2).sum()
                vb = (win * (b - mb) ** 2).sum()
                cov = (win * (a - ma) * (b - mb)).sum()
                vals.append(
                    (2 * ma * mb + c1) * (2 * cov + c2) / ((ma**2 + mb**2 + c1) * (va + vb + c2))
                )
    return float(np.mean(vals))


def test_ssim_matches_a_plain_numpy_implementation() -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 14, 15, generator=gen, dtype=torch.float64)
    y = (x + 0.2 * torch.rand(2, 3, 14, 15, generator=gen, dtype=torch.float64)).clamp(0, 1)
    ours = ssim_per_image(x, y)
    for n in range(2):
        assert float(ours[n]) == pytest.approx(numpy_ssim(x[n].numpy(), y[n].numpy()), abs=1e-5)


def test_copy_last_frame_and_bad_shapes() -> None:
    inputs = torch.rand(2, 4, 3, 8, 8)
    out = copy_last_frame(inputs, 3)
    assert out.shape == (2, 3, 3, 8, 8)
    assert torch.equal(out[:, 2], inputs[:, -1])
    acc = MetricAccumulator()
    with pytest.raises(ValueError):
        acc.compute()
    with pytest.raises(ValueError):
        acc.update(torch.rand(2, 3, 3, 8, 8), torch.rand(2, 2, 3, 8, 8))


def test_grid_energy_finds_a_patch_checkerboard() -> None:
    from convrnn_video.runtime.metrics import grid_energy

    torch.manual_seed(0)
    smooth = torch.nn.functional.avg_pool2d(torch.rand(2, 3, 64, 96), 9, 1, 4)  # (2, 3, 64, 96)
    yy, xx = torch.meshgrid(torch.arange(64), torch.arange(96), indexing="ij")
    checker = (((yy % 4) < 2) ^ ((xx % 4) < 2)).float() * 0.1  # a 4 x 4 periodic pattern
    plain, gridded = grid_energy(smooth), grid_energy(smooth + checker)
    assert plain.shape == (2,) and bool((plain < 0.01).all()) and bool((gridded > 0.2).all())
    grid, _, true = spectral_energies(smooth, smooth)
    acc = MetricAccumulator()
    acc.update(smooth.unsqueeze(1), smooth.unsqueeze(1))
    report = acc.compute()
    assert report["grid"]["mean"] == pytest.approx(float(grid.sum() / true.sum()))  # of sums
    assert report["grid"]["mean"] == pytest.approx(float(plain.mean()), rel=0.01)
    assert report["psnr_mse"]["mean"] == 100.0  # perfect: capped, finite
    assert report["energy"]["mean"] == pytest.approx(1.0)
    # A faded prediction (half way to grey) has a quarter of the energy and no more grid: the
    # grid is measured against the true frame's energy, not the prediction's own.
    faded = 0.5 * smooth + 0.25
    acc = MetricAccumulator()
    acc.update(faded.unsqueeze(1), smooth.unsqueeze(1))
    report = acc.compute()
    assert report["energy"]["mean"] == pytest.approx(0.25)
    assert report["grid"]["mean"] == pytest.approx(0.25 * float(grid.sum() / true.sum()))
    assert float(grid_energy(faded).mean()) == pytest.approx(float(plain.mean()))  # own share


def test_a_flat_true_frame_does_not_blow_up_energy_and_grid() -> None:
    # 4 videos x 3 frames of textured truth, predicted a little faded; in one video the true
    # middle frame is flat (a cut to black): a ratio over its zero energy made the mean 1e10.
    gen = torch.Generator().manual_seed(0)
    true = torch.nn.functional.avg_pool2d(torch.rand(12, 3, 32, 48, generator=gen), 5, 1, 2)
    true = true.view(4, 3, 3, 32, 48)  # (B, T, C, H, W)
    pred = (0.8 * true + 0.1 + 0.01 * torch.rand(true.shape, generator=gen)).clamp(0, 1)
    ordinary = MetricAccumulator()
    ordinary.update(pred, true)
    before = ordinary.compute()
    # the old definition, a mean of per-video ratios, on these ordinary frames
    g, e, t = spectral_energies(pred.flatten(0, 1), true.flatten(0, 1))
    assert before["energy"]["per_frame"] == pytest.approx((e / t).view(4, 3).mean(0), rel=0.02)
    assert before["grid"]["per_frame"] == pytest.approx((g / t).view(4, 3).mean(0), rel=0.1)
    flat = true.clone()
    flat[2, 1] = 0.5
    acc = MetricAccumulator()
    acc.update(pred, flat)
    m = acc.compute()
    for name in ("energy", "grid"):
        assert all(math.isfinite(v) for v in [m[name]["mean"], *m[name]["per_frame"]])
    # the other frames are untouched; the flat one's frame sums the other three videos' parts
    assert m["energy"]["per_frame"][0] == pytest.approx(before["energy"]["per_frame"][0])
    assert 0.5 < m["energy"]["per_frame"][1] < 1.5 and 0.5 < m["energy"]["mean"] < 1.5
    keep = [0, 1, 3]
    assert m["energy"]["per_frame"][1] == pytest.approx(
        float(e.view(4, 3)[:, 1].sum() / t.view(4, 3)[keep, 1].sum())
    )


def testssim_filters_are_made_once_and_serve_training_after_inference() -> None:
    """The Gaussian filters are cached per size, channels and device (no copy to the device
    per call), and a first call under inference_mode does not leave inference tensors that a
    later training step could not save for backward."""
    from convrnn_video.runtime.metrics import ssim_filters, ssim_map

    ssim_filters.cache_clear()
    x, y = torch.rand(2, 3, 24, 24), torch.rand(2, 3, 24, 24)
    with torch.inference_mode():
        ssim_map(x, y)
    p = x.clone().requires_grad_()
    ssim_map(p, y).mean().backward()  # the cached filters are saved for this backward
    assert p.grad is not None and ssim_filters.cache_info().hits == 1
    assert ssim_filters(11, 15, torch.device("cpu"))[0] is ssim_filters(11, 15, x.device)[0]
