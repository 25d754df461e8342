"""The shard format: the one place that names splits, sample members, shards and the manifest.

Both `ingest` (which writes shards) and the loaders in `shards` (which read them) import this
module, so the contract cannot drift. It imports nothing heavy.

A sample is one video. Its members are adjacent in the tar, in this order:

    <key>.f00.png ... <key>.fNN.png   the original PNG bytes, frame 0 first
    <key>.mask.npy                    the original mask.npy bytes (train and val only)
    <key>.json                        {"split", "video", "id", "frames", "height", "width"}

where <key> is the video folder name (`video_15000`). Shards are `<split>-000000.tar`, ...

Two layouts. `course` (the default) is the course dataset: 22 frames (hidden 11) of 160x240
RGB, masks in train and val, checked strictly. `free` takes any frame count, size and mode
(RGB or grayscale "L", stored as they are) as long as every video of a split agrees; the
manifest records each split's geometry (`shards.manifest.split_geometry`).
"""

from __future__ import annotations

import json
import re
import struct

FORMAT_NAME = "convrnn-video-shards"
FORMAT_VERSION = 1

SPLITS = ("train", "val", "unlabeled", "hidden")
LAYOUTS = ("course", "free")  # the course dataset's fixed geometry, or any consistent one
# the course layout: frames per video, splits with mask.npy, frame size and channels
FRAMES = {"train": 22, "val": 22, "unlabeled": 22, "hidden": 11}
MASKED_SPLITS = frozenset({"train", "val"})
HEIGHT, WIDTH, CHANNELS = 160, 240, 3
MODE_CHANNELS = {"L": 1, "RGB": 3}  # the PNG modes stored, and the channels they decode to
CHANNEL_MODES = {c: m for m, c in MODE_CHANNELS.items()}
NUM_CLASSES = 49  # background + 48 object kinds; mask values are 0..48

MANIFEST_NAME = "manifest.json"
TAR_MTIME = 946684800  # 2000-01-01 UTC: fixed so the same input gives the same shard bytes
TAR_MODE = 0o444

# ASCII digits only: \d and str.isdigit() also take "٣" (which int() reads as 3) or "²"
VIDEO_RE = re.compile(r"video_([0-9]+)")
FRAME_RE = re.compile(r"image_([0-9]+)\.png")
MASK_FILE = "mask.npy"

MASK_SUFFIX = "mask.npy"
META_SUFFIX = "json"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def frame_suffix(t: int) -> str:
    """The member suffix of frame `t` (`f00.png`)."""
    return f"f{t:02d}.png"


def member_suffixes(frames: int, has_mask: bool) -> list[str]:
    """Every member suffix of one sample, in the order they are stored."""
    suffixes = [frame_suffix(t) for t in range(frames)]
    if has_mask:
        suffixes.append(MASK_SUFFIX)
    suffixes.append(META_SUFFIX)
    return suffixes


def split_key(member_name: str) -> tuple[str, str]:
    """`video_3.f07.png` -> (`video_3`, `f07.png`): the key is everything before the first dot."""
    key, _, suffix = member_name.partition(".")
    return key, suffix


def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) from the IHDR chunk that opens every PNG, read without decoding (what a
    reader checks before it lets a decoder allocate the frame); ValueError if `data` does not
    start like a PNG."""
    if len(data) < 24 or data[:8] != PNG_SIGNATURE or data[12:16] != b"IHDR":
        raise ValueError("not a PNG (no PNG signature and IHDR header)")
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def shard_name(split: str, index: int) -> str:
    """The file name of shard `index` of `split` (`train-000003.tar`)."""
    return f"{split}-{index:06d}.tar"


SHARD_RE = re.compile(r"(train|val|unlabeled|hidden)-(\d{6})\.tar")


def video_id(key: str) -> int:
    """`video_15000` -> 15000."""
    match = VIDEO_RE.fullmatch(key)
    if match is None:
        raise ValueError(f"not a video key: {key!r}")
    return int(match.group(1))


def sample_meta(
    split: str, key: str, frames: int, height: int = HEIGHT, width: int = WIDTH
) -> bytes:
    """The bytes of a sample's json member (sorted keys, so they are reproducible)."""
    meta = {
        "split": split,
        "video": key,
        "id": video_id(key),
        "frames": frames,
        "height": height,
        "width": width,
    }
    return json.dumps(meta, sort_keys=True, separators=(",", ":")).encode()
