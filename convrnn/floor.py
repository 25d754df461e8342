"""The floor the track forecaster's objects slide on: its constants, the camera over it, and
its physics (sliding friction, hits between objects).

A pinhole camera one camera height over a flat floor, pitched down, maps image pixels to floor
points and back (`Camera`), so every object has one footprint radius and distances are the
floor's at any depth; an object looks larger nearer the camera (`depth_scale`). On the floor
each object slows by sliding friction (a share of its speed plus a fixed amount a frame, by
shape: cubes brake hardest, spheres roll; `friction`), and objects closer than two radii hit:
equal masses, the closing speed given back by `restitution` along the line between them, both
keeping `keep` of their speed; two found overlapping are pushed apart, and touching pairs may
hit at once (`slide`). The constants' defaults are the generator's (ingest/synth), which were
set to match the real samples' motion (benchmarks/realism.py); floor units are camera heights.
`convrnn/floor_play.py` plays the forecaster's objects out on this floor.

Pure torch, no I/O (a models-floor module).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import astuple, dataclass

import torch
from torch import Tensor

from .contacts import pair_gaps

SUBSTEPS = 4  # contact checks per frame, so fast objects cannot pass through each other
SHAPES = 3  # cube, sphere, cylinder: class id = shape * 16 + material * 8 + colour + 1
CLASSES_PER_SHAPE = 16
Slowing = Callable[[Tensor], Tensor]  # one frame of friction on floor velocities (B, K, 2)


@dataclass(frozen=True)
class Floor:
    """The floor stage's constants (`ModelConfig.track_floor` holds them as a tuple)."""

    focal: float = 253.0  # px, on a 160 x 240 frame (scaled with the frame's width)
    pitch: float = 30.0  # degrees the camera looks down
    lift: float = 0.098  # an object's centre above the floor, in camera heights
    radius: float = 0.098  # every object's footprint radius, in camera heights
    restitution: float = 0.85  # share of the closing speed given back along the normal
    keep: float = 0.65  # share of their speed both objects keep right after a hit
    drag_cube: float = 0.0615  # share of a cube's speed lost per frame
    drag_sphere: float = 0.041
    drag_cylinder: float = 0.0513
    decel_cube: float = 0.00121  # camera heights of a cube's speed lost per frame
    decel_sphere: float = 0.00024
    decel_cylinder: float = 0.00081
    rest: float = 0.0049  # camera heights per frame below which an object stops
    # degrees off the net's heading within which an object first seen in the last input frame
    # is aimed at an object resting there (0: never; `_aimed`)
    aim_cone: float = 60.0
    # 1: every object whose velocity the stage knows (all but a new one not aimed) slides on
    # the floor, hit or not; 0: only those a hit reaches or that were aimed leave the net's paths
    all_on_floor: float = 1.0
    # 1: an object partly hidden or cut by the border in the last input frame starts where its
    # whole footprint is (`convrnn.track_features.whole_centre`); 0: at its seen part's centroid
    whole_footprint: float = 1.0

    def as_tuple(self) -> tuple[float, ...]:
        return tuple(float(v) for v in astuple(self))


class Camera:
    """A pinhole one camera height over a flat floor, pitched down, its axis through the frame's
    centre: image px (x, y) of a point `lift` above the floor <-> its floor point (X, Z)."""

    def __init__(self, f: Floor, height: int, width: int) -> None:
        self.focal = f.focal * width / 240.0
        self.cx, self.cy = width / 2.0, height / 2.0
        self.sin, self.cos = math.sin(math.radians(f.pitch)), math.cos(math.radians(f.pitch))
        self.lift = f.lift

    def to_floor(self, xy: Tensor) -> Tensor:
        """(..., 2) image px -> (..., 2) floor (X, Z); rows at or above the horizon land far."""
        u, v = (xy[..., 0] - self.cx) / self.focal, -(xy[..., 1] - self.cy) / self.focal
        down = (self.sin - v * self.cos).clamp(min=1e-3)  # the ray's fall per unit forward
        t = (1.0 - self.lift) / down
        return torch.stack([t * u, t * (v * self.sin + self.cos)], -1)

    def depth(self, xy: Tensor) -> Tensor:
        """(...) the depth along the camera's axis of the point `lift` above the floor seen at
        image px xy (..., 2): how far away an object standing there is."""
        v = -(xy[..., 1] - self.cy) / self.focal
        return (1.0 - self.lift) / (self.sin - v * self.cos).clamp(min=1e-3)

    def to_image(self, floor: Tensor) -> Tensor:
        """(..., 2) floor (X, Z) -> (..., 2) image px of the point `lift` above it."""
        up = self.lift - 1.0
        yc = up * self.cos + floor[..., 1] * self.sin
        zc = (-up * self.sin + floor[..., 1] * self.cos).clamp(min=1e-6)
        return torch.stack([self.cx + self.focal * floor[..., 0] / zc,
                            self.cy - self.focal * yc / zc], -1)  # fmt: skip


def shape_of(classes: Tensor) -> Tensor:
    """The shape index (0 cube, 1 sphere, 2 cylinder) of class ids (the dataset's layout)."""
    return ((classes - 1) // CLASSES_PER_SHAPE).clamp(0, SHAPES - 1)


def depth_scale(centre: Tensor, shift: Tensor, f: Floor, size: tuple[int, int]) -> Tensor:
    """(..., T) how many times larger an object at image px `centre` (..., 2) looks after it
    has moved by `shift` (..., T, 2) px, both as (x, y): the ratio of its depths before and
    after (a pinhole sees size as one over depth), within [1/2, 2) so the painter's
    inverse mapping holds. Drawing the moved objects at this scale raised frame 22 by 0.018
    (0.5975 -> 0.6155, segmenter input masks, 100 generated val videos; docs/benchmarks.md,
    "Objects drawn at their new depth")."""
    cam = Camera(f, *size)
    centre = centre.to(torch.float64)
    before = cam.depth(centre)[..., None]
    after = cam.depth(centre[..., None, :] + shift.to(torch.float64))
    return (before / after).clamp(0.5, 1.99)


def friction(classes: Tensor, f: Floor) -> Slowing:
    """One frame of sliding friction for objects of `classes` (B, K): floor velocities
    (B, K, 2) -> slowed (the share and the fixed amount by shape; still below `rest`)."""
    f64, dev = torch.float64, classes.device
    shape = shape_of(classes.long())
    drag = torch.tensor([f.drag_cube, f.drag_sphere, f.drag_cylinder], dtype=f64, device=dev)
    decel = torch.tensor([f.decel_cube, f.decel_sphere, f.decel_cylinder], dtype=f64, device=dev)
    drag, decel = drag[shape], decel[shape]  # (B, K) by each object's shape

    def slowed(v: Tensor) -> Tensor:
        speed = v.norm(dim=-1)
        slower = (speed * (1.0 - drag) - decel).clamp(min=0.0)
        slower = torch.where(slower < f.rest, 0.0, slower)
        return v * (slower / speed.clamp(min=1e-12))[..., None]

    return slowed


def slide(
    x: Tensor, vel: Tensor, present: Tensor, steps: int, slowed: Slowing, f: Floor
) -> tuple[Tensor, Tensor, Tensor]:
    """Objects at floor positions x (B, K, 2) with velocities vel (B, K, 2), the `present`
    ones (B, K) hitting each other, slid `steps` frames -> (positions (B, K, steps, 2), the
    velocities after the last frame, (B, K) which were in a hit)."""
    b, k = present.shape
    upper = torch.ones(k, k, dtype=torch.bool, device=present.device).triu(1)
    pairs = present[:, :, None] & present[:, None, :] & upper  # (B, K, K) each pair once
    hit = torch.zeros(b, k, dtype=torch.bool, device=present.device)
    out = []
    for _ in range(steps):
        for _ in range(SUBSTEPS):
            x, vel, touched = _substep(x + vel / SUBSTEPS, vel, pairs, 2.0 * f.radius, f)
            hit = hit | touched
        vel = slowed(vel)
        out.append(x)
    return torch.stack(out, 2), vel, hit


def _substep(
    x: Tensor, vel: Tensor, pairs: Tensor, reach: float, f: Floor
) -> tuple[Tensor, Tensor, Tensor]:
    """The hits at floor positions x (B, K, 2) moving at vel (B, K, 2) between the `pairs`
    (B, K, K) closer than `reach`: (positions with overlapping pairs set apart, half the overlap
    each; velocities after the hits; (B, K) the objects touched)."""
    line, dist2 = pair_gaps(x)  # (B, K, K, 2) from i to j, (B, K, K)
    close = (dist2 < reach**2) & pairs
    if not close.any():  # most checks find no pair in reach
        return x, vel, close.any(2)
    # the closing speed along the line, times the distance; equal masses
    dot = ((vel[:, :, None] - vel[:, None, :]) * line).sum(-1)  # (B, K, K)
    meet = close & (dot > 0)
    push = (0.5 * (1 + f.restitution) * dot / dist2 * meet)[..., None] * line
    vel = vel - push.sum(2) + push.sum(1)
    vel = torch.where((meet.any(2) | meet.any(1))[..., None], vel * f.keep, vel)
    dist = dist2.sqrt()
    gap = ((reach - dist) / dist * close)[..., None] * line / 2
    return x - gap.sum(2) + gap.sum(1), vel, close.any(2) | close.any(1)
