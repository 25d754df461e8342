"""The encoder-forecaster (Shi et al. 2015; the original course network), built from a ModelConfig.

Encoder stage i: conv (maybe strided) -> LeakyReLU -> RNN. Forecaster, from the top stage down:
RNN (starting from the encoder's final state of that stage) -> transposed conv -> LeakyReLU,
then an output head of convolutions. The top forecaster RNN gets zeros as input (the original),
or, when `cfg.autoregressive`, the encoding of the previous frame: the model's own prediction,
or the true frame with probability `teacher_prob` (scheduled sampling; the feedback loops are
in autoregressive.py).

Masks (`cfg.forecast == "masks"`, edges in masks.py): class ids (B, T, H, W) go through a
learned embedding of the classes (E channels), the same network runs on those, and the head
gives one logit per class: (B, T_out, K, H, W). A prediction fed back is its expected
embedding (autoregressive.py). A residual mask model adds a learned bonus (initially
log(9 (K-1)): probability 0.9) to the logit of each pixel's class in the last observed mask,
at every step: with a zero head it starts as "copy the last mask", the strong baseline. The
base is always the last observed mask, not the fed-back prediction: a softmax fed back would
fade the bonus step by step, and a teacher-forced true mask would train the head to lean on a
mask it never has at prediction time.

Speed at identical math (see cells.py): input-to-state convolutions run for all time steps in
one call wherever the inputs are known in advance, zero inputs and zero states skip their
convolutions, and the convolutions run in the memory layout that is faster on the machine
(`prefers_channels_last`): channels_last on CUDA and AVX-512 CPUs, NCHW on AVX2 CPUs.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .autoregressive import forecast_autoregressive, forecast_masks_autoregressive
from .blocks import (
    build_head,
    build_stage_convs,
    build_ups,
    head_to_frame,
    machine_prefers_channels_last,
    space_to_depth,
)
from .cells import ConvRNNCell, State, make_cell
from .config import ModelConfig
from .extrapolate import extrapolate_masks
from .masks import check_masks, copy_bonus_init, head_to_logits, ids_to_grid, present_planes
from .motion import accumulate, build_flow_head, warp_from
from .refine import build_refine, snap_still
from .tracks import TrackForecaster


class EncoderForecaster(nn.Module):
    """(B, T_in, C, H, W) frames in [0, 1] -> (B, T_out, C, H, W) predicted frames in [0, 1];
    masks: (B, T_in, H, W) class ids -> (B, T_out, K, H, W) class logits.

    channels_last: the convolutions' memory layout (None: the faster one on this machine,
    `machine_prefers_channels_last`); the math is the same either way."""

    def __init__(self, cfg: ModelConfig, channels_last: bool | None = None) -> None:
        super().__init__()
        self.cfg = cfg
        if channels_last is None:
            channels_last = machine_prefers_channels_last()
        self.channels_last = channels_last
        n = cfg.stages
        # Masks only (frames register neither, so their parameters and state_dict are as before).
        self.embed = nn.Embedding(cfg.num_classes, cfg.embed_channels) if cfg.masks else None
        self.copy_bonus = (
            nn.Parameter(torch.tensor(copy_bonus_init(cfg.num_classes)))
            if cfg.masks and cfg.output == "residual"
            else None
        )
        self.stage_convs = build_stage_convs(cfg)
        self.enc_cells = nn.ModuleList(self._cell(cfg.stage_channels[i], i) for i in range(n))
        # The top forecaster RNN reads the top encoder output (zeros unless autoregressive).
        dec_in = cfg.up_channels + (cfg.hidden[-1],)
        self.dec_cells = nn.ModuleList(self._cell(dec_in[i], i) for i in range(n))
        self.ups = build_ups(cfg)
        self.head = build_head(cfg, cfg.hidden[0])
        self.flow_head = build_flow_head(cfg.hidden[0]) if cfg.motion else None
        self.refine = build_refine(cfg)
        self.act = nn.LeakyReLU(cfg.leak)
        # channels_last conv weights make the (mkldnn) convolutions run channels_last: faster on
        # AVX-512 CPUs, slower on AVX2 ones (prefers_channels_last); the math is unchanged.
        if channels_last:
            self.to(memory_format=torch.channels_last)
        if cfg.zero_init_head:
            nn.init.zeros_(self.head[-1].weight)
            nn.init.zeros_(self.head[-1].bias)

    def _cell(self, in_ch: int, i: int) -> ConvRNNCell:
        c = self.cfg
        return make_cell(c.cell, in_ch, c.hidden[i], c.rnn_kernels[i], c.norm, c.norm_group_size)

    # -- edges: frames <-> recurrent grid --------------------------------------------------

    def in_layout(self, grid: Tensor) -> Tensor:
        """A grid (..., C, h, w) in the convolutions' layout. The edges write channels_last,
        and a convolution runs channels_last if its input is, so NCHW needs one copy here."""
        return grid if self.channels_last else grid.contiguous()

    def to_grid(self, frames: Tensor) -> Tensor:
        return self.in_layout(space_to_depth(frames, self.cfg.patch))

    def to_frame(self, raw: Tensor, base: Tensor | tuple[Tensor, Tensor]) -> Tensor:
        """Head output -> a predicted frame; masks: -> logits (N, K, H, W), `base` being the
        last observed mask (N, H, W), or with motion its moved planes (`present_planes`)."""
        if self.embed is None:
            frame = head_to_frame(raw, base, self.cfg)
            if self.refine is not None:
                frame = self.refine(frame, base)
            return frame if self.training else snap_still(frame, base, self.cfg.still_levels)
        return head_to_logits(raw, base, self.copy_bonus, self.cfg.patch).movedim(-1, 1)

    def masks_to_grid(self, ids: Tensor) -> Tensor:
        """Class ids (B, T, H, W) -> their embeddings as the grid (B, T, E*p*p, h, w)."""
        grid = ids_to_grid(ids.long().flatten(0, 1), self.embed.weight, self.cfg.patch)
        return self.in_layout(grid.unflatten(0, ids.shape[:2]))

    def check_inputs(self, inputs: Tensor, targets: Tensor | None, teacher_prob: float) -> None:
        cfg = self.cfg
        if cfg.masks:
            check_masks("inputs", inputs, None, cfg.num_classes)
        elif inputs.dim() != 5 or inputs.shape[2] != cfg.image_channels:
            raise ValueError(
                f"inputs must be (B, T, {cfg.image_channels}, H, W), got {tuple(inputs.shape)}"
            )
        elif not inputs.is_floating_point():
            raise ValueError(
                f"inputs must be frames in [0, 1] of a float dtype, got {inputs.dtype}"
            )
        step = cfg.patch * cfg.downsampling
        if inputs.shape[-2] % step or inputs.shape[-1] % step:
            raise ValueError(
                f"frame size {tuple(inputs.shape[-2:])} must divide by patch x strides = {step}"
            )
        want = (inputs.shape[0], cfg.frames_out, *inputs.shape[2:])
        if cfg.masks and targets is not None:
            check_masks("targets", targets, want, cfg.num_classes)
        elif targets is not None and tuple(targets.shape) != want:
            raise ValueError(f"targets must be {want}, got {tuple(targets.shape)}")
        if cfg.autoregressive and teacher_prob > 0 and targets is None:
            raise ValueError("teacher_prob > 0 needs targets")

    # -- encoder ---------------------------------------------------------------------------

    def encode(self, x: Tensor) -> list[State]:
        """Grid frames (B, T, C, h, w) -> final state of every encoder stage."""
        b, t = x.shape[:2]
        states = []
        seq = x
        for i, (conv, cell) in enumerate(zip(self.stage_convs, self.enc_cells, strict=True)):
            y = self.act(conv(seq.flatten(0, 1)))  # (B*T, C_i, h_i, w_i), all steps at once
            xp = cell.project(y).unflatten(0, (b, t))  # (B, T, G*F_i, h_i, w_i)
            state: State | None = None
            outs = []
            for xp_k in xp.unbind(1):  # unbind: one backward for all steps, not one per slice
                state = cell(xp_k, state)
                outs.append(state[0])
            if i < self.cfg.stages - 1:  # the top stage's outputs feed nothing but its state
                seq = torch.stack(outs, 1)  # (B, T, F_i, h_i, w_i)
            states.append(state)
        return states

    def encode_step(self, frame: Tensor, states: list[State]) -> list[State]:
        """One more grid frame (B, C, h, w) through the encoder, continuing `states`."""
        new = []
        y = frame
        for conv, cell, state in zip(self.stage_convs, self.enc_cells, states, strict=True):
            state = cell(cell.project(self.act(conv(y))), state)
            new.append(state)
            y = state[0]
        return new

    # -- forecaster ------------------------------------------------------------------------

    def forecast_zeros(self, states: list[State], base: Tensor, motion: list) -> Tensor:
        """The original forecaster: zero input on top, stage by stage. -> (B, T_out, C, H, W).
        base: what a residual output builds on, the last frame (B, C, H, W) or mask (B, H, W);
        motion: a list the accumulated displacements (B, 2, h, w) of a motion head go to."""
        t_out = self.cfg.frames_out
        b = base.shape[0]
        seq: Tensor | None = None  # input sequence of the current stage, None = zeros
        for i in reversed(range(self.cfg.stages)):
            cell, state = self.dec_cells[i], states[i]
            if seq is None:
                xps: list[Tensor | None] = [None] * t_out
            else:
                xps = list(cell.project(seq.flatten(0, 1)).unflatten(0, (b, t_out)).unbind(1))
            outs = []
            for xp_k in xps:
                state = cell(xp_k, state)
                outs.append(state[0])
            seq = torch.stack(outs, 1)  # (B, T_out, F_i, h_i, w_i)
            if i > 0:
                seq = self.act(self.ups[i - 1](seq.flatten(0, 1))).unflatten(0, (b, t_out))
        raw = self.head(seq.flatten(0, 1))  # (B*T_out, C*p*p, h_0, w_0)
        if self.flow_head is not None and self.embed is None:
            base = self.moved_bases(seq, base, motion)  # (B*T_out, C, H, W)
            return self.to_frame(raw, base).unflatten(0, (b, t_out))
        if self.flow_head is not None:  # masks: the planes of the classes present, moved
            classes, planes = present_planes(base, self.cfg.num_classes)  # (B, M), (B, M, H, W)
            moved = self.moved_bases(seq, planes, motion)  # (B*T_out, M, H, W)
            base = (classes.repeat_interleave(t_out, 0), moved)
            return self.to_frame(raw, base).unflatten(0, (b, t_out))
        if base.dim() == 4 and self.embed is not None:  # masks: a base per step already
            return self.to_frame(raw, base.flatten(0, 1)).unflatten(0, (b, t_out))
        base = base.unsqueeze(1).expand(-1, t_out, *base.shape[1:]).flatten(0, 1)  # (B*T_out, ...)
        return self.to_frame(raw, base).unflatten(0, (b, t_out))

    def moved_bases(self, seq: Tensor, last: Tensor, motion: list) -> Tensor:
        """The anchor (B, C, H, W) moved along the accumulated displacement of each step of
        the bottom outputs seq (B, T_out, F_0, h, w) -> (B*T_out, C, H, W); the displacements
        go to `motion`."""
        steps = self.flow_head(seq.flatten(0, 1)).unflatten(0, seq.shape[:2])  # (B, T, 2, h, w)
        total, bases = None, []
        for step in steps.unbind(1):
            total = accumulate(step, total)
            motion.append(total)
            bases.append(warp_from(last, total))
        return torch.stack(bases, 1).flatten(0, 1)

    def forecast_step(self, top: Tensor, states: list[State]) -> tuple[Tensor, list[State]]:
        """One forecaster step from the top input (B, F_top, h, w) -> the bottom stage's
        output (B, F_0, h_0, w_0), which the heads read, and the new states."""
        states = list(states)
        y = top
        for i in reversed(range(self.cfg.stages)):
            cell = self.dec_cells[i]
            states[i] = cell(cell.project(y), states[i])
            y = states[i][0]
            if i > 0:
                y = self.act(self.ups[i - 1](y))
        return y, states

    def forward(
        self,
        inputs: Tensor,
        targets: Tensor | None = None,
        teacher_prob: float = 0.0,
        return_motion: bool = False,
    ) -> Tensor | tuple[Tensor, Tensor | None]:
        """inputs (B, T_in, C, H, W) in [0, 1] -> predictions (B, T_out, C, H, W) in [0, 1].
        Masks: class ids (B, T_in, H, W) of an integer dtype -> logits (B, T_out, K, H, W) in
        the parameters' dtype (float32), class last in memory; targets are class ids
        (B, T_out, H, W). A ValueError names what is wrong with inputs or targets.

        targets and teacher_prob matter only for an autoregressive model (scheduled sampling).
        return_motion: also return the motion head's accumulated displacement of every
        predicted frame, (B, T_out, 2, h, w) in grid cells (x then y; None without motion).
        """
        self.check_inputs(inputs, targets, teacher_prob)
        motion: list[Tensor] = []
        if self.embed is not None:
            out = self.forward_masks(inputs, targets, teacher_prob, motion)
        else:
            states = self.encode(self.to_grid(inputs))
            last = inputs[:, -1]  # (B, C, H, W)
            if self.cfg.autoregressive:
                out = forecast_autoregressive(self, states, last, targets, teacher_prob, motion)
            else:
                out = self.forecast_zeros(states, last, motion)
        if not return_motion:
            return out
        return out, (torch.stack(motion, 1) if motion else None)  # one (B, 2, h, w) per step

    def forward_masks(
        self, ids: Tensor, targets: Tensor | None, teacher_prob: float, motion: list
    ) -> Tensor:
        """Checked class ids (B, T_in, H, W) -> logits (B, T_out, K, H, W), laid out class last
        in memory: `logits.movedim(2, -1)` is a contiguous (B, T_out, H, W, K) view."""
        states = self.encode(self.masks_to_grid(ids))
        last = ids[:, -1].long()  # (B, H, W): the base of a residual's every step
        if self.cfg.mask_base == "extrapolate":  # (B, T_out, H, W): a base per step
            last = extrapolate_masks(ids, self.cfg.frames_out).to(ids.device).long()
        if not self.cfg.autoregressive:
            return self.forecast_zeros(states, last, motion)
        if targets is not None:
            targets = self.masks_to_grid(targets)  # (B, T_out, E*p*p, h, w)
        return forecast_masks_autoregressive(self, states, last, targets, teacher_prob, motion)


def build_model(cfg: ModelConfig, channels_last: bool | None = None) -> nn.Module:
    """The network a config describes (parameters on the CPU, float32); channels_last: the
    convolutions' layout (None: the faster one on this machine)."""
    if cfg.forecast == "tracks":
        return TrackForecaster(cfg)
    return EncoderForecaster(cfg, channels_last)
