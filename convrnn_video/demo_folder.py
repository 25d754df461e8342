"""The demo's folder: the marker a demo writes first, and what `--overwrite` may remove.

`data/`, `shards/`, `runs/`... are the real pipeline's default names, so the demo writes into,
and `--overwrite` removes from, only a folder that holds none of them or holds the marker: a
working folder with the user's own dataset and runs is refused, and nothing in it is touched.
"""

from __future__ import annotations

import json
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path

from convrnn_video.infer.config import DemoConfig
from convrnn_video.infer.errors import InferError

MARKER = ".convrnn-demo"  # written first into a demo folder: proof that its OUTPUTS are ours
MARKED_BY = "convrnn-video demo"
# what a demo writes, and all that --overwrite removes (from a folder with the marker only)
OUTPUTS = (
    "data",
    "shards",
    "runs",
    "preds-hidden.zarr",
    "preds-val.zarr",
    "tracks-hidden.zarr",
    "tracks-val.zarr",
    "predictions",
    "submission.pt",
    "submission.json",
    "report.json",
    "report.png",
    "report-tracks.json",
    "report-tracks.png",
    "montage.png",
    "montage-frames.png",
)


def _demo_outputs(root: Path) -> tuple[str, ...] | None:
    """None unless `root` holds the marker a demo writes when it starts; else what that demo
    wrote: OUTPUTS and the names its marker lists (an earlier version's, renamed since),
    plain names in `root` only."""
    try:
        marker = json.loads((root / MARKER).read_text())
    except (OSError, ValueError):  # absent or not JSON: not a marker of ours
        return None
    if not isinstance(marker, dict) or marker.get("written_by") != MARKED_BY:
        return None
    listed = marker.get("outputs")
    earlier = [
        name for name in (listed if isinstance(listed, list) else [])
        if isinstance(name, str) and name == Path(name).name and not name.startswith(".")
        and name not in OUTPUTS
    ]  # fmt: skip
    return (*OUTPUTS, *earlier)


def claim_folder(root: Path, cfg: DemoConfig) -> None:
    """Make `root` a demo folder: refuse one holding files of the demo's names that no demo
    wrote (no marker) and, unless `cfg.overwrite`, an earlier demo; remove that demo's outputs
    (only those), then write the marker."""
    if root.exists() and not root.is_dir():
        raise InferError(f"{root} is a file, not a folder; choose another --out")
    ours = _demo_outputs(root)
    names = OUTPUTS if ours is None else ours
    present = [name for name in names if (root / name).exists() or (root / name).is_symlink()]
    if present and ours is None:
        raise InferError(
            f"{root} holds {', '.join(present)}, which no demo wrote there (no {MARKER} "
            "marker): they may be your own dataset, shards or runs, so the demo neither "
            "writes into this folder nor removes anything, with or without --overwrite; "
            "choose a new or empty --out"
        )
    if present and not cfg.overwrite:
        raise InferError(
            f"{root} already holds a demo ({', '.join(present)}); pass --overwrite to start "
            "over, or choose another --out"
        )
    for name in present:
        path = root / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()  # a file, or a link (never what it points to)
    root.mkdir(parents=True, exist_ok=True)
    marker = {
        "written_by": MARKED_BY,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "outputs": list(OUTPUTS),
        "config": vars(cfg),
    }
    tmp = root / (MARKER + ".tmp")
    tmp.write_text(json.dumps(marker, indent=2) + "\n")
    os.replace(tmp, root / MARKER)
