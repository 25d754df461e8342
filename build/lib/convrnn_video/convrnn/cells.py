"""ConvGRU and ConvLSTM cells with one interface, split for speed at identical math.

The textbook cell convolves concat(x, h) with one biased convolution. Here that convolution is
split into an input part `x_conv` (carrying the bias) and a hidden part `h_conv` (no bias): the
sum is the same number, the parameter count is the same, and the input part can be computed
for every time step in one batched call (`project`) before the recurrence starts. A zero input
(`xp=None`) leaves only the bias, a zero state (`state=None`) skips the hidden convolutions.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

State = tuple[Tensor, ...]  # GRU: (h,), LSTM: (h, c); each (B, F, H, W)


def tanh(x: Tensor) -> Tensor:
    """tanh(x) as 2 sigmoid(2x) - 1: the same function (within 2e-7), and faster than
    `torch.tanh` in the CPU build measured here (benchmarks/precision.py)."""
    return torch.sigmoid(x * 2) * 2 - 1


def group_norm(channels: int, group_size: int, enabled: bool) -> nn.Module:
    """GroupNorm of about `group_size` channels a group (the original: C // 32 groups)."""
    if not enabled:
        return nn.Identity()
    groups = max(1, channels // group_size)
    while channels % groups:
        groups -= 1
    return nn.GroupNorm(groups, channels)


class ConvRNNCell(nn.Module):
    """Shared part: the split gate convolution. Subclasses set `gates` (gate blocks of F)."""

    gates: int  # GRU: z, r (+ the candidate from its own conv); LSTM: i, f, g, o

    def __init__(
        self, in_channels: int, hidden: int, kernel: int, norm: bool = True, group_size: int = 32
    ) -> None:
        super().__init__()
        self.in_channels, self.hidden, self.kernel = in_channels, hidden, kernel
        pad = kernel // 2
        # Input-to-state for every block (gates and, for the GRU, the candidate), with the bias.
        self.x_conv = nn.Conv2d(in_channels, self.x_blocks * hidden, kernel, padding=pad)
        # State-to-state for the gates, no bias (the bias lives in x_conv).
        self.h_conv = nn.Conv2d(hidden, self.gates * hidden, kernel, padding=pad, bias=False)
        self.norm_gates = group_norm(self.gates * hidden, group_size, norm)

    @property
    def x_blocks(self) -> int:
        return self.gates

    def project(self, x: Tensor) -> Tensor:
        """Input part of every gate: (N, in, H, W) -> (N, x_blocks*F, H, W); N may be B*T."""
        return self.x_conv(x)

    def bias_only(self, like: Tensor) -> Tensor:
        """The projection of a zero input: the bias, as (1, x_blocks*F, 1, 1)."""
        return self.x_conv.bias.view(1, -1, 1, 1).to(like.dtype)

    def zero_state(self, like: Tensor, height: int, width: int) -> State:
        raise NotImplementedError

    def forward(self, xp: Tensor | None, state: State | None) -> State:
        raise NotImplementedError


class ConvGRUCell(ConvRNNCell):
    """ConvGRU: z, r = sigmoid(GN(W * [x, h])); n = tanh(GN(U * [x, r h])); h' = (1-z) h + z n.

    The gate order (z first) and the blend follow the original code.
    """

    gates = 2

    def __init__(
        self, in_channels: int, hidden: int, kernel: int, norm: bool = True, group_size: int = 32
    ) -> None:
        super().__init__(in_channels, hidden, kernel, norm, group_size)
        self.h_cand = nn.Conv2d(hidden, hidden, kernel, padding=kernel // 2, bias=False)
        self.norm_cand = group_norm(hidden, group_size, norm)

    @property
    def x_blocks(self) -> int:
        return 3  # z, r, candidate

    def zero_state(self, like: Tensor, height: int, width: int) -> State:
        return (like.new_zeros(like.shape[0], self.hidden, height, width),)

    def forward(self, xp: Tensor | None, state: State | None) -> State:
        """One step. xp: `project(x)` (B, 3F, H, W) or None for a zero input; state: (h,) or None
        for a zero state."""
        f = self.hidden
        if xp is None:
            if state is None:
                raise ValueError("a ConvGRU step needs an input or a state")
            xp = self.bias_only(state[0])
        xg, xc = xp.split((2 * f, f), 1)  # input parts of the gates and of the candidate
        if state is None:  # h = 0: no hidden convolutions, r h = 0
            z, _ = torch.sigmoid(self.norm_gates(xg)).chunk(2, 1)
            return (z * tanh(self.norm_cand(xc)),)
        h = state[0]
        z, r = torch.sigmoid(self.norm_gates(self.h_conv(h) + xg)).chunk(2, 1)
        n = tanh(self.norm_cand(self.h_cand(r * h) + xc))
        return (h + z * (n - h),)  # = (1 - z) h + z n


class ConvLSTMCell(ConvRNNCell):
    """ConvLSTM (Shi et al. 2015, without peepholes): i, f, g, o from GN(W * [x, h]);
    c' = f c + i g; h' = o tanh(c'). Gate order i, f, g, o as in the original code."""

    gates = 4

    def zero_state(self, like: Tensor, height: int, width: int) -> State:
        z = like.new_zeros(like.shape[0], self.hidden, height, width)
        return (z, z)

    def forward(self, xp: Tensor | None, state: State | None) -> State:
        """One step. xp: `project(x)` (B, 4F, H, W) or None; state: (h, c) or None (zeros)."""
        if xp is None:
            if state is None:
                raise ValueError("a ConvLSTM step needs an input or a state")
            xp = self.bias_only(state[0])
        pre = xp if state is None else self.h_conv(state[0]) + xp
        i, fg, g, o = self.norm_gates(pre).chunk(4, 1)
        i, fg, o, g = torch.sigmoid(i), torch.sigmoid(fg), torch.sigmoid(o), tanh(g)
        c = i * g if state is None else fg * state[1] + i * g
        return (o * tanh(c), c)


def make_cell(
    kind: str, in_channels: int, hidden: int, kernel: int, norm: bool = True, group_size: int = 32
) -> ConvRNNCell:
    """A cell by name: "gru" or "lstm"."""
    classes = {"gru": ConvGRUCell, "lstm": ConvLSTMCell}
    if kind not in classes:
        raise ValueError(f"unknown cell {kind!r}; choose one of {sorted(classes)}")
    return classes[kind](in_channels, hidden, kernel, norm, group_size)
