"""shards.manifest: what the shards say about training (the splits to learn from, the frames
a hidden video shows, the frames of a whole video), from course and other manifests."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from convrnn_video.shards.errors import ShardError
from convrnn_video.shards.manifest import (
    observed_frames,
    read_manifest,
    training_splits,
    video_frames,
)


def without(manifest: dict, *splits: str) -> dict:
    """A copy of `manifest` without `splits`."""
    out = copy.deepcopy(manifest)
    for split in splits:
        del out["splits"][split]
    return out


def test_course_shards(shard_root: Path) -> None:
    manifest = read_manifest(shard_root)
    assert list(manifest["splits"]) == ["train", "val", "unlabeled", "hidden"]
    assert training_splits(manifest) == ("train", "unlabeled")
    assert observed_frames(manifest) == 11 and video_frames(manifest) == 22


def test_other_splits_and_frame_counts(shard_root: Path) -> None:
    manifest = read_manifest(shard_root)
    for entry, frames in zip(manifest["splits"].values(), (20, 20, 20, 10), strict=True):
        entry["frames"] = frames  # as ingest writes a 20-frame dataset with 10-frame hidden
    assert (video_frames(manifest), observed_frames(manifest)) == (20, 10)
    assert training_splits(without(manifest, "unlabeled")) == ("train",)
    assert training_splits(without(manifest, "train")) == ("unlabeled",)
    assert observed_frames(without(manifest, "hidden")) is None
    assert video_frames(without(manifest, "train")) == 20
    hidden_only = without(manifest, "train", "val", "unlabeled")
    with pytest.raises(ShardError, match="no training split .* present: hidden"):
        training_splits(hidden_only)
    with pytest.raises(ShardError, match="no whole videos .* present: hidden"):
        video_frames(hidden_only)
