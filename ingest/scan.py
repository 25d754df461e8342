"""Find the splits, videos and frames under DATA_ROOT, ordered by number; list the litter.

Nothing here opens an image: the scan only names files. Problems visible from names alone
(a missing frame, a duplicate number, no mask.npy) are recorded on the video for validation.
In the course layout the frame count and the masks are fixed per split; in the free layout a
video's frames are image_0 up to its highest number, and mask.npy may be in any split
(`ingest.layout` then checks that the videos of a split agree).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ingest.errors import IngestError
from shards.format import FRAME_RE, FRAMES, LAYOUTS, MASK_FILE, MASKED_SPLITS, SPLITS, VIDEO_RE


@dataclass(frozen=True)
class Video:
    """One video folder: its frames in numeric order and the problems its names show."""

    split: str
    key: str  # the folder name, `video_15000`
    id: int
    path: Path
    frames: tuple[Path, ...]  # frame t at index t when nothing is missing
    mask: Path | None
    problems: tuple[tuple[str, str], ...] = ()  # (path, reason)
    length: int = 0  # frames its names promise: image_0 ... image_<length - 1>


@dataclass
class Scan:
    """Everything found under a data root."""

    root: Path  # as resolved, for the manifest
    base: Path  # as given: the paths of videos and frames start with it
    splits: dict[str, list[Video]] = field(default_factory=dict)
    ignored: list[str] = field(default_factory=list)  # litter, relative to root


def scan_root(root: Path, layout: str = "course", out: Path | None = None) -> Scan:
    """Scan DATA_ROOT; raise IngestError if it is missing or holds none of the splits.

    `out`, the shard folder, is not listed as litter when it sits inside DATA_ROOT.
    """
    assert layout in LAYOUTS, layout
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
    return scan


def _rel(path: Path, base: Path) -> str:
    return path.relative_to(base).as_posix()  # no resolve(): video folders may be symlinks


def _scan_split(folder: Path, split: str, scan: Scan, layout: str) -> list[Video]:
    videos: dict[int, list[Path]] = {}
    for entry in folder.iterdir():
        match = VIDEO_RE.fullmatch(entry.name)
        if match and entry.is_dir():
            videos.setdefault(int(match.group(1)), []).append(entry)
        else:
            scan.ignored.append(_rel(entry, scan.base))
    result = []
    for number in sorted(videos):
        paths = sorted(videos[number], key=lambda p: p.name)
        result.append(_scan_video(paths[0], split, number, scan, layout))
        for dup in paths[1:]:  # `video_07` beside `video_7`: the number is taken
            scan.ignored.append(_rel(dup, scan.base))
    return result


def _scan_video(path: Path, split: str, number: int, scan: Scan, layout: str) -> Video:
    course = layout == "course"
    found: dict[int, list[Path]] = {}
    mask = None
    for entry in path.iterdir():
        match = FRAME_RE.fullmatch(entry.name)
        if match and entry.is_file():
            found.setdefault(int(match.group(1)), []).append(entry)
        elif entry.name == MASK_FILE and (split in MASKED_SPLITS or not course) and entry.is_file():
            mask = entry
        else:
            scan.ignored.append(_rel(entry, scan.base))
    # free layout: the frames are image_0 up to the highest number found
    expected = FRAMES[split] if course else max(found, default=-1) + 1
    problems = []
    if not course and not found:
        problems.append((str(path), "no frames (expected image_0.png, image_1.png, ...)"))
    missing = [t for t in range(expected) if t not in found]
    if missing:
        names = ", ".join(f"image_{t}.png" for t in missing)
        expect = f"expected image_0..image_{expected - 1}"
        problems.append((str(path), f"missing frame(s) {names} ({expect})"))
    for t in sorted(found):
        if t >= expected:
            problems.append(
                (str(found[t][0]), f"unexpected frame {t} (a {split} video has {expected} frames)")
            )
        if len(found[t]) > 1:
            names = ", ".join(sorted(p.name for p in found[t]))
            problems.append((str(path), f"frame {t} appears more than once ({names})"))
    if course and split in MASKED_SPLITS and mask is None:
        problems.append((str(path / MASK_FILE), f"missing {MASK_FILE} (required in {split})"))
    frames = tuple(sorted(found[t], key=lambda p: p.name)[0] for t in sorted(found) if t < expected)
    return Video(split, path.name, number, path, frames, mask, tuple(problems), expected)
