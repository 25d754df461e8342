"""The options of `convrnn-video ingest` (torch- and numpy-free, so the CLI loads fast)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from convrnn_video.ingest.errors import IngestError
from convrnn_video.shards.format import LAYOUTS

DEFAULT_WORKERS = max(1, min(8, os.cpu_count() or 1))
SHARDS_DIR = "shards"  # the default output: DATA_ROOT/shards, beside the videos it holds
# auto: the course layout when most videos have the course's geometry, else the free layout
# when each split's videos share one geometry (see `ingest.layout.choose_layout`)
LAYOUT_CHOICES = ("auto", *LAYOUTS)
LAYOUT_HELP = (
    "auto: the course layout when most videos are the course's (22 frames, hidden 11, of "
    "160x240 RGB), checked strictly; otherwise the geometry the videos of each split share "
    "(any frame count and size, RGB or grayscale), an error listing the counts when they do not "
    "share one. course: always the course's geometry. free: also any folder and file names "
    "with a number in them (clip_7/frame_000.png, ordered by the last number), the most common "
    "geometry of each split, the other videos reported as bad."
)


@dataclass
class IngestConfig:
    """Options of `convrnn-video ingest`."""

    data_root: Path = Path("data")  # DATA_ROOT/{train,val,unlabeled,hidden}/video_<id>/
    out: Path | None = None  # where the tars and manifest.json go; None: DATA_ROOT/shards
    layout: str = "auto"  # one of LAYOUT_CHOICES (LAYOUT_HELP says what each accepts)
    workers: int = DEFAULT_WORKERS  # processes reading and checking videos
    videos_per_shard: int = 100  # ~100 MB tars; several shards per split for ranks x workers
    skip_bad: bool = False  # leave bad videos out (listed) instead of failing the ingest
    overwrite: bool = False  # replace an output that already has a manifest of the same data
    progress: bool = True  # a progress bar with videos/s

    @property
    def shards_dir(self) -> Path:
        """Where the shards go: `out`, or DATA_ROOT/shards when it is not given."""
        return Path(self.out) if self.out is not None else Path(self.data_root) / SHARDS_DIR

    def check(self) -> None:
        """Raise IngestError listing every bad option at once."""
        problems = []
        if self.workers < 1:
            problems.append(f"workers must be >= 1, got {self.workers}")
        if self.layout not in LAYOUT_CHOICES:
            choices = ", ".join(LAYOUT_CHOICES)
            problems.append(f"layout must be one of {choices}, got {self.layout!r}")
        if self.videos_per_shard < 1:
            problems.append(f"videos_per_shard must be >= 1, got {self.videos_per_shard}")
        if self.shards_dir.exists() and not self.shards_dir.is_dir():
            problems.append(f"--out {self.shards_dir} exists and is not a folder")
        if problems:
            raise IngestError("; ".join(problems))
