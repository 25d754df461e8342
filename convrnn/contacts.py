"""Hits between the track forecaster's objects: its displacements, played out a frame at a time
with contacts.

The track forecaster (`convrnn/tracks.py`) learns how each object slides but not what it will
hit: on generated val it scores what a slider that lets objects pass through each other scores
(benchmarks/knowable.py), and the hits to come are most of what is left. This stage takes its
per-object displacements as each object's free motion and rolls all of a video's objects
forward together. Objects are discs in the image, their radius a straight line of their image
row (farther objects are smaller), with vertical distances stretched by `squash` (the floor is
seen at a slant). Two discs that come within `reach` x the sum of their radii while closing in
exchange momentum along the line between them (equal masses, restitution `restitution`); both
then keep `keep` of their speed, and a hit object leaves its forecast path for good: from then
on it moves at the speed of its last hit, times `decay` a frame. Pairs already that close at
the last input frame (one in front of the other) hit only after they have parted.

Seven constants, fitted to labelled videos by `train/contacts.py` (`python cli.py
fit-contacts`), not learned by gradient: the outcome of a hit is not smooth in them. Pure
torch, no I/O (a models-floor module).
"""

from __future__ import annotations

from dataclasses import astuple, dataclass

import torch
from torch import Tensor

SUBSTEPS = 4  # contact checks per frame, so fast objects cannot pass through each other


@dataclass(frozen=True)
class Contacts:
    """The contact stage's constants (`ModelConfig.track_contacts` holds them as a tuple)."""

    reach: float = 1.0  # discs touch closer than this x the sum of their radii
    restitution: float = 0.85  # share of the closing speed given back along the normal
    keep: float = 0.65  # share of their speed both objects keep right after a hit
    decay: float = 0.9  # a hit object's speed, per frame after the hit
    squash: float = 2.2  # vertical image distances x this: the floor seen at a slant
    radius_slope: float = 0.1  # disc radius px per image row (farther is higher and smaller)
    radius_top: float = 6.5  # disc radius px at row 0

    def as_tuple(self) -> tuple[float, ...]:
        return tuple(float(v) for v in astuple(self))


def radius_line(rows: Tensor, radii: Tensor) -> tuple[float, float]:
    """(slope, value at row 0) of the least-squares line through objects' radii (N,) px against
    their image rows (N,): the disc size `Contacts` uses at each row."""
    a = torch.stack([rows.double(), torch.ones_like(rows, dtype=torch.float64)], 1)  # (N, 2)
    fit = torch.linalg.lstsq(a, radii.double()[:, None]).solution.flatten()
    return float(fit[0]), float(fit[1])


def with_contacts(shift: Tensor, centre: Tensor, c: Contacts) -> Tensor:
    """Displacements (N, T, 2) px as (x, y) of one video's N objects, whose centres (N, 2) px
    as (x, y) are where they are at the last input frame, played out with hits: the same
    displacements where no object is hit. Float64 inside, returned in the input's dtype."""
    n, steps = shift.shape[:2]
    if n < 2:
        return shift
    stretch = torch.tensor([1.0, c.squash], dtype=torch.float64)
    start = centre.double() * stretch  # (N, 2) in the stretched image
    free = torch.diff(shift.double(), dim=1, prepend=shift.new_zeros(n, 1, 2).double())
    free = free * stretch  # (N, T, 2) each object's own step per frame
    radius = (c.radius_slope * centre[:, 1].double() + c.radius_top).clamp(min=1.0)  # (N,)
    reach = c.reach * (radius[:, None] + radius[None, :])  # (N, N)
    upper = torch.ones(n, n, dtype=torch.bool).triu(1)  # each pair once
    apart = torch.cdist(start, start) >= reach  # pairs that may hit now
    hit = torch.zeros(n, dtype=torch.bool)
    after = torch.zeros(n, 2, dtype=torch.float64)  # a hit object's velocity
    x = start.clone()
    out = torch.empty(n, steps, 2, dtype=torch.float64)
    for t in range(steps):
        vel = torch.where(hit[:, None], after, free[:, t])  # (N, 2)
        for _ in range(SUBSTEPS):
            x = x + vel / SUBSTEPS
            near = torch.cdist(x, x) < reach
            for i, j in (near & apart & upper).nonzero().tolist():
                normal = x[j] - x[i]
                normal = normal / normal.norm().clamp(min=1e-9)
                closing = float((vel[i] - vel[j]) @ normal)
                if closing <= 0:  # parting already
                    continue
                push = 0.5 * (1 + c.restitution) * closing * normal
                vel[i] = (vel[i] - push) * c.keep
                vel[j] = (vel[j] + push) * c.keep
                hit[i] = hit[j] = True
            apart |= ~near  # a pair that started close may hit once it has parted
        after = torch.where(hit[:, None], vel * c.decay, after)
        out[:, t] = x
    return ((out - start[:, None]) / stretch).to(shift.dtype)
