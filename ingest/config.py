"""The options of `convrnn-video ingest` (torch- and numpy-free, so the CLI loads fast)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ingest.errors import IngestError
from shards.format import LAYOUTS

DEFAULT_WORKERS = max(1, min(8, os.cpu_count() or 1))


@dataclass
class IngestConfig:
    """Options of `convrnn-video ingest`."""

    data_root: Path = Path("data")  # DATA_ROOT/{train,val,unlabeled,hidden}/video_<id>/
    out: Path = Path("data/shards")  # where the tars and manifest.json go
    # course: 22 frames (hidden 11) of 160x240 RGB, checked strictly; free: any frame count,
    # size and mode (RGB or L), the same for every video of a split
    layout: str = "course"
    workers: int = DEFAULT_WORKERS  # processes reading and checking videos
    videos_per_shard: int = 100  # ~100 MB tars; several shards per split for ranks x workers
    skip_bad: bool = False  # leave bad videos out (listed) instead of failing the ingest
    overwrite: bool = False  # replace an output that already has a manifest
    progress: bool = True  # a progress bar with videos/s

    def check(self) -> None:
        """Raise IngestError listing every bad option at once."""
        problems = []
        if self.workers < 1:
            problems.append(f"workers must be >= 1, got {self.workers}")
        if self.layout not in LAYOUTS:
            problems.append(f"layout must be one of {', '.join(LAYOUTS)}, got {self.layout!r}")
        if self.videos_per_shard < 1:
            problems.append(f"videos_per_shard must be >= 1, got {self.videos_per_shard}")
        if Path(self.out).exists() and not Path(self.out).is_dir():
            problems.append(f"--out {self.out} exists and is not a folder")
        if problems:
            raise IngestError("; ".join(problems))
