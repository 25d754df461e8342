"""The encoder-forecaster in masks mode (`forecast="masks"`): shapes, gradients, equality with
the naive reference, copy-last init, teacher forcing, bad inputs, config checks, and
`restrict_to_seen`."""

from __future__ import annotations

import pytest
import torch
from convrnn_video.convrnn import PRESETS, ModelConfig, build_model, get_preset
from convrnn_video.convrnn.masks import copy_bonus_init, restrict_to_seen
from convrnn_video.convrnn.reference import from_model

from tests.convrnn_helpers import (
    assert_gradients_reach_every_parameter,
    class_ids,
    perturbed,
    reference_with_the_same_parameters,
)

MASK_SIZES = {"tiny-masks": (160, 240), "compact-masks": (160, 240), "seed-masks": (16, 24)}


@pytest.mark.parametrize("name", sorted(MASK_SIZES))
@pytest.mark.parametrize(("t_in", "t_out"), [(11, 11), (3, 5)])
def test_mask_output_shape_and_dtype(name: str, t_in: int, t_out: int) -> None:
    cfg = get_preset(name, frames_in=t_in, frames_out=t_out)
    model = build_model(cfg)
    h, w = MASK_SIZES[name]
    b = 1 if name.startswith("seed") else 2
    ids = class_ids(b, t_in, h, w)
    with torch.no_grad():
        logits = model(ids)
    assert logits.shape == (b, t_out, 49, h, w)
    assert logits.dtype == torch.float32 and torch.isfinite(logits).all()
    # Class last in memory (a contiguous (B, T, H, W, K) view), and uint8 masks (as stored)
    # give the same logits.
    assert logits.movedim(2, -1).is_contiguous()
    if t_out < 11:
        with torch.no_grad():
            torch.testing.assert_close(model(ids.to(torch.uint8)), logits, atol=0, rtol=0)


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"cell": "lstm", "output": "residual"},
        {"autoregressive": True, "output": "residual"},
        {"cell": "lstm", "autoregressive": True, "norm": False, "patch": 4},
    ],
)
def test_mask_gradients_reach_every_parameter(overrides: dict) -> None:
    cfg = get_preset("tiny-masks", frames_in=3, frames_out=3, **overrides)
    model = perturbed(build_model(cfg))
    x, y = class_ids(2, 3, 32, 48), class_ids(2, 3, 32, 48)
    logits = model(x, y, teacher_prob=0.5)  # (B, T, K, H, W)
    torch.nn.functional.cross_entropy(logits.transpose(1, 2), y).backward()
    names = {name for name, _ in model.named_parameters()}
    assert "embed.weight" in names and ("copy_bonus" in names) == (cfg.output == "residual")
    assert_gradients_reach_every_parameter(model, cfg.autoregressive, cfg.stages)


@pytest.mark.parametrize(
    ("name", "overrides"),
    [
        ("tiny-masks", {}),
        ("tiny-masks", {"autoregressive": True, "output": "residual"}),
        ("tiny-masks", {"cell": "lstm", "autoregressive": True, "num_classes": 5}),
        ("compact-masks", {}),
        ("compact-masks", {"cell": "lstm", "output": "logits", "embed_channels": 3}),
        ("seed-masks", {"frames_in": 3, "frames_out": 2}),
        ("seed-masks", {"frames_in": 2, "frames_out": 3, "autoregressive": True}),
    ],
)
def test_mask_model_equals_naive_reference(name: str, overrides: dict) -> None:
    cfg = get_preset(name, **overrides)
    model = perturbed(build_model(cfg))
    ref = reference_with_the_same_parameters(model)
    h, w = MASK_SIZES[name] if name.startswith("seed") else (32, 48)
    k = cfg.num_classes
    x = class_ids(2, cfg.frames_in, h, w, num_classes=k)
    y = class_ids(2, cfg.frames_out, h, w, num_classes=k)
    with torch.no_grad():
        # free running, teacher forced, and scheduled sampling (the same draws in both)
        for teacher_prob in (0.0, 1.0, 0.5) if cfg.autoregressive else (0.0,):
            torch.manual_seed(7)
            got = model(x, y, teacher_prob)
            torch.manual_seed(7)
            want = ref(x, y, teacher_prob)
            torch.testing.assert_close(got, want, atol=1e-4, rtol=0)


@pytest.mark.parametrize(
    ("name", "overrides"),
    [
        ("compact-masks", {}),  # patch 4, autoregressive, residual
        ("tiny-masks", {"patch": 1, "output": "residual"}),
        ("tiny-masks", {"patch": 1, "autoregressive": True, "output": "residual"}),
    ],
)
def test_mask_gradients_equal_the_naive_references(name: str, overrides: dict) -> None:
    # The layout tricks (class-last logits, an in-place bonus, feedback on the grid) must not
    # change the gradients: compare those of the parameters both networks name alike.
    cfg = get_preset(name, frames_in=3, frames_out=3, **overrides)
    model = perturbed(build_model(cfg))
    ref = from_model(model)
    x, y = class_ids(2, 3, 32, 48), class_ids(2, 3, 32, 48)
    for net in (model, ref):
        torch.manual_seed(7)
        logits = net(x, y, 0.5)
        torch.nn.functional.cross_entropy(logits.flatten(0, 1), y.flatten(0, 1)).backward()
    grads = dict(ref.named_parameters())
    shared = [n for n, _ in model.named_parameters() if not n.startswith(("enc_", "dec_"))]
    assert "embed.weight" in shared and "copy_bonus" in shared and "head.0.weight" in shared
    for name_ in shared:
        got, want = model.get_parameter(name_).grad, grads[name_].grad
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-4, msg=name_)


def test_residual_mask_model_starts_as_copy_last_mask() -> None:
    cfg = get_preset("compact-masks", frames_in=4, frames_out=3)
    x = class_ids(1, 4, 32, 48)
    with torch.no_grad():
        probs = build_model(cfg)(x).softmax(2)  # (1, 3, 49, 32, 48)
    last = x[:, -1:].expand(-1, 3, -1, -1)  # (1, 3, H, W)
    assert torch.equal(probs.argmax(2), last)
    torch.testing.assert_close(probs.max(2).values, torch.full_like(last, 0.9, dtype=torch.float))
    assert copy_bonus_init(49) == pytest.approx(6.0684, abs=1e-4)


def test_mask_teacher_forcing_feeds_the_true_masks() -> None:
    cfg = get_preset("tiny-masks", frames_in=2, frames_out=3, autoregressive=True)
    model = perturbed(build_model(cfg))
    x, y1, y2 = class_ids(1, 2, 32, 48), class_ids(1, 3, 32, 48), class_ids(1, 3, 32, 48)
    with torch.no_grad():
        torch.testing.assert_close(model(x, y1, 0.0), model(x, y2, 0.0))
        a, b = model(x, y1, 1.0), model(x, y2, 1.0)
    torch.testing.assert_close(a[:, 0], b[:, 0])
    assert not torch.allclose(a[:, 1], b[:, 1])


def test_mask_bad_inputs_raise_value_errors() -> None:
    model = build_model(get_preset("tiny-masks", frames_in=3, frames_out=2, autoregressive=True))
    ids = class_ids(1, 3, 32, 48)
    with pytest.raises(
        ValueError, match="class ids .B, T, H, W. of an integer dtype, got torch.float32"
    ):
        model(torch.rand(1, 3, 3, 32, 48))  # RGB frames
    with pytest.raises(ValueError, match="integer dtype, got torch.float32 .1, 3, 32, 48."):
        model(ids.float())  # ids as floats
    with pytest.raises(ValueError, match="got torch.int64 .3, 32, 48."):
        model(ids[0])  # no batch axis
    with pytest.raises(
        ValueError, match=r"inputs hold class ids \d+\.\.49; the model has 49 classes \(0\.\.48\)"
    ):
        model(torch.where(ids == 0, 49, ids))
    with pytest.raises(ValueError, match="class ids -1..48"):
        model(torch.where(ids == 0, -1, ids))
    with pytest.raises(ValueError, match="must divide"):
        model(ids[..., :30, :])
    with pytest.raises(ValueError, match=r"targets must be \(1, 2, 32, 48\), got \(1, 3, 32, 48\)"):
        model(ids, ids)
    with pytest.raises(ValueError, match="targets hold class ids"):
        model(ids, torch.full((1, 2, 32, 48), 60))
    with pytest.raises(ValueError, match="targets of a mask model"):
        model(ids, torch.rand(1, 2, 3, 32, 48))
    with pytest.raises(ValueError, match="needs targets"):
        model(ids, None, 0.5)
    # and a frame model refuses masks
    frames = build_model(get_preset("tiny"))
    with pytest.raises(ValueError, match="inputs must be .B, T, 3, H, W."):
        frames(class_ids(1, 11, 32, 48))
    with pytest.raises(ValueError, match="float dtype, got torch.uint8"):
        frames(torch.zeros(1, 11, 3, 32, 48, dtype=torch.uint8))


def test_mask_config_choices_are_checked() -> None:
    with pytest.raises(ValueError, match=r"output must be one of \('logits', 'residual'\) when"):
        get_preset("tiny", forecast="masks")  # tiny's sigmoid means nothing for masks
    with pytest.raises(ValueError, match=r"output must be one of \('sigmoid', 'residual'\) when"):
        get_preset("tiny-masks", forecast="frames")
    with pytest.raises(ValueError) as err:
        ModelConfig(forecast="labels", num_classes=1, embed_channels=0)
    msg = str(err.value)
    assert "forecast must be one of" in msg and "num_classes must be >= 2" in msg
    assert "embed_channels must be >= 1" in msg
    # A checkpoint's config from before mask mode (no such fields) is a frame model.
    old = PRESETS["compact"].to_dict()
    for key in ("forecast", "num_classes", "embed_channels"):
        del old[key]
    assert ModelConfig.from_dict(old) == PRESETS["compact"]


def test_restrict_to_seen_keeps_background_and_seen_classes() -> None:
    logits = torch.zeros(1, 2, 49, 2, 2)
    logits[:, :, 7] = 5.0  # the favourite everywhere: class 7, never seen
    logits[:, :, 3] = 1.0  # seen
    seen = torch.tensor([[[[0, 3], [3, 0]]]])  # (B, T_in, H, W)
    ids = restrict_to_seen(logits, seen)
    assert ids.shape == (1, 2, 2, 2) and bool((ids == 3).all())
    logits[:, :, 0] = 2.0  # background beats the seen class
    assert bool((restrict_to_seen(logits, seen) == 0).all())
