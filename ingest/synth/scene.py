"""A video's objects: the camera, and sampling a scene (kinds, places, entries, launches aimed at
other objects). `sliding.py` slides the sampled scene through its frames.

World coordinates: X to the right, Y up, Z away from the camera; the floor is Y = 0 and every
object has the same physical size (footprint radius RADIUS). Physics runs on the floor plane in
world units; speeds are chosen in pixels per frame, as measured on the real videos, and converted
with the camera's sideways scale (where the object stands, or at MID_Z for entering objects).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .config import HEIGHT, WIDTH

# Camera: a pinhole at height CAM_HEIGHT pitched down by PITCH, so that the floor's horizon lies
# about 66 rows above the image and apparent size grows linearly with the image row.
PITCH = math.radians(30.0)
FOCAL = 253.0  # px
CX, CY = WIDTH / 2.0, HEIGHT / 2.0
CAM_HEIGHT = 5.1
_SIN, _COS = math.sin(PITCH), math.cos(PITCH)

RADIUS = 0.5  # footprint radius of every object (world units); collisions use it
N_SHAPES, N_MATERIALS, N_COLOURS = 3, 2, 8
MAX_IN_VIEW = 6  # the real videos show at most about 6 objects at once

# Motion, tuned so that the generated videos move like the real samples (benchmarks/realism.py:
# moving fraction, speeds, class changes between frames 11 and 22, the slow-down from frames
# 7-11 to 18-22, and the share of moving objects set moving by a collision).
P_SLIDING_AT_START = 0.16  # share of the frame-0 objects already sliding (real: 4 of 21)
START_SPEED_PX = (5.0, 16.0)  # their speed, px/frame sideways where they stand
# Entering objects all slide about as fast on the floor, so their pixels per frame depend on
# where and which way they come in: sideways or from the near border fast, from the far one
# slowly. After a frame or two of friction they show the real videos' 15-21 px/frame.
ENTRY_SPEED = (18.0, 24.0)  # px/frame an entering object would move sideways at depth MID_Z
MID_Z = 8.8  # floor depth seen at about row 80, the middle of the picture
ENTRY_SIDES = (0.3, 0.3, 0.12, 0.28)  # chance to enter from the left, right, top, bottom
P_EARLY_ENTRY = 0.7  # share of entering objects that come in at frames 2-11, as the real ones do
# Collisions are common in the real videos (about half the resting objects get pushed, and
# 9 of their 22 moving objects rested at the start), so a launched object heads for another one
# it can reach before friction stops it.
P_AIMED = 0.95  # share of launched objects (sliding at start, entering) aimed at an object
ENTRY_TRIES = 4  # border points tried for an aimed entering object
ENTRY_CONE = 1.1  # radians: an entering object aims at most this far off its inward heading
AIM_OFFSET = 0.7  # how far beside a target's centre a launched object heads, in diameters


def class_id(shape: int, material: int, colour: int) -> int:
    """The dataset's class id of a (shape, material, colour) triple: 1-48 (0 is the floor)."""
    return shape * 16 + material * 8 + colour + 1


def kinds_of(ids: np.ndarray) -> np.ndarray:
    """(N, 3) (shape, material, colour) of class ids (N,) 1-48: `class_id` undone."""
    k = np.asarray(ids, dtype=int) - 1
    return np.stack([k // 16, k // 8 % 2, k % 8], axis=1)


def project(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """World points (..., 3) -> image (x, y) in pixels and camera depth, shapes (..., 2), (...)."""
    px, py, pz = points[..., 0], points[..., 1] - CAM_HEIGHT, points[..., 2]
    yc = py * _COS + pz * _SIN  # camera up
    zc = -py * _SIN + pz * _COS  # camera forward (depth)
    xy = np.stack([CX + FOCAL * px / zc, CY - FOCAL * yc / zc], axis=-1)
    return xy, zc


def unproject_floor(
    x: np.ndarray, y: np.ndarray, height: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """Image pixels (below the horizon) -> the floor point (X, Z) under the point `height`
    above the floor that is seen there (0: the floor point itself)."""
    u, v = (np.asarray(x) - CX) / FOCAL, -(np.asarray(y) - CY) / FOCAL
    dy, dz = v * _COS - _SIN, v * _SIN + _COS
    t = (CAM_HEIGHT - height) / -dy
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


def sample_kinds(rng: np.random.Generator, n: int) -> np.ndarray:
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


def place(
    rng: np.random.Generator, n_total: int, n_start: int, frames: int
) -> tuple[np.ndarray, np.ndarray, dict[int, tuple[float, float]], list[int]]:
    """Where each of `n_total` objects starts: the first `n_start` on a free floor spot when
    there is one, the others at a border point, entering later.
    -> positions (N, 2), entry frames (N,), {entering object: (heading, floor speed)}, the
    objects placed on the floor."""
    pos = np.zeros((n_total, 2))
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
            early = rng.random() < P_EARLY_ENTRY
            enter_at[i] = int(rng.integers(1, 11) if early else rng.integers(0, frames - 5))
    return pos, enter_at, entries, placed


def launch_at_start(
    rng: np.random.Generator,
    pos: np.ndarray,
    vel: np.ndarray,
    placed: list[int],
    drag: np.ndarray,
    decel: np.ndarray,
) -> None:
    """Set some of the `placed` objects sliding at frame 0 (their `vel`, in place), often
    at another object they can reach."""
    for i in placed:
        if rng.random() < P_SLIDING_AT_START:  # some objects are already sliding at frame 0
            heading = rng.uniform(-math.pi, math.pi)
            speed = rng.uniform(*START_SPEED_PX) / px_per_unit(pos[i, 1])
            if rng.random() < P_AIMED:  # often at another object
                others = pos[[j for j in placed if j != i]]
                reach = _reach(speed, drag[i], decel[i])
                aimed = _aim(rng, pos[i], others, heading, math.pi, reach)
                heading = heading if aimed is None else aimed
            vel[i] = speed * np.array([math.cos(heading), math.sin(heading)])


def entry_velocity(
    rng: np.random.Generator,
    i: int,
    pos: np.ndarray,
    vel: np.ndarray,
    on_floor: np.ndarray,
    entry: tuple[float, float],
    drag: float,
    decel: float,
) -> np.ndarray:
    """The velocity (2,) of object `i` entering now with its `entry` (heading, floor speed):
    mostly aimed at an object resting in view among those `on_floor`, from another border
    point (pos[i], changed in place) when none is in reach."""
    heading, speed = entry
    if rng.random() < P_AIMED:  # most head for an object resting in view
        resting = on_floor & _on_screen(pos) & (np.hypot(vel[:, 0], vel[:, 1]) == 0)
        reach = _reach(speed, drag, decel)
        for _ in range(ENTRY_TRIES):  # from another border point when none is in reach
            aimed = _aim(rng, pos[i], pos[resting], heading, ENTRY_CONE, reach)
            if aimed is not None or not resting.any():
                break
            pos[i], heading, speed = _entry(rng)
            reach = _reach(speed, drag, decel)
        heading = heading if aimed is None else aimed
    return speed * np.array([math.cos(heading), math.sin(heading)])


def _reach(speed: float, drag: float, decel: float) -> float:
    """Floor distance an object sliding at `speed` covers before friction stops it."""
    # dv/dt = -drag v - decel, integrated to rest
    return speed / drag - decel / drag**2 * math.log1p(drag * speed / decel)


def _aim(
    rng: np.random.Generator,
    start: np.ndarray,
    targets: np.ndarray,
    heading: float,
    cone: float,
    reach: float,
) -> float | None:
    """A heading from `start` at one of the floor points `targets` (K, 2) that lies within
    `cone` radians of `heading` and `reach` of `start`, passing up to AIM_OFFSET diameters
    beside its centre (many hits are glancing, as in the real videos); None when no target
    qualifies."""
    d = targets - start  # (K, 2)
    dist = np.hypot(d[:, 0], d[:, 1])  # (K,)
    off = (np.arctan2(d[:, 1], d[:, 0]) - heading + math.pi) % (2 * math.pi) - math.pi
    ok = np.flatnonzero((np.abs(off) <= cone) & (dist < reach))
    if not len(ok):
        return None
    k = rng.choice(ok)
    beside = math.asin(rng.uniform(-AIM_OFFSET, AIM_OFFSET) * 2 * RADIUS / max(dist[k], 2 * RADIUS))
    return heading + float(off[k]) + beside
