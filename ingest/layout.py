"""What the videos of each split must be: `Expect`, fixed by the course layout or settled from
the videos themselves in the free layout.

Course: 22 frames (hidden 11) of 240x160 RGB, mask.npy in train and val. Free: the frame count
and the (size, mode) that most of the split's videos have (ties go to the lowest video id), and
masks when any video has one. Videos that differ from their split are marked here (frame count,
mask) or by `ingest.validate` (size, mode), so they are refused, or left out with --skip-bad,
like any other bad input.
"""

from __future__ import annotations

import warnings
from collections import Counter
from dataclasses import dataclass, replace

from PIL import Image

from ingest.scan import Scan, Video
from shards.format import (
    CHANNEL_MODES,
    CHANNELS,
    FRAMES,
    HEIGHT,
    MASK_FILE,
    MASKED_SPLITS,
    MODE_CHANNELS,
    WIDTH,
)

SAME = "every video of a split must have the same frame count, size and mode"


@dataclass(frozen=True)
class Expect:
    """The geometry every video of one split must have."""

    frames: int  # image_0 ... image_<frames - 1>
    height: int
    width: int
    mode: str  # PNG mode: RGB, or L (grayscale, free layout only)
    masks: bool  # every video carries mask.npy of shape (frames, height, width)
    like: str = ""  # free layout: " like most <split> videos", appended to mismatch messages

    @property
    def channels(self) -> int:
        """1 for L, 3 for RGB."""
        return MODE_CHANNELS[self.mode]

    def __str__(self) -> str:
        return f"{self.frames} frames of {self.height}x{self.width} (h x w) {self.mode}"


def course_expect(split: str) -> Expect:
    """The course layout's fixed geometry of `split`."""
    mode = CHANNEL_MODES[CHANNELS]
    return Expect(FRAMES[split], HEIGHT, WIDTH, mode, split in MASKED_SPLITS)


def settle(scan: Scan, layout: str) -> dict[str, Expect]:
    """Each split's Expect. In the free layout, also mark (in `scan.splits`) the videos whose
    frame count or masks differ from most of their split."""
    if layout == "course":
        return {split: course_expect(split) for split in scan.splits}
    expects = {}
    for split, videos in scan.splits.items():
        if not videos:
            continue
        expect = _free_expect(split, videos)
        scan.splits[split] = [_mark(video, expect) for video in videos]
        expects[split] = expect
    return expects


def _free_expect(split: str, videos: list[Video]) -> Expect:
    lengths = Counter(v.length for v in videos if v.length)
    frames = lengths.most_common(1)[0][0] if lengths else 0
    looks = Counter(look for v in videos if v.frames and (look := _peek(v)) is not None)
    stored = Counter({look: n for look, n in looks.items() if look[2] in MODE_CHANNELS})
    # no RGB or L video: report every frame against RGB at the most common size
    (width, height, mode), _ = (stored or looks or Counter({(0, 0, "RGB"): 1})).most_common(1)[0]
    mode = mode if mode in MODE_CHANNELS else "RGB"
    masks = any(v.mask is not None for v in videos)
    return Expect(frames, height, width, mode, masks, like=f" like most {split} videos")


def _peek(video: Video) -> tuple[int, int, str] | None:
    """(width, height, mode) from the header of the video's first frame; None if unreadable
    (`ingest.validate` then says why)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(video.frames[0]) as im:
                return im.size[0], im.size[1], im.mode
    except Exception:  # a broken file: its full decode in validate reports it
        return None


def _mark(video: Video, expect: Expect) -> Video:
    """`video` with a problem for a frame count or mask that differs from its split's."""
    problems = list(video.problems)
    if video.length and video.length != expect.frames:
        problems.append(
            (
                str(video.path),
                f"{video.length} frames, expected {expect.frames}{expect.like} ({SAME})",
            )
        )
    if expect.masks and video.mask is None:
        problems.append(
            (
                str(video.path / MASK_FILE),
                f"missing {MASK_FILE} (other {video.split} videos have one)",
            )
        )
    return (
        replace(video, problems=tuple(problems)) if len(problems) > len(video.problems) else video
    )
