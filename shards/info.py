"""`shards-info`: what a manifest promises, and (`--verify`) whether the shards keep it.

`verify` reads every shard through webdataset's own tar reader (`tar_file_expander` +
`group_by_keys`, what `webdataset.WebDataset` runs once it has opened a URL), not through the
loader's fast reader, so a pass proves that a standard WebDataset consumer sees our samples as
the format means them. Streams are opened with fsspec, so `memory://` and `s3://` work too
(WebDataset's own opener knows only local paths, `file://` and its pipe schemes).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from convrnn_video.shards.errors import ShardError
from convrnn_video.shards.format import (
    NUM_CLASSES,
    member_suffixes,
    sample_meta,
    split_key,
    video_id,
)
from convrnn_video.shards.manifest import join, open_url, read_manifest, split_geometry
from convrnn_video.shards.reader import decode_mask, decode_sample

log = logging.getLogger(__name__)


def summarize(source: str | Path) -> dict[str, Any]:
    """Per split: videos, frames per video, frame size, shards and bytes; plus the layout and
    the skipped and ignored lists."""
    manifest = read_manifest(source)
    splits = {}
    for split, entry in manifest["splits"].items():
        frames, height, width, channels = split_geometry(manifest, split)
        splits[split] = {
            "videos": entry["videos"],
            "frames": frames,
            "height": height,
            "width": width,
            "channels": channels,
            "masks": bool(entry.get("masks")),
            "shards": len(entry["shards"]),
            "bytes": sum(int(s["bytes"]) for s in entry["shards"]),
        }
    return {
        "shards": str(source),
        "source": manifest.get("source"),
        "layout": manifest.get("layout", "course"),
        "splits": splits,
        "skipped": manifest.get("skipped", []),
        "ignored": manifest.get("ignored", []),
    }


_READ_ERRORS = (tarfile.TarError, OSError, EOFError, ValueError)


class _HashingStream:
    """A read-only stream that hashes and counts the bytes read through it, so checking a
    shard's sha256 and reading its samples is one pass over the file."""

    def __init__(self, stream: BinaryIO, url: str) -> None:
        self.stream, self.url = stream, url
        self.digest, self.size = hashlib.sha256(), 0

    def read(self, n: int = -1) -> bytes:
        data = self.stream.read(n)
        self.digest.update(data)
        self.size += len(data)
        return data

    def drain(self, chunk: int = 1 << 20) -> None:
        """Read (and hash) the rest: tar's end-of-archive padding is not read by tarfile."""
        while self.read(chunk):
            pass

    def __str__(self) -> str:  # webdataset names the stream in its error messages
        return self.url


def _webdataset_samples(stream: _HashingStream, last: list[str]) -> Iterator[dict[str, Any]]:
    """The samples of one tar stream as webdataset groups them; `last[0]` is the key of the
    last member read (where a read error happened)."""
    from webdataset.tariterators import group_by_keys, tar_file_expander

    def members() -> Iterator[dict[str, Any]]:
        for member in tar_file_expander([{"url": stream.url, "stream": stream}]):
            if "fname" in member:  # the end-of-shard marker is {}
                last[0] = split_key(member["fname"])[0]
            yield member

    return group_by_keys(members())


def _check_sample(
    sample: dict[str, Any], url: str, split: str, masks: bool, scratch: list[np.ndarray]
) -> None:
    """Check one webdataset sample against the format and its split's geometry (`scratch`:
    one (H, W, C) array per frame); raise ShardError naming what is wrong."""
    frames, (height, width, _) = len(scratch), scratch[0].shape
    key = sample["__key__"]
    where = f"shard {url}: sample {key}"
    try:
        video_id(key)
    except ValueError:
        raise ShardError(f"{where}: the key is not video_<id>") from None
    found = [name for name in sample if not name.startswith("__")]  # members, in tar order
    expected = member_suffixes(frames, masks)
    if found != expected:
        missing = [s for s in expected if s not in found]
        extra = [s for s in found if s not in expected]
        have = sum(1 for s in expected[:frames] if s in found)
        raise ShardError(
            f"{where} has {have} of {frames} frames"
            + (f", missing {', '.join(missing)}" if missing else "")
            + (f", unexpected {', '.join(extra)}" if extra else "")
            + ("" if missing or extra else ", members out of order")
        )
    sample["__shard__"] = url  # decode_sample's messages name the shard
    meta = decode_sample(sample, scratch)
    if meta != (want := json.loads(sample_meta(split, key, frames, height, width))):
        raise ShardError(f"{where} json says {meta}, expected {want}")
    if masks:
        mask = decode_mask(sample)
        if (
            mask.shape != (frames, height, width)
            or mask.dtype != np.uint8
            or int(mask.max()) >= NUM_CLASSES
        ):
            raise ShardError(f"{where} mask is {mask.dtype} {mask.shape} max {mask.max()}")


def _verify_shard(
    url: str,
    entry: dict[str, Any],
    split: str,
    geometry: tuple[int, int, int, int],
    masks: bool,
    last_id: list[int],
) -> tuple[int, list[str]]:
    """(samples read, problems) of one shard of a split of `geometry` (frames, height, width,
    channels); `last_id[0]` carries id order across shards."""
    problems: list[str] = []
    scratch = list(np.empty(geometry, np.uint8))  # one (H, W, C) array per frame
    ids: list[int] = []
    try:
        raw = open_url(url)
    except (OSError, ValueError, ImportError) as exc:
        return 0, [f"shard {url} cannot be read ({type(exc).__name__}: {exc})"]
    with raw:
        stream, last = _HashingStream(raw, url), [""]
        count, readable = 0, True
        try:
            for sample in _webdataset_samples(stream, last):
                count += 1
                try:
                    _check_sample(sample, url, split, masks, scratch)
                except ShardError as exc:
                    problems.append(str(exc))
                with contextlib.suppress(ValueError):  # _check_sample reports a bad key
                    vid = video_id(sample["__key__"])
                    if vid <= last_id[0]:
                        problems.append(
                            f"shard {url}: sample {sample['__key__']} comes after video id "
                            f"{last_id[0]} (repeated, or out of id order)"
                        )
                    last_id[0] = max(last_id[0], vid)
                    ids.append(vid)
            stream.drain()
        except _READ_ERRORS as exc:  # tarfile's, webdataset's (duplicates) and fsspec's
            readable = False
            where = f"in sample {last[0]}" if last[0] else "at its start"
            # webdataset appends " @ <stream>" and, for duplicates, the sample's member list
            text = str(exc.args[0]).removesuffix(f" @ {url}") if exc.args else ""
            text = text if len(text) <= 160 else text[:157] + "..."
            problems.append(f"shard {url} cannot be read {where} ({type(exc).__name__}: {text})")
            with contextlib.suppress(*_READ_ERRORS):
                stream.drain()  # still hash the rest, to report the checksum as well
    digest = stream.digest.hexdigest()
    if stream.size != int(entry["bytes"]) or digest != entry["sha256"]:
        problems.append(
            f"shard {url}: {stream.size} bytes, sha256 {digest[:12]}...; the manifest says "
            f"{entry['bytes']} bytes, sha256 {str(entry['sha256'])[:12]}..."
        )
    if readable and count != int(entry["videos"]):
        problems.append(
            f"shard {url} holds {count} samples but the manifest says {entry['videos']}"
        )
    span = (entry.get("first_id"), entry.get("last_id"))
    if readable and ids and span != (None, None) and span != (min(ids), max(ids)):
        problems.append(f"shard {url} holds ids {min(ids)}..{max(ids)}; the manifest says {span}")
    return count, problems


def verify(source: str | Path, progress: bool = False) -> dict[str, Any]:
    """Read every shard with webdataset's reader and check it against the manifest and the
    format: checksum and size, sample count and id range, every sample's members in order,
    its json, its frames (decoded) and its mask. Each failure names the shard and sample."""
    from tqdm import tqdm

    manifest = read_manifest(source)
    shards = [(split, e, s) for split, e in manifest["splits"].items() for s in e["shards"]]
    problems: list[str] = []
    samples, last_ids = 0, {split: [-1] for split in manifest["splits"]}
    # a bar on a terminal only (off one, \r-updates fill a log), and not under --quiet
    shown = progress and sys.stderr.isatty() and log.isEnabledFor(logging.INFO)
    for split, e, s in tqdm(shards, unit=" shards", desc="verify", disable=not shown):
        url = join(source, s["name"])
        geometry = split_geometry(manifest, split)
        n, found = _verify_shard(url, s, split, geometry, bool(e.get("masks")), last_ids[split])
        samples += n
        problems += found
    return {"shards": len(shards), "samples": samples, "problems": problems, "ok": not problems}
