"""A naive reference written straight from the equations, as the original code computed them.

Each cell convolves concat(x, h) with one biased convolution and splits the gates; zero inputs
and zero initial states are real zero tensors that get convolved; the recurrence runs one step
at a time. It has the original's parameter layout and count. `from_model` loads the weights of
an `EncoderForecaster`, so tests check the optimised network against it and the benchmark
times both on the same weights.

Masks the plain way too: an embedding is one-hot(ids) @ table, patching is `pixel_unshuffle`,
the head's (i, j, class) channels are unpatched by a reshape, logits are (B, K, H, W), and a
residual adds bonus x one-hot(last mask).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .blocks import (
    build_head,
    build_stage_convs,
    build_ups,
    head_to_frame,
    scheduled_input,
    space_to_depth,
)
from .cells import group_norm
from .config import ModelConfig
from .forecaster import EncoderForecaster
from .masks import copy_bonus_init
from .refine import build_refine, snap_still


class NaiveGRUCell(nn.Module):
    def __init__(self, cin: int, f: int, k: int, norm: bool, group_size: int) -> None:
        super().__init__()
        self.cin, self.f = cin, f
        self.conv_gates = nn.Conv2d(cin + f, 2 * f, k, padding=k // 2)
        self.norm_gates = group_norm(2 * f, group_size, norm)
        self.conv_cand = nn.Conv2d(cin + f, f, k, padding=k // 2)
        self.norm_cand = group_norm(f, group_size, norm)

    def zero_state(self, x: Tensor) -> tuple[Tensor, ...]:
        return (x.new_zeros(x.shape[0], self.f, *x.shape[2:]),)

    def forward(self, x: Tensor, state: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
        h = state[0]
        gates = torch.sigmoid(self.norm_gates(self.conv_gates(torch.cat([x, h], 1))))
        z, r = torch.split(gates, self.f, 1)
        n = torch.tanh(self.norm_cand(self.conv_cand(torch.cat([x, r * h], 1))))
        return ((1 - z) * h + z * n,)


class NaiveLSTMCell(nn.Module):
    def __init__(self, cin: int, f: int, k: int, norm: bool, group_size: int) -> None:
        super().__init__()
        self.cin, self.f = cin, f
        self.conv_gates = nn.Conv2d(cin + f, 4 * f, k, padding=k // 2)
        self.norm_gates = group_norm(4 * f, group_size, norm)

    def zero_state(self, x: Tensor) -> tuple[Tensor, ...]:
        z = x.new_zeros(x.shape[0], self.f, *x.shape[2:])
        return (z, z)

    def forward(self, x: Tensor, state: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
        h, c = state
        gates = self.norm_gates(self.conv_gates(torch.cat([x, h], 1)))
        i, f, g, o = torch.split(gates, self.f, 1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        return (torch.sigmoid(o) * torch.tanh(c), c)


class NaiveEncoderForecaster(nn.Module):
    """Same config, same math, the original's way; module names match EncoderForecaster's
    outside the cells."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        if cfg.masks:
            self.embed = nn.Embedding(cfg.num_classes, cfg.embed_channels)
            if cfg.output == "residual":
                self.copy_bonus = nn.Parameter(torch.tensor(copy_bonus_init(cfg.num_classes)))
        self.stage_convs, self.ups = build_stage_convs(cfg), build_ups(cfg)
        self.head, self.act = build_head(cfg, cfg.hidden[0]), nn.LeakyReLU(cfg.leak)
        self.refine = build_refine(cfg)
        cell = {"gru": NaiveGRUCell, "lstm": NaiveLSTMCell}[cfg.cell]
        n = cfg.stages
        self.enc_cells = nn.ModuleList(
            cell(
                cfg.stage_channels[i],
                cfg.hidden[i],
                cfg.rnn_kernels[i],
                cfg.norm,
                cfg.norm_group_size,
            )
            for i in range(n)
        )
        dec_in = cfg.up_channels + (cfg.hidden[-1],)
        self.dec_cells = nn.ModuleList(
            cell(dec_in[i], cfg.hidden[i], cfg.rnn_kernels[i], cfg.norm, cfg.norm_group_size)
            for i in range(n)
        )

    def to_grid(self, frames: Tensor) -> Tensor:
        if not self.cfg.masks:  # NCHW, as pixel_unshuffle writes it
            return space_to_depth(frames, self.cfg.patch).contiguous()
        return F.pixel_unshuffle(frames.flatten(0, -4), self.cfg.patch).unflatten(
            0, frames.shape[:-3]
        )

    def to_frame(self, raw: Tensor, base: Tensor) -> Tensor:
        cfg = self.cfg
        if not cfg.masks:
            frame = head_to_frame(raw, base, cfg)
            if self.refine is not None:
                frame = self.refine(frame, base)
            return frame if self.training else snap_still(frame, base, cfg.still_levels)
        n, _, h, w = raw.shape
        p, k = cfg.patch, cfg.num_classes
        # channels (i, j, class) of the grid cell (y, x) -> class logits at (y p + i, x p + j)
        logits = raw.reshape(n, p, p, k, h, w).permute(0, 3, 4, 1, 5, 2)  # (B, K, h, i, w, j)
        logits = logits.reshape(n, k, h * p, w * p)  # (B, K, H, W)
        if cfg.output == "residual":  # base: the last observed mask (B, H, W)
            logits = logits + self.copy_bonus * self.one_hot(base)
        return logits

    def one_hot(self, ids: Tensor) -> Tensor:
        """(..., H, W) class ids -> (..., K, H, W) in the parameters' dtype."""
        hot = F.one_hot(ids.long(), self.cfg.num_classes).movedim(-1, -3)
        return hot.to(self.embed.weight.dtype)

    def embedding(self, probs: Tensor) -> Tensor:
        """Class probabilities (..., K, H, W) -> their expected embedding (..., E, H, W)."""
        return (probs.movedim(-3, -1) @ self.embed.weight).movedim(-1, -3)

    def run_cell(
        self, cell: nn.Module, seq: Tensor | None, state: tuple[Tensor, ...], steps: int
    ) -> tuple[Tensor, tuple[Tensor, ...]]:
        """Step a cell over seq (T, B, C, h, w) (None: zeros of the cell's input channels)."""
        outs = []
        for t in range(steps):
            x = (
                state[0].new_zeros(state[0].shape[0], cell.cin, *state[0].shape[2:])
                if seq is None
                else seq[t]
            )
            state = cell(x, state)
            outs.append(state[0])
        return torch.stack(outs), state

    def forward(
        self, inputs: Tensor, targets: Tensor | None = None, teacher_prob: float = 0.0
    ) -> Tensor:
        cfg = self.cfg
        last = inputs[:, -1]  # (B, C, H, W); masks: (B, H, W) class ids
        if cfg.masks:
            inputs = self.embedding(self.one_hot(inputs))  # (B, T_in, E, H, W)
            if targets is not None:
                targets = self.embedding(self.one_hot(targets))  # (B, T_out, E, H, W)
        x = self.to_grid(inputs).transpose(0, 1)  # (T, B, C, h, w) as the original
        t_in, b = x.shape[:2]
        states = []
        for conv, cell in zip(self.stage_convs, self.enc_cells, strict=True):
            y = self.act(conv(x.flatten(0, 1))).unflatten(0, (t_in, b))
            x, state = self.run_cell(cell, y, cell.zero_state(y[0]), t_in)
            states.append(state)
        if cfg.autoregressive:
            return self.forward_autoregressive(states, last, targets, teacher_prob)
        seq = None
        t_out = cfg.frames_out
        for i in reversed(range(cfg.stages)):
            seq, _ = self.run_cell(self.dec_cells[i], seq, states[i], t_out)
            if i > 0:
                seq = self.act(self.ups[i - 1](seq.flatten(0, 1))).unflatten(0, (t_out, b))
        outs = [self.to_frame(self.head(seq[t]), last) for t in range(t_out)]
        return torch.stack(outs, 1)

    def forward_autoregressive(
        self, enc: list, last: Tensor, targets: Tensor | None, teacher_prob: float
    ) -> Tensor:
        dec = list(enc)
        prev, preds = last, []
        for k in range(self.cfg.frames_out):
            if k > 0:
                fed = preds[-1]
                if self.cfg.masks:  # logits -> expected embedding of the predicted classes
                    fed = self.embedding(fed.softmax(1))
                prev = scheduled_input(fed, targets, k, teacher_prob)
                y = self.to_grid(prev)
                for i, (conv, cell) in enumerate(
                    zip(self.stage_convs, self.enc_cells, strict=True)
                ):
                    enc[i] = cell(self.act(conv(y)), enc[i])
                    y = enc[i][0]
            y = enc[-1][0]
            for i in reversed(range(self.cfg.stages)):
                dec[i] = self.dec_cells[i](y, dec[i])
                y = dec[i][0]
                if i > 0:
                    y = self.act(self.ups[i - 1](y))
            preds.append(self.to_frame(self.head(y), last if self.cfg.masks else prev))
        return torch.stack(preds, 1)


def naive_state_dict(model: EncoderForecaster) -> dict[str, Tensor]:
    """The model's weights in the naive layout: W = [W_x | W_h] along input channels."""
    out = {}
    for key, value in model.state_dict().items():
        if ".x_conv." in key or ".h_conv." in key or ".h_cand." in key:
            continue
        out[key] = value
    for group in ("enc_cells", "dec_cells"):
        for i, cell in enumerate(getattr(model, group)):
            p = f"{group}.{i}."
            f, wx, bx = cell.hidden, cell.x_conv.weight, cell.x_conv.bias
            g = cell.gates * f
            out[p + "conv_gates.weight"] = torch.cat([wx[:g], cell.h_conv.weight], 1)
            out[p + "conv_gates.bias"] = bx[:g]
            if hasattr(cell, "h_cand"):
                out[p + "conv_cand.weight"] = torch.cat([wx[g:], cell.h_cand.weight], 1)
                out[p + "conv_cand.bias"] = bx[g:]
    return {k: v.detach().clone() for k, v in out.items()}


def from_model(model: EncoderForecaster) -> NaiveEncoderForecaster:
    """A naive reference holding exactly the weights of `model`."""
    first = next(model.parameters())
    ref = NaiveEncoderForecaster(model.cfg).to(device=first.device, dtype=first.dtype)
    ref.load_state_dict(naive_state_dict(model))
    return ref
