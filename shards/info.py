"""`shards-info`: what a manifest promises, and (`--verify`) whether the shards keep it."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from shards.errors import ShardError
from shards.format import HEIGHT, NUM_CLASSES, WIDTH
from shards.manifest import join, open_url, read_manifest
from shards.reader import ShardRef, decode_mask, decode_sample, read_shard


def summarize(source: str | Path) -> dict[str, Any]:
    """Per split: videos, frames per video, shards and bytes; plus skipped and ignored counts."""
    manifest = read_manifest(source)
    splits = {
        split: {
            "videos": entry["videos"],
            "frames": entry["frames"],
            "masks": bool(entry.get("masks")),
            "shards": len(entry["shards"]),
            "bytes": sum(int(s["bytes"]) for s in entry["shards"]),
        }
        for split, entry in manifest["splits"].items()
    }
    return {
        "shards": str(source),
        "source": manifest.get("source"),
        "splits": splits,
        "skipped": manifest.get("skipped", []),
        "ignored": manifest.get("ignored", []),
    }


def _sha256(url: str, chunk: int = 1 << 20) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    with open_url(url) as f:
        while block := f.read(chunk):
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size


def verify(source: str | Path, progress: bool = False) -> dict[str, Any]:
    """Recompute every shard's checksum and decode every sample; list each failure by name."""
    from tqdm import tqdm

    manifest = read_manifest(source)
    problems: list[str] = []
    refs = [
        (
            ShardRef(
                str(source),
                s["name"],
                split,
                int(s["videos"]),
                int(e["frames"]),
                bool(e.get("masks")),
            ),
            s,
        )
        for split, e in manifest["splits"].items()
        for s in e["shards"]
    ]
    samples = 0
    for ref, entry in tqdm(refs, unit=" shards", desc="verify", disable=not progress):
        url = join(source, ref.name)
        try:
            digest, size = _sha256(url)
        except (OSError, ValueError) as exc:
            problems.append(f"shard {url} cannot be read ({type(exc).__name__}: {exc})")
            continue
        if size != int(entry["bytes"]) or digest != entry["sha256"]:
            problems.append(
                f"shard {url}: {size} bytes, sha256 {digest[:12]}...; the manifest says "
                f"{entry['bytes']} bytes, sha256 {str(entry['sha256'])[:12]}..."
            )
        scratch = list(np.empty((ref.frames, HEIGHT, WIDTH, 3), np.uint8))
        for sample in read_shard(ref, on_error=problems.append):
            samples += 1
            try:
                meta = decode_sample(sample, scratch)
                if meta.get("split") != ref.split or meta.get("frames") != ref.frames:
                    raise ShardError(f"shard {url}: sample {sample['__key__']} json says {meta}")
                if ref.masks:
                    mask = decode_mask(sample)
                    if (
                        mask.shape != (ref.frames, HEIGHT, WIDTH)
                        or mask.dtype != np.uint8
                        or int(mask.max()) >= NUM_CLASSES
                    ):
                        raise ShardError(
                            f"shard {url}: sample {sample['__key__']} mask is {mask.dtype} "
                            f"{mask.shape} max {mask.max()}"
                        )
            except ShardError as exc:
                problems.append(str(exc))
    return {"shards": len(refs), "samples": samples, "problems": problems, "ok": not problems}
