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

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from .config import ModelConfig
from .contacts import Contacts, with_contacts
from .extrapolate import class_centroids, paint_shifted
from .floor import Floor, depth_scale
from .floor_play import play_on_floor
from .objects import objects_moved
from .state_reader import StateReader
from .track_features import feature_count, unit_px
from .track_reads import (
    Tracks,
    drawn_frames,
    read_before,
    read_fresh,
    read_velocity,
    tracks_and_mirror,
)

DROPOUT = 0.2  # after each hidden layer, in training


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
        # the learned correction of the floor stage's velocities (`fit-reader`), None without
        self.reader = None
        if cfg.track_reader:
            self.reader = StateReader(cfg.track_reader, cfg.track_reader_members,
                                      cfg.track_reader_every)  # fmt: skip

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
        the floor (`convrnn.floor_play`, its velocities corrected by the `reader` where the
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
        (the net's paths, what is read of each object, the floor's constants, the objects
        placed by the reader where it has one), but the reader: what `shifts` plays and
        `train/reader.py` learns from."""
        shift = self.free_paths(tracks, flipped, height, width).float().cpu()
        present = tracks.present.cpu()
        classes = torch.arange(present.shape[1]).expand_as(present)  # slot k: class k
        floor = Floor(*self.cfg.track_floor)
        velocity, centre = read_velocity(tracks).cpu(), tracks.centre.cpu()
        if self.reader is not None:  # where each object's centre is seen, not its centroid
            centre = self.reader.placed(centre, classes, height)
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
