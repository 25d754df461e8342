"""The autoregressive forecaster (`cfg.autoregressive`): each prediction goes back through the
encoder, and the encoder's top output feeds the top forecaster RNN; with probability
`teacher_prob` the true frame goes back instead (scheduled sampling).

Masks: a prediction fed back is its expected embedding, softmax(logits) times the embedding
table: differentiable, so training reaches through the feedback as it does for frames, and it
keeps the model's uncertainty (an argmax would commit to one class and cut the gradient).
Scheduled sampling picks the true mask's embedding instead, with the frames' random draws.

The loops run an `EncoderForecaster` (forecaster.py, which calls them) one step at a time; they
read it through `SteppingForecaster`, the part of it they use, so that this module does not
import forecaster.py.
"""

from __future__ import annotations

from typing import Protocol

import torch
from torch import Tensor, nn

from .blocks import scheduled_input
from .cells import State
from .config import ModelConfig
from .masks import head_to_logits, logits_to_grid, present_planes
from .motion import accumulate, warp_from


class SteppingForecaster(Protocol):
    """What the feedback loops use of an `EncoderForecaster` (forecaster.py)."""

    cfg: ModelConfig
    embed: nn.Embedding | None  # masks: the class embedding
    copy_bonus: Tensor | None  # masks, residual: the last mask's class bonus
    head: nn.Module
    flow_head: nn.Module | None  # motion: the displacement head

    def in_layout(self, grid: Tensor) -> Tensor: ...

    def to_grid(self, frames: Tensor) -> Tensor: ...

    def to_frame(self, raw: Tensor, base: Tensor | tuple[Tensor, Tensor]) -> Tensor: ...

    def encode_step(self, frame: Tensor, states: list[State]) -> list[State]: ...

    def forecast_step(self, top: Tensor, states: list[State]) -> tuple[Tensor, list[State]]: ...


def forecast_autoregressive(
    model: SteppingForecaster,
    enc_states: list[State],
    last: Tensor,
    targets: Tensor | None,
    teacher_prob: float,
    motion: list,
) -> Tensor:
    """Each prediction (or, with probability teacher_prob, the true frame) goes back
    through the encoder and its top output feeds the top forecaster RNN."""
    dec_states = list(enc_states)
    prev = last  # (B, C, H, W): the frame the current step starts from
    total = None  # motion: accumulated displacement into the last observed frame
    preds = []
    for k in range(model.cfg.frames_out):
        if k > 0:
            prev = scheduled_input(preds[-1], targets, k, teacher_prob)
            enc_states = model.encode_step(model.to_grid(prev), enc_states)
        y, dec_states = model.forecast_step(enc_states[-1][0], dec_states)
        base = prev
        if model.flow_head is not None:  # the last observed frame, moved: sampled once
            total = accumulate(model.flow_head(y), total)
            motion.append(total)
            base = warp_from(last, total)
        preds.append(model.to_frame(model.head(y), base))
    return torch.stack(preds, 1)  # (B, T_out, C, H, W)


def forecast_masks_autoregressive(
    model: SteppingForecaster,
    enc_states: list[State],
    last: Tensor,
    targets: Tensor | None,
    teacher_prob: float,
    motion: list,
) -> Tensor:
    """`forecast_autoregressive` for masks: each step's logits go back through the encoder
    as their expected embedding, or with probability teacher_prob the true mask's embedding.
    last: the last observed mask (B, H, W), or a base per step (B, T_out, H, W); targets:
    true masks as grids (B, T_out, ...)."""
    table, p = model.embed.weight, model.cfg.patch
    dec_states = list(enc_states)
    moving = model.flow_head is not None
    classes, planes = present_planes(last, model.cfg.num_classes) if moving else (None, None)
    total, base = None, last  # motion: the accumulated displacement, the moved last mask
    preds = []  # (B, H, W, K) each, class last
    for k in range(model.cfg.frames_out):
        if k > 0:
            fed = scheduled_input(logits_to_grid(preds[-1], table, p), targets, k, teacher_prob)
            enc_states = model.encode_step(model.in_layout(fed), enc_states)
        y, dec_states = model.forecast_step(enc_states[-1][0], dec_states)
        if moving:
            total = accumulate(model.flow_head(y), total)
            motion.append(total)
            base = (classes, warp_from(planes, total))  # (B, M), (B, M, H, W)
        if not moving and last.dim() == 4:  # extrapolated: this step's base
            base = last[:, k]
        preds.append(head_to_logits(model.head(y), base, model.copy_bonus, p))
    return torch.stack(preds, 1).movedim(-1, 2)  # (B, T_out, K, H, W), class last in memory
