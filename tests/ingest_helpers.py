"""Helpers of the ingest tests: copying data trees, hard-linked videos, one-call ingest."""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np
import torch
from convrnn_video.ingest.pack import IngestConfig, run_ingest
from convrnn_video.shards.format import SHARD_RE


def copy_tree(src: Path, dst: Path) -> Path:
    """Copy a data tree with writable files (the shared samples are read-only)."""
    for path in sorted(src.rglob("*")):
        target = dst / path.relative_to(src)
        if path.is_dir():
            target.mkdir(parents=True, exist_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(path.read_bytes())
    return dst


def link_video(src: Path, dst: Path) -> None:
    """A new video folder whose files are hard links to `src`'s (cheap extra videos)."""
    dst.mkdir(parents=True)
    for f in src.iterdir():
        os.link(f, dst / f.name)


def final_shards(out: Path) -> list[str]:
    return (
        sorted(p.name for p in out.iterdir() if SHARD_RE.fullmatch(p.name)) if out.exists() else []
    )


def ingest(data: Path, out: Path, **kw) -> dict:
    kw.setdefault("workers", 1)
    return run_ingest(IngestConfig(data_root=data, out=out, progress=False, **kw))


ingest_free = functools.partial(ingest, layout="free")  # unless a test names another layout


def pixels(batch: torch.Tensor) -> np.ndarray:
    """float (B, T, C, H, W) -> uint8 (B, T, H, W, C)."""
    return (batch * 255).round().to(torch.uint8).permute(0, 1, 3, 4, 2).numpy()


def bad_line(message: str, video: str) -> str:
    lines = [line for line in message.splitlines() if f"/{video}" in line]
    assert len(lines) == 1, (video, message)
    return lines[0]


SAMPLE_VIDEOS = {
    "train": ("video_0", "video_1", "video_2"),
    "val": ("video_1000", "video_1001", "video_1002"),
    "unlabeled": ("video_2000", "video_2001", "video_2002"),
}
