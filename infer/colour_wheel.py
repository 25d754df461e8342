"""The colour wheel of motion pictures (show), torch-free: a displacement's direction is its
hue, its length its saturation, so still pixels are white and the farther a pixel moves, the
deeper its colour.

Directions are in image coordinates (y down): right is red, down yellow-green, left cyan, up
violet. `legend` draws the wheel itself: the colour at each point is that of a displacement
from the centre toward it, full at the rim.
"""

from __future__ import annotations

import numpy as np
from PIL import Image


def hue_rgb(angle: np.ndarray) -> np.ndarray:
    """Angles (...,) in radians -> the fully saturated colours of those hues, (..., 3) in [0, 1]
    (0 red, 2pi/3 green, 4pi/3 blue)."""
    h = np.mod(angle / (2 * np.pi), 1.0) * 6  # (...,) in [0, 6)
    r = np.clip(np.abs(h - 3) - 1, 0, 1)
    g = np.clip(2 - np.abs(h - 2), 0, 1)
    b = np.clip(2 - np.abs(h - 4), 0, 1)
    return np.stack([r, g, b], -1)


def motion_colours(flow: np.ndarray, largest: float | None = None) -> np.ndarray:
    """Displacements (..., 2, h, w) in pixels, (x, y) -> uint8 RGB (..., h, w, 3): hue the
    direction, saturation the length over `largest` (white: none; None: the largest length in
    `flow`, so the longest is drawn fully saturated)."""
    flow = np.asarray(flow, dtype=np.float32)
    dx, dy = flow[..., 0, :, :], flow[..., 1, :, :]  # (..., h, w) each
    length = np.hypot(dx, dy)
    top = float(length.max(initial=0.0)) if largest is None else float(largest)
    sat = np.clip(length / top, 0, 1) if top > 0 else np.zeros_like(length)
    rgb = 1 - sat[..., None] * (1 - hue_rgb(np.arctan2(dy, dx)))  # (..., h, w, 3): value 1
    return np.round(rgb * 255).astype(np.uint8)


def legend(diameter: int, background: tuple[int, int, int] = (255, 255, 255)) -> Image.Image:
    """The wheel as an RGB picture `diameter` px wide: each point coloured as a displacement
    from the centre toward it (full at the rim); `background` outside the disc."""
    r = diameter / 2
    centre = np.arange(diameter, dtype=np.float32) + 0.5 - r  # pixel centres from the middle
    dy, dx = np.meshgrid(centre, centre, indexing="ij")  # (d, d) each
    rgb = motion_colours(np.stack([dx, dy]), largest=r)  # (d, d, 3)
    rgb[np.hypot(dx, dy) > r] = background
    return Image.fromarray(rgb, "RGB")
