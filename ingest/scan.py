"""Find the splits, videos and frames under DATA_ROOT, ordered by number; list the litter.

Nothing here opens an image: the scan only names files. Problems visible from names alone
(a missing frame, a duplicate number, no mask.npy) are recorded on the video for validation.

Names: the course and auto layouts take `video_<id>/image_<t>.png`; the free layout takes any
folder and PNG names with a number in them (`clip_7/frame_000.png`), the last number in a name
being the video id or the frame number, always compared as numbers. Frame counts: the course
layout fixes them per split (22, hidden 11) and needs mask.npy in train and val; the auto and
free layouts take frames up to the highest number found (from 0, or from 1 in the free layout
when a video has no frame 0), and mask.npy in any split (`ingest.layout` then checks that the
videos of a split agree). A split folder that holds no video is an error.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from pathlib import Path

from convrnn_video.ingest.config import LAYOUT_CHOICES
from convrnn_video.ingest.errors import IngestError
from convrnn_video.shards.format import FRAME_RE, FRAMES, MASK_FILE, MASKED_SPLITS, SPLITS, VIDEO_RE

NUMBER_RE = re.compile(r"\d+")
LISTED = 10  # missing frames named one by one up to this many; a summary beyond
COURSE_NAMES = "DATA_ROOT/<split>/video_<id>/image_<t>.png"
FREE_NAMES = "DATA_ROOT/<split>/<folder with a number>/<PNG with a number>.png"


@dataclass(frozen=True)
class Video:
    """One video folder: its frames in numeric order and the problems its names show."""

    split: str
    key: str  # the sample key, `video_15000` (free layout: `video_<number of the folder>`)
    id: int
    path: Path
    frames: tuple[Path, ...]  # frame t at index t when nothing is missing
    mask: Path | None
    problems: tuple[tuple[str, str], ...] = ()  # (path, reason)
    length: int = 0  # frames its names promise: image_0 ... image_<length - 1> (or from 1)


@dataclass
class Scan:
    """Everything found under a data root."""

    root: Path  # as resolved, for the manifest
    base: Path  # as given: the paths of videos and frames start with it
    splits: dict[str, list[Video]] = field(default_factory=dict)
    ignored: list[str] = field(default_factory=list)  # litter, relative to root


def last_number(name: str) -> int | None:
    """The last number in `name` (`clip_07` -> 7, `frame_012` -> 12), or None."""
    numbers = NUMBER_RE.findall(name)
    return int(numbers[-1]) if numbers else None


def scan_root(root: Path, layout: str = "course", out: Path | None = None) -> Scan:
    """Scan DATA_ROOT; raise IngestError if it is missing, holds none of the splits, or has a
    split folder without a video.

    `out`, the shard folder, is not listed as litter when it sits inside DATA_ROOT.
    """
    assert layout in LAYOUT_CHOICES, layout
    root = Path(root)
    if not root.is_dir():
        raise IngestError(f"data root {root} is not a folder (expected {root}/train/video_0/...)")
    scan = Scan(root=root.resolve(), base=root)
    own = Path(out).resolve() if out is not None else None
    for entry in sorted(root.iterdir(), key=lambda p: p.name):
        if (entry.name in SPLITS and entry.is_dir()) or entry.resolve() == own:
            continue
        scan.ignored.append(entry.name)
    for split in SPLITS:
        folder = root / split
        if folder.is_dir():
            scan.splits[split] = _scan_split(folder, split, scan, layout)
    if not scan.splits:
        raise IngestError(
            f"no split folders in {root}: expected one or more of {', '.join(SPLITS)} "
            f"(found: {', '.join(p.name for p in sorted(root.iterdir())) or 'nothing'})"
        )
    _refuse_empty_splits(scan, layout)
    return scan


def _refuse_empty_splits(scan: Scan, layout: str) -> None:
    """One line for every split folder without a video: what was found, what was expected."""
    empty = [s for s, videos in scan.splits.items() if not any(v.frames for v in videos)]
    if not empty:
        return
    found = []
    for split in empty:
        litter = sorted(p for p in scan.ignored if p.startswith(f"{split}/"))
        names = ", ".join(litter[:3]) + (", ..." if len(litter) > 3 else "")
        found.append(f"{scan.base / split} (found {names or 'nothing'})")
    if layout == "free":
        advice = f"expected {FREE_NAMES}; add the videos or remove the empty folder"
    else:
        advice = (
            f"the {layout} layout expects {COURSE_NAMES}; rename them, or pass --layout free "
            "to take any folder and file names with a number in them (clip_7/frame_000.png)"
        )
    raise IngestError(f"no video in {'; '.join(found)}: {advice}; nothing was published")


def _rel(path: Path, base: Path) -> str:
    return path.relative_to(base).as_posix()  # no resolve(): video folders may be symlinks


def _scan_split(folder: Path, split: str, scan: Scan, layout: str) -> list[Video]:
    free = layout == "free"
    videos: dict[int, list[Path]] = {}
    for entry in folder.iterdir():
        number = _video_number(entry.name, free)
        if number is not None and entry.is_dir():
            videos.setdefault(number, []).append(entry)
        else:
            scan.ignored.append(_rel(entry, scan.base))
    result = []
    for number in sorted(videos):
        paths = sorted(videos[number], key=lambda p: p.name)
        video = _scan_video(paths[0], split, number, scan, layout)
        if free and len(paths) > 1:  # `clip_7` beside `take_07`: which one is video 7?
            names = ", ".join(p.name for p in paths)
            reason = f"video number {number} is taken by {len(paths)} folders ({names})"
            video = replace(video, problems=(*video.problems, (str(paths[0]), reason)))
        elif len(paths) > 1:  # `video_07` beside `video_7`: the number is taken
            scan.ignored.extend(_rel(dup, scan.base) for dup in paths[1:])
        result.append(video)
    return result


def _video_number(name: str, free: bool) -> int | None:
    if free:
        return None if name.startswith(".") else last_number(name)
    match = VIDEO_RE.fullmatch(name)
    return int(match.group(1)) if match else None


def _frame_number(name: str, free: bool) -> int | None:
    if free:
        stem, dot, suffix = name.rpartition(".")
        ok = dot and suffix.lower() == "png" and not name.startswith(".")
        return last_number(stem) if ok else None
    match = FRAME_RE.fullmatch(name)
    return int(match.group(1)) if match else None


def missing_frames(numbers: set[int], start: int, count: int, free: bool) -> str | None:
    """Why frames `start` ... `start + count - 1` are not all in `numbers`, or None. Counted
    without walking the range: a stray `image_999999999.png` costs one line, not a billion."""
    present = sorted(t for t in numbers if start <= t < start + count)
    missing = count - len(present)
    if missing == 0:
        return None
    last = start + count - 1
    if missing > LISTED:
        first = start + next((i for i, t in enumerate(present) if t != start + i), len(present))
        return f"frames {start}..{last} with gaps: first missing {first}, {missing} missing in all"
    gaps = [t for t in range(start, last + 1) if t not in numbers]  # at most files + LISTED
    if free:
        return f"missing frame(s) {', '.join(map(str, gaps))} (frames {start}..{last})"
    names = ", ".join(f"image_{t}.png" for t in gaps)
    return f"missing frame(s) {names} (expected image_{start}..image_{last})"


def _scan_video(path: Path, split: str, number: int, scan: Scan, layout: str) -> Video:
    course, free = layout == "course", layout == "free"
    found: dict[int, list[Path]] = {}
    mask = None
    for entry in path.iterdir():
        t = _frame_number(entry.name, free)
        if t is not None and entry.is_file():
            found.setdefault(t, []).append(entry)
        elif entry.name == MASK_FILE and (split in MASKED_SPLITS or not course) and entry.is_file():
            mask = entry
        else:
            scan.ignored.append(_rel(entry, scan.base))
    # auto and free: frames from 0 (free: or 1) up to the highest number found
    start = 1 if free and found and min(found) == 1 else 0
    expected = FRAMES[split] if course else max(found, default=start - 1) - start + 1
    problems = []
    if not course and not found:
        pattern = "PNGs with a number in their names" if free else "image_0.png, image_1.png, ..."
        problems.append((str(path), f"no frames (expected {pattern})"))
    reason = missing_frames(set(found), start, expected, free)
    if reason:
        problems.append((str(path), reason))
    for t in sorted(found):
        if t >= start + expected:
            problems.append(
                (str(found[t][0]), f"unexpected frame {t} (a {split} video has {expected} frames)")
            )
        if len(found[t]) > 1:
            names = ", ".join(sorted(p.name for p in found[t]))
            problems.append((str(path), f"frame {t} appears more than once ({names})"))
    if course and split in MASKED_SPLITS and mask is None:
        problems.append((str(path / MASK_FILE), f"missing {MASK_FILE} (required in {split})"))
    frames = tuple(
        sorted(found[t], key=lambda p: p.name)[0]
        for t in sorted(found)
        if start <= t < start + expected
    )
    key = f"video_{number}" if free else path.name
    return Video(split, key, number, path, frames, mask, tuple(problems), expected)
