"""segment: the per-frame segmenter's config, shapes, factored head, loss, training on generated
frames, FLOP accounting, and its table in `presets`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import counted_macs
from convrnn_video.ingest.synth.writer import make_video
from convrnn_video.segment import PRESETS, SegConfig, build_segmenter, get_preset
from convrnn_video.segment.heads import factored_log_probs
from convrnn_video.segment.loss import segmentation_loss, soft_dice
from convrnn_video.segment.summary import conv_macs, gflop_per_frame, preset_table
from typer.testing import CliRunner

from convrnn_video.cli import app

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def frames_and_masks() -> tuple[torch.Tensor, torch.Tensor]:
    """4 generated frames (4, 3, 64, 96) in [0, 1] and their masks (4, 64, 96) int64: crops of
    frames 0 and 21 of two videos, centred on their objects (small, to keep training fast)."""
    frames, masks = [], []
    for video_id in (0, 1):
        f, m = make_video(seed=0, video_id=video_id)  # (22, 160, 240, 3), (22, 160, 240) uint8
        for t in (0, 21):
            rows, cols = np.nonzero(m[t])
            top = int(np.clip(rows.mean() - 32, 0, 160 - 64))
            left = int(np.clip(cols.mean() - 48, 0, 240 - 96))
            frames.append(f[t, top : top + 64, left : left + 96])
            masks.append(m[t, top : top + 64, left : left + 96])
    x = torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).float() / 255  # (4, 3, 64, 96)
    y = torch.from_numpy(np.stack(masks)).long()  # (4, 64, 96)
    assert len(y.unique()) >= 3  # background and at least two object kinds
    return x, y


# --- config -----------------------------------------------------------------------------


def test_config_round_trip_and_presets() -> None:
    for cfg in PRESETS.values():
        assert SegConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    assert get_preset("small", head="flat").head == "flat"
    assert get_preset("unet").channels == (64, 128, 256, 512)
    assert [get_preset(n).stride for n in ("tiny", "small", "unet")] == [4, 8, 8]
    assert SegConfig(levels=1, height=7, width=9).stride == 1


def test_config_errors_are_reported_together() -> None:
    with pytest.raises(ValueError, match="unknown SegConfig fields \\['depth'\\]"):
        SegConfig.from_dict({**SegConfig().to_dict(), "depth": 3})
    with pytest.raises(ValueError, match="unknown segmenter preset 'huge'"):
        get_preset("huge")
    with pytest.raises(ValueError) as err:
        SegConfig(norm="layer", head="factored", num_classes=10, base_channels=0)
    text = str(err.value)
    for part in ("norm must be one of", "needs num_classes=49", "base_channels must be >= 1"):
        assert part in text
    assert SegConfig().problems() == []
    with pytest.raises(ValueError, match="frame 100x240 must divide by the stride 8"):
        SegConfig(levels=4, height=100)
    with pytest.raises(ValueError, match="multiple of norm_group_size 8"):
        SegConfig(norm="group", base_channels=12)
    with pytest.raises(ValueError, match="head must be one of"):
        SegConfig(head="split")


def test_config_imports_no_torch() -> None:
    code = "import sys, segment, segment.config; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True)


# --- the network ------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(PRESETS))
@pytest.mark.parametrize("size", [(160, 240), (64, 96)])
def test_shapes_of_every_preset(name: str, size: tuple[int, int]) -> None:
    cfg = get_preset(name)
    model = build_segmenter(cfg).eval()
    assert all(p.device.type == "cpu" for p in model.parameters())
    with torch.no_grad():
        out = model(torch.rand(1, 3, *size))
    assert out.shape == (1, 49, *size) and out.dtype == torch.float32


@pytest.mark.parametrize(
    "overrides",
    [
        {"norm": "group", "norm_group_size": 2, "head": "flat"},
        {"norm": "none", "levels": 1},
        {"in_channels": 1, "num_classes": 5, "head": "flat"},
    ],
)
def test_variants_run(overrides: dict) -> None:
    cfg = get_preset("tiny", **overrides)
    out = build_segmenter(cfg)(torch.rand(2, cfg.in_channels, 32, 48))
    assert out.shape == (2, cfg.num_classes, 32, 48)


def test_bf16_autocast_returns_float32() -> None:
    model = build_segmenter(get_preset("tiny"))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(torch.rand(2, 3, 32, 48))
    assert out.dtype == torch.float32
    assert torch.allclose(out.logsumexp(dim=1), torch.zeros(()), atol=1e-4)


def test_indivisible_size_and_wrong_channels_are_errors() -> None:
    model = build_segmenter(get_preset("tiny"))
    with pytest.raises(ValueError, match="frame size 162x240 is not divisible by .* stride 4"):
        model(torch.rand(1, 3, 162, 240))
    with pytest.raises(ValueError, match=r"must be \(B, 3, H, W\), got \(1, 4, 32, 48\)"):
        model(torch.rand(1, 4, 32, 48))


# --- the factored head -----------------------------------------------------------------


def test_factored_outputs_are_log_probabilities_with_matching_argmax() -> None:
    torch.manual_seed(0)
    obj, shape = torch.randn(2, 1, 8, 12) * 3, torch.randn(2, 3, 8, 12)
    material, colour = torch.randn(2, 2, 8, 12), torch.randn(2, 8, 8, 12)
    logp = factored_log_probs(obj, shape, material, colour)  # (2, 49, 8, 12)
    assert logp.shape == (2, 49, 8, 12)
    assert torch.allclose(logp.logsumexp(dim=1), torch.zeros(()), atol=1e-5)
    best = logp.argmax(dim=1)  # (2, 8, 12)
    s, m, c = shape.argmax(1), material.argmax(1), colour.argmax(1)
    kind_logp = (
        torch.nn.functional.logsigmoid(obj[:, 0])
        + shape.log_softmax(1).amax(1)
        + material.log_softmax(1).amax(1)
        + colour.log_softmax(1).amax(1)
    )
    is_object = kind_logp > torch.nn.functional.logsigmoid(-obj[:, 0])
    assert 0 < is_object.float().mean() < 1  # both cases occur
    expected = torch.where(is_object, s * 16 + m * 8 + c + 1, torch.zeros_like(s))
    assert torch.equal(best, expected)
    # One class checked by hand: id 22 = sphere (1), metal (0), cyan (5).
    want = (
        torch.nn.functional.logsigmoid(obj[:, 0])
        + shape.log_softmax(1)[:, 1]
        + material.log_softmax(1)[:, 0]
        + colour.log_softmax(1)[:, 5]
    )
    assert torch.allclose(logp[:, 22], want, atol=1e-6)


def test_factored_model_matches_its_factors() -> None:
    torch.manual_seed(0)
    model = build_segmenter(get_preset("tiny")).eval()
    x = torch.rand(2, 3, 32, 48)
    with torch.no_grad():
        logp = model(x)
        factors = model.head.factors(model.features(x))
    assert torch.allclose(logp.logsumexp(dim=1), torch.zeros(()), atol=1e-5)
    assert torch.equal(logp, factored_log_probs(*factors))


# --- loss and training -----------------------------------------------------------------


@pytest.mark.parametrize("head", ["factored", "flat"])
def test_loss_decreases_and_gradients_reach_every_parameter(frames_and_masks, head: str) -> None:
    x, y = frames_and_masks
    torch.manual_seed(0)
    model = build_segmenter(get_preset("tiny", head=head))
    opt = torch.optim.Adam(model.parameters(), lr=3e-2)
    losses = []
    for step in range(20):
        loss = segmentation_loss(model(x), y, dice_weight=0.5)
        opt.zero_grad()
        loss.backward()
        if step == 0:
            for name, p in model.named_parameters():
                assert p.grad is not None and p.grad.abs().sum() > 0, name
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses


def test_dice_term() -> None:
    torch.manual_seed(0)
    target = torch.randint(0, 4, (2, 8, 12))
    logits = torch.randn(2, 5, 8, 12, requires_grad=True)
    plain = segmentation_loss(logits, target)
    with_dice = segmentation_loss(logits, target, dice_weight=1.0)
    assert with_dice > plain
    with_dice.backward()
    assert logits.grad is not None and torch.isfinite(logits.grad).all()
    dice_grad = torch.autograd.grad(soft_dice(logits, target), logits)[0]
    assert dice_grad.abs().sum() > 0
    perfect = torch.nn.functional.one_hot(target, 5).permute(0, 3, 1, 2).float() * 50
    assert soft_dice(perfect, target).item() == pytest.approx(1.0, abs=1e-4)
    with pytest.raises(ValueError, match="must match"):
        segmentation_loss(logits, target[:, :4])


# --- accounting and the presets command --------------------------------------------------


@pytest.mark.parametrize(
    ("name", "overrides"), [("tiny", {}), ("small", {"head": "flat"}), ("unet", {"levels": 2})]
)
def test_analytic_count_matches_the_convolutions_run(name: str, overrides: dict) -> None:
    cfg = get_preset(name, **overrides)
    model = build_segmenter(cfg).eval()
    assert counted_macs(model, torch.rand(1, 3, 32, 48)) == conv_macs(cfg, 32, 48)
    assert gflop_per_frame(cfg, 32, 48) == 2 * conv_macs(cfg, 32, 48) / 1e9


def test_presets_command_lists_the_segmenters() -> None:
    result = CliRunner().invoke(app, ["presets"])
    assert result.exit_code == 0, result.output
    assert "GFLOP/frame" in result.output and "64,128,256,512" in result.output
    result = CliRunner().invoke(app, ["presets", "--segmenter", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert rows == preset_table()
    assert [r["name"] for r in rows] == list(PRESETS)
    assert rows[0]["params"] == sum(
        p.numel() for p in build_segmenter(get_preset("tiny")).parameters()
    )
