"""`show`: input, true future and predicted frames of chosen videos, as a montage or a GIF.

Montage: per video, a row of input frames, a row of true future frames (when the split has
them) and a row of predicted frames, each tile labelled with its frame number; for a store with
masks, then a row of true masks (when the split has them) and a row of predicted masks, in the
49-colour palette of infer/palette.py. A masks-only store (a mask-forecasting checkpoint, no
predicted frames) gets the input row and the mask rows. A store predicted with --motion (a
model with a motion output) ends each video with a motion row: each predicted frame's
displacement in the colour wheel of infer/colour_wheel.py (hue the direction things move,
saturation how far, white still), one scale per video, with the wheel and the largest
displacement in the label column.
GIF: per video, the true video beside the predicted one, frame by frame (inputs in both panes);
for a masks-only store the true masks beside the predicted ones.
Tiles follow the stored frames' size (times `scale`); grayscale frames are drawn in gray.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
from convrnn_video.infer.config import ShowConfig
from convrnn_video.infer.errors import InferError, refuse_existing
from convrnn_video.infer.montage_rows import BG, LABEL_W, label_font, tile_image, video_rows
from convrnn_video.infer.palette import colourize
from convrnn_video.shards.format import video_id
from convrnn_video.stores.predictions import PredStore
from PIL import Image, ImageDraw

log = logging.getLogger(__name__)
GIF_ROW_MIN_H = 50  # px: the least height of a GIF row, so its three label lines fit
GAP = 4  # px between rows of different videos


def parse_video(name: str) -> int:
    """`video_1000` or `1000` -> 1000; an InferError for anything else (the id is ASCII
    digits, as in the shards' keys)."""
    text = name.strip()
    try:
        return video_id(text if text.startswith("video_") else f"video_{text}")
    except ValueError:
        raise InferError(
            f"not a video name: {name!r} (expected video_<id> or <id>, digits 0-9)"
        ) from None


def load_inputs(
    shards: str,
    split: str,
    ids: list[int],
    frames: tuple[int, int],
    masks: bool = False,
) -> dict[int, dict[str, np.ndarray | None]]:
    """{id: {"inputs": (T_in, H, W, C), "truth": (T_out, H, W, C) or None, "true_masks":
    (T_out, H, W) or None}} uint8 from the shards (C = 3 for RGB, 1 for grayscale); true
    masks only with `masks` and when the split has them."""
    from convrnn_video.shards.loader import make_loader
    from convrnn_video.shards.manifest import read_manifest, split_entry

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

    def u8(x) -> np.ndarray:  # (T, C, H, W) float -> (T, H, W, C) uint8
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


def montage(
    videos: dict[int, dict[str, Any]], frames: tuple[int, int], tile: tuple[int, int]
) -> Image.Image:
    """Rows of input, true and predicted frames for each video (then the true and predicted
    masks and the predicted motion, when known), stacked vertically; `frames` is (frames_in,
    frames_out)."""
    frames_in, frames_out = frames
    cols = max(frames_in, frames_out)
    rows = []
    for vid, v in videos.items():
        rows.extend(video_rows(vid, v, frames_in, tile, cols))
        rows.append(Image.new("RGB", (rows[-1].width, GAP), (200, 200, 200)))
    out = Image.new("RGB", (rows[0].width, sum(r.height for r in rows[:-1])), BG)
    y = 0
    for r in rows[:-1]:
        out.paste(r, (0, y))
        y += r.height
    return out


def _future_panes(v: dict[str, Any], t: int) -> tuple[np.ndarray, np.ndarray]:
    """(true, predicted) pictures of future frame `t`: frames, or for a store without
    predicted frames the masks in the palette's colours; black where the truth is unknown."""
    if v.get("pred") is not None:
        right, truth = v["pred"][t], v["truth"]
    else:
        right, truth = colourize(v["predicted_masks"][t]), v.get("true_masks")
        truth = None if truth is None else colourize(truth)
    left = truth[t] if truth is not None else np.zeros_like(right)
    return left, right


def animation(
    videos: dict[int, dict[str, Any]], frames: tuple[int, int], tile: tuple[int, int]
) -> list[Image.Image]:
    """GIF frames: per video a row [true | predicted], inputs first, then the future."""
    t_in, t_out = frames
    row_h = max(tile[1], GIF_ROW_MIN_H)
    pictures = []
    for t in range(t_in + t_out):
        canvas = Image.new("RGB", (LABEL_W + 2 * tile[0] + GAP, len(videos) * row_h), BG)
        draw = ImageDraw.Draw(canvas)
        for r, (vid, v) in enumerate(videos.items()):
            y = r * row_h
            if t < t_in:
                left = right = v["inputs"][t]
            else:
                left, right = _future_panes(v, t - t_in)
            for k, frame in enumerate((left, right)):
                canvas.paste(tile_image(frame, tile), (LABEL_W + k * (tile[0] + GAP), y))
            kind = "input" if t < t_in else "true | predicted"
            draw.multiline_text(
                (6, y + 6), f"video_{vid}\nframe {t}\n{kind}", fill=(0, 0, 0), font=label_font(12)
            )
        pictures.append(canvas)
    return pictures


def _gather(
    cfg: ShowConfig, store: PredStore, ids: list[int], frames: tuple[int, int]
) -> dict[int, dict[str, Any]]:
    """{id: inputs, truth, pred, true_masks, predicted_masks, motion} of the chosen videos, in
    the order asked for; "pred" and "truth" are None for a masks-only store (no predicted
    frames), "motion" (T_out, 2, h, w) None for a store without it.
    `frames` is the store's (frames_in, frames_out)."""
    positions = store.positions(ids)
    not_done = [f"video_{i}" for i, p in zip(ids, positions, strict=True) if not store.done[p]]
    if not_done:
        raise InferError(f"{', '.join(not_done)} not predicted yet in {cfg.preds}; finish predict")
    with_frames, with_masks = store.frames is not None, store.masks is not None
    loaded = load_inputs(cfg.shards, store.attrs["split"], ids, frames, masks=with_masks)
    videos = {vid: loaded[vid] for vid in ids}  # in the order asked for
    none = [None] * len(ids)
    preds = store.read(positions) if with_frames else none  # (B, T_out, H, W, C)
    pred_masks = store.read_masks(positions) if with_masks else none  # (B, T_out, H, W)
    motion = store.read_motion(positions) if store.motion is not None else none
    if store.motion is None and store.attrs.get("model_config", {}).get("motion"):
        log.info("show: the model has a motion output; `predict --motion` stores it to draw")
    for vid, pred, mask, flow in zip(ids, preds, pred_masks, motion, strict=True):
        videos[vid].update(pred=pred, predicted_masks=mask, motion=flow)
        if not with_frames:
            videos[vid]["truth"] = None  # only inputs and masks beside a masks-only store
    return videos


def run_show(cfg: ShowConfig) -> dict[str, Any]:
    """Draw the chosen videos of the store `cfg.preds` into `cfg.out` (PNG, or GIF)."""
    cfg.validate()
    ids = [parse_video(v) for v in cfg.videos]
    store = PredStore.open(cfg.preds)
    t_out, height, width = store.shape
    frames = (int(store.attrs.get("first_frame", store.attrs["frames_in"])), t_out)  # observed
    tile = max(1, round(width * cfg.scale)), max(1, round(height * cfg.scale))  # (w, h)
    out = Path(cfg.out)
    if cfg.gif and out.suffix.lower() != ".gif":
        out = out.with_suffix(".gif")
    refuse_existing(out, overwrite=cfg.overwrite)  # before any frame is read
    videos = _gather(cfg, store, ids, frames)

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    if cfg.gif:
        pictures = animation(videos, frames, tile)
        pictures[0].save(
            tmp, format="GIF", save_all=True, append_images=pictures[1:], duration=300, loop=0
        )
    else:
        montage(videos, frames, tile).save(tmp, format="PNG")
    os.replace(tmp, out)
    log.debug("show: wrote %s", out)
    first = next(iter(videos.values()))
    return {
        "out": str(out),
        "videos": [f"video_{i}" for i in ids],
        "split": store.attrs["split"],
        "truth": first["truth"] is not None or first["true_masks"] is not None,
        "frames": store.frames is not None,
        "masks": store.masks is not None,
        "motion": store.motion is not None and not cfg.gif,
    }
