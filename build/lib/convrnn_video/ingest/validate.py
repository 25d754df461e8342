"""Read one video's files and check them against its split's `Expect`: every PNG decodes
fully, with the split's size and mode; the mask has the split's shape."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
from PIL import Image

from convrnn_video.ingest.layout import Expect
from convrnn_video.ingest.scan import Video
from convrnn_video.shards.format import (
    MASK_SUFFIX,
    META_SUFFIX,
    MODE_CHANNELS,
    NUM_CLASSES,
    frame_suffix,
    sample_meta,
)

Problems = list[tuple[str, str]]  # (path, reason)


def check_png(data: bytes, expect: Expect) -> str | None:
    """Why these bytes are not a full PNG of `expect`'s size and mode, or None when they are."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as im:
                if im.format != "PNG":
                    return f"not a PNG (format {im.format})"
                im.load()  # a full decode: truncated or corrupt data raises here
                if im.size != (expect.width, expect.height):
                    return (
                        f"size {im.size[0]}x{im.size[1]}, expected "
                        f"{expect.width}x{expect.height} (w x h){expect.like}"
                    )
                if im.mode != expect.mode:
                    free = expect.like and im.mode not in MODE_CHANNELS
                    hint = " (convert the PNGs to RGB or L)" if free else ""
                    return f"mode {im.mode}, expected {expect.mode}{expect.like}{hint}"
    except Exception as exc:  # any decoder failure is a finding about the file, reported
        return f"cannot decode PNG ({type(exc).__name__}: {exc})"
    return None


def check_mask(data: bytes, expect: Expect) -> str | None:
    """Why these bytes are not a (frames, height, width) uint8 mask with values <= 48, or None."""
    try:
        mask = np.load(io.BytesIO(data), allow_pickle=False)
    except Exception as exc:  # pickled, truncated or not .npy at all
        return f"cannot load without pickle ({type(exc).__name__}: {exc})"
    if not isinstance(mask, np.ndarray):
        return f"holds a {type(mask).__name__}, expected one array"
    shape = (expect.frames, expect.height, expect.width)
    if mask.shape != shape:
        return f"shape {mask.shape}, expected {shape} (frames, height, width)"
    if mask.dtype != np.uint8:
        return f"dtype {mask.dtype}, expected uint8"
    top = int(mask.max()) if mask.size else 0
    if top > NUM_CLASSES - 1:
        return f"value {top} > {NUM_CLASSES - 1} (class ids are 0..{NUM_CLASSES - 1})"
    return None


def _merge_frames(video: Video, problems: Problems) -> Problems:
    """One problem for frames that share a reason (a whole video of the wrong size is one line,
    not one per frame)."""
    by_reason: dict[str, list[str]] = {}
    for path, reason in problems:
        by_reason.setdefault(reason, []).append(path)
    merged = []
    for reason, paths in by_reason.items():
        if len(paths) == 1:
            merged.append((paths[0], reason))
        else:
            names = ", ".join(Path(p).name for p in paths[:3]) + (", ..." if len(paths) > 3 else "")
            merged.append((str(video.path), f"{len(paths)} frames ({names}): {reason}"))
    return merged


def load_video(video: Video, expect: Expect) -> tuple[list[tuple[str, bytes]] | None, Problems]:
    """Read and check one video: its sample members in order, or None and every problem."""
    problems: Problems = list(video.problems)
    frame_problems: Problems = []
    members: list[tuple[str, bytes]] = []
    for t, path in enumerate(video.frames):
        try:
            data = path.read_bytes()
        except OSError as exc:
            problems.append((str(path), f"cannot read ({exc})"))
            continue
        reason = check_png(data, expect)
        if reason:
            frame_problems.append((str(path), reason))
        members.append((frame_suffix(t), data))
    problems += _merge_frames(video, frame_problems)
    if video.mask is not None:
        try:
            data = video.mask.read_bytes()
        except OSError as exc:
            problems.append((str(video.mask), f"cannot read ({exc})"))
        else:
            reason = check_mask(data, expect)
            if reason:
                problems.append((str(video.mask), reason))
            members.append((MASK_SUFFIX, data))
    if problems:
        return None, problems
    meta = sample_meta(video.split, video.key, len(video.frames), expect.height, expect.width)
    members.append((META_SUFFIX, meta))
    return members, []
