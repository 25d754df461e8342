"""Shaded, anti-aliased objects and soft shadows, each drawn only inside its bounding box.

Every function returns a sprite (ix0, iy0, alpha (h, w), rgb (h, w, 3)) clipped to the image:
coverage comes from signed distances to the projected outline, so edges are anti-aliased
without supersampling. Shading: rubber is matte (two lights), metal adds reflections of the
floor and sky and sharp highlights.
"""

from __future__ import annotations

import math

import numpy as np

from . import scene as sc
from .config import HEIGHT, WIDTH

# (ix0, iy0, alpha (h, w) float32 coverage, rgb (h, w, 3) float32): one object, clipped
Sprite = tuple[int, int, np.ndarray, np.ndarray]

PALETTE = np.array(
    [
        (87, 87, 87),  # gray
        (173, 35, 35),  # red
        (42, 75, 215),  # blue
        (29, 105, 20),  # green
        (129, 74, 25),  # brown
        (41, 208, 208),  # cyan
        (129, 38, 192),  # purple
        (255, 238, 51),  # yellow
    ],
    dtype=np.float32,
)
SPHERE_R = 0.43  # world units; all three shapes have about the same bulk
CUBE_HALF = 0.405
CYL_R, CYL_H = 0.44, 0.84
EDGE = 2.4  # px over which an edge fades: soft, like the real downsampled renders

# Lights in world coordinates: a key light from the upper right and behind (shadows fall to the
# lower left) and a fill light from the camera side.
_KEY = np.array([0.75, 1.2, 0.55]) / np.linalg.norm([0.75, 1.2, 0.55])
_FILL = np.array([-0.4, 0.8, -1.0]) / np.linalg.norm([-0.4, 0.8, -1.0])
# Camera axes in world coordinates: right, up, towards the viewer.
_RIGHT = np.array([1.0, 0.0, 0.0])
_UP = np.array([0.0, math.cos(sc.PITCH), math.sin(sc.PITCH)])
_BACK = np.array([0.0, math.sin(sc.PITCH), -math.cos(sc.PITCH)])


def _grid(x0: float, x1: float, y0: float, y1: float) -> tuple[int, int, np.ndarray, np.ndarray]:
    """Pixel-centre coordinates of the clipped box [x0, x1) x [y0, y1): (ix0, iy0, X, Y)."""
    ix0, iy0 = max(int(math.floor(x0)), 0), max(int(math.floor(y0)), 0)
    ix1, iy1 = min(int(math.ceil(x1)), WIDTH), min(int(math.ceil(y1)), HEIGHT)
    xs = np.arange(ix0, max(ix1, ix0), dtype=np.float32) + 0.5
    ys = np.arange(iy0, max(iy1, iy0), dtype=np.float32) + 0.5
    return ix0, iy0, xs[None, :], ys[:, None]


def _cover(sd: np.ndarray) -> np.ndarray:
    """Signed distance in px (positive outside) -> coverage 0..1."""
    return np.clip(0.5 - sd / EDGE, 0.0, 1.0)


def _ellipse_sd(dx: np.ndarray, dy: np.ndarray, a: float, b: float) -> np.ndarray:
    """Approximate signed distance (px) to the ellipse with semi-axes a, b."""
    q = np.sqrt((dx / a) ** 2 + (dy / b) ** 2) + 1e-6
    grad = np.sqrt((dx / a**2) ** 2 + (dy / b**2) ** 2) / q + 1e-6
    return (q - 1.0) / grad


def _polygon_sd(px: np.ndarray, py: np.ndarray, poly: np.ndarray) -> np.ndarray:
    """Signed distance (px, exact inside, approximate outside) to a convex polygon (K, 2)."""
    cx, cy = poly.mean(axis=0)
    ex, ey = np.roll(poly, -1, axis=0).T - poly.T
    norm = np.hypot(ex, ey) + 1e-9
    # orient the edge normals outwards: the centroid must lie on their inner side
    flip = np.where((cx - poly[:, 0]) * ey - (cy - poly[:, 1]) * ex > 0, -1.0, 1.0) / norm
    # d_k = n_k . p - c_k for every edge k at once: (K, h, w), then the largest
    nx, ny = (ey * flip).astype(np.float32), (-ex * flip).astype(np.float32)
    c = (poly[:, 0] * nx + poly[:, 1] * ny).astype(np.float32)
    d = nx[:, None, None] * px[None] + ny[:, None, None] * py[None] - c[:, None, None]
    return d.max(axis=0)


def _hull(points: np.ndarray) -> np.ndarray:
    """Convex hull (monotone chain) of a few 2-D points."""
    pts = sorted(map(tuple, points))

    def cross(o: tuple, a: tuple, b: tuple) -> float:
        return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])

    lower: list = []
    upper: list = []
    for p in pts:
        while len(lower) >= 2 and cross(lower[-2], lower[-1], p) <= 0:
            lower.pop()
        lower.append(p)
    for p in reversed(pts):
        while len(upper) >= 2 and cross(upper[-2], upper[-1], p) <= 0:
            upper.pop()
        upper.append(p)
    return np.array(lower[:-1] + upper[:-1])


def _shade(n: np.ndarray, base: np.ndarray, metal: bool) -> np.ndarray:
    """World normals (..., 3) -> colour (..., 3): matte rubber, or metal with highlights."""
    key = np.clip(n @ _KEY, 0.0, None)[..., None]
    fill = np.clip(n @ _FILL, 0.0, None)[..., None]
    diff = 0.65 * key + 0.45 * fill
    if not metal:
        return base * (0.16 + 0.5 * diff) + 38.0 + 10.0 * diff
    nv = (n @ _BACK)[..., None]
    refl = 2.0 * nv * n - _BACK  # mirror direction of the view ray
    sky = np.clip(refl[..., 1:2], 0.0, 1.0)
    ground = np.clip(-refl[..., 1:2], 0.0, 1.0)
    spec = np.clip(refl @ _KEY, 0.0, None)[..., None] ** 24
    spec2 = np.clip(refl @ _FILL, 0.0, None)[..., None] ** 40
    col = base * (0.12 + 0.55 * diff + 0.35 * sky) + 60.0 * ground * (0.5 + base / 510.0)
    return col + 230.0 * spec + 120.0 * spec2


def draw_sphere(x: float, z: float, base: np.ndarray, metal: bool) -> Sprite:
    """(ix0, iy0, alpha (h, w), rgb (h, w, 3)) of a sphere resting on the floor at (x, z)."""
    (cx, cy), depth = sc.project(np.array([x, SPHERE_R, z]))
    rr = sc.FOCAL * SPHERE_R / depth
    ix0, iy0, px, py = _grid(cx - rr - 2, cx + rr + 2, cy - rr - 2, cy + rr + 2)
    u, v = (px - cx) / rr, (py - cy) / rr
    d2 = u * u + v * v
    alpha = _cover((np.sqrt(d2) - 1.0) * rr)
    w = np.sqrt(np.clip(1.0 - d2, 0.0, 1.0))
    n = u[..., None] * _RIGHT - v[..., None] * _UP + w[..., None] * _BACK
    n /= np.linalg.norm(n, axis=-1, keepdims=True) + 1e-6
    return ix0, iy0, alpha, _shade(n, base, metal)


def draw_cylinder(x: float, z: float, base: np.ndarray, metal: bool) -> Sprite:
    """A vertical cylinder standing on the floor at (x, z)."""
    pts = np.array([[x, 0.0, z], [x, CYL_H, z]])
    (bot, top), depth = sc.project(pts)
    cam = np.array([0.0, sc.CAM_HEIGHT, 0.0])
    # semi-axes of the bottom and top circles: width by depth, height by the view's elevation
    a_b, a_t = (sc.FOCAL * CYL_R / depth).tolist()
    b_b = a_b * sc.CAM_HEIGHT / np.linalg.norm(pts[0] - cam)
    b_t = a_t * (sc.CAM_HEIGHT - CYL_H) / np.linalg.norm(pts[1] - cam)
    ix0, iy0, px, py = _grid(
        min(bot[0] - a_b, top[0] - a_t) - 2,
        max(bot[0] + a_b, top[0] + a_t) + 2,
        top[1] - b_t - 2,
        bot[1] + b_b + 2,
    )
    sd_top = _ellipse_sd(px - top[0], py - top[1], a_t, b_t)
    sd_bot = _ellipse_sd(px - bot[0], py - bot[1], a_b, b_b)
    body = np.array(
        [
            [top[0] - a_t, top[1]],
            [top[0] + a_t, top[1]],
            [bot[0] + a_b, bot[1]],
            [bot[0] - a_b, bot[1]],
        ]
    )
    alpha = _cover(np.minimum(np.minimum(sd_top, sd_bot), _polygon_sd(px, py, body)))
    f = np.clip((py - top[1]) / max(bot[1] - top[1], 1e-3), 0.0, 1.0)  # 0 at top, 1 at bottom
    u = np.clip((px - (top[0] + f * (bot[0] - top[0]))) / (a_t + f * (a_b - a_t)), -1.0, 1.0)
    side_n = np.stack([u, np.zeros_like(u), -np.sqrt(1.0 - u * u)], axis=-1)
    side = _shade(side_n, base, metal)
    top_col = _shade(np.array([0.0, 1.0, 0.0]), base, metal)
    t = _cover(sd_top)[..., None]
    return ix0, iy0, alpha, t * top_col + (1.0 - t) * side


def draw_cube(x: float, z: float, angle: float, base: np.ndarray, metal: bool) -> Sprite:
    """A cube resting on the floor at (x, z), turned by `angle` about the vertical."""
    s = CUBE_HALF
    c, si = math.cos(angle), math.sin(angle)
    ax1, ax2 = np.array([c, 0.0, si]), np.array([-si, 0.0, c])  # the two horizontal face normals
    centre = np.array([x, s, z])
    corners = np.array(
        [
            centre + i * s * ax1 + j * s * ax2 + k * s * np.array([0.0, 1.0, 0.0])
            for i in (-1, 1)
            for j in (-1, 1)
            for k in (-1, 1)
        ]
    )
    img, _ = sc.project(corners)  # (8, 2); corner index = 4*(i>0) + 2*(j>0) + (k>0)
    x0, y0 = img.min(axis=0) - 2
    x1, y1 = img.max(axis=0) + 2
    ix0, iy0, px, py = _grid(x0, x1, y0, y1)
    alpha = _cover(_polygon_sd(px, py, _hull(img)))
    cam = np.array([0.0, sc.CAM_HEIGHT, 0.0])
    faces = [(np.array([0.0, 1.0, 0.0]), [1, 3, 7, 5])]  # top
    for nrm, idx in (
        (ax1, [4, 5, 7, 6]),
        (-ax1, [0, 1, 3, 2]),
        (ax2, [2, 3, 7, 6]),
        (-ax2, [0, 1, 5, 4]),
    ):
        if np.dot(nrm, cam - (centre + s * nrm)) > 0:  # faces the camera
            faces.append((nrm, idx))
    rgb = np.zeros((py.shape[0], px.shape[1], 3), dtype=np.float32)
    total = np.full((py.shape[0], px.shape[1], 1), 1e-6, dtype=np.float32)
    for nrm, idx in faces:
        w = np.clip(1.5 - _polygon_sd(px, py, img[idx]), 0.0, 1.0)[..., None]
        # a slight gradient across each face, brighter towards the top of the picture
        tint = 1.0 + 0.06 * (py - y0) / max(y1 - y0, 1.0) * (-1.0 if nrm[1] else 1.0)
        rgb += w * _shade(nrm, base, metal) * tint[..., None]
        total += w
    return ix0, iy0, alpha, rgb / total


def draw_shadow(x: float, z: float) -> tuple[int, int, np.ndarray]:
    """(ix0, iy0, darkness (h, w)) of the soft shadow an object casts to its lower left."""
    (cx, cy), _ = sc.project(np.array([x, 0.0, z]))
    p = float(sc.px_per_unit(z))
    sx, sy = cx - 0.6 * p, cy + 0.05 * p
    a, b = 1.05 * p, 0.45 * p
    ix0, iy0, px, py = _grid(sx - a, sx + a, sy - b, sy + b)
    q2 = ((px - sx) / a) ** 2 + ((py - sy) / b) ** 2
    return ix0, iy0, 0.16 * np.clip(1.0 - q2, 0.0, 1.0) ** 2
