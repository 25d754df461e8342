"""`export-png`: a finished prediction store -> DIR/video_<id>/image_<t>.png.

`image_<t>` is numbered like the input frames: a store whose first predicted frame is 11 and
that holds 11 frames exports image_11.png ... image_21.png, and by default only image_21.png
(the 22nd frame, the course task). With `--masks` each exported frame gets its predicted mask
beside it, `mask_<t>.png`: a palette PNG whose pixel values are the class ids, drawn in the
fixed 49-colour palette of infer/palette.py. A masks-only store (a mask-forecasting checkpoint:
no `frames` array) exports only the mask PNGs, with `--masks`. Frames are written as they are
stored: RGB PNGs for 3 channels, grayscale ("L") PNGs for 1, at the stored height and width.
Each PNG is written as `<name>.tmp` and renamed, so an interrupted export never leaves a
half-written image under a real name.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from convrnn_video.infer.config import ExportConfig
from convrnn_video.infer.errors import InferError
from convrnn_video.infer.palette import mask_image
from convrnn_video.stores.predictions import MAKE_MASKS, PredStore
from PIL import Image
from tqdm import tqdm

log = logging.getLogger(__name__)
READ_BLOCK = 16  # videos read from the store at once (decoded in parallel by Zarr)


def frame_image(frame: np.ndarray) -> Image.Image:
    """One uint8 frame as a picture: (H, W, 3) -> RGB, (H, W, 1) or (H, W) -> grayscale (L)."""
    if frame.ndim == 3 and frame.shape[-1] == 1:
        frame = frame[..., 0]  # (H, W)
    if frame.ndim == 2:
        return Image.fromarray(np.ascontiguousarray(frame), mode="L")
    if frame.ndim == 3 and frame.shape[-1] == 3:
        return Image.fromarray(np.ascontiguousarray(frame), mode="RGB")
    raise ValueError(f"a frame is (H, W, 3) or (H, W, 1) uint8, got shape {frame.shape}")


def save_png(path: Path, frame: np.ndarray) -> None:
    """Write one uint8 frame, (H, W, 3) as an RGB PNG or (H, W, 1) as a grayscale one,
    atomically."""
    _save_image(path, frame_image(frame))


def save_mask_png(path: Path, mask: np.ndarray) -> None:
    """Write one (H, W) mask of class ids as a palette PNG (infer/palette.py), atomically."""
    _save_image(path, mask_image(mask))


def _save_image(path: Path, img: Image.Image) -> None:
    tmp = path.with_name(path.name + ".tmp")
    img.save(tmp, format="PNG")
    os.replace(tmp, path)


def _save_video(
    folder: Path,
    frames: np.ndarray | None,
    masks: np.ndarray | None,
    names: dict[int, str],
) -> int:
    """Write the frames (T_out, H, W, C) and masks (T_out, H, W) at `names`' indices, either
    of them None when not exported; returns the files written."""
    folder.mkdir(parents=True, exist_ok=True)
    files = 0
    for t, name in names.items():
        if frames is not None:
            save_png(folder / name, frames[t])
            files += 1
        if masks is not None:
            save_mask_png(folder / mask_name(name), masks[t])
            files += 1
    return files


def mask_name(frame_name: str) -> str:
    """`image_21.png` -> `mask_21.png`."""
    return "mask_" + frame_name.removeprefix("image_")


def frame_names(store: PredStore, which: str) -> dict[int, str]:
    """{index in the store's frame axis: file name} of the frames to export."""
    first = int(store.attrs.get("first_frame", 0))
    t_out = store.shape[0]
    indices = [t_out - 1] if which == "last" else list(range(t_out))
    return {t: f"image_{first + t}.png" for t in indices}


def _checked_store(cfg: ExportConfig) -> tuple[PredStore, int]:
    """(store, videos not done), refused when it misses videos (without --partial) or has
    no masks to export (with --masks)."""
    store = PredStore.open(cfg.preds)
    missing = int((~store.done_mask()).sum())
    if missing and not cfg.partial:
        raise InferError(
            f"{cfg.preds} is incomplete: {missing} of {len(store)} videos are not predicted yet; "
            "rerun the same `predict` command to finish it, or pass --partial to export the rest"
        )
    if cfg.masks and store.masks is None:
        raise InferError(f"{cfg.preds} holds no masks to export with --masks; {MAKE_MASKS}")
    if store.frames is None and not cfg.masks:
        raise InferError(
            f"{cfg.preds} holds only masks (a mask-forecasting checkpoint), no frames; "
            "export them with --masks"
        )
    return store, missing


def exported_files(store: PredStore, names: dict[int, str], masks: bool) -> list[str]:
    """The file names each video folder gets: its frames (when the store has them), then
    its masks (with `masks`)."""
    frames = list(names.values()) if store.frames is not None else []
    return frames + ([mask_name(n) for n in names.values()] if masks else [])


def run_export(cfg: ExportConfig) -> dict[str, Any]:
    """Export the done videos of `cfg.preds` as PNG folders under `cfg.out`; returns a summary."""
    cfg.validate()
    store, missing = _checked_store(cfg)
    ids = store.ids()
    positions = np.flatnonzero(store.done_mask())
    names = frame_names(store, cfg.frames)
    files = exported_files(store, names, cfg.masks)
    out = Path(cfg.out)
    existing = [
        out / f"video_{ids[p]}" / n
        for p in positions
        for n in files
        if (out / f"video_{ids[p]}" / n).exists()
    ]
    if existing and not cfg.overwrite:
        raise InferError(
            f"{len(existing)} PNG file(s) already exist under {out} (e.g. "
            f"{existing[0]}); pass --overwrite to replace them, or another --out"
        )
    start = time.perf_counter()
    written = _write_pngs(cfg, store, positions, names, out)
    summary = {
        "out": str(out),
        "videos": len(positions),
        "files": written,
        "missing": missing,
        "frames": files,
        "seconds": round(time.perf_counter() - start, 3),
    }
    log.debug("export-png: %s", summary)
    return summary


def _write_pngs(
    cfg: ExportConfig, store: PredStore, positions: np.ndarray, names: dict[int, str], out: Path
) -> int:
    """Encode the PNGs of the videos at `positions` on `cfg.workers` threads; returns files."""
    ids, files = store.ids(), 0
    # a bar on a terminal only (off one, \r-updates fill a log), and not under --quiet
    shown = cfg.progress and sys.stderr.isatty() and log.isEnabledFor(logging.INFO)
    bar = tqdm(total=len(positions), unit="video", desc="export-png", disable=not shown)
    pending: deque[Future] = deque()
    with ThreadPoolExecutor(max_workers=cfg.workers) as pool:
        for lo in range(0, len(positions), READ_BLOCK):
            block = positions[lo : lo + READ_BLOCK]
            none = [None] * len(block)
            frames = store.read(block) if store.frames is not None else none  # (b, T, H, W, C)
            masks = store.read_masks(block) if cfg.masks else none  # (b, T_out, H, W)
            for p, video, mask in zip(block, frames, masks, strict=True):
                folder = out / f"video_{ids[p]}"
                pending.append(pool.submit(_save_video, folder, video, mask, names))
            while len(pending) > 4 * cfg.workers:  # bound the frames held in memory
                files += pending.popleft().result()
                bar.update(1)
        for fut in pending:
            files += fut.result()
            bar.update(1)
    bar.close()
    return files
