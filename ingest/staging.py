"""Staging shards resumably: `ShardPlan` (one shard to write, and the fingerprint of its input
files), `plan_shards`, `reuse_staged` (the shards a killed run already finished) and
`write_shards` (check the videos and write each shard's tar and record to OUT/.ingest.tmp/,
in worker processes). `pack.py` runs them and publishes the result.
"""

from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing
import os
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from convrnn_video.ingest.config import IngestConfig
from convrnn_video.ingest.layout import Expect
from convrnn_video.ingest.scan import Scan, Video
from convrnn_video.ingest.validate import load_video
from convrnn_video.ingest.writer import ShardWriter, sha256_file
from convrnn_video.shards.format import FORMAT_VERSION, SHARD_RE, shard_name

log = logging.getLogger(__name__)

STAGING = ".ingest.tmp"  # under OUT; `*.tmp` is git-ignored


@dataclass(frozen=True)
class ShardPlan:
    """One shard to write: its split, name, videos (in id order) and what they must be."""

    split: str
    name: str
    videos: tuple[Video, ...]
    expect: Expect

    def fingerprint(self) -> str:
        """Changes when any input file's name, size or mtime changes (or the format or the
        split's expected geometry does)."""
        parts: list[Any] = [FORMAT_VERSION, self.name, asdict(self.expect)]
        for video in self.videos:
            files = [*video.frames, *([video.mask] if video.mask else [])]
            stats = []
            for path in files:
                try:
                    st = path.stat()
                    stats.append((path.name, st.st_size, st.st_mtime_ns))
                except OSError:
                    stats.append((path.name, None, None))
            problems = [(Path(p).name, reason) for p, reason in video.problems]
            parts.append((video.split, video.key, stats, problems))
        return hashlib.sha256(json.dumps(parts).encode()).hexdigest()


def plan_shards(scan: Scan, expects: dict[str, Expect], videos_per_shard: int) -> list[ShardPlan]:
    """Cut each split's videos (already in id order) into consecutive shards."""
    plans = []
    for split, videos in scan.splits.items():
        if split not in expects:  # a free-layout split without videos
            continue
        for index, start in enumerate(range(0, len(videos), videos_per_shard)):
            chunk = tuple(videos[start : start + videos_per_shard])
            plans.append(ShardPlan(split, shard_name(split, index), chunk, expects[split]))
    return plans


def _rel(path: str, root: Path) -> str:
    try:
        return Path(path).relative_to(root).as_posix()
    except ValueError:
        return path


def reuse_staged(plans: list[ShardPlan], staging: Path, out: Path) -> dict[str, dict]:
    """Records of shards a previous run finished for the same input; stale staged files go."""
    wanted = {p.name: p for p in plans}
    records: dict[str, dict] = {}
    for record_path in sorted(staging.glob("*.json")):
        name = record_path.stem + ".tar"
        if not SHARD_RE.fullmatch(name):
            continue  # not one of ours
        plan = wanted.get(name)
        try:
            record = json.loads(record_path.read_text())
        except (OSError, ValueError):
            record = None
        ok = plan is not None and record is not None
        ok = ok and record.get("fingerprint") == plan.fingerprint()
        if ok and record["videos"]:
            # a killed publish may already have moved the tar to its final name
            tar = staging / name if (staging / name).exists() else out / name
            ok = tar.exists() and tar.stat().st_size == record["bytes"]
            ok = ok and sha256_file(tar) == record["sha256"]
        if ok:
            records[name] = record
        else:  # ours and stale: a changed input, another plan, or a torn write
            record_path.unlink(missing_ok=True)
            (staging / name).unlink(missing_ok=True)
    for partial in staging.glob("*.partial"):
        if SHARD_RE.fullmatch(partial.name.split(".partial")[0].replace(".json", ".tar")):
            partial.unlink()
    return records


_tick: Callable[[int], object] | None = None  # progress callback, per video checked


def _init_worker(queue: multiprocessing.SimpleQueue) -> None:
    global _tick
    _tick = queue.put


def write_shard(plan: ShardPlan, staging: Path, root: Path) -> dict[str, Any]:
    """Check the videos of one shard and write the good ones to STAGING/<name>; record it.

    Runs in a worker process: the video bytes never travel between processes.
    """
    skipped, ids = [], []
    with ShardWriter(staging / plan.name) as writer:
        for video in plan.videos:
            members, problems = load_video(video, plan.expect)
            if members is None:
                path = problems[0][0] if len(problems) == 1 else str(video.path)
                # each problem names its file, unless that is the path given for the video
                reason = "; ".join(r if p == path else f"{Path(p).name}: {r}" for p, r in problems)
                entry = {"split": video.split, "video": video.key}
                skipped.append(entry | {"path": _rel(path, root), "reason": reason})
            else:
                writer.write(video.key, members)
                ids.append(video.id)
            if _tick is not None:
                _tick(1)
    if not ids:
        (staging / plan.name).unlink()
    record = {
        "name": plan.name,
        "fingerprint": plan.fingerprint(),
        "videos": writer.videos,
        "bytes": writer.bytes if ids else 0,
        "sha256": writer.sha256 if ids else "",
        "first_id": ids[0] if ids else None,
        "last_id": ids[-1] if ids else None,
        "skipped": skipped,
    }
    tmp = staging / (plan.name[: -len(".tar")] + ".json.partial")
    tmp.write_text(json.dumps(record))
    os.replace(tmp, tmp.with_suffix(""))  # the record last: it marks the shard finished
    return record


def write_shards(
    todo: list[ShardPlan], staging: Path, cfg: IngestConfig, done: int, desc: str
) -> dict[str, dict]:
    """write_shard for every shard of `todo`, one shard per task in `cfg.workers` processes."""
    global _tick
    from tqdm import tqdm

    total = done + sum(len(p.videos) for p in todo)
    # a bar on a terminal only (off one, \r-updates fill a log), and not under --quiet
    shown = cfg.progress and sys.stderr.isatty() and log.isEnabledFor(logging.INFO)
    bar = tqdm(total=total, initial=done, unit=" videos", desc=desc, disable=not shown)
    root = Path(cfg.data_root)
    records: dict[str, dict] = {}
    with bar:
        if cfg.workers == 1 or len(todo) <= 1:
            _tick = bar.update
            try:
                for plan in todo:
                    records[plan.name] = write_shard(plan, staging, root)
            finally:
                _tick = None
            return records
        ctx = multiprocessing.get_context("fork")  # no torch here: forking is safe and fast
        ticks = ctx.SimpleQueue()
        workers = min(cfg.workers, len(todo))
        with ctx.Pool(workers, initializer=_init_worker, initargs=(ticks,)) as pool:
            pending = [pool.apply_async(write_shard, (p, staging, root)) for p in todo]
            for plan, result in zip(todo, pending, strict=True):
                while not result.ready():
                    while not ticks.empty():
                        bar.update(ticks.get())
                    result.wait(0.1)
                records[plan.name] = result.get()  # re-raises a worker's exception
            while not ticks.empty():
                bar.update(ticks.get())
    return records
