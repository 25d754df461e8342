"""What the videos of each split must be: `Expect`, fixed by the course layout or settled from
the videos themselves in the free layout; `choose_layout` picks one of the two for `auto`.

Course: 22 frames (hidden 11) of 160x240 (h x w) RGB, mask.npy in train and val. Free: the
frame count and the (size, mode) that most of the split's videos have (ties go to the lowest
video id), and masks when any video has one. Videos that differ from their split are marked
here (frame count, mask) or by `ingest.validate` (size, mode), so they are refused, or left out
with --skip-bad, like any other bad input. Auto (the default): course when most videos have the
course's geometry (so the course's data stays strictly checked, one bad video reported as
such), free when they do not but each split's videos share one geometry, and otherwise one
error line with the counts of each geometry, pointing at --layout free.
"""

from __future__ import annotations

import logging
import warnings
from collections import Counter
from dataclasses import dataclass, replace

from convrnn_video.ingest.errors import IngestError
from convrnn_video.ingest.scan import Scan, Video
from convrnn_video.shards.format import (
    CHANNEL_MODES,
    CHANNELS,
    FRAMES,
    HEIGHT,
    MASK_FILE,
    MASKED_SPLITS,
    MODE_CHANNELS,
    WIDTH,
)
from PIL import Image

log = logging.getLogger(__name__)

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


def choose_layout(scan: Scan) -> str:
    """The layout of `auto` for a scan made with it: "course" when most videos (with a readable
    first frame) have the course's geometry for their split, or when none is readable; else
    "free" when the videos of each split share one geometry (frame count, size, PNG mode).
    Raise IngestError, in one line listing the geometries and their counts, when they do not,
    or when that geometry's PNG mode is not RGB or L."""
    looks: dict[str, Counter] = {}
    example: dict[tuple, str] = {}
    course = total = 0
    for split, videos in scan.splits.items():
        looks[split] = Counter()
        for video in videos:
            peek = _peek(video) if video.frames else None
            if peek is None:  # no frame, or a broken one: validation says why
                continue
            width, height, mode = peek
            look = (video.length, height, width, mode)
            total += 1
            course += look == _course_look(split)
            looks[split][look] += 1
            example.setdefault((split, look), video.path.name)
    if total == 0 or 2 * course > total:
        return "course"
    mixed = {split: counts for split, counts in looks.items() if len(counts) > 1}
    if mixed:
        listed = "; ".join(
            f"{split}: "
            + ", ".join(
                _count(n, look, example[(split, look)], i)
                for i, (look, n) in enumerate(counts.most_common())
            )
            for split, counts in mixed.items()
        )
        raise IngestError(
            f"the videos in {scan.base} are not the course's ({_course_words()}) and the videos "
            f"of a split do not share one geometry ({listed}); pass --layout free to ingest the "
            "most common geometry of each split and list the other videos as bad, or fix them"
        )
    odd = [
        f"{s} {look[3]}"
        for s, counts in looks.items()
        for look in counts
        if look[3] not in MODE_CHANNELS
    ]
    if odd:
        raise IngestError(
            f"the videos in {scan.base} are PNGs of a mode that is not stored "
            f"({', '.join(odd)}): convert them to RGB or L (grayscale)"
        )
    shared = ", ".join(f"{s} {_words(*next(iter(c)))}" for s, c in looks.items() if c)
    log.info(
        "not the course's geometry: ingesting the one each split shares (%s) as --layout free",
        shared,
    )
    return "free"


def _course_look(split: str) -> tuple[int, int, int, str]:
    return FRAMES[split], HEIGHT, WIDTH, CHANNEL_MODES[CHANNELS]


def _course_words() -> str:
    frames, height, width, mode = _course_look("train")
    return f"{frames} frames, hidden {FRAMES['hidden']}, of {height}x{width} {mode}"


def _words(frames: int, height: int, width: int, mode: str) -> str:
    return f"{frames} frames of {height}x{width} {mode}"


def _count(n: int, look: tuple, example: str, rank: int) -> str:
    """`12 videos of 20 frames of 64x64 L` for the most common look, `1 of ... (video_4)` after."""
    if rank == 0:
        return f"{n} video{'s' * (n > 1)} of {_words(*look)}"
    return f"{n} of {_words(*look)} ({example}{', ...' if n > 1 else ''})"


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
