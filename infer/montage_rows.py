"""The rows of a `show` montage: one video's labelled rows of frame tiles.

Per video: a row of input frames, of true and predicted frames, of true and predicted masks (in
the palette's colours, no blending between classes) and of predicted motion (the colour wheel's
colours, with the wheel and the largest displacement in the label column); each tile labelled
with its frame number. The tile, the label column and its font are shared with the GIF.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from convrnn_video.infer.colour_wheel import legend, motion_colours
from convrnn_video.infer.palette import colourize
from PIL import Image, ImageDraw, ImageFont

LABEL_W = 110  # px of the label column
ROW_MIN_H = 36  # px: the least row height, so a two-line label fits beside small tiles
MOTION_ROW_MIN_H = 56  # px: the three label lines of a motion row beside its wheel
WHEEL = 26  # px: diameter of the motion row's colour wheel
BG = (255, 255, 255)


def label_font(size: int) -> ImageFont.ImageFont:
    """The labels' font at `size` px."""
    return ImageFont.load_default(size=size)


def tile_image(
    frame: np.ndarray,
    tile: tuple[int, int],
    resample: Image.Resampling = Image.Resampling.BILINEAR,
) -> Image.Image:
    """One uint8 frame, (H, W, 3) or grayscale (H, W, 1) / (H, W), as an RGB tile of size
    `tile` (w, h)."""
    if frame.ndim == 3 and frame.shape[-1] == 1:
        frame = frame[..., 0]  # (H, W)
    return Image.fromarray(np.ascontiguousarray(frame)).convert("RGB").resize(tile, resample)


def _row(
    label: str,
    frames: np.ndarray,
    first: int,
    tile: tuple[int, int],
    cols: int,
    resample: Image.Resampling = Image.Resampling.BILINEAR,
    min_height: int = ROW_MIN_H,
) -> Image.Image:
    """One labelled row of frame tiles (frame numbers start at `first`)."""
    w, h = tile
    height = max(h, min_height)
    row = Image.new("RGB", (LABEL_W + cols * w, height), BG)
    draw = ImageDraw.Draw(row)
    draw.multiline_text((6, max(2, height // 2 - 14)), label, fill=(0, 0, 0), font=label_font(13))
    for t, frame in enumerate(frames):
        x = LABEL_W + t * w
        row.paste(tile_image(frame, tile, resample), (x, 0))
        draw.text(
            (x + 3, 2),
            str(first + t),
            fill=(255, 255, 0),
            font=label_font(max(8, min(12, h // 4))),  # small tiles: small numbers
            stroke_width=1,
            stroke_fill=(0, 0, 0),
        )
    return row


def _motion_row(
    vid: int, flow: np.ndarray, first: int, tile: tuple[int, int], cols: int
) -> Image.Image:
    """The row of one video's predicted motion, flow (T_out, 2, h, w) in pixels as stored
    (frame k at p shows the last input frame at p + D): drawn as what moves, -D, on the grid
    (no blending between cells), the video's longest displacement fully saturated."""
    moves = -np.asarray(flow, dtype=np.float32)  # (T_out, 2, h, w)
    largest = float(np.hypot(moves[:, 0], moves[:, 1]).max(initial=0.0))
    nearest = Image.Resampling.NEAREST
    row = _row("", motion_colours(moves, largest), first, tile, cols, nearest, MOTION_ROW_MIN_H)
    size = f"{largest:.0f}" if largest >= 10 else f"{largest:.2g}"  # short: beside the wheel
    label = f"video_{vid}\nmotion\n" + (f"max {size} px" if largest else "still")
    ImageDraw.Draw(row).multiline_text(
        (6, max(2, row.height // 2 - 24)), label, fill=(0, 0, 0), font=label_font(13)
    )
    row.paste(legend(WHEEL, BG), (LABEL_W - WHEEL - 4, row.height - WHEEL - 3))
    return row


def video_rows(
    vid: int, v: dict[str, Any], frames_in: int, tile: tuple[int, int], cols: int
) -> list[Image.Image]:
    """The rows of one video: inputs, true and predicted frames (those present), then the
    true and predicted masks (those present), then the predicted motion (when stored)."""
    rows = [_row(f"video_{vid}\ninput", v["inputs"], 0, tile, cols)]
    for kind, key in (("true", "truth"), ("predicted", "pred")):
        if v.get(key) is not None:
            rows.append(_row(f"video_{vid}\n{kind}", v[key], frames_in, tile, cols))
    for kind in ("true", "predicted"):
        mask = v.get(f"{kind}_masks")
        if mask is not None:  # class ids in the palette's colours
            label = f"video_{vid}\n{kind} mask"
            nearest = Image.Resampling.NEAREST  # no blended colours between classes
            rows.append(_row(label, colourize(mask), frames_in, tile, cols, nearest))
    if v.get("motion") is not None:
        rows.append(_motion_row(vid, v["motion"], frames_in, tile, cols))
    return rows
