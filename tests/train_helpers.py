"""Helpers of the train/ tests: a tiny run's config, its metrics records, its CLI line."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from convrnn_video.train.config import TrainConfig

REPO = Path(__file__).resolve().parents[1]


def small(shards: Path, out: Path, **overrides) -> TrainConfig:
    """tiny, 4 -> 4 frames, 2 steps per epoch, a line per step; the plateau schedule, so that
    runs of different --max-steps share their lr (the recipe's cosine decays over them)."""
    base = TrainConfig(
        shards=str(shards), out=str(out), preset="tiny", frames_in=4, frames_out=4,
        batch_size=2, samples_per_epoch=4, max_steps=4, log_every=1, lr=1e-3, progress=False,
        threads=1, lr_schedule="plateau",
    )  # fmt: skip
    return dataclasses.replace(base, **overrides)


def records(run: Path, kind: str) -> list[dict]:
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["kind"] == kind]


def cli_train(shards: Path, out: Path, *extra: str) -> list[str]:
    return [
        "cli.py", "train", "--shards", str(shards), "--out", str(out), "--preset", "tiny",
        "--frames-in", "4", "--frames-out", "4", "--batch-size", "2", "--samples-per-epoch", "4",
        "--log-every", "1", "--no-progress", "--lr", "1e-3", *extra,
    ]  # fmt: skip
