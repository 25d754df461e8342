"""Sliding a scene through its frames: the `Sliding` state, `start` and `slide`, friction and
collisions, and `simulate`, which samples a scene (`scene.py`) and slides it to the end.

Physics runs on the floor plane in world units, SUBSTEPS steps a frame; friction and collisions
are tuned so that the generated videos move like the real samples (benchmarks/realism.py).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import numpy as np

from .config import FRAMES
from .scene import (
    MAX_IN_VIEW,
    MID_Z,
    RADIUS,
    Scene,
    entry_velocity,
    in_view,
    launch_at_start,
    place,
    px_per_unit,
    sample_kinds,
)

SUBSTEPS = 4  # physics steps per frame, so fast objects cannot pass through each other
# Friction, measured on the real samples' centroid tracks: a sliding object loses a share of its
# speed per frame (drag) plus a fixed amount (sliding friction; must stay > 0), so with the hits
# below an object fast over frames 7-11 keeps a median 0.25-0.3 of that speed by frames 18-22,
# and a pushed cube at 3-5 px/frame stops within about fifteen frames. Spheres roll: they glide.
# Per shape (cube, sphere, cylinder): the share lost per frame, and px/frame lost per frame
# (sideways at depth MID_Z).
DRAG = (0.06, 0.04, 0.05)
DECEL_PX = (0.15, 0.03, 0.1)
FRICTION_SPREAD = (0.8, 1.25)  # per-object factor on both
# Collisions: momentum along the line of centres is exchanged as between equal masses, but the
# real struck objects leave at only 2-5 px/frame, well under the striker's speed, and the
# striker nearly stops: the contact itself loses energy. Most of the real objects that are fast
# over frames 7-11 and slow by 18-22 hit something in between.
RESTITUTION = 0.85
IMPACT_KEEP = 0.65  # share of their speed both objects keep right after a hit
REST_SPEED = 0.025  # floor speed below which an object stops (about 0.5 px/frame)


def simulate(rng: np.random.Generator, frames: int = FRAMES) -> Scene:
    """Sample a scene and slide it for `frames` frames: entries, friction, collisions.

    A scene that would show more than MAX_IN_VIEW objects at once is drawn again (from the same
    RNG, so the result still depends on the RNG's seed alone).
    """
    return simulate_to(rng, frames, frames).scene()


def simulate_to(rng: np.random.Generator, at: int, frames: int = FRAMES) -> Sliding:
    """The scene `simulate` draws from `rng`, as it stands after its first `at` frames (its
    velocities are those it slides on into frame `at`): what `fit-reader` learns a frame's
    true state from. The redraws are `simulate`'s, so the scene is the one a video of the same
    RNG shows (drawing once and stopping at `at` gives another scene wherever the first draw
    crowds the view later on)."""
    for _ in range(20):
        state = start(rng, frames)  # objects placed or entering, some launched
        slide(state, rng, 0, at)  # the draws from `rng` come in a fixed order
        kept = copy.deepcopy(state) if at < frames else state  # `simulate`: no copy needed
        slide(state, rng, at, frames)
        if in_view(state.scene()).sum(axis=1).max() <= MAX_IN_VIEW:
            break
    return kept


@dataclass
class Sliding:
    """A scene part-way through its sliding: what `slide` advances frame by frame. `simulate`
    slides one from frame 0 to the end; benchmarks/knowable.py copies one at frame 11 and
    slides the copies on with parts of the future hidden from them."""

    kinds: np.ndarray  # (N, 3) shape, material, colour
    friction: np.ndarray  # (N,) the object's factor on its shape's drag and deceleration
    drag: np.ndarray  # (N,) share of the speed lost per frame
    decel: np.ndarray  # (N,) floor units of speed lost per frame
    pos: np.ndarray  # (N, 2) floor position (X, Z) now
    vel: np.ndarray  # (N, 2) floor units per frame
    spin: np.ndarray  # (N,) turn per floor unit slid (a hit reverses it)
    angle: np.ndarray  # (N,) turn about the vertical axis now
    enter_at: np.ndarray  # (N,) first frame an object exists
    entries: dict[int, tuple[float, float]]  # entering object -> (heading, floor speed)
    out_pos: np.ndarray  # (T, N, 2) the positions of the frames slid so far
    out_angle: np.ndarray  # (T, N)

    def copy(self) -> Sliding:
        """An independent copy (arrays and entries copied)."""
        return Sliding(**{k: v.copy() for k, v in vars(self).items()})

    def scene(self) -> Scene:
        """The video's Scene (positions and angles of frames not slid yet are zero)."""
        kinds = self.kinds
        return Scene(kinds[:, 0], kinds[:, 1], kinds[:, 2], self.out_pos, self.out_angle,
                     self.enter_at)  # fmt: skip


def start(rng: np.random.Generator, frames: int) -> Sliding:
    """A new scene of `frames` frames before its first: kinds, places, friction, launches."""
    n_total = int(rng.choice([4, 5, 6, 7, 8], p=[0.1, 0.15, 0.25, 0.25, 0.25]))  # 4-8 objects
    n_start = int(min(n_total, rng.choice([1, 2, 3, 3, 4, 4, 5, 6])))  # visible at frame 0
    kinds = sample_kinds(rng, n_total)

    pos, enter_at, entries, placed = place(rng, n_total, n_start, frames)
    vel = np.zeros((n_total, 2))
    friction = rng.uniform(*FRICTION_SPREAD, size=n_total)
    drag, decel = slowing(kinds[:, 0], friction)
    launch_at_start(rng, pos, vel, placed, drag, decel)

    spin = rng.uniform(0.6, 1.6, size=n_total) * rng.choice([-1.0, 1.0], size=n_total)
    angle = rng.uniform(0, math.pi / 2, size=n_total)
    return Sliding(kinds, friction, drag, decel, pos, vel, spin, angle, enter_at, entries,
                   np.zeros((frames, n_total, 2)), np.zeros((frames, n_total)))  # fmt: skip


def slowing(shape: np.ndarray, friction: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(drag, decel) of objects of `shape` (N,) with their friction factors (N,): the share of
    the speed lost per frame, and the floor units of speed lost per frame."""
    drag = friction * np.asarray(DRAG)[shape]
    decel = friction * np.asarray(DECEL_PX)[shape] / px_per_unit(MID_Z)
    return drag, decel


def slide(
    state: Sliding, rng: np.random.Generator, first: int, last: int, collide: bool = True
) -> None:
    """Slide `state` through frames first..last-1 (in place): entering objects launched (from
    `rng`), one physics step, friction; each frame's positions and angles recorded. Without
    `collide` objects pass through each other."""
    s = state
    is_entry = np.zeros(len(s.enter_at), dtype=bool)
    is_entry[list(s.entries)] = True
    for t in range(first, last):
        for i in np.flatnonzero(is_entry & (s.enter_at == t)):
            on_floor = (s.enter_at < t) | ~is_entry
            s.vel[i] = entry_velocity(rng, i, s.pos, s.vel, on_floor, s.entries[i], s.drag[i],
                                       s.decel[i])  # fmt: skip
        active = s.enter_at <= t
        if t > 0:
            _step(s.pos, s.vel, active, s.spin, s.angle, collide)
            speed = np.hypot(s.vel[:, 0], s.vel[:, 1])  # (N,) floor units per frame
            slower = np.maximum(speed * (1.0 - s.drag) - s.decel, 0.0)
            keep = np.divide(slower, speed, out=np.zeros_like(speed), where=speed > 0)
            s.vel[active] *= keep[active, None]
            s.vel[np.hypot(s.vel[:, 0], s.vel[:, 1]) < REST_SPEED] = 0.0
        s.out_pos[t] = s.pos
        s.out_angle[t] = s.angle


def _step(
    pos: np.ndarray,
    vel: np.ndarray,
    active: np.ndarray,
    spin: np.ndarray,
    angle: np.ndarray,
    collide: bool = True,
) -> None:
    """Advance one frame in SUBSTEPS steps; equal-mass collisions with restitution RESTITUTION,
    after which both objects keep IMPACT_KEEP of their speed (none without `collide`)."""
    idx = np.flatnonzero(active)
    for _ in range(SUBSTEPS):
        pos[idx] += vel[idx] / SUBSTEPS
        angle[idx] += spin[idx] * np.hypot(vel[idx, 0], vel[idx, 1]) / SUBSTEPS
        if not collide:
            continue
        for a_i, a in enumerate(idx):
            for b in idx[a_i + 1 :]:
                d = pos[b] - pos[a]
                dist = math.hypot(d[0], d[1])
                if dist >= 2 * RADIUS or dist == 0.0:
                    continue
                nrm = d / dist
                closing = float(np.dot(vel[a] - vel[b], nrm))
                if closing > 0:  # approaching: exchange momentum along the normal
                    j = 0.5 * (1 + RESTITUTION) * closing
                    vel[a] -= j * nrm
                    vel[b] += j * nrm
                    vel[a] *= IMPACT_KEEP
                    vel[b] *= IMPACT_KEEP
                    spin[a], spin[b] = -spin[a], spin[b] if spin[b] else 1.0
                overlap = 2 * RADIUS - dist
                pos[a] -= nrm * overlap / 2
                pos[b] += nrm * overlap / 2
