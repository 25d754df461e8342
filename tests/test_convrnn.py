"""The encoder-forecaster of frames: shapes, parameter count, gradients, equality with the naive
reference, conv layouts, configs and presets (its masks mode: tests/test_convrnn_masks.py)."""

from __future__ import annotations

import json

import pytest
import torch
from convrnn_video.convrnn import PRESETS, ModelConfig, build_model, get_preset
from convrnn_video.convrnn.blocks import machine_prefers_channels_last, prefers_channels_last
from convrnn_video.convrnn.refine import snap_still

from tests.convrnn_helpers import (
    assert_gradients_reach_every_parameter,
    class_ids,
    perturbed,
    reference_with_the_same_parameters,
)

# seed is fully convolutional and slow on CPU at 160x240: shape tests use a smaller frame.
SIZES = {"tiny": (160, 240), "compact": (160, 240), "seed": (16, 24), "seed-lstm": (16, 24)}


def test_presets_are_the_named_ones() -> None:
    frames = {"tiny", "tiny-motion", "compact", "compact-motion", "seed", "seed-lstm"}
    masks = {
        "tiny-masks",
        "compact-masks",
        "compact-masks-motion",
        "compact-masks-extrapolate",
        "seed-masks",
    }
    assert set(PRESETS) == frames | masks | {"tracks"}
    assert PRESETS["tracks"].forecast == "tracks" and PRESETS["tracks"].masks
    assert all(PRESETS[n].forecast == "frames" for n in frames)
    assert all(PRESETS[n].forecast == "masks" for n in masks)
    # Each mask preset is its frame namesake with the mask input and output.
    for name in masks:
        frame = PRESETS[name.replace("-masks", "").replace("-extrapolate", "")].to_dict()
        mask = PRESETS[name].to_dict()
        differ = {k for k in frame if frame[k] != mask[k]}
        assert differ <= {"forecast", "output", "still_levels", "mask_base"}


def test_seed_has_the_original_parameter_count() -> None:
    model = build_model(get_preset("seed"))
    assert sum(p.numel() for p in model.parameters()) == 7_112_355


@pytest.mark.parametrize("name", sorted(SIZES))
@pytest.mark.parametrize(("t_in", "t_out"), [(11, 11), (3, 5)])
def test_output_shape_and_range(name: str, t_in: int, t_out: int) -> None:
    cfg = get_preset(name, frames_in=t_in, frames_out=t_out)
    model = build_model(cfg)
    h, w = SIZES[name]
    b = 1 if name.startswith("seed") else 2
    with torch.no_grad():
        pred = model(torch.rand(b, t_in, 3, h, w))
    assert pred.shape == (b, t_out, 3, h, w)
    assert pred.dtype == torch.float32
    assert pred.min() >= 0.0 and pred.max() <= 1.0


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"cell": "lstm"},
        {"autoregressive": True, "output": "residual"},
        {"cell": "lstm", "autoregressive": True, "norm": False},
        {"autoregressive": True, "output": "residual", "refine": (4,)},
    ],
)
def test_gradients_reach_every_parameter(overrides: dict) -> None:
    # (frames; masks below)
    cfg = get_preset("tiny", frames_in=3, frames_out=3, **overrides)
    model = perturbed(build_model(cfg))
    x, y = torch.rand(2, 3, 3, 32, 48), torch.rand(2, 3, 3, 32, 48)
    ((model(x, y, teacher_prob=0.5) - y) ** 2).mean().backward()
    assert_gradients_reach_every_parameter(model, cfg.autoregressive, cfg.stages)


@pytest.mark.parametrize(
    ("name", "overrides"),
    [
        ("tiny", {}),
        ("tiny", {"cell": "lstm", "output": "residual"}),
        ("tiny", {"autoregressive": True}),
        ("compact", {}),
        ("compact", {"cell": "lstm", "autoregressive": False}),
        ("compact", {"refine": (8, 8)}),
        ("tiny", {"refine": (4,), "autoregressive": False}),
        ("seed", {"frames_in": 3, "frames_out": 2}),
        ("seed-lstm", {"frames_in": 2, "frames_out": 2, "autoregressive": True}),
    ],
)
def test_optimised_equals_naive_reference(name: str, overrides: dict) -> None:
    # Without snapping: a change within rounding of the threshold could snap in one and not
    # the other (both call the same snap_still; its own tests are below).
    cfg = get_preset(name, **{**overrides, "still_levels": 0.0})
    model = perturbed(build_model(cfg))
    ref = reference_with_the_same_parameters(model)
    h, w = SIZES[name] if name.startswith("seed") else (32, 48)
    x = torch.rand(2, cfg.frames_in, 3, h, w)
    y = torch.rand(2, cfg.frames_out, 3, h, w)
    with torch.no_grad():
        for teacher_prob in (0.0, 1.0) if cfg.autoregressive else (0.0,):
            torch.testing.assert_close(
                model(x, y, teacher_prob), ref(x, y, teacher_prob), atol=1e-4, rtol=0
            )


def test_conv_layout_follows_the_cpu_class() -> None:
    # NCHW on AVX2 CPUs (channels_last measured slower there), channels_last elsewhere.
    assert not prefers_channels_last("AVX2", cuda=False)
    assert prefers_channels_last("AVX512", cuda=False)
    assert prefers_channels_last("AVX2", cuda=True)
    model = build_model(get_preset("tiny"))
    assert model.channels_last == machine_prefers_channels_last()


def conv_layouts(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> set[bool]:
    """Run a training step; for every convolution call, is its input strictly channels_last?"""
    seen = set()

    def record(module: torch.nn.Module, inputs: tuple) -> None:
        t = inputs[0]
        seen.add(t.is_contiguous(memory_format=torch.channels_last) and not t.is_contiguous())

    convs = [
        m for m in model.modules() if isinstance(m, torch.nn.Conv2d | torch.nn.ConvTranspose2d)
    ]
    hooks = [m.register_forward_pre_hook(record) for m in convs]
    model(x, y, 0.5).float().square().mean().backward()
    for h in hooks:
        h.remove()
    return seen


@pytest.mark.parametrize(
    ("name", "overrides"),
    [
        ("tiny", {}),
        ("tiny", {"autoregressive": True, "cell": "lstm"}),
        ("compact", {"refine": (4,)}),
        ("tiny-motion", {"autoregressive": True}),
        ("tiny-masks", {"autoregressive": True, "output": "residual"}),
    ],
)
def test_both_conv_layouts_compute_the_same(name: str, overrides: dict) -> None:
    cfg = get_preset(name, frames_in=3, frames_out=3, still_levels=0.0, **overrides)
    last = perturbed(build_model(cfg, channels_last=True))
    nchw = build_model(cfg, channels_last=False)
    nchw.load_state_dict(last.state_dict())
    assert all(p.is_contiguous() for p in nchw.parameters())
    if cfg.masks:
        x, y = class_ids(2, 3, 32, 48), class_ids(2, 3, 32, 48)
    else:
        x, y = torch.rand(2, 3, 3, 32, 48), torch.rand(2, 3, 3, 32, 48)
    torch.manual_seed(0)  # the same teacher-forcing draws in both
    assert conv_layouts(nchw, x, y) == {False}  # every convolution runs NCHW
    torch.manual_seed(0)
    assert True in conv_layouts(last, x, y)
    for (key, a), b in zip(last.named_parameters(), nchw.parameters(), strict=True):
        torch.testing.assert_close(a.grad, b.grad, atol=1e-4, rtol=1e-4, msg=key)
    with torch.no_grad():
        torch.testing.assert_close(last.eval()(x), nchw.eval()(x), atol=1e-4, rtol=0)


def test_residual_zero_head_starts_as_copy_last_frame() -> None:
    cfg = get_preset("compact", frames_in=4, frames_out=3)
    x = torch.rand(1, 4, 3, 32, 48)
    with torch.no_grad():
        pred = build_model(cfg)(x)
    torch.testing.assert_close(pred, x[:, -1:].expand(-1, 3, -1, -1, -1))


def test_refinement_starts_as_the_identity_and_keeps_frames_in_range() -> None:
    cfg = get_preset("compact", frames_in=4, frames_out=3, refine=(8,))
    x = torch.rand(1, 4, 3, 32, 48)
    model = build_model(cfg)
    with torch.no_grad():
        torch.testing.assert_close(model(x), x[:, -1:].expand(-1, 3, -1, -1, -1))
        model.refine.net[-1].bias.fill_(5.0)  # a large correction is clamped into [0, 1]
        assert model(x).max() == 1.0
    with pytest.raises(ValueError, match="refine applies to frames only"):
        get_preset("compact-masks", refine=(8,))


def test_changes_under_the_still_threshold_are_snapped_to_none() -> None:
    base = torch.full((1, 3, 4, 4), 0.5)
    frame = base + torch.tensor([0.0, 1, 2.9, 3.1]).view(1, 1, 1, 4) / 255
    out = snap_still(frame, base, 3.0)
    torch.testing.assert_close(out[..., :3], base[..., :3], atol=0, rtol=0)
    torch.testing.assert_close(out[..., 3], frame[..., 3], atol=0, rtol=0)
    assert snap_still(frame, base, 0.0) is frame


def test_compact_keeps_still_pixels_exactly_still_when_predicting() -> None:
    cfg = get_preset("compact", frames_in=3, frames_out=4)
    assert cfg.still_levels == 3.0 and get_preset("compact-masks").still_levels == 0.0
    x = torch.rand(2, 3, 3, 32, 48)
    last = x[:, -1:].expand(-1, 4, -1, -1, -1)
    model = build_model(cfg).eval()
    with torch.no_grad():
        model.head[-1].bias.fill_(2.0 / 255)  # every pixel brightens by 2 levels a step
        assert torch.equal(model(x), last)  # each step's change snapped, fed back unchanged
        model.head[-1].bias.fill_(4.0 / 255)  # 4 levels: a change, kept
        moved = model(x) - last
        assert (moved[:, 0] > 3.9 / 255).float().mean() > 0.9  # all but clamped pixels
        model.head[-1].bias.fill_(2.0 / 255)
        model.train()  # training sees the unsnapped frames
        moved = model(x) - last
        assert (moved[:, 0] > 1.9 / 255).float().mean() > 0.9
    with pytest.raises(ValueError, match="still_levels applies to frames only"):
        get_preset("compact-masks", still_levels=2.0)
    with pytest.raises(ValueError, match="still_levels must be in"):
        get_preset("compact", still_levels=-1.0)
    old = cfg.to_dict()
    del old["still_levels"]  # a checkpoint from before the field: no snapping, as it trained
    assert ModelConfig.from_dict(old).still_levels == 0.0


def test_teacher_forcing_feeds_the_true_frames() -> None:
    cfg = get_preset("tiny", frames_in=2, frames_out=3, autoregressive=True)
    model = perturbed(build_model(cfg))
    x = torch.rand(1, 2, 3, 32, 48)
    y1, y2 = torch.rand(2, 1, 3, 3, 32, 48)
    with torch.no_grad():
        # Free running ignores targets; teacher forcing reads target k-1 at step k.
        torch.testing.assert_close(model(x, y1, 0.0), model(x, y2, 0.0))
        a, b = model(x, y1, 1.0), model(x, y2, 1.0)
    torch.testing.assert_close(a[:, 0], b[:, 0])
    assert not torch.allclose(a[:, 1], b[:, 1])


def test_bad_inputs_raise_value_errors() -> None:
    model = build_model(get_preset("tiny", autoregressive=True))
    with pytest.raises(ValueError, match="must divide"):
        model(torch.rand(1, 11, 3, 30, 48))
    with pytest.raises(ValueError, match="inputs must be"):
        model(torch.rand(1, 11, 1, 32, 48))
    with pytest.raises(ValueError, match="targets must be"):
        model(torch.rand(1, 11, 3, 32, 48), torch.rand(1, 5, 3, 32, 48))
    with pytest.raises(ValueError, match="needs targets"):
        model(torch.rand(1, 11, 3, 32, 48), None, 0.5)


def test_config_round_trip_through_json() -> None:
    for name in PRESETS:
        cfg = get_preset(name, frames_out=7)
        again = ModelConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
        assert again == cfg and again.frames_out == 7
        model, rebuilt = build_model(cfg), build_model(again)
        assert rebuilt.load_state_dict(model.state_dict())  # same layout


def test_config_reports_every_problem_at_once() -> None:
    with pytest.raises(ValueError) as err:
        ModelConfig(cell="rnn", frames_out=0, strides=(1, 2), height=150)
    msg = str(err.value)
    assert "cell must be one of" in msg and "frames_out" in msg and "strides has 2" in msg
    with pytest.raises(ValueError, match="unknown ModelConfig fields"):
        ModelConfig.from_dict({**ModelConfig().to_dict(), "dropout": 0.1})
    with pytest.raises(ValueError, match="unknown preset"):
        get_preset("huge")


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_forward_backward_matches_cpu() -> None:
    cfg = get_preset("tiny", frames_in=3, frames_out=3, autoregressive=True)
    model = perturbed(build_model(cfg))
    x, y = torch.rand(2, 3, 3, 32, 48), torch.rand(2, 3, 3, 32, 48)
    gpu = build_model(cfg).cuda()
    gpu.load_state_dict(model.state_dict())
    pred = gpu(x.cuda(), y.cuda(), 1.0)
    pred.mean().backward()
    assert pred.device.type == "cuda"
    with torch.no_grad():
        torch.testing.assert_close(pred.cpu(), model(x, y, 1.0), atol=1e-4, rtol=0)
