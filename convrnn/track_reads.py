"""An object track: what the track forecaster reads of each object of the input masks.

`tracks_of` lays out, per (video, class) slot, the object's track over the input masks relative
to where it is in the last one, where it was seen, its place, size, class and neighbours (and
with `track_speeds` each input step's speed) as the net's features, beside the extrapolation
guess and, in training, the true displacements. The `read_*` functions read back from those
features what the floor stage plays from, and `drawn_frames` which forecast frames draw each
object. The net that reads them is `convrnn.tracks.TrackForecaster`.

Pure torch, no I/O (a models-floor module).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from .config import ModelConfig
from .extrapolate import DECAY
from .track_features import (
    MaskStats,
    mask_stats,
    mirrored,
    neighbours,
    places_whole,
    relative,
    speeds,
    unit_px,
    whole_centre,
)


class Tracks(NamedTuple):
    """What the net reads and what it is scored against, per (video, class) slot."""

    features: Tensor  # (B, K, F) float32
    present: Tensor  # (B, K) bool: the object shows in the last input mask
    # (B, K, 2) where it is in the last input mask, px as (x, y): its centroid, or where the
    # floor stage places it by its whole footprint (`Floor.whole_footprint`, `whole_centre`)
    centre: Tensor
    guess: Tensor  # (B, K, T_out, 2) the extrapolation guess, px as (x, y)
    target: Tensor | None  # (B, K, T_out, 2) true displacement from the last input mask, px
    weight: Tensor | None  # (B, K, T_out) 1 where the object shows in the target frame


def object_tracks(masks: Tensor, cfg: ModelConfig) -> Tracks:
    """Class ids (B, T, H, W), T = frames_in (prediction) or frames_in + frames_out (training:
    targets from the rest) -> Tracks of every class slot (absent objects have present False)."""
    return tracks_of(mask_stats(masks, cfg), *masks.shape[-2:], cfg)


def tracks_and_mirror(masks: Tensor, cfg: ModelConfig) -> tuple[Tracks, Tracks]:
    """`object_tracks` of class ids (B, T, H, W) and of their mirror image (flipped left-right),
    the mirror's from the same statistics (`mirrored`): what `forecast` reads."""
    return both_tracks(mask_stats(masks, cfg), *masks.shape[-2:], cfg)


def both_tracks(stats: MaskStats, h: int, w: int, cfg: ModelConfig) -> tuple[Tracks, Tracks]:
    """`tracks_and_mirror` from the statistics of masks of h x w pixels (`mask_stats`), for a
    caller that needs them too."""
    return tracks_of(stats, h, w, cfg), tracks_of(mirrored(stats, w), h, w, cfg)


def tracks_of(stats: MaskStats, h: int, w: int, cfg: ModelConfig) -> Tracks:
    """Tracks from the per-class statistics of masks of h x w pixels (`mask_stats`): the
    track, velocity and targets from the positions `relative` to the last input frame (the
    features from the seen parts' centroids, as the net was trained)."""
    centre, count = stats.centre, stats.count
    b, t = count.shape[:2]
    fi, fo, k = cfg.frames_in, cfg.frames_out, cfg.num_classes
    seen = count[:, :fi] > 0  # (B, T_in, K)
    unit = unit_px(h, w)
    last = centre[:, fi - 1]  # (B, K, 2)
    rel = relative(stats, fi - 1)  # (B, T, K, 2) px
    track = rel[:, :fi] * seen[..., None] / unit  # (B, T_in, K, 2)
    velocity = -rel[:, fi - 2] * seen[:, fi - 2, :, None]  # (B, K, 2) px/frame
    size = count[:, fi - 1].sqrt() / unit  # (B, K)
    present = seen[:, -1].clone()
    present[:, 0] = False  # the background is not an object
    where = last / torch.tensor([w, h], dtype=last.dtype, device=last.device)
    onehot = torch.eye(k, dtype=last.dtype, device=last.device).expand(b, k, k)
    near = neighbours(last, velocity, size, present, cfg, unit)
    parts = [track.permute(0, 2, 1, 3).flatten(2), seen.permute(0, 2, 1).float(), where,
             size[..., None], onehot, near]  # fmt: skip
    if cfg.track_speeds:
        parts.append(speeds(track, seen))
    features = torch.cat(parts, -1)  # (B, K, F)
    gain = (DECAY ** torch.arange(1, fo + 1, dtype=last.dtype, device=last.device)).cumsum(0)
    guess = gain.view(1, 1, fo, 1) * velocity[:, :, None]  # (B, K, T_out, 2)
    target = weight = None
    if t >= fi + fo:
        target = rel[:, fi : fi + fo].transpose(1, 2)  # (B, K, T_out, 2)
        weight = (count[:, fi : fi + fo] > 0).transpose(1, 2) & present[..., None]
        weight = weight.float()
    if places_whole(cfg):  # `mask_stats` read where each object is seen whole
        last = whole_centre(stats, fi - 1)
    return Tracks(features, present, last, guess, target, weight)


def read_velocity(tracks: Tracks) -> Tensor:
    """(B, K, 2) px as (x, y): each object's step into the last input frame (0 where it was
    not seen in the frame before), undone from the extrapolation guess's first step."""
    return tracks.guess[:, :, 0] / DECAY


def read_before(tracks: Tracks, cfg: ModelConfig, height: int, width: int) -> tuple[Tensor, Tensor]:
    """(each object's steps into the last input frame but one and into the one before that
    (B, K, 2, 2) px as (x, y), whether it was seen in the last three and in the last four
    input frames (B, K, 2)): what the floor stage replays a hit in the last step from
    (`play_on_floor`'s `before`), read back from the track `tracks_of` lays out first in the
    features (positions relative to the last frame, in feature units). A step the input is
    too short for is zero and not seen."""
    fi = cfg.frames_in
    b, k = tracks.present.shape
    feats = tracks.features.to(torch.float64)
    where = feats[..., : 2 * fi].unflatten(-1, (fi, 2)) * unit_px(height, width)  # (B, K, T_in, 2)
    seen = _seen(tracks, fi)
    steps = feats.new_zeros(b, k, 2, 2)
    whole = torch.zeros(b, k, 2, dtype=torch.bool, device=feats.device)
    for j in range(min(2, fi - 2)):  # the step into frame fi - 1 - j needs fi - 3 - j on
        steps[:, :, j] = where[:, :, -2 - j] - where[:, :, -3 - j]
        whole[:, :, j] = seen[..., -3 - j :].all(-1) & tracks.present
    return steps, whole  # no floor


def read_fresh(tracks: Tracks, cfg: ModelConfig) -> Tensor:
    """(B, K) bool: the objects first seen in the last input frame (no step into it to read:
    what the floor stage aims, `play_on_floor`'s `fresh`). A track forecaster has at least two
    input frames (`ModelConfig.problems`)."""
    return tracks.present & ~_seen(tracks, cfg.frames_in)[..., -2]


def drawn_frames(tracks: Tracks, cfg: ModelConfig) -> Tensor:
    """(B, K, T_out) bool: the forecast frames each object is drawn in, all but those after
    the first `track_new_frames` for an object first seen in the last input frame."""
    shown = tracks.present.new_ones(*tracks.present.shape, cfg.frames_out)
    if cfg.track_new_frames:
        shown[..., cfg.track_new_frames :] = ~read_fresh(tracks, cfg)[..., None]
    return shown


def _seen(tracks: Tracks, frames_in: int) -> Tensor:
    """(B, K, T_in) bool: whether each object was seen in each input frame, read back from the
    flags `tracks_of` lays out after the track in the features."""
    return tracks.features[..., 2 * frames_in : 3 * frames_in] > 0.5


def track_loss(pred: Tensor, tracks: Tracks, unit: float) -> Tensor:
    """Smooth L1 (nearly L1: the median error, which keeps still objects still) of predicted
    displacements (B, K, T_out, 2) against the true ones, in feature units, over the objects
    seen in each target frame."""
    assert tracks.target is not None and tracks.weight is not None
    error = F.smooth_l1_loss(pred / unit, tracks.target / unit, reduction="none", beta=0.01)
    return (error.sum(-1) * tracks.weight).sum() / tracks.weight.sum().clamp(min=1.0)
