"""Helpers of the train/ tests: a tiny run's config, its metrics records, its CLI line, and
the check that a resumed run is the run not stopped."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import torch
from convrnn_video.runtime.checkpoint import load_checkpoint
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


def assert_same_run(a: Path, b: Path) -> None:
    """The runs in folders a and b end with the same weights (last.pt) after the same
    training losses, step by step: what an exact resume leaves."""
    ca, cb = load_checkpoint(a / "last.pt"), load_checkpoint(b / "last.pt")
    assert all(torch.equal(ca["model"][k], cb["model"][k]) for k in ca["model"])
    assert [r["loss"] for r in records(a, "train")] == [r["loss"] for r in records(b, "train")]


def cli_train(shards: Path, out: Path, *extra: str) -> list[str]:
    return [
        "cli.py", "train", "--shards", str(shards), "--out", str(out), "--preset", "tiny",
        "--frames-in", "4", "--frames-out", "4", "--batch-size", "2", "--samples-per-epoch", "4",
        "--log-every", "1", "--no-progress", "--lr", "1e-3", *extra,
    ]  # fmt: skip
