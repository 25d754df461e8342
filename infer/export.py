"""`export-png`: a finished prediction store -> DIR/video_<id>/image_<t>.png.

`image_<t>` is numbered like the input frames: a store whose first predicted frame is 11 and
that holds 11 frames exports image_11.png ... image_21.png, and by default only image_21.png
(the 22nd frame, the course task). Each PNG is written as `<name>.tmp` and renamed, so an
interrupted export never leaves a half-written image under a real name.
"""

from __future__ import annotations

import logging
import os
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from tqdm import tqdm

from infer.config import ExportConfig
from infer.errors import InferError
from infer.store import PredStore

log = logging.getLogger(__name__)
READ_BLOCK = 16  # videos read from the store at once (decoded in parallel by Zarr)


def save_png(path: Path, frame: np.ndarray) -> None:
    """Write one (H, W, 3) uint8 frame as an RGB PNG, atomically."""
    tmp = path.with_name(path.name + ".tmp")
    Image.fromarray(frame, mode="RGB").save(tmp, format="PNG")
    os.replace(tmp, path)


def _save_video(folder: Path, frames: np.ndarray, names: dict[int, str]) -> int:
    folder.mkdir(parents=True, exist_ok=True)
    for t, name in names.items():
        save_png(folder / name, frames[t])
    return len(names)


def frame_names(store: PredStore, which: str) -> dict[int, str]:
    """{index in the store's frame axis: file name} of the frames to export."""
    first = int(store.attrs.get("first_frame", 0))
    t_out = int(store.frames.shape[1])
    indices = [t_out - 1] if which == "last" else list(range(t_out))
    return {t: f"image_{first + t}.png" for t in indices}


def run_export(cfg: ExportConfig) -> dict[str, Any]:
    """Export the done videos of `cfg.preds` as PNG folders under `cfg.out`; returns a summary."""
    cfg.validate()
    store = PredStore.open(cfg.preds)
    done = store.done_mask()
    missing = int((~done).sum())
    if missing and not cfg.partial:
        raise InferError(
            f"{cfg.preds} is incomplete: {missing} of {len(done)} videos are not predicted yet; "
            "rerun the same `predict` command to finish it, or pass --partial to export the rest"
        )
    ids = store.ids()
    positions = np.flatnonzero(done)
    names = frame_names(store, cfg.frames)
    out = Path(cfg.out)

    existing = [
        out / f"video_{ids[p]}" / n
        for p in positions
        for n in names.values()
        if (out / f"video_{ids[p]}" / n).exists()
    ]
    if existing and not cfg.overwrite:
        raise InferError(
            f"{len(existing)} PNG file(s) already exist under {out} (e.g. "
            f"{existing[0]}); pass --overwrite to replace them, or another --out"
        )

    start, files = time.perf_counter(), 0
    bar = tqdm(total=len(positions), unit="video", desc="export-png", disable=not cfg.progress)
    pending: deque[Future] = deque()
    with ThreadPoolExecutor(max_workers=cfg.workers) as pool:
        for lo in range(0, len(positions), READ_BLOCK):
            block = positions[lo : lo + READ_BLOCK]
            frames = store.read(block)  # (b, T_out, H, W, 3)
            for p, video in zip(block, frames, strict=True):
                pending.append(pool.submit(_save_video, out / f"video_{ids[p]}", video, names))
            while len(pending) > 4 * cfg.workers:  # bound the frames held in memory
                files += pending.popleft().result()
                bar.update(1)
        for fut in pending:
            files += fut.result()
            bar.update(1)
    bar.close()
    seconds = time.perf_counter() - start
    summary = {
        "out": str(out),
        "videos": len(positions),
        "files": files,
        "missing": missing,
        "frames": list(names.values()),
        "seconds": round(seconds, 3),
    }
    log.debug("export-png: %s", summary)
    return summary
