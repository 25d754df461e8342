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

OUT/.export-source.json names the store an export came from (its path, checkpoint, segmenter,
split and creation time). Exporting the same store again (other frames, masks added, an
interrupted export finished) writes the files it lacks and keeps those already there (the
same store wrote them); a folder holding another store's export is refused, even where no
file name would collide (another model's masks beside these frames would be a mixed-up
result), unless --overwrite, which rewrites every file.
"""

from __future__ import annotations

import json
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
SOURCE_NAME = ".export-source.json"  # in OUT: the store the PNGs there come from
SOURCE_KEYS = ("ckpt_sha256", "segmenter_sha256", "split", "created")  # store attrs naming it


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
    keep: bool = False,
) -> int:
    """Write the frames (T_out, H, W, C) and masks (T_out, H, W) at `names`' indices, either
    of them None when not exported, leaving files already there when `keep`; returns the files
    written."""
    folder.mkdir(parents=True, exist_ok=True)
    files = 0
    for t, name in names.items():
        if frames is not None and not (keep and (folder / name).exists()):
            save_png(folder / name, frames[t])
            files += 1
        if masks is not None and not (keep and (folder / mask_name(name)).exists()):
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
    source = export_source(store, cfg.preds)
    planned = [out / f"video_{ids[p]}" / n for p in positions for n in files]
    if not cfg.overwrite:
        _check_out(out, source, planned)
    _write_source(out, source)
    start = time.perf_counter()
    written = _write_pngs(cfg, store, positions, names, out)
    summary = {
        "out": str(out),
        "videos": len(positions),
        "files": written,
        "kept": len(planned) - written,  # already there from this store (not --overwrite)
        "missing": missing,
        "frames": files,
        "seconds": round(time.perf_counter() - start, 3),
    }
    log.debug("export-png: %s", summary)
    return summary


def export_source(store: PredStore, path: str) -> dict[str, Any]:
    """What names a store's export: its resolved path and the attributes that tell two
    predictions apart."""
    return {"store": str(Path(path).resolve()), **{k: store.attrs.get(k) for k in SOURCE_KEYS}}


def _check_out(out: Path, source: dict[str, Any], planned: list[Path]) -> None:
    """Refuse an OUT that holds another store's export, or PNGs of unknown origin where this
    export writes (a rerun of the same store's export passes)."""
    marker = out / SOURCE_NAME
    if marker.is_file():
        try:
            before = json.loads(marker.read_text())
        except (OSError, ValueError):
            before = None
        if before == source:
            return  # our own files: rewritten with the same content
        what = f"the export of {before.get('store')}" if isinstance(before, dict) else "an export"
        raise InferError(
            f"{out} holds {what}, not of {source['store']}: mixing two predictions in one "
            "folder is refused; pass another --out, or --overwrite to write over it"
        )
    existing = [p for p in planned if p.exists()]
    if existing:
        raise InferError(
            f"{len(existing)} PNG file(s) already exist under {out} (e.g. "
            f"{existing[0]}); pass --overwrite to replace them, or another --out"
        )


def _write_source(out: Path, source: dict[str, Any]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / (SOURCE_NAME + ".tmp")
    tmp.write_text(json.dumps(source, indent=1) + "\n")
    os.replace(tmp, out / SOURCE_NAME)


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
                keep = not cfg.overwrite  # files there are this store's (`_check_out`)
                pending.append(pool.submit(_save_video, folder, video, mask, names, keep))
            while len(pending) > 4 * cfg.workers:  # bound the frames held in memory
                files += pending.popleft().result()
                bar.update(1)
        for fut in pending:
            files += fut.result()
            bar.update(1)
    bar.close()
    return files
