"""Parameter and FLOP accounting, checked against convolutions counted while running, and the
`presets` command."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import counted_macs
from convrnn_video.convrnn import build_model, get_preset
from convrnn_video.convrnn.reference import from_model
from convrnn_video.convrnn.summary import conv_macs, feedback_macs, preset_table
from torch.utils.flop_counter import FlopCounterMode
from typer.testing import CliRunner

from convrnn_video.cli import app


@pytest.mark.parametrize(
    ("name", "overrides"),
    [
        ("tiny", {}),
        ("tiny", {"cell": "lstm", "autoregressive": True}),
        ("compact", {}),
        ("seed", {"frames_in": 2, "frames_out": 2, "height": 16, "width": 24}),
    ],
)
def test_analytic_count_matches_the_convolutions_run(name: str, overrides: dict) -> None:
    cfg = get_preset(name, **overrides)
    model = build_model(cfg)
    x = torch.rand(1, cfg.frames_in, 3, cfg.height, cfg.width)
    assert counted_macs(model, x) == conv_macs(cfg, executed=True)
    assert counted_macs(from_model(model), x) == conv_macs(cfg, executed=False)


@pytest.mark.parametrize(
    ("name", "overrides"),
    [
        ("tiny-masks", {}),
        ("tiny-masks", {"cell": "lstm", "autoregressive": True}),
        ("compact-masks", {}),
        ("seed-masks", {"frames_in": 2, "frames_out": 2, "height": 16, "width": 24}),
    ],
)
def test_analytic_count_of_a_mask_model(name: str, overrides: dict) -> None:
    cfg = get_preset(name, **overrides)
    model = build_model(cfg)
    x = torch.randint(0, cfg.num_classes, (1, cfg.frames_in, cfg.height, cfg.width))
    # Every multiply-accumulate torch sees: convolutions and the fed-back softmax @ table.
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x)
    assert counter.get_total_flops() == 2 * conv_macs(cfg, executed=True)
    assert (feedback_macs(cfg) > 0) == cfg.autoregressive
    assert counted_macs(model, x) == conv_macs(cfg, executed=True) - feedback_macs(cfg)
    assert counted_macs(from_model(model), x) == conv_macs(cfg) - feedback_macs(cfg)


def test_seed_costs_what_the_original_did() -> None:
    # 955 G multiply-accumulates per 11 -> 11 video at 160x240, zero-input convolutions included.
    assert conv_macs(get_preset("seed")) == pytest.approx(955e9, rel=1e-3)


def test_presets_command_json() -> None:
    result = CliRunner().invoke(app, ["presets", "--json"])
    assert result.exit_code == 0, result.output
    rows = {row["name"]: row for row in json.loads(result.output)}
    frames = {"tiny", "tiny-motion", "compact", "compact-motion", "seed", "seed-lstm"}
    assert set(rows) == frames | {
        "tiny-masks",
        "compact-masks",
        "compact-masks-motion",
        "compact-masks-extrapolate",
        "seed-masks",
        "tracks",
    }
    assert rows["tracks"]["cell"] == "MLP" and rows["tracks"]["gflops"] == 0.0
    assert rows["seed"]["params"] == 7_112_355
    assert rows["seed"]["gflops"] == pytest.approx(1910, rel=1e-3)
    # The embedding (49 x 8) in, a 49-class head out: stage 0 reads 8 channels, not 3, and the
    # last head conv writes 49, not 3 (16 x 46 weights + 46 biases more).
    extra = 49 * 8 + 64 * (8 - 3) * 9 + 16 * 46 + 46
    assert rows["seed-masks"]["params"] == 7_112_355 + extra == 7_116_409
    assert rows["compact-masks"]["forecast"] == "masks (49 classes, E=8)"
    assert rows["compact"]["forecast"] == "frames"
    assert rows == {row["name"]: row for row in preset_table()}


def test_presets_command_table_and_errors() -> None:
    result = CliRunner().invoke(app, ["presets"])
    assert result.exit_code == 0 and "7,112,355" in result.output
    assert "compact-masks" in result.output and "masks (49 classes, E=8)" in result.output
    result = CliRunner().invoke(app, ["presets", "--frames-out", "0"])
    assert result.exit_code == 1 and "frames_out must be >= 1" in result.output


def test_presets_say_what_each_is_for() -> None:
    from convrnn_video.segment.summary import preset_table as segmenter_table

    use = {row["name"]: row["for"] for row in [*preset_table(), *segmenter_table()]}
    assert use["tiny"] == use["tiny-masks"] == "tests"
    assert use["compact"] == use["compact-masks"] == use["small"] == "2-core CPU"
    assert use["seed"] == use["seed-masks"] == use["unet"] == "GPU"
    out = CliRunner().invoke(app, ["presets"]).output
    assert "for" in out.splitlines()[0] and "2-core CPU" in out
