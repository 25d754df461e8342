"""ConvGRU / ConvLSTM cells: gradients, and the zero-input / zero-state shortcuts."""

from __future__ import annotations

import pytest
import torch
from convrnn_video.convrnn.cells import ConvGRUCell, ConvLSTMCell, group_norm, make_cell


def small_cell(kind: str, norm: bool = True) -> torch.nn.Module:
    torch.manual_seed(0)
    return make_cell(kind, in_channels=2, hidden=4, kernel=3, norm=norm, group_size=2).double()


@pytest.mark.parametrize("kind", ["gru", "lstm"])
@pytest.mark.parametrize("norm", [True, False])
def test_gradcheck_float64(kind: str, norm: bool) -> None:
    cell = small_cell(kind, norm)
    x = torch.randn(1, 2, 4, 5, dtype=torch.float64, requires_grad=True)
    h = torch.randn(1, 4, 4, 5, dtype=torch.float64, requires_grad=True)
    c = torch.randn(1, 4, 4, 5, dtype=torch.float64, requires_grad=True)

    def step(x: torch.Tensor, h: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, ...]:
        state = (h,) if kind == "gru" else (h, c)
        out = cell(cell.project(x), state)
        out = cell(None, out)  # a zero-input step too
        return cell(cell.project(x), None)[0] + out[0], out[-1]

    assert torch.autograd.gradcheck(step, (x, h, c), eps=1e-6, atol=1e-5, fast_mode=True)


@pytest.mark.parametrize("kind", ["gru", "lstm"])
def test_zero_state_shortcut_equals_explicit_zeros(kind: str) -> None:
    cell = small_cell(kind)
    xp = cell.project(torch.randn(3, 2, 5, 6, dtype=torch.float64))
    zero = cell.zero_state(xp, 5, 6)
    for a, b in zip(cell(xp, None), cell(xp, zero), strict=True):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("kind", ["gru", "lstm"])
def test_zero_input_shortcut_equals_projected_zeros(kind: str) -> None:
    cell = small_cell(kind)
    state = tuple(torch.randn(3, 4, 5, 6, dtype=torch.float64) for _ in range(cell.gates // 2))
    zeros = cell.project(torch.zeros(3, 2, 5, 6, dtype=torch.float64))
    for a, b in zip(cell(None, state), cell(zeros, state), strict=True):
        torch.testing.assert_close(a, b)


def test_state_shapes_and_dtype_follow_the_input() -> None:
    gru = ConvGRUCell(3, 8, 5)
    lstm = ConvLSTMCell(3, 8, 5)
    x = torch.randn(2, 3, 7, 9)
    assert [s.shape for s in gru(gru.project(x), None)] == [(2, 8, 7, 9)]
    assert [s.shape for s in lstm(lstm.project(x), None)] == [(2, 8, 7, 9)] * 2
    assert gru.zero_state(x.double(), 7, 9)[0].dtype == torch.float64
    with pytest.raises(ValueError, match="needs an input or a state"):
        gru(None, None)


def test_group_norm_follows_the_original_grouping() -> None:
    assert group_norm(128, 32, True).num_groups == 4  # the original: C // 32 groups
    assert group_norm(96, 32, True).num_groups == 3
    assert group_norm(20, 32, True).num_groups == 1
    assert isinstance(group_norm(64, 32, False), torch.nn.Identity)
    with pytest.raises(ValueError, match="unknown cell"):
        make_cell("rnn", 1, 1, 3)
