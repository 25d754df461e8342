"""Plain generator stages over shards: read raw samples, check them, shuffle, decode.

Each stage takes an iterator and yields; the sample key travels with the sample. Errors are
ShardErrors naming the shard and the key. With `on_error="skip"` a bad sample (or the rest
of a truncated shard) is logged and left out, never passed on incomplete.
"""

from __future__ import annotations

import io
import json
import logging
import random
import struct
import tarfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from PIL import Image

from convrnn_video.shards.errors import ShardError
from convrnn_video.shards.format import (
    CHANNEL_MODES,
    MASK_SUFFIX,
    META_SUFFIX,
    NUM_CLASSES,
    frame_suffix,
    member_suffixes,
    png_size,
    split_key,
    video_id,
)
from convrnn_video.shards.manifest import join, open_url, split_entry

log = logging.getLogger(__name__)

ON_ERROR = ("raise", "skip")


@dataclass(frozen=True)
class ShardRef:
    """One shard to read: where it is and what the manifest promises about it."""

    source: str
    name: str
    split: str
    videos: int
    frames: int
    masks: bool

    @property
    def url(self) -> str:
        return join(self.source, self.name)


def split_shards(source: str | Path, manifest: dict[str, Any], split: str) -> list[ShardRef]:
    """The non-empty shards of `split` in a manifest read from `source`, in id order.

    With `read_shard` this is the project's one way to read samples outside the loaders: e.g.
    the ids of a split are `[video_id(s["__key__"]) for r in refs for s in read_shard(r)]`.
    """
    entry = split_entry(manifest, split, source)
    frames, masks = int(entry["frames"]), bool(entry["masks"])
    return [
        ShardRef(str(source), s["name"], split, int(s["videos"]), frames, masks)
        for s in entry["shards"]
        if int(s["videos"])
    ]


Raw = dict[str, Any]  # {"__key__", "__shard__", "__split__", suffix: bytes, ...}


def bad_sample(message: str, on_error: str | Callable[[str], None]) -> None:
    """Raise, log and go on, or hand the message to a callable (shards-info --verify)."""
    if callable(on_error):
        on_error(message)
    elif on_error == "raise":
        raise ShardError(message + " (read with on_error='skip' to leave such samples out)")
    log.warning("skipped: %s", message)


_BLOCK = 512
_ZERO_BLOCK = bytes(_BLOCK)
_CHECKSUM_BYTES = struct.Struct("148B8x356B")  # the header without its checksum field


def _read_exact(stream: BinaryIO, n: int) -> bytes:
    data = stream.read(n)
    while len(data) < n:  # some file objects return short reads
        more = stream.read(n - len(data))
        if not more:
            raise tarfile.ReadError(f"unexpected end of data ({len(data)} of {n} bytes)")
        data += more
    return data


def tar_members(stream: BinaryIO) -> Iterator[tuple[str, bytes]]:
    """(name, bytes) of each regular file of a tar stream, read front to back.

    A lean reader for the plain USTAR tars that ingest writes (about 3x faster than tarfile's
    stream mode). A bad header checksum, a truncated archive, or a member kind that ingest
    never writes (pax or GNU long-name headers) raises tarfile.ReadError.
    """
    while True:
        header = stream.read(_BLOCK)
        if not header or header == _ZERO_BLOCK:
            return  # end of archive (a shard cut at a member boundary: the count check sees it)
        if len(header) < _BLOCK:
            header += _read_exact(stream, _BLOCK - len(header))
        stored = header[148:156].split(b"\0", 1)[0].strip()
        if int(stored or b"0", 8) != 256 + sum(_CHECKSUM_BYTES.unpack_from(header)):
            raise tarfile.ReadError("bad tar header checksum")
        name = header[:100].split(b"\0", 1)[0].decode("utf-8")
        prefix = header[345:500].split(b"\0", 1)[0] if header[257:262] == b"ustar" else b""
        if prefix:
            name = prefix.decode("utf-8") + "/" + name
        size_field = header[124:136]
        if size_field[0] & 0x80:
            raise tarfile.ReadError(f"member {name!r}: base-256 size, not written by ingest")
        size = int(size_field.split(b"\0", 1)[0].strip() or b"0", 8)
        kind = header[156:157]
        data = _read_exact(stream, size)
        if size % _BLOCK:
            _read_exact(stream, _BLOCK - size % _BLOCK)
        if kind in (b"0", b"\0"):
            yield name, data
        elif kind not in (b"1", b"2", b"5"):  # links and folders carry no sample data
            raise tarfile.ReadError(f"member {name!r} has tar type {kind!r}, not written by ingest")


def read_shard(shard: ShardRef, on_error: str | Callable[[str], None] = "raise") -> Iterator[Raw]:
    """Yield the complete samples of one shard, in stored order, with their index in it."""
    expected = member_suffixes(shard.frames, shard.masks)
    count, key, sample = 0, None, None

    def finish(sample: Raw) -> Raw | None:
        missing = [s for s in expected if s not in sample]
        if missing:
            frames = sum(1 for s in expected[: shard.frames] if s in sample)
            bad_sample(
                f"shard {shard.url}: sample {sample['__key__']} is incomplete: "
                f"{frames} of {shard.frames} frames, missing {', '.join(missing)}",
                on_error,
            )
            return None
        return sample

    try:
        with open_url(shard.url) as stream:
            for name, data in tar_members(stream):
                name_key, suffix = split_key(name)
                if name_key != key:
                    if sample is not None and (done := finish(sample)) is not None:
                        done["__index__"] = count
                        yield done
                    if sample is not None:
                        count += 1
                    key = name_key
                    sample = {"__key__": key, "__shard__": shard.url, "__split__": shard.split}
                if suffix in sample:
                    bad_sample(f"shard {shard.url}: sample {key} has {suffix} twice", on_error)
                sample[suffix] = data
    except (tarfile.TarError, OSError, EOFError, ValueError, ImportError) as exc:
        where = f"in sample {key}" if key else "at its start"
        bad_sample(
            f"shard {shard.url} cannot be read {where} ({type(exc).__name__}: {exc})", on_error
        )
        return
    if sample is not None:
        if (done := finish(sample)) is not None:
            done["__index__"] = count
            yield done
        count += 1
    if count != shard.videos:
        bad_sample(
            f"shard {shard.url} holds {count} samples but the manifest says {shard.videos} "
            "(truncated or replaced? `convrnn-video shards-info --verify` checks every shard)",
            on_error,
        )


def shuffle(samples: Iterable[Raw], bufsize: int, rng: random.Random) -> Iterator[Raw]:
    """Shuffle through a buffer of `bufsize` raw (still encoded) samples."""
    buf: list[Raw] = []
    for sample in samples:
        if len(buf) < bufsize:
            buf.append(sample)
            continue
        i = rng.randrange(len(buf))
        yield buf[i]
        buf[i] = sample
    rng.shuffle(buf)
    yield from buf


def decode_frame(data: bytes, out: np.ndarray) -> None:
    """Decode one PNG into `out` (H, W, C) uint8, whose shape says what the PNG must be: C=3
    RGB, C=1 grayscale (L), of size W x H. ValueError says why it cannot. The size is read
    from the PNG's header first: a frame claiming another size (a PNG bomb that would decode
    to gigabytes) is refused before anything is decompressed."""
    height, width, channels = out.shape
    header = png_size(data)
    if header != (width, height):
        raise ValueError(
            f"{header[0]}x{header[1]} in its header, expected {width}x{height} (not decoded)"
        )
    mode = CHANNEL_MODES[channels]
    with Image.open(io.BytesIO(data), formats=("PNG",)) as im:
        if im.mode != mode:
            raise ValueError(f"mode {im.mode}, expected {mode}")
        im.load()
        # (H, W, 3) or (H, W) for L: a plain copy; the float pass transposes
        out[...] = np.asarray(im).reshape(out.shape)


def decode_sample(sample: Raw, outs: Sequence[np.ndarray]) -> dict[str, Any]:
    """Decode frames 0, 1, ... of `sample` into `outs` (each (H, W, C)); return its meta."""
    key = sample["__key__"]
    where = f"shard {sample['__shard__']}: sample {key}"
    member = META_SUFFIX
    try:
        meta = json.loads(sample[META_SUFFIX])
        if meta.get("video") != key:
            raise ValueError(f"json names video {meta.get('video')!r}")
        if meta.get("id") != video_id(key) or not isinstance(meta.get("frames"), int):
            raise ValueError(f"json says id {meta.get('id')!r}, frames {meta.get('frames')!r}")
        for t, out in enumerate(outs):
            member = frame_suffix(t)
            decode_frame(sample[member], out)
    except Exception as exc:  # PIL raises many types; re-raised with shard, key and member
        detail = f"{type(exc).__name__}: {exc}"
        raise ShardError(f"{where}: {member} does not decode ({detail})") from exc
    return meta


def mask_problem(mask: Any, shape: tuple[int, int, int] | None = None) -> str | None:
    """Why `mask` is not a (frames, height, width) uint8 array of class ids 0..48 (of `shape`
    when given), or None when it is."""
    if not isinstance(mask, np.ndarray):
        return f"holds a {type(mask).__name__}, expected one array"
    if mask.dtype != np.uint8:
        return f"has dtype {mask.dtype}, expected uint8"
    if mask.ndim != 3 or (shape is not None and mask.shape != tuple(shape)):
        return f"has shape {mask.shape}, expected {tuple(shape) if shape else '(frames, H, W)'}"
    top = int(mask.max()) if mask.size else 0
    if top >= NUM_CLASSES:
        return f"has value {top} > {NUM_CLASSES - 1} (class ids are 0..{NUM_CLASSES - 1})"
    return None


def decode_mask(sample: Raw, shape: tuple[int, int, int] | None = None) -> np.ndarray:
    """The sample's mask (T, H, W) uint8, loaded without pickle and checked (`mask_problem`;
    `shape` is the video's (frames, height, width) when known): a ShardError naming the shard
    and the video if it is not a mask of class ids."""
    where = f"shard {sample['__shard__']}: sample {sample['__key__']}"
    try:
        mask = np.load(io.BytesIO(sample[MASK_SUFFIX]), allow_pickle=False)
    except Exception as exc:
        raise ShardError(f"{where}: {MASK_SUFFIX} does not load ({exc})") from exc
    problem = mask_problem(mask, shape)
    if problem:
        raise ShardError(f"{where}: {MASK_SUFFIX} {problem}")
    return mask
