"""`show`: input, true future and predicted frames of chosen videos, as a montage or a GIF.

Montage: per video, a row of input frames, a row of true future frames (when the split has
them) and a row of predicted frames, each tile labelled with its frame number; for a store with
masks, then a row of true masks (when the split has them) and a row of predicted masks, in the
49-colour palette of infer/palette.py.
GIF: per video, the true video beside the predicted one, frame by frame (inputs in both panes).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from infer.config import ShowConfig
from infer.errors import InferError
from infer.palette import colourize
from infer.store import PredStore

log = logging.getLogger(__name__)
LABEL_W = 110  # px of the label column
GAP = 4  # px between rows of different videos
BG = (255, 255, 255)


def parse_video(name: str) -> int:
    """`video_1000` or `1000` -> 1000."""
    text = name.strip().removeprefix("video_")
    if not text.isdigit():
        raise InferError(f"not a video name: {name!r} (expected video_<id> or <id>)")
    return int(text)


def load_inputs(
    shards: str,
    split: str,
    ids: list[int],
    frames: tuple[int, int],
    masks: bool = False,
) -> dict[int, dict[str, np.ndarray | None]]:
    """{id: {"inputs": (T_in, H, W, 3), "truth": (T_out, H, W, 3) or None, "true_masks":
    (T_out, H, W) or None}} uint8 from the shards; true masks only with `masks` and when the
    split has them."""
    from shards.loader import make_loader
    from shards.manifest import read_manifest, split_entry

    frames_in, frames_out = frames
    masks = masks and bool(split_entry(read_manifest(shards), split, shards).get("masks"))
    wanted, found = set(ids), {}
    loader = make_loader(
        shards,
        [split],
        mode="eval",
        batch_size=4,
        frames_in=frames_in,
        frames_out=frames_out,
        masks=masks,
    )

    def u8(x) -> np.ndarray:  # (T, 3, H, W) float -> (T, H, W, 3) uint8
        return (x.clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).numpy()

    for batch in loader:
        for i, vid in enumerate(batch["ids"]):
            if vid in wanted:
                targets, true_masks = batch["targets"], batch["masks"]
                found[vid] = {
                    "inputs": u8(batch["inputs"][i]),
                    "truth": None if targets is None else u8(targets[i]),
                    "true_masks": None
                    if true_masks is None
                    else true_masks[i, frames_in : frames_in + frames_out].numpy(),
                }
        if len(found) == len(wanted):
            break  # eval order is by id: no need to read the rest of the split
    absent = sorted(wanted - set(found))
    if absent:
        raise InferError(
            f"video(s) {', '.join(f'video_{v}' for v in absent)} not found in the "
            f"{split!r} shards of {shards}"
        )
    return found


def _font(size: int) -> ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def _row(
    label: str,
    frames: np.ndarray,
    first: int,
    tile: tuple[int, int],
    cols: int,
    resample: Image.Resampling = Image.Resampling.BILINEAR,
) -> Image.Image:
    """One labelled row of frame tiles (frame numbers start at `first`)."""
    w, h = tile
    row = Image.new("RGB", (LABEL_W + cols * w, h), BG)
    draw = ImageDraw.Draw(row)
    draw.multiline_text((6, h // 2 - 14), label, fill=(0, 0, 0), font=_font(13))
    for t, frame in enumerate(frames):
        x = LABEL_W + t * w
        row.paste(Image.fromarray(frame).resize(tile, resample), (x, 0))
        draw.text(
            (x + 3, 2),
            str(first + t),
            fill=(255, 255, 0),
            font=_font(12),
            stroke_width=1,
            stroke_fill=(0, 0, 0),
        )
    return row


def montage(videos: dict[int, dict[str, Any]], frames_in: int, scale: float) -> Image.Image:
    """Rows of input, true and predicted frames for each video (then the true and predicted
    masks, when known), stacked vertically."""
    tile = (round(240 * scale), round(160 * scale))
    cols = max(frames_in, max(len(v["pred"]) for v in videos.values()))
    rows = []
    for vid, v in videos.items():
        rows.append(_row(f"video_{vid}\ninput", v["inputs"], 0, tile, cols))
        if v["truth"] is not None:
            rows.append(_row(f"video_{vid}\ntrue", v["truth"], frames_in, tile, cols))
        rows.append(_row(f"video_{vid}\npredicted", v["pred"], frames_in, tile, cols))
        for kind in ("true", "predicted"):
            mask = v.get(f"{kind}_masks")
            if mask is not None:  # class ids in the palette's colours
                label = f"video_{vid}\n{kind} mask"
                nearest = Image.Resampling.NEAREST  # no blended colours between classes
                rows.append(_row(label, colourize(mask), frames_in, tile, cols, nearest))
        rows.append(Image.new("RGB", (rows[-1].width, GAP), (200, 200, 200)))
    out = Image.new("RGB", (rows[0].width, sum(r.height for r in rows[:-1])), BG)
    y = 0
    for r in rows[:-1]:
        out.paste(r, (0, y))
        y += r.height
    return out


def animation(videos: dict[int, dict[str, Any]], scale: float) -> list[Image.Image]:
    """GIF frames: per video a row [true | predicted], inputs first, then the future."""
    tile = (round(240 * scale), round(160 * scale))
    t_in = len(next(iter(videos.values()))["inputs"])
    t_all = t_in + len(next(iter(videos.values()))["pred"])
    pictures = []
    for t in range(t_all):
        canvas = Image.new("RGB", (LABEL_W + 2 * tile[0] + GAP, len(videos) * tile[1]), BG)
        draw = ImageDraw.Draw(canvas)
        for r, (vid, v) in enumerate(videos.items()):
            y = r * tile[1]
            if t < t_in:
                left = right = v["inputs"][t]
            else:
                right = v["pred"][t - t_in]
                left = v["truth"][t - t_in] if v["truth"] is not None else np.zeros_like(right)
            for k, frame in enumerate((left, right)):
                tile_img = Image.fromarray(frame).resize(tile, Image.Resampling.BILINEAR)
                canvas.paste(tile_img, (LABEL_W + k * (tile[0] + GAP), y))
            kind = "input" if t < t_in else "true | predicted"
            draw.multiline_text(
                (6, y + 6), f"video_{vid}\nframe {t}\n{kind}", fill=(0, 0, 0), font=_font(12)
            )
        pictures.append(canvas)
    return pictures


def run_show(cfg: ShowConfig) -> dict[str, Any]:
    """Draw the chosen videos of the store `cfg.preds` into `cfg.out` (PNG, or GIF)."""
    cfg.validate()
    ids = [parse_video(v) for v in cfg.videos]
    store = PredStore.open(cfg.preds)
    attrs = store.attrs
    positions = store.positions(ids)
    not_done = [f"video_{i}" for i, p in zip(ids, positions, strict=True) if not store.done[p]]
    if not_done:
        raise InferError(f"{', '.join(not_done)} not predicted yet in {cfg.preds}; finish predict")
    frames_in, frames_out = int(attrs["frames_in"]), int(store.frames.shape[1])
    split, with_masks = attrs["split"], store.masks is not None
    loaded = load_inputs(cfg.shards, split, ids, (frames_in, frames_out), masks=with_masks)
    videos = {vid: loaded[vid] for vid in ids}  # in the order asked for
    preds = store.read(positions)  # (B, T_out, H, W, 3)
    pred_masks = store.read_masks(positions) if with_masks else [None] * len(ids)  # (B, T, H, W)
    for vid, pred, mask in zip(ids, preds, pred_masks, strict=True):
        videos[vid].update(pred=pred, predicted_masks=mask)

    out = Path(cfg.out)
    if cfg.gif and out.suffix.lower() != ".gif":
        out = out.with_suffix(".gif")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    if cfg.gif:
        pictures = animation(videos, cfg.scale)
        pictures[0].save(
            tmp, format="GIF", save_all=True, append_images=pictures[1:], duration=300, loop=0
        )
    else:
        montage(videos, frames_in, cfg.scale).save(tmp, format="PNG")
    os.replace(tmp, out)
    log.debug("show: wrote %s", out)
    return {
        "out": str(out),
        "videos": [f"video_{i}" for i in ids],
        "split": split,
        "truth": all(v["truth"] is not None for v in videos.values()),
        "masks": with_masks,
    }
