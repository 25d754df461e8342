"""`run_ingest`: validate PNG video folders and pack them into WebDataset shards + manifest.

Flow: scan DATA_ROOT -> pick the layout (auto) and settle what each split's videos must be
(`ingest.layout`) -> plan shards (videos in id order, `videos_per_shard` each) -> for each shard
not already staged, read and check its videos in worker processes and write the tar to
OUT/.ingest.tmp/ (`ingest.staging`) -> if any video is bad and `skip_bad` is off, stop (nothing
published) -> rename the staged tars to their final names -> write OUT/manifest.json last. OUT
is DATA_ROOT/shards unless given; an OUT holding another DATA_ROOT's shards is refused without
--overwrite (and the error does not suggest it).

A killed ingest leaves only staged files under OUT/.ingest.tmp/; the next run reuses every
staged shard whose input files (names, sizes, mtimes) are unchanged and whose bytes still match.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from convrnn_video.ingest.config import SHARDS_DIR, IngestConfig
from convrnn_video.ingest.errors import IngestError
from convrnn_video.ingest.layout import Expect, choose_layout, settle
from convrnn_video.ingest.scan import Scan, scan_root
from convrnn_video.ingest.staging import (
    STAGING,
    ShardPlan,
    plan_shards,
    reuse_staged,
    write_shards,
)
from convrnn_video.shards.format import FORMAT_NAME, FORMAT_VERSION, MANIFEST_NAME, SHARD_RE
from convrnn_video.shards.manifest import write_manifest

log = logging.getLogger(__name__)


def run_ingest(cfg: IngestConfig) -> dict[str, Any]:
    """Ingest `cfg.data_root` into `cfg.shards_dir`; return the manifest written (see
    shards.manifest)."""
    cfg.check()
    out = cfg.shards_dir
    root = Path(cfg.data_root)
    _check_output(out, root, cfg.overwrite)
    scan = scan_root(root, cfg.layout, out)
    layout = cfg.layout
    if layout == "auto":
        layout = choose_layout(scan)
        if layout == "course":  # the same names, now against the course's fixed frame counts
            scan = scan_root(root, layout, out)
    expects = settle(scan, layout)
    for split, expect in expects.items():
        n = len(scan.splits[split])
        # no readable first frame in the split: no size to name (validation says why)
        look = expect if expect.height else f"{expect.frames} frames, none readable"
        log.info("%s: %d video%s, %s", split, n, "s" * (n != 1), look)
    renamed = [v for videos in scan.splits.values() for v in videos if v.path.name != v.key]
    if renamed:
        v = renamed[0]
        log.info("videos are stored under the number of their folder (%s as %s)", v.path, v.key)
    plans = plan_shards(scan, expects, cfg.videos_per_shard)
    staging = out / STAGING
    staging.mkdir(parents=True, exist_ok=True)

    records = reuse_staged(plans, staging, out)
    todo = [p for p in plans if p.name not in records]
    if records:
        log.info("resuming: %d of %d shards already staged", len(records), len(plans))
    desc = f"ingest (resumed {len(records)}/{len(plans)} shards)" if records else "ingest"
    done = sum(len(p.videos) for p in plans if p.name in records)
    records.update(write_shards(todo, staging, cfg, done=done, desc=desc))

    skipped = [entry for p in plans for entry in records[p.name]["skipped"]]
    if skipped and not cfg.skip_bad:
        lines = "\n".join(f"  {scan.base / e['path']}: {e['reason']}" for e in skipped)
        videos = len({(e["split"], e["video"]) for e in skipped})
        raise IngestError(
            f"{videos} bad video(s) in {scan.root}; nothing was published:\n{lines}\n"
            f"Fix or remove them and rerun (finished shards are kept in {staging}), "
            f"or pass --skip-bad to leave them out."
        )
    manifest = _manifest(scan, layout, expects, plans, records, skipped)
    _publish(out, staging, plans, records, manifest)
    return manifest


def _check_output(out: Path, root: Path, overwrite: bool) -> None:
    """Refuse an output that holds a manifest, unless `overwrite`; say --overwrite only when
    the shards there were made from this same DATA_ROOT."""
    old = out / MANIFEST_NAME
    if not old.exists():
        return
    try:
        source = json.loads(old.read_text()).get("source")
    except (OSError, ValueError, AttributeError):
        source = None  # unreadable: not known to be ours
    mine = str(root.resolve())
    if source == mine and not overwrite:
        raise IngestError(
            f"{out} already holds shards of {root} ({old}); pass --overwrite to replace them"
        )
    if source != mine and overwrite:
        log.warning("replacing the shards of %s in %s (--overwrite)", source or "an unknown", out)
    elif source != mine:
        beside = root / SHARDS_DIR
        other = beside if beside.resolve() != out.resolve() else out.with_name(f"{out.name}-new")
        holds = (
            f"the shards of another dataset ({source}), not of {root}"
            if source
            else f"a manifest this ingest cannot read ({old})"
        )
        raise IngestError(
            f"{out} holds {holds}: choose another --out for these videos "
            f"(for example --out {other})"
        )


SHARD_FIELDS = ("name", "videos", "bytes", "sha256", "first_id", "last_id")


def _manifest(
    scan: Scan,
    layout: str,
    expects: dict[str, Expect],
    plans: list[ShardPlan],
    records: dict[str, dict],
    skipped: list,
) -> dict:
    splits: dict[str, dict] = {}
    for split, expect in expects.items():
        shards = [
            {k: records[p.name][k] for k in SHARD_FIELDS}
            for p in plans
            if p.split == split and records[p.name]["videos"]
        ]
        if layout == "free" and not shards:  # every video skipped: no geometry to promise
            log.warning("every %s video was skipped: %s left out of the manifest", split, split)
            continue
        splits[split] = {
            "videos": sum(s["videos"] for s in shards),
            "frames": expect.frames,
            "height": expect.height,
            "width": expect.width,
            "channels": expect.channels,
            "masks": expect.masks,
            "shards": shards,
        }
    if not splits:
        raise IngestError(f"{scan.root} holds no video to ingest ({len(skipped)} skipped)")
    return {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "layout": layout,
        "source": str(scan.root),
        "splits": splits,
        "skipped": skipped,
        "ignored": sorted(scan.ignored),
    }


def _publish(
    out: Path, staging: Path, plans: list[ShardPlan], records: dict, manifest: dict
) -> None:
    """Move staged tars to their final names, then write the manifest, then clean up."""
    new_names = {s["name"] for entry in manifest["splits"].values() for s in entry["shards"]}
    old_manifest = out / MANIFEST_NAME
    if old_manifest.exists():  # --overwrite: remove the old shards we no longer need
        try:
            old = json.loads(old_manifest.read_text())
            old_names = {s["name"] for e in old["splits"].values() for s in e["shards"]}
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            old_names = set()
        for name in sorted(old_names - new_names):
            if SHARD_RE.fullmatch(name):
                (out / name).unlink(missing_ok=True)
        old_manifest.unlink()
    for name in sorted(new_names):
        if (staging / name).exists():
            os.replace(staging / name, out / name)
    write_manifest(out, manifest)
    for plan in plans:
        (staging / (plan.name[: -len(".tar")] + ".json")).unlink(missing_ok=True)
        (staging / plan.name).unlink(missing_ok=True)
    try:
        staging.rmdir()
    except OSError:
        log.warning("left %s in place: it holds files this ingest did not write", staging)
    stray = sorted(
        p.name for p in out.iterdir() if SHARD_RE.fullmatch(p.name) and p.name not in new_names
    )
    if stray:
        names = ", ".join(stray)
        log.warning("%s holds shard files not in the new manifest (not deleted): %s", out, names)


__all__ = ["IngestConfig", "run_ingest", "plan_shards"]
