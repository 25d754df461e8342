"""Writing a generated dataset: one video per job, published atomically, resumable, in parallel.

Each video is written into `split/.tmp-video_<id>-<pid>/` and renamed to `split/video_<id>/` when
complete, so a killed run leaves only whole videos. `OUT/.synth.json` records the parameters
that decide the files; a rerun with the same parameters skips the finished videos.
"""

from __future__ import annotations

import json
import logging
import multiprocessing as mp
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from .config import FRAMES, SPLITS, SynthConfig, SynthError
from .png import encode_frames
from .render import render
from .sliding import simulate

log = logging.getLogger(__name__)
PARAMS_FILE = ".synth.json"
TMP_PREFIX = ".tmp-"


def video_rng(seed: int, video_id: int) -> np.random.Generator:
    """The RNG of one video: from (seed, video id) only, so worker count and order do not matter."""
    return np.random.default_rng([seed, video_id])


def make_video(seed: int, video_id: int, frames: int = FRAMES) -> tuple[np.ndarray, np.ndarray]:
    """Frames (T, 160, 240, 3) uint8 and mask (T, 160, 240) uint8 of one video."""
    scene = simulate(video_rng(seed, video_id))
    return render(scene, frames)


def write_video(
    split_dir: Path, video_id: int, seed: int, with_mask: bool, frames: int, png_compress: int
) -> None:
    """Render one video and publish it as split_dir/video_<id> (atomic directory rename)."""
    final = split_dir / f"video_{video_id}"
    tmp = split_dir / f"{TMP_PREFIX}video_{video_id}-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    rgb, mask = make_video(seed, video_id, frames)  # always simulates all 22
    for t, png in enumerate(encode_frames(rgb, png_compress)):
        (tmp / f"image_{t}.png").write_bytes(png)
    if with_mask:
        np.save(tmp / "mask.npy", mask)
    try:
        os.replace(tmp, final)
    except OSError:
        if not final.is_dir():
            raise
        # a worker orphaned by a killed run finished the same video first: same bytes
        shutil.rmtree(tmp, ignore_errors=True)


def _job(args: tuple) -> int:
    write_video(*args)
    return 1


def _prepare(cfg: SynthConfig) -> None:
    """Check `out` is ours to fill (or resume), clean leftovers, record the parameters."""
    out = cfg.out
    params = cfg.identity()
    if out.exists() and not out.is_dir():
        raise SynthError(f"output {out} exists and is not a folder")
    existing = sorted(p.name for p in out.iterdir()) if out.is_dir() else []
    if existing and cfg.overwrite:
        for split in SPLITS:
            shutil.rmtree(out / split, ignore_errors=True)
        (out / PARAMS_FILE).unlink(missing_ok=True)
    elif existing:
        recorded = None
        if (out / PARAMS_FILE).is_file():
            try:
                recorded = json.loads((out / PARAMS_FILE).read_text())
            except ValueError:
                recorded = None
        if recorded != params:
            if isinstance(recorded, dict):
                diff = ", ".join(
                    f"{k} {recorded.get(k)} there, {v} asked"
                    for k, v in params.items()
                    if recorded.get(k) != v
                )
                why = f"holds another generation ({diff}): rerun with its parameters to finish it"
            else:
                why = f"is not empty ({len(existing)} entries, no {PARAMS_FILE} of a generation)"
            raise SynthError(
                f"output {out} {why}; pass --overwrite to replace its splits, or choose "
                "another folder"
            )
        log.info("resuming the generation in %s", out)
    out.mkdir(parents=True, exist_ok=True)
    for split in SPLITS:
        split_dir = out / split
        if split_dir.is_dir():
            for leftover in split_dir.glob(f"{TMP_PREFIX}*"):
                shutil.rmtree(leftover)
    tmp = out / f"{PARAMS_FILE}.tmp"
    tmp.write_text(json.dumps(params, indent=1) + "\n")
    os.replace(tmp, out / PARAMS_FILE)


def generate(cfg: SynthConfig) -> dict[str, int]:
    """Write the dataset `cfg` describes; return the videos per split plus written/skipped."""
    cfg.validate()
    _prepare(cfg)
    jobs, skipped = [], 0
    for split, video_id in cfg.jobs():
        first, frames, with_mask = SPLITS[split]
        split_dir = cfg.out / split
        split_dir.mkdir(exist_ok=True)
        if (split_dir / f"video_{video_id}").is_dir():
            skipped += 1  # finished by an earlier, interrupted run of the same generation
            continue
        jobs.append((split_dir, video_id, cfg.seed, with_mask, frames, cfg.png_compress))
    start = time.perf_counter()
    bar = _bar(cfg, total=len(jobs))
    try:
        if cfg.workers == 1 or len(jobs) <= 1:
            for job in jobs:
                bar.update(_job(job))
        else:
            ctx = mp.get_context("spawn")  # no fork: the parent may hold torch threads
            with ctx.Pool(min(cfg.workers, len(jobs))) as pool:
                for done in pool.imap_unordered(_job, jobs, chunksize=1):
                    bar.update(done)
    finally:
        bar.close()
    seconds = time.perf_counter() - start
    # debug: the caller reports the counts (the CLI's one summary line)
    log.debug("wrote %d videos (%d already there) in %.1fs", len(jobs), skipped, seconds)
    return {**cfg.counts(), "written": len(jobs), "skipped": skipped}


def _bar(cfg: SynthConfig, total: int) -> Any:
    from tqdm import tqdm

    # a bar on a terminal only (off one, \r-updates fill a log), and not under --quiet
    shown = cfg.progress and sys.stderr.isatty() and log.isEnabledFor(logging.INFO)
    return tqdm(total=total, unit="video", desc="synth", disable=not shown)
