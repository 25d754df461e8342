"""Where a store of ours is and whether a location may be written: the rules every Zarr store of
the project (predictions, labels) shares.

Only a location that holds nothing, or a store of ours of the same kind, is ever written
(`claim_store`): Zarr's mode "w" deletes everything under a path or a bucket prefix, so a
folder or prefix with anything else in it is refused, with or without --overwrite. A store's
kind is its KIND attribute, written first. Both stores start through `prepare_group`: claim the
location, resume a store of this run (`identity_diffs` names what differs) or create the arrays.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import fsspec
import numpy as np
import zarr
from convrnn_video.stores.errors import StoreError
from zarr.errors import GroupNotFoundError

KIND = "convrnn_store"  # the attribute naming which of our stores a Zarr group is
# the attributes every store of a kind has had since the first version: how a store written
# before KIND existed is known as ours
KIND_ATTRS = {
    "predictions": ("ckpt_sha256", "split", "frames_out"),
    "labels": ("segmenter_sha256", "split", "frames", "height", "width"),
}


def store_kind(attrs: dict[str, Any]) -> str | None:
    """Which of our stores ("predictions", "labels") wrote these attributes, or None."""
    if attrs.get(KIND) in KIND_ATTRS:
        return attrs[KIND]
    for kind, keys in KIND_ATTRS.items():
        if all(key in attrs for key in keys):
            return kind
    return None


def store_location(url: str | Path) -> str | Path:
    """A local Path for plain paths and file:// URLs; other fsspec URLs are passed to Zarr as is."""
    text = str(url)
    if text.startswith("file://"):
        return Path(text[len("file://") :])
    if "://" in text:
        return text
    return Path(text)


def open_group(url: str | Path, mode: str) -> zarr.Group | None:
    """The group at `url` (mode "r" or "r+"), or None when nothing is there."""
    location = store_location(url)
    if isinstance(location, Path) and not location.exists():
        return None
    try:
        return zarr.open_group(location, mode=mode)
    except (GroupNotFoundError, FileNotFoundError):
        return None


def row_positions(ids: np.ndarray, video_ids: Sequence[int], url: str, split: Any) -> np.ndarray:
    """Row of each of `video_ids` in a store whose sorted ids are `ids` (a binary search); an
    id the store lacks is an StoreError naming the store and its split."""
    wanted = np.asarray(video_ids, dtype=np.int64)
    pos = np.searchsorted(ids, wanted)
    bad = [int(v) for v, p in zip(wanted, pos, strict=True) if p >= len(ids) or ids[p] != v]
    if bad:
        raise StoreError(
            f"video(s) {', '.join(f'video_{v}' for v in bad[:5])} are not in "
            f"{url} (split {split!r}, {len(ids)} videos)"
        )
    return pos


class OpenStore:
    """What an open prediction store and an open label store share: the Zarr group and its
    location, `video_ids` and `done`, opening, the attributes, and rows by video id."""

    kind = "store"  # "no <kind> at URL" when nothing is there
    make_hint = ""  # ... and how to make one

    def __init__(self, group: zarr.Group, url: str | Path) -> None:
        self.group, self.url = group, str(url)
        self.video_ids, self.done = group["video_ids"], group["done"]
        self._ids: np.ndarray | None = None

    @classmethod
    def open(cls, url: str | Path, mode: str = "r"):
        """Open an existing store (mode "r" to read, "r+" to write chunks)."""
        group = open_group(url, mode)
        if group is None:
            raise StoreError(f"no {cls.kind} at {url}; {cls.make_hint}")
        return cls(group, url)

    @property
    def attrs(self) -> dict[str, Any]:
        return dict(self.group.attrs)

    def ids(self) -> np.ndarray:
        """The video ids, in row order (read once: they are written when the store is made)."""
        if self._ids is None:
            self._ids = np.asarray(self.video_ids[:], dtype=np.int64)
        return self._ids

    def positions(self, video_ids: Sequence[int]) -> np.ndarray:
        """Row of each id in the store (ids are sorted, so a binary search)."""
        return row_positions(self.ids(), video_ids, self.url, self.attrs.get("split"))


def _what_is_there(url: str | Path) -> list[str]:
    """Up to 4 names of what `url` holds (a file, or entries of a folder or prefix); empty when
    nothing is there. Local paths through the OS, URLs through fsspec; nothing is changed."""
    location = store_location(url)
    if isinstance(location, Path):
        if location.is_file():
            return [location.name]
        return sorted(p.name for p in location.iterdir())[:4] if location.is_dir() else []
    fs, path = fsspec.core.url_to_fs(location)
    if not fs.exists(path):
        return []
    if fs.isfile(path):
        return [str(path).rsplit("/", 1)[-1]]
    return sorted(str(p).rstrip("/").rsplit("/", 1)[-1] for p in fs.ls(path, detail=False))[:4]


def _group_at(url: str | Path) -> zarr.Group | None:
    """The Zarr group at `url` opened to write, or None when none is there (nothing, a user's
    files, a Zarr array or a broken zarr.json: `_what_is_there` tells those apart)."""
    location = store_location(url)
    if isinstance(location, Path) and not location.is_dir():
        return None
    try:
        return zarr.open_group(location, mode="r+")
    except (GroupNotFoundError, FileNotFoundError, ValueError):  # ValueError: BaseZarrError
        return None


def claim_store(url: str | Path, kind: str, overwrite: bool) -> tuple[zarr.Group, bool]:
    """The group a run writes its store of `kind` ("predictions" or "labels") into, and
    whether it is an existing store of ours to resume.

    - our store of `kind`: returned as it is (resumed: True), or with `overwrite` deleted and
      made anew;
    - nothing there (no path, an empty folder or prefix): a new group;
    - anything else (a user's files, a bucket prefix holding objects, another kind of store, a
      Zarr group or array that is not ours): StoreError, and nothing is touched, overwrite or
      not. Zarr's mode "w" deletes everything under the location, so only ours gets it.

    A new group gets the KIND attribute before anything else is written, so a run killed while
    creating the store leaves a store that is known as ours (and replaced by --overwrite).
    """
    group = _group_at(url)
    found = store_kind(dict(group.attrs)) if group is not None else None
    if found == kind and not overwrite:
        if "created" not in group.attrs:  # the last attribute a new store gets
            raise StoreError(
                f"{url} is a {kind} store whose creation was cut short; pass --overwrite to "
                "make it anew"
            )
        return group, True
    if found is not None and found != kind:
        raise StoreError(
            f"{url} is a {found} store, not a {kind} store; it is left as it is: choose "
            "another --out"
        )
    if found is None:
        held = _what_is_there(url)
        if held:
            what = "a Zarr group or array that no run of ours wrote" if group else "it holds"
            names = ", ".join(held[:3]) + (", ..." if len(held) > 3 else "")
            raise StoreError(
                f"{url} is not empty and is not a {kind} store ({what}: {names}); it is left "
                "as it is, with or without --overwrite: choose a new or empty --out"
            )
    group = zarr.open_group(store_location(url), mode="w", attributes={KIND: kind})
    return group, False


def identity_diffs(old: dict[str, Any], new: dict[str, Any], identity: dict[str, Any]) -> list[str]:
    """Each key of `identity` on which a store's attributes `old` differ from this run's `new`,
    as "key: store has ..., this run ..."; `identity` maps a key to the value a store written
    before the attribute existed stands for."""
    return [
        f"{k}: store has {_short(old.get(k, before))!r}, this run {_short(new.get(k))!r}"
        for k, before in identity.items()
        if old.get(k, before) != new.get(k)
    ]


def _short(value: Any) -> Any:
    """A sha256 digest cut to its first 12 digits (enough to tell two files apart in a
    message); anything else as it is."""
    if isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value):
        return value[:12]
    return value


DIMENSIONS = {  # the axes of each data array of a store, after the video axis
    "frames": ("frame", "y", "x", "channel"),
    "masks": ("frame", "y", "x"),
    "motion": ("frame", "axis", "y", "x"),
}
DTYPES = {"frames": "uint8", "masks": "uint8", "motion": "float16"}


def _create_arrays(
    group: zarr.Group,
    n: int,
    arrays: dict[str, tuple[int, ...]],
    array_attrs: dict[str, dict[str, Any]] | None = None,
) -> None:
    """The empty arrays of a new store of `n` videos: each of `arrays` (name -> the shape of
    one video's part, one video per chunk; `array_attrs`: name -> its attributes), then
    video_ids and done."""
    for name, shape in arrays.items():
        group.create_array(
            name,
            shape=(n, *shape),
            chunks=(1, *shape),
            dtype=DTYPES[name],
            fill_value=0,
            dimension_names=("video", *DIMENSIONS[name]),
            attributes=(array_attrs or {}).get(name),
        )
    group.create_array(
        "video_ids",
        shape=(n,),
        chunks=(max(n, 1),),
        dtype="int64",
        fill_value=-1,
        dimension_names=("video",),
    )
    # One chunk per flag: each rank sets only the flags of its own videos, never a shared chunk.
    group.create_array(
        "done", shape=(n,), chunks=(1,), dtype="bool", fill_value=False, dimension_names=("video",)
    )


def prepare_group(
    url: str | Path,
    kind: str,
    *,
    attrs: dict[str, Any],
    video_ids: Sequence[int],
    arrays: dict[str, tuple[int, ...]],
    overwrite: bool,
    problems: Callable[[zarr.Group], list[str]],
    array_attrs: dict[str, dict[str, Any]] | None = None,
) -> tuple[zarr.Group, bool]:
    """Make a store of `kind` ("predictions" or "labels"), or resume one of this run: the one
    start of both stores. -> (its group, resumed).

    The location is claimed (`claim_store`). An existing store of `kind` is resumed when
    `problems(group)` finds no difference from this run, else refused with each of them (pass
    `overwrite` to replace it). A new one gets `arrays` (name -> one video's shape, see
    `_create_arrays`), the ids, then `attrs` with complete False and the creation time (the
    last attribute a new store gets)."""
    ids = np.asarray(video_ids, dtype=np.int64)
    group, resumed = claim_store(url, kind, overwrite)
    if resumed:
        diffs = problems(group)
        if diffs:
            raise StoreError(
                f"{url} holds {kind} of another run ({'; '.join(diffs)}); "
                "pass --overwrite to replace it or choose another --out"
            )
        return group, True
    _create_arrays(group, len(ids), arrays, array_attrs)
    if len(ids):
        group["video_ids"][:] = ids
    group.attrs.update(
        {**attrs, "complete": False, "created": datetime.now(UTC).isoformat(timespec="seconds")}
    )
    return group, False
