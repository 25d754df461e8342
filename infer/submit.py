"""`submit`: a finished store with masks -> the file handed in for the course's score.

The course scores the mask of frame 22 (`image_21`, the last predicted frame) of every hidden
video, as one tensor (N, 160, 240) of class ids in video-id order. `submit` writes that tensor
(`torch.save`, uint8 by default) and, beside it, `<stem>.json`: the video ids in the tensor's
order, the frame, the shape and dtype, the split, and the sha256 of the frame checkpoint, the
segmenter and the tensor file. Both are written as `<name>.tmp`, fsynced and renamed.

The graders read uint8 class ids (0-48), shape (N, 160, 240). A store is refused, and nothing is
written, when its last predicted frame is not the videos' last frame (image_21 for the course:
the store's `video_frames` - 1, or 21 for a store that does not record it), and when it holds
another split than hidden unless `allow_split` (a dry run of the path on val, say).
"""

from __future__ import annotations

import json
import logging
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
from convrnn_video.infer.config import SubmitConfig
from convrnn_video.infer.errors import InferError, refuse_existing
from convrnn_video.ingest.writer import sha256_file
from convrnn_video.runtime.version import project_version
from convrnn_video.stores.predictions import PredStore

log = logging.getLogger(__name__)
READ_BLOCK = 64  # videos whose masks are read from the store at once
COURSE_FRAME = 21  # image_21, the 22nd frame: the one the course scores
SPLIT = "hidden"  # the split a submission is made of


def _atomic(path: Path, write) -> None:
    """Call write(file) on `path.tmp`, fsync it, then rename it to `path`."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        write(f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def submitted_frame(attrs: dict[str, Any], predicted: int) -> tuple[int, int]:
    """(the last frame a store of these attributes holds, the frame a submission is of), as
    image numbers; `predicted` is how many frames per video the store holds."""
    last = int(attrs.get("first_frame", 0)) + predicted - 1
    whole = attrs.get("video_frames")
    return last, int(whole) - 1 if whole else COURSE_FRAME


def _checked_store(cfg: SubmitConfig) -> PredStore:
    """The store, refused when it has no masks, misses videos, ends on another frame than the
    videos' last, or holds another split than hidden (unless cfg.allow_split)."""
    store = PredStore.open(cfg.preds)
    attrs = store.attrs
    split = attrs.get("split")
    if split != SPLIT and not cfg.allow_split:
        raise InferError(
            f"{cfg.preds} holds predictions of the {split!r} split; a submission is made of the "
            f"{SPLIT} videos (`python cli.py predict --split {SPLIT}`); pass --allow-split to "
            f"write one of {split!r} anyway"
        )
    if store.masks is None:
        raise InferError(
            f"{cfg.preds} has predicted frames but no masks to submit; make them with a "
            f"segmenter: `python cli.py predict --split {attrs.get('split')} --ckpt "
            f"{attrs.get('ckpt')} --segmenter SEG.pt --out {cfg.preds} --overwrite` "
            "(SEG.pt from `python cli.py train --task segment`)"
        )
    missing = int((~store.done_mask()).sum())
    if missing:
        raise InferError(
            f"{cfg.preds} is incomplete: {missing} of {len(store)} videos are not predicted yet; "
            "rerun the same `predict` command to finish it"
        )
    last, wanted = submitted_frame(attrs, int(store.masks.shape[1]))
    if last != wanted:
        first = attrs.get("input_frames") or [attrs.get("first_frame", 0)]
        raise InferError(
            f"{cfg.preds} predicts up to image_{last}, but a submission is the mask of the "
            f"videos' last frame, image_{wanted} (frame {wanted + 1}); its model reads "
            f"{attrs.get('frames_in')} frames from image_{first[0]} and predicts "
            f"{attrs.get('frames_out')}: predict with a checkpoint whose forecast ends there"
        )
    return store


def last_masks(store: PredStore) -> np.ndarray:
    """uint8 (N, H, W): the mask of the last predicted frame of every video, in store order."""
    n, t_out = len(store), int(store.masks.shape[1])
    out = np.empty((n, *store.masks.shape[2:]), dtype=np.uint8)  # (N, H, W)
    for lo in range(0, n, READ_BLOCK):
        hi = min(n, lo + READ_BLOCK)
        out[lo:hi] = store.masks[lo:hi, t_out - 1]
    return out


def run_submit(cfg: SubmitConfig) -> dict[str, Any]:
    """Write the submission tensor and its JSON description; returns the description."""
    cfg.validate()
    out = Path(cfg.out)
    described = out.with_suffix(".json")
    refuse_existing(out, described, overwrite=cfg.overwrite)
    store = _checked_store(cfg)
    attrs = store.attrs
    frame = submitted_frame(attrs, int(store.masks.shape[1]))[0]
    if attrs.get("split") != SPLIT:
        log.warning("submit: %s holds the %r split, not %s", cfg.preds, attrs.get("split"), SPLIT)
    masks = torch.from_numpy(last_masks(store)).to(getattr(torch, cfg.dtype))  # (N, H, W)
    out.parent.mkdir(parents=True, exist_ok=True)
    _atomic(out, lambda f: torch.save(masks, f))
    summary = {
        "file": out.name,
        "sha256": sha256_file(out),
        "shape": list(masks.shape),
        "dtype": cfg.dtype,
        "split": attrs.get("split"),
        "frame": f"image_{frame}",
        "videos": len(store),
        "video_ids": [int(v) for v in store.ids()],
        "preds": str(cfg.preds),
        "ckpt": attrs.get("ckpt"),
        "ckpt_sha256": attrs.get("ckpt_sha256"),
        "segmenter": attrs.get("segmenter"),
        "segmenter_sha256": attrs.get("segmenter_sha256"),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "version": project_version(),
    }
    _atomic(described, lambda f: f.write((json.dumps(summary, indent=2) + "\n").encode()))
    log.debug("submit: wrote %s and %s", out, described)
    return {**summary, "out": str(out), "json": str(described)}
