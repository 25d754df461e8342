"""train/schedule.py: the cosine lr with warm-up, alone and as a whole tiny run uses it."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from convrnn_video.runtime.checkpoint import load_checkpoint
from convrnn_video.train.config import TrainConfig
from convrnn_video.train.errors import TrainError
from convrnn_video.train.loop import run_training
from convrnn_video.train.schedule import budget_progress, cosine_lr
from train_helpers import records, small


def test_cosine_ramps_up_then_decays_to_its_floor() -> None:
    assert cosine_lr(1.0, 0, 0.0, 4, 0.1) == pytest.approx(0.25)  # first warm-up step
    assert cosine_lr(1.0, 3, 0.0, 4, 0.1) == pytest.approx(1.0)  # warm-up done
    assert cosine_lr(1.0, 10, 0.5, 4, 0.1) == pytest.approx(0.55)  # halfway: mid of 1 and 0.1
    assert cosine_lr(2.0, 10, 1.0, 0, 0.1) == pytest.approx(0.2)  # the floor at the end...
    assert cosine_lr(2.0, 10, 3.0, 0, 0.1) == pytest.approx(0.2)  # ...and past it
    values = [cosine_lr(1.0, s, s / 20, 0, 0.0) for s in range(21)]
    assert all(a >= b for a, b in zip(values, values[1:], strict=False))
    assert budget_progress(5, 10, 99.0, 10.0) == 0.5  # steps win over seconds
    assert budget_progress(5, None, 30.0, 60.0) == 0.5
    assert budget_progress(5, None, 30.0, 60.0, 8) == 5 / 8  # the epochs end first
    assert budget_progress(5, None, 30.0, None) == 0.0


def test_a_run_follows_the_cosine_and_resumes_on_it(shard_root: Path, tmp_path: Path) -> None:
    cfg = small(shard_root, tmp_path / "run", max_steps=6, lr_schedule="cosine",
                warmup_steps=2, lr_floor=0.1)  # fmt: skip
    run = run_training(cfg)
    lrs = [r["lr"] for r in records(run, "train")]  # the lr of each step just taken
    want = [cosine_lr(1e-3, s, s / 6, 2, 0.1) for s in range(6)]
    assert lrs == pytest.approx(want)
    assert lrs[0] == pytest.approx(5e-4) and max(lrs) < 1e-3 + 1e-12
    # stopped after 3 of 6 steps (--max-steps 3) and resumed with --max-steps 6: the resumed
    # steps follow the curve of the budget given now, from the saved step on
    part = dataclasses.replace(cfg, out=str(tmp_path / "part"), max_steps=3)
    run_training(part)
    resumed = run_training(dataclasses.replace(part, max_steps=6, resume=True))
    after = [r["lr"] for r in records(resumed, "train") if r["step"] > 3]
    assert after == pytest.approx(want[3:])
    assert load_checkpoint(resumed / "last.pt")["step"] == 6


def test_without_a_budget_the_cosine_decays_over_the_epochs(
    shard_root: Path, tmp_path: Path
) -> None:
    # no --max-steps, no --time-limit: 3 epochs of 2 steps are the budget
    cfg = small(shard_root, tmp_path / "run", max_steps=None, epochs=3, lr_schedule="cosine",
                warmup_steps=0, lr_floor=0.1, val_split="")  # fmt: skip
    run = run_training(cfg)
    lrs = [r["lr"] for r in records(run, "train")]
    assert lrs == pytest.approx([cosine_lr(1e-3, s, s / 6, 0, 0.1) for s in range(6)])
    assert load_checkpoint(run / "last.pt")["budget_steps"] == 6
    assert budget_progress(3, None, 30.0, None, 6) == 0.5
    with pytest.raises(TrainError, match="--lr-schedule must be one of"):
        TrainConfig(shards="x", lr_schedule="linear").validate()
    TrainConfig(shards="x", lr_schedule="cosine", time_limit=1.0).validate()


@pytest.mark.slow
def test_a_time_limited_cosine_ends_at_its_floor(shard_root: Path, tmp_path: Path) -> None:
    # The time limit stops on the run's clock and the cosine reads the same clock (validations
    # and checkpoints included), so when the limit stops the run its budget is spent: steps
    # after it, here the rest of the epoch on resume, are at the floor.
    cfg = small(shard_root, tmp_path / "run", max_steps=None, epochs=10_000, time_limit=0.05,
                lr_schedule="cosine", lr_floor=0.1, val_every=1, warmup_steps=0)  # fmt: skip
    run = run_training(cfg)
    last = load_checkpoint(run / "last.pt")
    assert last["budget_seconds"] == 3.0 and last["clock_seconds"] >= 3.0
    lrs = [r["lr"] for r in records(run, "train")]
    assert all(a >= b for a, b in zip(lrs, lrs[1:], strict=False))
    resumed = dataclasses.replace(cfg, resume=True, epochs=last["epoch"] + 1, time_limit=5.0)
    run_training(resumed)
    after = [r["lr"] for r in records(run, "train") if r["step"] > last["step"]]
    assert after and after == pytest.approx([1e-4] * len(after))
