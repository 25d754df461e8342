"""The fixed 49-colour palette of mask pictures (export-png --masks, show), torch-free.

A class id is shape * 16 + material * 8 + colour + 1 (0 = background; see
../shared/dataset-spec.md, "Classes"). Each object class is drawn in the CLEVR base colour of
its kind, so a red object is red in the mask too; the shape and material set the brightness:
rubber (matte) kinds are the darker three shades, metal (shiny) kinds the lighter three, and
within a material cube < sphere < cylinder. Background is near-black, darker than every object.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from convrnn_video.shards.format import NUM_CLASSES

BACKGROUND = (20, 20, 20)
# CLEVR base colours by colour index (0 gray, 1 red, 2 blue, 3 green, 4 brown, 5 cyan,
# 6 purple, 7 yellow), before shading
CLEVR_COLOURS = (
    (87, 87, 87),
    (173, 35, 35),
    (42, 75, 215),
    (29, 105, 20),
    (129, 74, 25),
    (41, 208, 208),
    (129, 38, 192),
    (255, 238, 51),
)
SHAPES = ("cube", "sphere", "cylinder")
MATERIALS = ("metal", "rubber")
# how far toward white each (material, shape) is blended: rubber dark, metal light
TINT = {
    "rubber": {"cube": 0.0, "sphere": 0.14, "cylinder": 0.28},
    "metal": {"cube": 0.44, "sphere": 0.56, "cylinder": 0.68},
}


def class_name(class_id: int) -> str:
    """`0` -> "background", `5` -> "brown metal cube", `12` -> "green rubber cube"."""
    if class_id == 0:
        return "background"
    k = class_id - 1
    shape, material, colour = k // 16, (k // 8) % 2, k % 8
    colours = ("gray", "red", "blue", "green", "brown", "cyan", "purple", "yellow")
    return f"{colours[colour]} {MATERIALS[material]} {SHAPES[shape]}"


def _palette() -> np.ndarray:
    """uint8 (49, 3): the RGB colour of every class id."""
    table = np.zeros((NUM_CLASSES, 3), dtype=np.uint8)
    table[0] = BACKGROUND
    for k in range(NUM_CLASSES - 1):
        shape, material, colour = k // 16, (k // 8) % 2, k % 8
        base = np.asarray(CLEVR_COLOURS[colour], dtype=np.float64)
        t = TINT[MATERIALS[material]][SHAPES[shape]]
        table[k + 1] = np.round(base + (255 - base) * t)
    return table


PALETTE = _palette()


def colourize(mask: np.ndarray) -> np.ndarray:
    """Class ids (..., H, W) -> uint8 RGB (..., H, W, 3) in the palette's colours."""
    if mask.size and int(mask.max()) >= NUM_CLASSES:
        raise ValueError(f"class ids must be < {NUM_CLASSES}, got {int(mask.max())}")
    return PALETTE[mask]


def mask_image(mask: np.ndarray) -> Image.Image:
    """A palette ("P") image of one (H, W) mask: its pixel values are the class ids, shown in
    the palette's colours (`np.asarray(img)` gives the ids back, `img.convert("RGB")` colours)."""
    if mask.ndim != 2:
        raise ValueError(f"a mask image needs (H, W) class ids, got shape {mask.shape}")
    colourize(mask)  # checks the ids
    img = Image.fromarray(np.ascontiguousarray(mask, dtype=np.uint8), mode="P")
    img.putpalette(PALETTE.flatten().tolist())
    return img
