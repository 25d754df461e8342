"""Which videos a split of shards holds, in id order, read from the manifest (torch-free)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from convrnn_video.infer.errors import InferError


def _scan_ids(source: str | Path, manifest: dict[str, Any], split: str) -> list[int]:
    """Video ids of the samples in the shards of `split` (when the manifest's id ranges have
    gaps), read with the loaders' tar reader, which also checks every sample is whole."""
    from convrnn_video.shards.format import video_id
    from convrnn_video.shards.reader import read_shard, split_shards

    return [
        video_id(sample["__key__"])
        for ref in split_shards(source, manifest, split)
        for sample in read_shard(ref)
    ]


def split_videos(source: str | Path, split: str) -> tuple[np.ndarray, int]:
    """(sorted int64 ids of every video of `split`, frames per video) from SOURCE/manifest.json."""
    from convrnn_video.shards.errors import ShardError
    from convrnn_video.shards.manifest import read_manifest, split_entry

    try:
        manifest = read_manifest(source)
        entry = split_entry(manifest, split, source)
        shards = entry["shards"]
        ranges = [(int(s["first_id"]), int(s["last_id"]), int(s["videos"])) for s in shards]
        if all(last - first + 1 == n for first, last, n in ranges):
            ids = [i for first, last, _ in ranges for i in range(first, last + 1)]
        else:
            ids = _scan_ids(source, manifest, split)
    except ShardError as exc:
        raise InferError(str(exc)) from None
    except (KeyError, TypeError, ValueError, OSError) as exc:
        raise InferError(f"cannot list the videos of split {split!r} in {source}: {exc}") from exc
    ids_arr = np.unique(np.asarray(ids, dtype=np.int64))
    if len(ids_arr) != int(entry["videos"]):
        raise InferError(
            f"split {split!r} in {source}: the manifest counts {entry['videos']} "
            f"videos but the shards hold {len(ids_arr)} distinct ids"
        )
    return ids_arr, int(entry["frames"])
