"""Parameter and FLOP accounting, checked against convolutions counted while running, and the
`presets` command."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from cli import app
from convrnn import build_model, get_preset
from convrnn.reference import from_model
from convrnn.summary import conv_macs, preset_table


def counted_macs(model: torch.nn.Module, x: torch.Tensor) -> int:
    """Multiply-accumulates of every convolution a forward pass runs, counted by hooks."""
    total = 0

    def hook(mod: torch.nn.Module, args: tuple, out: torch.Tensor) -> None:
        nonlocal total
        kk = mod.kernel_size[0] * mod.kernel_size[1] * mod.in_channels * mod.out_channels
        # A conv's MACs follow its output pixels; a transposed conv's its input pixels.
        pixels = args[0] if isinstance(mod, torch.nn.ConvTranspose2d) else out
        total += pixels.numel() // pixels.shape[1] * kk

    handles = [
        m.register_forward_hook(hook)
        for m in model.modules()
        if isinstance(m, torch.nn.Conv2d | torch.nn.ConvTranspose2d)
    ]
    with torch.no_grad():
        model(x)
    for h in handles:
        h.remove()
    return total


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


def test_seed_costs_what_the_original_did() -> None:
    # 955 G multiply-accumulates per 11 -> 11 video at 160x240, zero-input convolutions included.
    assert conv_macs(get_preset("seed")) == pytest.approx(955e9, rel=1e-3)


def test_presets_command_json() -> None:
    result = CliRunner().invoke(app, ["presets", "--json"])
    assert result.exit_code == 0, result.output
    rows = {row["name"]: row for row in json.loads(result.output)}
    assert set(rows) == {"tiny", "compact", "seed", "seed-lstm"}
    assert rows["seed"]["params"] == 7_112_355
    assert rows["seed"]["gflops"] == pytest.approx(1910, rel=1e-3)
    assert rows == {row["name"]: row for row in preset_table()}


def test_presets_command_table_and_errors() -> None:
    result = CliRunner().invoke(app, ["presets"])
    assert result.exit_code == 0 and "7,112,355" in result.output
    result = CliRunner().invoke(app, ["presets", "--frames-out", "0"])
    assert result.exit_code == 1 and "frames_out must be >= 1" in result.output
