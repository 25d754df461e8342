"""What data a run trains on, whatever the paths: recorded in every checkpoint, checked on resume.

`--resume` may name the shards, the segmenter and the label store by new paths (a copy moved
elsewhere), but not other data: the step, the lr schedule, the best score and early stopping
carry on, and they mean nothing over other data. A checkpoint records ("data")
- shards: the sha256 of the manifest entries of the splits the run reads (each shard's name,
  size and sha256, the videos and their geometry), so another folder with the same shards passes,
- segmenter: the sha256 of the segmenter checkpoint,
- labels: the label store's identity (its segmenter's sha256, split, frame size, creation time).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import zarr

from convrnn_video.ingest.writer import sha256_file
from convrnn_video.shards.errors import ShardError
from convrnn_video.shards.manifest import read_manifest
from convrnn_video.train.config import TrainConfig
from convrnn_video.train.errors import TrainError

DATA_OPTIONS = ("shards", "segmenter", "labels")
LABEL_IDENTITY = ("segmenter_sha256", "split", "frames", "height", "width", "created")


def data_identity(cfg: TrainConfig) -> dict[str, Any]:
    """{"shards", "segmenter", "labels"}: what `cfg`'s data is (None for an option not given,
    "unreadable" for a file that cannot be read)."""
    return {
        "shards": _shards_identity(cfg),
        "segmenter": _file_identity(cfg.segmenter),
        "labels": _labels_identity(cfg.labels),
    }


def check_same_data(
    recorded: dict[str, Any] | None, saved: dict[str, Any], cfg: TrainConfig, last: Path
) -> None:
    """Refuse (one TrainError line) a resume of checkpoint `last` whose data differs from the
    data it `recorded`; a checkpoint from before the record is checked by its `saved` paths."""
    now = data_identity(cfg) if recorded is not None else {}
    changed = []
    for name in DATA_OPTIONS:
        path, old_path = getattr(cfg, name), saved.get(name)
        flag = "--" + name
        if recorded is None:  # nothing to compare but the paths
            if (path or None) != (old_path or None):
                changed.append(f"{flag} {path} is not the run's {old_path} (no record to compare)")
        elif now[name] != recorded.get(name):
            what = "cannot be read" if now[name] == "unreadable" else "holds other data"
            changed.append(f"{flag} {path} {what} (the run trained on {old_path})")
    if changed:
        raise TrainError(
            f"cannot resume {last.parent} with other data: {'; '.join(changed)}. The schedule "
            f"and the best score would carry on over it: start a new run from these weights "
            f"with --init-from {last}, or resume with the run's data"
        )


def _shards_identity(cfg: TrainConfig) -> str | None:
    """The sha256 of the manifest entries of the splits the run reads."""
    try:
        splits = read_manifest(cfg.shards)["splits"]
    except ShardError:
        return "unreadable"
    used = {s: splits[s] for s in (*cfg.train_splits, cfg.val_split) if s in splits}
    return hashlib.sha256(json.dumps(used, sort_keys=True).encode()).hexdigest()


def _file_identity(path: str | None) -> str | None:
    if not path:
        return None
    try:
        return sha256_file(Path(path))
    except OSError:
        return "unreadable"


def _labels_identity(url: str | None) -> dict[str, Any] | str | None:
    if not url:
        return None
    try:
        attrs = dict(zarr.open_group(url, mode="r").attrs)
    except (OSError, ValueError, ImportError):  # missing, not a store, no fsspec backend
        return "unreadable"
    return {k: attrs.get(k) for k in LABEL_IDENTITY}
