"""A learned object-track forecaster: where each object of the last input mask will be.

Moving frame 11's objects to where they truly are in frame 22 would score 0.80 on generated
val (true input masks; benchmarks/extrapolate.py), against 0.43 for the hand-written extrapolation
(`convrnn.extrapolate`) and 0.31 for copying: nearly all of what a mask forecast can gain is
in each object's displacement. A pixel network must discover objects and their motion from
cross-entropy; this one is given them. For every object of the last input mask (one class id
per object, as in `convrnn.extrapolate`) it reads

- its track over the input masks, relative to where it is in the last one, and where it was
  seen (an object hidden in a frame has no centroid there): the centroid's steps, and with
  `track_shapes` (the preset's) the steps read by shape where the object is cut by the
  border, hidden or uncovered (`convrnn.shape_steps`), where its centroid lags,
- its position and size in the last mask and its class (shape and material set how it slides),
- its nearest neighbours' offsets, relative velocities and sizes (what it may hit),
- with `track_speeds` (the preset's), the speed of each input step (how hard it brakes),

and a small MLP predicts its displacement at every future step, as a correction of the
extrapolation guess (last-step velocity slowing by `DECAY`): zero-initialised, a new model is
that baseline. The forecast masks are the last mask's objects moved as wholes by the rounded
displacement, so class ids stay ids; the nearest object is drawn on top (`paint_shifted`).
It is trained on the displacements read from masks the same way (true ones, or a
segmenter's pseudo-labels of unlabeled videos), by `train/tasks/tracks.py` (`python cli.py
train --task tracks`).

Pure torch, no I/O (a models-floor module). Pixel units are scaled by the frame's longer side,
so one model reads any frame size it was trained for.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from .config import ModelConfig
from .contacts import Contacts, with_contacts
from .extrapolate import DECAY, class_centroids, paint_shifted
from .floor import Floor, depth_scale
from .floor_play import play_on_floor
from .objects import objects_moved
from .state_reader import StateReader
from .track_features import (
    MaskStats,
    feature_count,
    mask_stats,
    mirrored,
    neighbours,
    relative,
    speeds,
    unit_px,
)

DROPOUT = 0.2  # after each hidden layer, in training


class Tracks(NamedTuple):
    """What the net reads and what it is scored against, per (video, class) slot."""

    features: Tensor  # (B, K, F) float32
    present: Tensor  # (B, K) bool: the object shows in the last input mask
    centre: Tensor  # (B, K, 2) its centroid in the last input mask, px as (x, y)
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
    track, velocity and targets from the positions `relative` to the last input frame."""
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


class TrackForecaster(nn.Module):
    """Class ids (B, T_in, H, W) -> one-hot class scores (B, T_out, K, H, W) of the last input
    mask's objects moved along their predicted displacements; `displacements` gives those
    (B, K, T_out, 2) px for training."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        width = cfg.track_hidden
        # dropout: on the generated 1,000 training videos it kept the net from memorising
        # them (frame-22 Jaccard 0.446 against 0.442 without, 3,000 steps)
        self.net = nn.Sequential(
            nn.Linear(feature_count(cfg), width), nn.GELU(), nn.Dropout(DROPOUT),
            nn.Linear(width, width), nn.GELU(), nn.Dropout(DROPOUT),
            nn.Linear(width, cfg.frames_out * 2),
        )  # fmt: skip
        nn.init.zeros_(self.net[-1].weight)  # a new model is the extrapolation guess
        nn.init.zeros_(self.net[-1].bias)
        # the learned correction of short tracks' floor state (`fit-reader`), None without
        self.reader = StateReader(cfg.track_reader) if cfg.track_reader else None

    def displacements(self, tracks: Tracks, height: int, width: int) -> Tensor:
        """Predicted displacement (..., T_out, 2) px as (x, y) of objects (..., F): the
        extrapolation guess plus the net's correction."""
        step = self.net(tracks.features).unflatten(-1, (self.cfg.frames_out, 2))
        return tracks.guess + step * (unit_px(height, width) / 5.0)

    def free_paths(self, tracks: Tracks, flipped: Tracks | None, height: int, width: int) -> Tensor:
        """Displacements (B, K, T_out, 2) px as (x, y) of `tracks`' objects, the mean of the
        net's answer for the video and for its mirror image (`flipped`: the Tracks of the same
        masks flipped left-right, mirrored back here). The net was trained on both; the mean of
        its two answers forecast frame 22 better by 0.001-0.005 with hits (true input masks,
        200 unseen and 100 val generated videos; docs/benchmarks.md). None: the net's own."""
        if flipped is None:
            return self.displacements(tracks, height, width)
        mirror = self.displacements(flipped, height, width)
        mirror = torch.stack([-mirror[..., 0], mirror[..., 1]], -1)
        return (self.displacements(tracks, height, width) + mirror) / 2

    def forward(self, ids: Tensor, targets=None, teacher_prob: float = 0.0, return_motion=False):
        """The forecast masks as one-hot scores (argmax gives the ids); targets and
        teacher_prob are accepted for the forecasters' signature and not used. Given Tracks
        (training), their predicted displacements (`displacements`)."""
        cfg = self.cfg
        if isinstance(ids, Tracks):
            return self.displacements(ids, cfg.height, cfg.width)
        moved, _ = self.forecast(ids)
        p = next(self.parameters())
        scores = F.one_hot(moved.to(ids.device), cfg.num_classes).to(p.dtype)  # (B, T, H, W, K)
        scores = scores.movedim(-1, 2)  # (B, T_out, K, H, W), class last in memory
        return (scores, None) if return_motion else scores

    @torch.no_grad()
    def forecast(self, ids: Tensor) -> tuple[Tensor, Tensor]:
        """(the forecast class ids (B, T_out, H, W) int64, the whole-pixel displacements
        (B, K, T_out, 2) that moved each object there, as (row, column)), both on the CPU, from
        class ids (B, T, H, W) whose first frames_in are the input."""
        seen = ids[:, : self.cfg.frames_in].long()
        tracks, flipped = tracks_and_mirror(seen, self.cfg)
        shift = self.shifts(tracks, *ids.shape[-2:], flipped)
        return self.moved(tracks, seen[:, -1], shift), shift

    @torch.no_grad()
    def shifts(
        self, tracks: Tracks, height: int, width: int, flipped: Tracks | None = None
    ) -> Tensor:
        """Whole-pixel displacements (B, K, T_out, 2) int64 on the CPU as (row, column): what
        `moved` moves each object of `tracks` by (with `flipped`, the Tracks of the mirror
        image, the mean of both answers: `free_paths`); with `track_contacts`, played out with
        the hits between each video's objects (`convrnn.contacts`), or with `track_floor` on
        the floor (`convrnn.floor_play`, its short tracks corrected by the `reader` where the
        checkpoint has one)."""
        if self.cfg.track_floor:
            shift = play_on_floor(*self.floor_inputs(tracks, height, width, flipped), self.reader)
        elif self.cfg.track_contacts:
            shift = self.free_paths(tracks, flipped, height, width).float().cpu()
            contacts = Contacts(*self.cfg.track_contacts)
            shift = with_contacts(shift, tracks.centre.cpu(), tracks.present.cpu(), contacts)
        else:
            shift = self.free_paths(tracks, flipped, height, width).float().cpu()
        return shift.flip(-1).round().long()

    def floor_inputs(
        self, tracks: Tracks, height: int, width: int, flipped: Tracks | None = None
    ) -> tuple:
        """The arguments of `convrnn.floor_play.play_on_floor` for `tracks`, all on the CPU
        (the net's paths, what is read of each object, the floor's constants), but the reader:
        what `shifts` plays and `train/reader.py` learns from."""
        shift = self.free_paths(tracks, flipped, height, width).float().cpu()
        present = tracks.present.cpu()
        classes = torch.arange(present.shape[1]).expand_as(present)  # slot k: class k
        floor = Floor(*self.cfg.track_floor)
        velocity, centre = read_velocity(tracks).cpu(), tracks.centre.cpu()
        steps, whole = read_before(tracks, self.cfg, height, width)
        fresh = read_fresh(tracks, self.cfg).cpu()
        before = (steps.cpu(), whole.cpu())
        return shift, velocity, centre, present, classes, (height, width), floor, before, fresh

    @torch.no_grad()
    def moved(self, tracks: Tracks, last: Tensor, shift: Tensor) -> Tensor:
        """Class ids (B, T_out, H, W) int64 on the CPU: the last input mask (B, H, W) with its
        objects (`tracks` of the input masks) moved along their displacements `shift`
        (B, K, T_out, 2) as (row, column), from `shifts`; with `track_floor`, each drawn at
        its new depth's size too (`scales`); those first seen in the last input frame only in
        the first `track_new_frames` forecast frames."""
        b, h, w = last.shape
        last = last.long().cpu()
        scale = self.scales(last, shift)
        shown = drawn_frames(tracks, self.cfg).cpu()  # (B, K, T_out)
        moved = torch.zeros(b, self.cfg.frames_out, h, w, dtype=torch.long)
        for i in range(b):
            classes = tracks.present[i].nonzero().flatten().cpu()
            if len(classes):
                grow = None if scale is None else scale[i, classes]
                drawn = shown[i, classes]
                moved[i] = paint_shifted(last[i], classes, shift[i, classes], grow, drawn)
        return moved

    def scales(self, last: Tensor, shift: Tensor) -> Tensor | None:
        """(B, K, T_out) float64 on the CPU: how many times its size each object of the last
        input mask `last` (B, H, W) is drawn after moving by `shift` (B, K, T_out, 2) as (row,
        column), about its centroid (`convrnn.floor.depth_scale`); None without `track_floor`
        (no camera: drawn at its own size)."""
        if not self.cfg.track_floor:
            return None
        centre = class_centroids(last.long().cpu(), shift.shape[1], torch.float64)[0]
        floor = Floor(*self.cfg.track_floor)
        return depth_scale(centre, shift.cpu().flip(-1), floor, tuple(last.shape[-2:]))

    def frames_moved(
        self, frames: Tensor, ids: Tensor, moved: Tensor, shift: Tensor, base: Tensor
    ) -> Tensor:
        """The predicted frames `base` (B, T_out, C, H, W) with the objects of the input frames
        (B, T_in, C, H, W), class ids `ids` (B, T_in, H, W), moved where `forecast` put them
        (`moved`, `shift`), each read back at the size it was drawn (`objects_moved`)."""
        return objects_moved(frames, ids, moved, shift, base, self.scales(ids[:, -1], shift))
