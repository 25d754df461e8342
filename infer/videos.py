"""Which videos a split of shards holds, in id order, read from the manifest (torch-free)."""

from __future__ import annotations

import tarfile
from pathlib import Path

import numpy as np

from infer.errors import InferError


def _scan_ids(source: str | Path, shard_names: list[str]) -> list[int]:
    """Video ids from the tar headers of the shards (when the manifest's id ranges have gaps)."""
    from shards.format import META_SUFFIX, split_key, video_id
    from shards.manifest import join, open_url

    ids = []
    for name in shard_names:
        with open_url(join(source, name)) as stream, tarfile.open(fileobj=stream, mode="r|") as tar:
            for member in tar:
                key, suffix = split_key(member.name)
                if suffix == META_SUFFIX:
                    ids.append(video_id(key))
    return ids


def split_videos(source: str | Path, split: str) -> tuple[np.ndarray, int]:
    """(sorted int64 ids of every video of `split`, frames per video) from SOURCE/manifest.json."""
    from shards.errors import ShardError
    from shards.manifest import read_manifest, split_entry

    try:
        entry = split_entry(read_manifest(source), split, source)
        shards = entry["shards"]
        ranges = [(int(s["first_id"]), int(s["last_id"]), int(s["videos"])) for s in shards]
        if all(last - first + 1 == n for first, last, n in ranges):
            ids = [i for first, last, _ in ranges for i in range(first, last + 1)]
        else:
            ids = _scan_ids(source, [s["name"] for s in shards])
    except ShardError as exc:
        raise InferError(str(exc)) from None
    except (KeyError, TypeError, ValueError, OSError, tarfile.TarError) as exc:
        raise InferError(f"cannot list the videos of split {split!r} in {source}: {exc}") from exc
    ids_arr = np.unique(np.asarray(ids, dtype=np.int64))
    if len(ids_arr) != int(entry["videos"]):
        raise InferError(
            f"split {split!r} in {source}: the manifest counts {entry['videos']} "
            f"videos but the shards hold {len(ids_arr)} distinct ids"
        )
    return ids_arr, int(entry["frames"])
