"""A video's objects and their motion: the camera, sampling a scene, and sliding physics.

World coordinates: X to the right, Y up, Z away from the camera; the floor is Y = 0 and every
object has the same physical size (footprint radius RADIUS). Physics runs on the floor plane in
world units; speeds are chosen in pixels per frame, as measured on the real videos, and converted
with the camera's sideways scale (where the object stands, or at MID_Z for entering objects).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .config import FRAMES, HEIGHT, WIDTH

# Camera: a pinhole at height CAM_HEIGHT pitched down by PITCH, so that the floor's horizon lies
# about 66 rows above the image and apparent size grows linearly with the image row.
PITCH = math.radians(30.0)
FOCAL = 253.0  # px
CX, CY = WIDTH / 2.0, HEIGHT / 2.0
CAM_HEIGHT = 5.1
_SIN, _COS = math.sin(PITCH), math.cos(PITCH)

RADIUS = 0.5  # footprint radius of every object (world units); collisions use it
N_SHAPES, N_MATERIALS, N_COLOURS = 3, 2, 8
SUBSTEPS = 4  # physics steps per frame, so fast objects cannot pass through each other
MAX_IN_VIEW = 6  # the real videos show at most about 6 objects at once

# Motion, tuned so that the generated videos move at least as much as the real samples
# (benchmarks/realism.py: moving fraction, speeds, class changes between frames 11 and 22).
P_SLIDING_AT_START = 0.38  # share of the frame-0 objects already sliding
START_SPEED_PX = (5.0, 16.0)  # their speed, px/frame sideways where they stand
# Entering objects all slide about as fast on the floor, so their pixels per frame depend on
# where and which way they come in: sideways or from the near border fast, from the far one
# slowly. After a frame or two of friction they show the real videos' 15-21 px/frame.
ENTRY_SPEED = (25.0, 33.0)  # px/frame an entering object would move sideways at depth MID_Z
MID_Z = 8.8  # floor depth seen at about row 80, the middle of the picture
ENTRY_SIDES = (0.3, 0.3, 0.12, 0.28)  # chance to enter from the left, right, top, bottom
# Collisions are common in the real videos (about half the resting objects get pushed), so a
# launched object often heads for another one.
P_AIMED = 0.85  # share of launched objects (sliding at start, entering) aimed at an object
ENTRY_CONE = 0.9  # radians: an entering object aims at most this far off its inward heading
AIM_SPREAD = 0.15  # radians either side of dead centre: many hits are glancing
# Friction: the share of its speed an object loses per frame grows with the speed, so a fast
# object keeps about 0.83-0.88 of it per frame (at 30-20 px/frame) and a slow pushed one glides
# on at about 0.96, as in the real videos.
LOSS_SLOW = 0.033  # share of the speed lost per frame by a nearly resting object
LOSS_PER_PX = 0.0045  # extra share lost per px/frame of speed (sideways at depth MID_Z)
FRICTION_SPREAD = (0.8, 1.25)  # per-object factor on both losses
REST_SPEED = 0.025  # floor speed below which an object stops (about 0.5 px/frame)


def class_id(shape: int, material: int, colour: int) -> int:
    """The dataset's class id of a (shape, material, colour) triple: 1-48 (0 is the floor)."""
    return shape * 16 + material * 8 + colour + 1


def project(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """World points (..., 3) -> image (x, y) in pixels and camera depth, shapes (..., 2), (...)."""
    px, py, pz = points[..., 0], points[..., 1] - CAM_HEIGHT, points[..., 2]
    yc = py * _COS + pz * _SIN  # camera up
    zc = -py * _SIN + pz * _COS  # camera forward (depth)
    xy = np.stack([CX + FOCAL * px / zc, CY - FOCAL * yc / zc], axis=-1)
    return xy, zc


def unproject_floor(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Image pixels (below the horizon) -> the floor point (X, Z) seen there."""
    u, v = (np.asarray(x) - CX) / FOCAL, -(np.asarray(y) - CY) / FOCAL
    dy, dz = v * _COS - _SIN, v * _SIN + _COS
    t = CAM_HEIGHT / -dy
    return t * u, t * dz


def px_per_unit(z: np.ndarray) -> np.ndarray:
    """Pixels per world unit on the floor at depth Z (horizontal scale)."""
    zc = CAM_HEIGHT * _SIN + np.asarray(z) * _COS
    return FOCAL / zc


@dataclass
class Scene:
    """One video: object kinds and per-frame floor positions and turn angles."""

    shape: np.ndarray  # (N,) 0 cube, 1 sphere, 2 cylinder
    material: np.ndarray  # (N,) 0 metal, 1 rubber
    colour: np.ndarray  # (N,) 0-7, the CLEVR palette order of the spec
    pos: np.ndarray  # (T, N, 2) floor position (X, Z) per frame
    angle: np.ndarray  # (T, N) turn about the vertical axis (radians)
    enter_at: np.ndarray  # (N,) first frame an object exists (entering objects: off-screen)

    @property
    def ids(self) -> np.ndarray:
        """(N,) class ids 1-48."""
        return self.shape * 16 + self.material * 8 + self.colour + 1


def _sample_kinds(rng: np.random.Generator, n: int) -> np.ndarray:
    """n distinct (shape, material, colour) triples as an (n, 3) array."""
    flat = rng.choice(N_SHAPES * N_MATERIALS * N_COLOURS, size=n, replace=False)
    return np.stack([flat // 16, (flat // 8) % 2, flat % 8], axis=1)


def _free_spot(rng: np.random.Generator, placed: list[np.ndarray]) -> np.ndarray | None:
    """A floor point seen inside the image, at least two diameters from every placed object.

    Contact rows follow the real videos: mostly rows 30-120, rarely near the bottom border.
    """
    for _ in range(50):
        x = rng.uniform(12, WIDTH - 12)
        y = rng.uniform(120, HEIGHT - 6) if rng.random() < 0.04 else 30 + 92 * rng.beta(2.0, 2.0)
        p = np.array(unproject_floor(x, y))
        if all(np.hypot(*(p - q)) > 4.2 * RADIUS for q in placed):
            return p
    return None


def _entry(rng: np.random.Generator) -> tuple[np.ndarray, float, float]:
    """Start just outside a random image border: the floor point, the heading inward (radians)
    and the floor speed (world units per frame)."""
    side = rng.choice(4, p=ENTRY_SIDES)
    if side < 2:  # left or right: a contact row in the image, x beyond the object's half width
        y = 50 + 90 * rng.beta(2.0, 2.0)  # the real ones mostly come in at rows 80-110
        half = 0.6 * float(px_per_unit(unproject_floor(WIDTH / 2, y)[1])) + 1.0
        x, aim = (
            (-half, (1.0, rng.uniform(-0.4, 0.4)))
            if side == 0
            else (WIDTH + half, (-1.0, rng.uniform(-0.4, 0.4)))
        )
    elif side == 2:  # top (far): the object stands above its contact point, so row 0 hides it
        x, y, aim = rng.uniform(30, WIDTH - 30), -1.0, (rng.uniform(-0.6, 0.6), 1.0)
    else:  # bottom (near): the contact point a full object height below the border
        x, y, aim = rng.uniform(30, WIDTH - 30), HEIGHT + 40.0, (rng.uniform(-0.6, 0.6), -1.0)
    start = np.array(unproject_floor(x, y))
    ahead = np.array(unproject_floor(x + aim[0], y + aim[1]))  # one px along the aim, on the floor
    heading = math.atan2(ahead[1] - start[1], ahead[0] - start[0])
    return start, heading, float(rng.uniform(*ENTRY_SPEED)) / px_per_unit(MID_Z)


def simulate(rng: np.random.Generator, frames: int = FRAMES) -> Scene:
    """Sample a scene and slide it for `frames` frames: entries, friction, collisions.

    A scene that would show more than MAX_IN_VIEW objects at once is drawn again (from the same
    RNG, so the result still depends on the RNG's seed alone).
    """
    for _ in range(20):
        scene = _simulate_once(rng, frames)
        if in_view(scene).sum(axis=1).max() <= MAX_IN_VIEW:
            break
    return scene


def in_view(scene: Scene) -> np.ndarray:
    """(T, N) whether each object's floor contact point is inside the picture."""
    t = np.arange(len(scene.pos))[:, None]
    return _on_screen(scene.pos) & (t >= scene.enter_at[None, :])


def _on_screen(pos: np.ndarray) -> np.ndarray:
    """Whether floor points (..., 2) are seen inside the picture, shape (...)."""
    x, z = pos[..., 0], pos[..., 1]
    xy, depth = project(np.stack([x, np.zeros_like(x), z], axis=-1))
    inside = (xy[..., 0] > 0) & (xy[..., 0] < WIDTH) & (xy[..., 1] > 0) & (xy[..., 1] < HEIGHT)
    return inside & (depth > 0)


def _simulate_once(rng: np.random.Generator, frames: int) -> Scene:
    n_total = int(rng.choice([4, 5, 6, 7, 8], p=[0.1, 0.15, 0.25, 0.25, 0.25]))  # 4-8 objects
    n_start = int(min(n_total, rng.choice([1, 2, 3, 3, 4, 4, 5, 6])))  # visible at frame 0
    kinds = _sample_kinds(rng, n_total)

    pos = np.zeros((n_total, 2))
    vel = np.zeros((n_total, 2))
    enter_at = np.zeros(n_total, dtype=int)  # frame at which an object becomes active
    entries: dict[int, tuple[float, float]] = {}  # entering object -> (heading, floor speed)
    placed: list[int] = []
    for i in range(n_total):
        spot = _free_spot(rng, [pos[j] for j in placed]) if i < n_start else None
        if spot is not None:
            pos[i] = spot
            placed.append(i)
        else:
            pos[i], *entries[i] = _entry(rng)
            enter_at[i] = int(rng.integers(0, frames - 5))
    for i in placed:
        if rng.random() < P_SLIDING_AT_START:  # some objects are already sliding at frame 0
            heading = rng.uniform(-math.pi, math.pi)
            if rng.random() < P_AIMED:  # often at another object
                heading = _aim(rng, pos[i], pos[[j for j in placed if j != i]], heading, math.pi)
            speed = rng.uniform(*START_SPEED_PX) / px_per_unit(pos[i, 1])
            vel[i] = speed * np.array([math.cos(heading), math.sin(heading)])

    friction = rng.uniform(*FRICTION_SPREAD, size=n_total)
    spin = rng.uniform(0.6, 1.6, size=n_total) * rng.choice([-1.0, 1.0], size=n_total)
    angle = rng.uniform(0, math.pi / 2, size=n_total)
    is_entry = np.zeros(n_total, dtype=bool)
    is_entry[list(entries)] = True
    out_pos = np.zeros((frames, n_total, 2))
    out_angle = np.zeros((frames, n_total))
    for t in range(frames):
        for i in np.flatnonzero(is_entry & (enter_at == t)):
            heading, speed = entries[i]
            # an entering object often heads for an object resting in view, within its cone
            on_floor = (enter_at < t) | ~is_entry
            resting = on_floor & _on_screen(pos) & (np.hypot(vel[:, 0], vel[:, 1]) == 0)
            if rng.random() < P_AIMED:
                heading = _aim(rng, pos[i], pos[resting], heading, ENTRY_CONE)
            vel[i] = speed * np.array([math.cos(heading), math.sin(heading)])
        active = enter_at <= t
        if t > 0:
            _step(pos, vel, active, spin, angle)
            speed_px = np.hypot(vel[:, 0], vel[:, 1]) * px_per_unit(MID_Z)  # (N,)
            keep = 1.0 - friction * (LOSS_SLOW + LOSS_PER_PX * speed_px)
            vel[active] *= np.maximum(keep[active, None], 0.5)  # 0.5: only past about 80 px/frame
            vel[np.hypot(vel[:, 0], vel[:, 1]) < REST_SPEED] = 0.0
        out_pos[t] = pos
        out_angle[t] = angle
    return Scene(kinds[:, 0], kinds[:, 1], kinds[:, 2], out_pos, out_angle, enter_at)


def _aim(
    rng: np.random.Generator, start: np.ndarray, targets: np.ndarray, heading: float, cone: float
) -> float:
    """A heading from `start` at one of the floor points `targets` (K, 2) that lies within
    `cone` radians of `heading`, give or take AIM_SPREAD (many hits are glancing, as in the real
    videos); `heading` itself when no target lies in the cone."""
    d = targets - start  # (K, 2)
    off = (np.arctan2(d[:, 1], d[:, 0]) - heading + math.pi) % (2 * math.pi) - math.pi
    ok = np.flatnonzero(np.abs(off) <= cone)
    if not len(ok):
        return heading
    return heading + float(off[rng.choice(ok)]) + rng.uniform(-AIM_SPREAD, AIM_SPREAD)


def _step(
    pos: np.ndarray, vel: np.ndarray, active: np.ndarray, spin: np.ndarray, angle: np.ndarray
) -> None:
    """Advance one frame in SUBSTEPS steps; equal-mass collisions with restitution 0.85."""
    idx = np.flatnonzero(active)
    for _ in range(SUBSTEPS):
        pos[idx] += vel[idx] / SUBSTEPS
        angle[idx] += spin[idx] * np.hypot(vel[idx, 0], vel[idx, 1]) / SUBSTEPS
        for a_i, a in enumerate(idx):
            for b in idx[a_i + 1 :]:
                d = pos[b] - pos[a]
                dist = math.hypot(d[0], d[1])
                if dist >= 2 * RADIUS or dist == 0.0:
                    continue
                nrm = d / dist
                closing = float(np.dot(vel[a] - vel[b], nrm))
                if closing > 0:  # approaching: exchange momentum along the normal
                    j = 0.5 * (1 + 0.85) * closing
                    vel[a] -= j * nrm
                    vel[b] += j * nrm
                    spin[a], spin[b] = -spin[a], spin[b] if spin[b] else 1.0
                overlap = 2 * RADIUS - dist
                pos[a] -= nrm * overlap / 2
                pos[b] += nrm * overlap / 2
