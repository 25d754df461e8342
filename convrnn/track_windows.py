"""Training windows for the object-track forecaster: every moment of a video is a sample.

A training video of T frames holds more than the one forecast from its frames_in-th frame:
seen from any earlier or later frame, its objects' tracks are another sample of where such
objects go next. `training_windows` lays out the Tracks (`convrnn.tracks`) of each window of
a batch of videos and of their mirror images, moving the per-class statistics in time rather
than the masks, so the masks are read once. Used by `train --task tracks` (its table of
tracks) and by `fit-contacts`' fine-tune.

Pure torch, no I/O (a models-floor module).
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor

from .config import ModelConfig
from .track_features import MaskStats, mask_stats, mirrored
from .track_reads import Tracks, tracks_of


def concat_tracks(parts: list[Tracks]) -> Tracks:
    """One Tracks of tables (N_i, ...), in order (their fields joined along the first dim)."""
    return Tracks(*(torch.cat([getattr(p, f) for p in parts]) for f in Tracks._fields))


def window_shifts(cfg: ModelConfig) -> range:
    """How far training windows move the last input frame back (positive) or forward
    (negative) from frames_in: back to the first frame, whose track has no past yet, and
    forward while half the horizon is left. On generated videos (1,000 training videos, true
    masks, 6,000 steps) these windows lifted frame-22 Jaccard from 0.438 to 0.467: every
    moment of a video is a sample of where its objects go next."""
    return range(-(cfg.frames_out // 2), cfg.frames_in)


def shifted(series: Tensor, shift: int) -> Tensor:
    """Per-frame values (B, T, ...) moved `shift` frames later in time (earlier if negative),
    zeros where nothing was: a zero pixel count reads as an object not seen there."""
    if shift == 0:
        return series
    zeros = torch.zeros_like(series[:, : abs(shift)])
    if shift > 0:
        return torch.cat([zeros, series[:, :-shift]], 1)
    return torch.cat([series[:, -shift:], zeros], 1)


def training_windows(masks: Tensor, cfg: ModelConfig) -> Iterator[Tracks]:
    """Tracks (B, K, ...) of class ids (B, T, H, W) of whole videos, seen from every training
    window (`window_shifts`) of the videos and of their mirror images, one window at a time."""
    h, w = masks.shape[-2:]
    stats = mask_stats(masks, cfg)
    for s in (stats, mirrored(stats, w)):  # and the videos mirrored left-right
        for shift in window_shifts(cfg):  # every moment, not only frame 11
            moved = MaskStats(*(None if f is None else shifted(f, shift) for f in s))
            yield tracks_of(moved, h, w, cfg)
