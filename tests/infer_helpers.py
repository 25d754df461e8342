"""Helpers shared by the infer tests: a tiny untrained checkpoint and a predicted store."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def tiny_checkpoint(path: Path, seed: int = 0, **overrides) -> Path:
    """Save an untrained `tiny` model the way the trainer does (model config beside weights)."""
    import torch

    from convrnn import build_model, get_preset
    from train.checkpoint import save_checkpoint

    torch.manual_seed(seed)
    cfg = get_preset("tiny", **overrides)
    model = build_model(cfg)
    return save_checkpoint(
        path,
        {
            "model_config": cfg.to_dict(),
            "model": model.state_dict(),
            "train_config": {},
            "step": 0,
            "epoch": 0,
            "best_val": None,
        },
    )


def run_cli(
    *args: str, cwd: Path | None = None, timeout: float = 300, check: bool = True
) -> subprocess.CompletedProcess:
    """`python cli.py ARGS` as a subprocess (from `cwd`), with the repository importable."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "cli.py"), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"cli {args} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return proc
