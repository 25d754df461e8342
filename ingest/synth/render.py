"""Drawing a scene: the floor, soft shadows, and the objects far to near, with exact masks.

A pixel's mask id is the front-most object that covers at least half of it; everything else
is 0, so occluded and off-screen objects have no pixels.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from .config import HEIGHT, WIDTH
from .scene import Scene
from .shapes import PALETTE, Sprite, draw_cube, draw_cylinder, draw_shadow, draw_sphere

# The floor: a smooth fit (per channel, polynomial in x, y plus a darkening towards the top
# rows) to the median background of the real samples; the features are listed in `floor`.
_FLOOR_COEF = np.array(
    [
        [128.0, -25.0, 24.3, -1.3, 101.1, -33.9, -1.6, -9.2, -90.5, 19.5, -14.2, 19.6, -26.5],
        [128.5, -25.6, 20.0, 0.1, 103.8, -24.0, -4.9, -11.2, -89.8, 11.9, -15.3, 21.0, -24.6],
        [130.5, -38.3, 17.6, 9.0, 143.2, -39.5, 0.9, -23.0, -120.1, 25.8, -16.0, 30.0, -36.4],
    ]
)


@lru_cache(maxsize=1)
def floor() -> np.ndarray:
    """The empty floor, (H, W, 3) float32: the fitted gradient plus a fixed fine texture."""
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float64)
    x, y, e = xx / WIDTH - 0.5, yy / HEIGHT, np.exp(-yy / 10.0)
    feats = [np.ones_like(x), x, y, x * x, x * y, y * y, x**3, x * x * y, x * y * y, y**3]
    feats += [e, e * x, e * x * x]
    img = np.einsum("fhw,cf->hwc", np.stack(feats), _FLOOR_COEF)
    # a fixed fine texture, smoothed like a downsampled render's noise
    noise = np.random.default_rng(12345).normal(0.0, 2.8, size=(HEIGHT, WIDTH))
    texture = sum(np.roll(noise, (dy, dx), (0, 1)) for dy in (-1, 0, 1) for dx in (-1, 0, 1))
    texture = (texture / 9.0)[..., None]
    return (img + texture + 0.5).astype(np.float32)  # + 0.5: uint8 conversion then rounds


def render(scene: Scene, frames: int) -> tuple[np.ndarray, np.ndarray]:
    """The first `frames` frames of a scene: rgb (T, H, W, 3) uint8 and mask (T, H, W) uint8."""
    rgb_out = np.empty((frames, HEIGHT, WIDTH, 3), dtype=np.uint8)
    mask_out = np.zeros((frames, HEIGHT, WIDTH), dtype=np.uint8)
    cache: dict[int, tuple] = {}  # object -> (pose, sprite, shadow): resting objects reuse them
    last_poses = None
    for t in range(frames):
        present = [i for i in range(len(scene.ids)) if t >= scene.enter_at[i]]
        poses = [(i, *scene.pos[t, i], scene.angle[t, i] * (scene.shape[i] == 0)) for i in present]
        if poses == last_poses:  # nothing moved or entered: the same picture
            rgb_out[t], mask_out[t] = rgb_out[t - 1], mask_out[t - 1]
            continue
        last_poses = poses
        layers = []
        for i, x, z, angle in poses:
            if i not in cache or cache[i][0] != (x, z, angle):
                cache[i] = ((x, z, angle), _draw(scene, i, x, z, angle), draw_shadow(x, z))
            layers.append((z, int(scene.ids[i]), cache[i][1], cache[i][2]))
        layers.sort(key=lambda layer: -layer[0])  # far (large Z) first
        rgb_out[t] = _composite(layers, mask_out[t])
    return rgb_out, mask_out


def footprints(scene: Scene, t: int) -> dict[int, np.ndarray]:
    """Frame t's whole footprint of every object in it, as if nothing hid it: {class id:
    (H, W) bool, the pixels it covers at least half of, clipped to the picture}; objects
    wholly off the picture are left out. What a forecaster's read of partly hidden objects is
    measured against (benchmarks/footprints.py)."""
    out = {}
    for i in range(len(scene.ids)):
        if t < scene.enter_at[i]:
            continue
        x, z = scene.pos[t, i]
        ix0, iy0, alpha, _ = _draw(scene, i, x, z, scene.angle[t, i] * (scene.shape[i] == 0))
        whole = np.zeros((HEIGHT, WIDTH), dtype=bool)
        whole[iy0 : iy0 + alpha.shape[0], ix0 : ix0 + alpha.shape[1]] = alpha >= 0.5
        if whole.any():
            out[int(scene.ids[i])] = whole
    return out


def _composite(layers: list, mask: np.ndarray) -> np.ndarray:
    """Shadows on the floor, then the objects far to near; fills `mask`, returns the rgb frame."""
    img = floor().copy()
    for *_, (ix0, iy0, dark) in layers:
        h, w = dark.shape
        if h and w:
            img[iy0 : iy0 + h, ix0 : ix0 + w] *= (1.0 - dark)[..., None]
    for _, oid, (ix0, iy0, alpha, col), _ in layers:
        h, w = alpha.shape
        if h and w:
            region = img[iy0 : iy0 + h, ix0 : ix0 + w]
            region += alpha[..., None] * (col - region)
            mask[iy0 : iy0 + h, ix0 : ix0 + w][alpha >= 0.5] = oid
    return np.clip(img, 0, 255, out=img).astype(np.uint8)  # floor() holds +0.5: rounds


def _draw(scene: Scene, i: int, x: float, z: float, angle: float) -> Sprite:
    """The sprite of object i at a pose."""
    base, metal = PALETTE[scene.colour[i]], scene.material[i] == 0
    if z < 0.5:  # behind or at the camera: nothing to draw
        return 0, 0, np.zeros((0, 0), np.float32), np.zeros((0, 0, 3), np.float32)
    shape = scene.shape[i]
    if shape == 0:
        return draw_cube(x, z, angle, base, metal)
    if shape == 1:
        return draw_sphere(x, z, base, metal)
    return draw_cylinder(x, z, base, metal)
