"""Run folders: `runs/<timestamp>/` with config.json, metrics.jsonl, curves.png, last/best.pt."""

from __future__ import annotations

import time
from pathlib import Path

from convrnn_video.runtime.errors import RunError

RUNS_ROOT = Path("runs")
LAST = "last.pt"
BEST = "best.pt"
CONFIG = "config.json"
METRICS = "metrics.jsonl"
CURVES = "curves.png"
CSV = "metrics.csv"


def new_run_dir(root: Path = RUNS_ROOT) -> Path:
    """A new, empty `root/<UTC timestamp>` folder, created when picked: `mkdir` fails on a
    name another run took (two runs started in the same second), and the next suffix (`-1`,
    `-2`, ...) is tried, so no two runs ever share a folder."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    n = 0
    while True:
        path = root / (f"{stamp}-{n}" if n else stamp)
        try:
            path.mkdir()
            return path
        except FileExistsError:
            n += 1


def newest_run(root: Path = RUNS_ROOT) -> Path:
    """The most recently modified run folder under `root` that holds a checkpoint."""
    root = Path(root)
    runs = [p for p in root.glob("*") if (p / LAST).is_file() or (p / BEST).is_file()]
    if not runs:
        raise RunError(
            f"no training run with a checkpoint found under {root}/; "
            "train one with `python cli.py train --shards ...` or pass the run folder"
        )
    return max(runs, key=lambda p: (p.stat().st_mtime, p.name))


def find_checkpoint(path: Path | str | None = None, root: Path = RUNS_ROOT) -> Path:
    """Resolve a checkpoint: a `.pt` file as is, a run folder to its best.pt (else last.pt),
    None to the newest run under `root`."""
    run = newest_run(root) if path is None else Path(path)
    if run.is_file():
        return run
    if not run.exists():
        raise RunError(f"checkpoint or run folder not found: {run}")
    for name in (BEST, LAST):
        if (run / name).is_file():
            return run / name
    raise RunError(f"run folder {run} holds neither {BEST} nor {LAST}")


def resolve_run_dir(out: str | Path | None, resume: bool, root: Path | str = RUNS_ROOT) -> Path:
    """The folder a training run writes to: without `--out` a new one, created here (see
    `new_run_dir`); otherwise not created here.

    A new run refuses a folder that already holds one; `--resume` needs its last.pt, and
    without `--out` it continues the newest run under `root`."""
    if out is None and not resume:
        return new_run_dir(Path(root))
    run = newest_run(Path(root)) if out is None else Path(out)
    if resume:
        if not (run / LAST).is_file():
            raise RunError(
                f"nothing to resume in {run}: no {LAST} there "
                "(start a new run without --resume, or point --out at an existing run)"
            )
        return run
    if run.is_file():
        raise RunError(f"--out {run} is a file, expected a run folder")
    held = [name for name in (LAST, BEST, CONFIG, METRICS) if (run / name).exists()]
    if held:
        raise RunError(
            f"run folder {run} already holds a run ({', '.join(held)}); pass --resume to "
            "continue it, or choose another --out"
        )
    return run


def discard_unstarted(run: Path) -> None:
    """Remove what a new run wrote before it failed, when it saved no checkpoint: its own
    files, and the folder if that leaves it empty (so the same command can run again)."""
    run = Path(run)
    if not run.is_dir() or (run / LAST).exists() or (run / BEST).exists():
        return
    for name in (CONFIG, CONFIG + ".tmp", METRICS, CURVES, CSV):
        (run / name).unlink(missing_ok=True)
    if not any(run.iterdir()):
        run.rmdir()
