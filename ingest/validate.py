"""Read one video's files and check them: every PNG decodes fully, size, mode, mask."""

from __future__ import annotations

import io
import warnings

import numpy as np
from PIL import Image

from ingest.scan import Video
from shards.format import (
    FRAMES,
    HEIGHT,
    MASK_SUFFIX,
    META_SUFFIX,
    NUM_CLASSES,
    WIDTH,
    frame_suffix,
    sample_meta,
)

Problems = list[tuple[str, str]]  # (path, reason)


def check_png(data: bytes) -> str | None:
    """Why these bytes are not a full 240x160 RGB PNG, or None when they are."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as im:
                if im.format != "PNG":
                    return f"not a PNG (format {im.format})"
                im.load()  # a full decode: truncated or corrupt data raises here
                if im.size != (WIDTH, HEIGHT):
                    return f"size {im.size[0]}x{im.size[1]}, expected {WIDTH}x{HEIGHT} (w x h)"
                if im.mode != "RGB":
                    return f"mode {im.mode}, expected RGB"
    except Exception as exc:  # any decoder failure is a finding about the file, reported
        return f"cannot decode PNG ({type(exc).__name__}: {exc})"
    return None


def check_mask(data: bytes, frames: int) -> str | None:
    """Why these bytes are not a (frames, 160, 240) uint8 mask with values <= 48, or None."""
    try:
        mask = np.load(io.BytesIO(data), allow_pickle=False)
    except Exception as exc:  # pickled, truncated or not .npy at all
        return f"cannot load without pickle ({type(exc).__name__}: {exc})"
    if not isinstance(mask, np.ndarray):
        return f"holds a {type(mask).__name__}, expected one array"
    if mask.shape != (frames, HEIGHT, WIDTH):
        return f"shape {mask.shape}, expected {(frames, HEIGHT, WIDTH)}"
    if mask.dtype != np.uint8:
        return f"dtype {mask.dtype}, expected uint8"
    top = int(mask.max()) if mask.size else 0
    if top > NUM_CLASSES - 1:
        return f"value {top} > {NUM_CLASSES - 1} (class ids are 0..{NUM_CLASSES - 1})"
    return None


def load_video(video: Video) -> tuple[list[tuple[str, bytes]] | None, Problems]:
    """Read and check one video: its sample members in order, or None and every problem."""
    problems: Problems = list(video.problems)
    members: list[tuple[str, bytes]] = []
    for t, path in enumerate(video.frames):
        try:
            data = path.read_bytes()
        except OSError as exc:
            problems.append((str(path), f"cannot read ({exc})"))
            continue
        reason = check_png(data)
        if reason:
            problems.append((str(path), reason))
        members.append((frame_suffix(t), data))
    if video.mask is not None:
        try:
            data = video.mask.read_bytes()
        except OSError as exc:
            problems.append((str(video.mask), f"cannot read ({exc})"))
        else:
            reason = check_mask(data, FRAMES[video.split])
            if reason:
                problems.append((str(video.mask), reason))
            members.append((MASK_SUFFIX, data))
    if problems:
        return None, problems
    members.append((META_SUFFIX, sample_meta(video.split, video.key, len(video.frames))))
    return members, []
