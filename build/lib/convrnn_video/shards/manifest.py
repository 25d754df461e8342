"""SHARDS/manifest.json: what an ingest published, read back and checked in one place.

    {
      "format": "convrnn-video-shards", "version": 1, "layout": "course",
      "source": "/abs/path/of/DATA_ROOT",
      "splits": {
        "train": {"videos": 1000, "frames": 22, "height": 160, "width": 240, "channels": 3,
                  "masks": true,
                  "shards": [{"name": "train-000000.tar", "videos": 100, "bytes": ...,
                              "sha256": "...", "first_id": 0, "last_id": 99}, ...]},
        ...
      },
      "skipped": [{"split": "train", "video": "video_7", "path": "train/video_7/image_3.png",
                   "reason": "..."}],
      "ignored": ["train/.DS_Store", ...]
    }

Each split's geometry (frames per video, height, width, channels) is the same for all of its
videos; `split_geometry` reads it (manifests written before `layout` and `channels` existed are
the course layout: 160x240 RGB). Local paths and fsspec URLs (`memory://`, `file://`, `s3://`
with s3fs) are both accepted.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from convrnn_video.shards.errors import ShardError
from convrnn_video.shards.format import (
    CHANNELS,
    FORMAT_NAME,
    FORMAT_VERSION,
    HEIGHT,
    LAYOUTS,
    MANIFEST_NAME,
    MODE_CHANNELS,
    SPLITS,
    WIDTH,
)


def join(source: str | Path, name: str) -> str:
    """`source`/`name` for a local folder or an fsspec URL."""
    text = str(source)
    if "://" in text:
        return text.rstrip("/") + "/" + name
    return str(Path(text) / name)


def open_url(url: str, mode: str = "rb"):
    """Open a local path or an fsspec URL (the caller closes it)."""
    if "://" in url:
        import fsspec

        return fsspec.open(url, mode).open()
    return open(url, mode)  # noqa: SIM115 - the caller closes it


def read_manifest(source: str | Path) -> dict[str, Any]:
    """Read and check SOURCE/manifest.json; raise ShardError naming the file if it is not one."""
    url = join(source, MANIFEST_NAME)
    try:
        with open_url(url) as f:
            manifest = json.loads(f.read())
    except FileNotFoundError:
        raise ShardError(
            f"no manifest at {url}: run `convrnn-video ingest DATA_ROOT --out {source}` first"
        ) from None
    except (OSError, ValueError, ImportError) as exc:
        raise ShardError(f"cannot read manifest {url}: {exc}") from exc
    problems = check_manifest(manifest)
    if problems:
        raise ShardError(f"bad manifest {url}: " + "; ".join(problems))
    return manifest


def check_manifest(manifest: Any) -> list[str]:
    """Every way `manifest` departs from the schema (empty when it is well formed)."""
    if not isinstance(manifest, dict):
        return ["not a JSON object"]
    problems = []
    if manifest.get("format") != FORMAT_NAME:
        problems.append(f"format is {manifest.get('format')!r}, expected {FORMAT_NAME!r}")
    if manifest.get("version") != FORMAT_VERSION:
        problems.append(f"version is {manifest.get('version')!r}, expected {FORMAT_VERSION}")
    if manifest.get("layout", "course") not in LAYOUTS:
        problems.append(f"layout is {manifest.get('layout')!r}, expected one of {LAYOUTS}")
    splits = manifest.get("splits")
    if not isinstance(splits, dict) or not splits:
        return problems + ["no splits"]
    for split, entry in splits.items():
        if split not in SPLITS:
            problems.append(f"unknown split {split!r}")
            continue
        try:
            shards = entry["shards"]
            counted = sum(int(s["videos"]) for s in shards)
            for s in shards:
                str(s["name"]), int(s["bytes"]), str(s["sha256"])
                if not is_file_name(s["name"]):
                    problems.append(
                        f"{split}: shard name {s['name']!r} is not a file name in the shard "
                        "folder (a path outside it, or in a subfolder, is never opened)"
                    )
            if counted != int(entry["videos"]):
                says = entry["videos"]
                problems.append(f"{split}: shards hold {counted} videos, split says {says}")
            frames, height, width, channels = _geometry(entry)
            if min(frames, height, width) < 1 or channels not in MODE_CHANNELS.values():
                problems.append(
                    f"{split}: {frames} frames of {height}x{width}x{channels} is not a video "
                    f"geometry (channels {sorted(set(MODE_CHANNELS.values()))})"
                )
        except (KeyError, TypeError, ValueError) as exc:
            problems.append(f"{split}: malformed entry ({exc!r})")
    return problems


def is_file_name(name: Any) -> bool:
    """Is `name` a plain file name (no folder part, no `..`, not absolute, on any OS), so that
    `join(source, name)` stays inside `source`?"""
    return (
        isinstance(name, str)
        and name not in ("", ".", "..")
        and not any(c in name for c in "/\\:\0")
    )


def _geometry(entry: dict[str, Any]) -> tuple[int, int, int, int]:
    return (
        int(entry["frames"]),
        int(entry.get("height", HEIGHT)),
        int(entry.get("width", WIDTH)),
        int(entry.get("channels", CHANNELS)),
    )


def split_geometry(manifest: dict[str, Any], split: str) -> tuple[int, int, int, int]:
    """(frames, height, width, channels) of every video of `split` in a manifest from
    `read_manifest`; channels is 3 (RGB) or 1 (grayscale). ShardError if the split is absent."""
    return _geometry(split_entry(manifest, split))


def split_entry(manifest: dict[str, Any], split: str, source: str | Path = "") -> dict[str, Any]:
    """The manifest entry of `split`, or a ShardError listing the splits present."""
    if split not in manifest["splits"]:
        present = ", ".join(manifest["splits"]) or "none"
        where = source or "the shards"
        raise ShardError(f"split {split!r} is not in the manifest of {where} (present: {present})")
    return manifest["splits"][split]


TRAINING_SPLITS = ("train", "unlabeled")  # the splits a model may learn from, in this order
FULL_SPLITS = ("train", "val", "unlabeled")  # splits whose videos have every frame


def training_splits(manifest: dict[str, Any]) -> tuple[str, ...]:
    """The training splits present: ("train", "unlabeled") when both, ("train",) when the
    shards have no unlabeled split, ("unlabeled",) when only that. ShardError when neither."""
    present = tuple(s for s in TRAINING_SPLITS if s in manifest["splits"])
    if not present:
        have = ", ".join(manifest["splits"]) or "none"
        raise ShardError(
            f"the shards have no training split ({' or '.join(TRAINING_SPLITS)}; "
            f"present: {have}): ingest a train/ folder"
        )
    return present


def observed_frames(manifest: dict[str, Any]) -> int | None:
    """The frames of a hidden video (the observed part a prediction starts from), or None
    when the shards have no hidden split."""
    if "hidden" not in manifest["splits"]:
        return None
    return split_geometry(manifest, "hidden")[0]


def video_frames(manifest: dict[str, Any]) -> int:
    """The frames of a whole video: train's, else val's, else unlabeled's. ShardError when the
    shards hold only hidden videos."""
    for split in FULL_SPLITS:
        if split in manifest["splits"]:
            return split_geometry(manifest, split)[0]
    have = ", ".join(manifest["splits"]) or "none"
    raise ShardError(f"the shards have no whole videos ({', '.join(FULL_SPLITS)}; present: {have})")


def write_manifest(out: Path, manifest: dict[str, Any]) -> Path:
    """Write OUT/manifest.json atomically and durably (tmp file, fsync, rename, fsync OUT), so
    a power cut never leaves a manifest naming shards that did not reach the disk."""
    path = out / MANIFEST_NAME
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as f:
        f.write(json.dumps(manifest, indent=2, sort_keys=False) + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(out)
    return path


def _fsync_dir(folder: Path) -> None:
    """Make the renames inside `folder` durable (not possible on every OS or file system)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
