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
fit-contacts`), not learned by gradient: the outcome of a hit is not smooth in them. The stage
is differentiable in the displacements, though, and `fit-contacts` then fine-tunes the
forecaster through it (`train/contacts_tune.py`), so its paths are the ones that, played out,
land where objects go. All the videos of a batch are played out at once, every pair of each
video's objects tested together at each check. Pure torch, no I/O (a models-floor module).
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


def with_contacts(shift: Tensor, centre: Tensor, present: Tensor, c: Contacts) -> Tensor:
    """Displacements (B, K, T, 2) px as (x, y) of B videos' K object slots, whose centres
    (B, K, 2) px as (x, y) are where they are at the last input frame, played out with hits
    between the slots that are `present` (B, K) in the same video: the same displacements for
    objects no hit reaches. Differentiable in `shift` (the fine-tune of `train/contacts.py`
    learns through it); float64 inside, returned in the input's dtype."""
    b, k, steps = shift.shape[:3]
    if k < 2:
        return shift
    f64 = torch.float64
    stretch = torch.tensor([1.0, c.squash], dtype=f64, device=shift.device)
    centre = torch.where(present[..., None], centre.to(f64), 0.0)  # absent slots: no NaN
    start = centre * stretch  # (B, K, 2) in the stretched image
    free = torch.diff(shift.to(f64), dim=2, prepend=shift.new_zeros(b, k, 1, 2).to(f64))
    free = free * stretch  # (B, K, T, 2) each object's own step per frame
    radius = (c.radius_slope * centre[..., 1] + c.radius_top).clamp(min=1.0)  # (B, K)
    reach2 = (c.reach * (radius[:, :, None] + radius[:, None, :])).square()  # (B, K, K)
    upper = torch.ones(k, k, dtype=torch.bool, device=shift.device).triu(1)  # each pair once
    pairs = present[:, :, None] & present[:, None, :] & upper  # (B, K, K)
    apart = pair_gaps(start)[1] >= reach2  # pairs that may hit now
    hit = torch.zeros(b, k, dtype=torch.bool, device=shift.device)
    after = torch.zeros_like(start)  # a hit object's velocity
    x, out = start, []
    for t in range(steps):
        vel = torch.where(hit[..., None], after, free[:, :, t])  # (B, K, 2)
        for _ in range(SUBSTEPS):
            x = x + vel / SUBSTEPS
            line, dist2 = pair_gaps(x)
            near = dist2 < reach2
            close = near & apart & pairs
            if close.any():  # most checks find no pair in reach: skip the rest (and its grads)
                # the closing speed along the line from i to j, times the distance
                dot = ((vel[:, :, None] - vel[:, None, :]) * line).sum(-1)  # (B, K, K)
                meet = close & (dot > 0)  # parting pairs do not hit
                push = (0.5 * (1 + c.restitution) * dot / dist2 * meet)[..., None] * line
                vel = vel - push.sum(2) + push.sum(1)  # i gives push_ij, j takes it
                now = meet.any(2) | meet.any(1)  # (B, K)
                vel = torch.where(now[..., None], vel * c.keep, vel)
                hit = hit | now
            apart = apart | ~near  # a pair that started close may hit once it has parted
        after = torch.where(hit[..., None], vel * c.decay, after)
        out.append(x)
    played = (torch.stack(out, 2) - start[:, :, None]) / stretch  # (B, K, T, 2)
    return torch.where(hit[..., None, None], played.to(shift.dtype), shift)


def pair_gaps(x: Tensor) -> tuple[Tensor, Tensor]:
    """(x_j - x_i (B, K, K, 2), its squared length (B, K, K), kept off zero) of positions
    x (B, K, 2): every pair's line, for this stage and the floor's (`convrnn.floor`)."""
    line = x[:, None, :, :] - x[:, :, None, :]
    return line, line.square().sum(-1).clamp(min=1e-12)
