"""train/ as a process: SIGTERM, two-process DDP on CPU, the CLI's log lines, a busy machine."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from convrnn_video.runtime.checkpoint import load_checkpoint
from convrnn_video.train.loop import run_training
from faults import run_faulted
from test_load import neighbour, stop
from train_helpers import REPO, cli_train, records, small


@pytest.mark.slow
def test_sigterm_saves_last_and_exits_0(shard_root: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    # SIGTERM right after the first optimizer step: the loop saves last.pt after it
    args = cli_train(shard_root, run, "--max-steps", "100000", "--threads", "1")[1:]
    done = run_faulted(args, "torch.optim:Adam.step", 1, signal.SIGTERM, cwd=REPO,
                       capture_output=True, text=True)  # fmt: skip
    err = done.stderr
    assert done.returncode == 0, err
    assert "--resume" in err and "SIGTERM" in err
    step = load_checkpoint(run / "last.pt")["step"]
    assert step == 1
    # resuming continues from there (not from a new start: it would end at the same step)
    resumed = subprocess.run(
        [sys.executable, *cli_train(shard_root, run, "--resume", "--max-steps", str(step + 1))],
        cwd=REPO, check=True, capture_output=True, text=True,
    )  # fmt: skip
    assert f"resuming {run} at step {step} " in resumed.stderr
    assert load_checkpoint(run / "last.pt")["step"] == step + 1
    assert [r["step"] for r in records(run, "train")] == [1, 2]


@pytest.mark.slow
def test_two_process_ddp_on_cpu(shard_root: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    for steps, extra in (("2", ()), ("3", ("--resume",))):
        done = subprocess.run(
            [*torchrun, *cli_train(shard_root, run, "--max-steps", steps, *extra)],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
        assert done.stderr.count("done: ") == 1  # rank 0 alone logs progress (-v: every rank)
    end = records(run, "end")
    assert [e["rank_steps"] for e in end] == [[2, 2], [3, 3]]
    assert all(d == 0.0 for e in end for d in e["rank_weight_diff"])
    config = json.loads((run / "config.json").read_text())
    assert config["world_size"] == 2 and config["threads_per_process"] == 1
    # A cosine lr over a time budget: the ranks read one clock, so every step has one lr on
    # every rank (any difference would show in Adam's updates, hence in the weights).
    timed = tmp_path / "timed"
    done = subprocess.run(
        [*torchrun, *cli_train(shard_root, timed, "--lr-schedule", "cosine", "--time-limit",
                               "0.1", "--val-split", "")],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    (end,) = records(timed, "end")
    assert end["step"] >= 2 and end["rank_steps"][0] == end["rank_steps"][1]
    assert end["rank_weight_diff"] == [0.0, 0.0] and "ranks disagree" not in done.stderr
    assert end["rank_lr"][0] == end["rank_lr"][1]
    # --val-videos 2 on 2 ranks: each scores the first of its own val videos, 2 in all
    seg = tmp_path / "seg"
    done = subprocess.run(
        [*torchrun, *cli_train(shard_root, seg, "--task", "segment", "--train-splits", "train",
                               "--crop", "32", "32", "--max-steps", "1", "--val-batch-size", "1",
                               "--val-videos", "2")],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert records(seg, "val")[-1]["model"]["jaccard"]["videos"] == 2


def test_the_ddp_probe_leaves_batchnorm_and_the_rng_alone() -> None:
    # DDP asks which parameters get no gradient with one random batch in train mode; its
    # BatchNorm statistics and random draws must not reach training (nor differ on resume).
    from convrnn_video.runtime.distributed import unused_parameters
    from convrnn_video.segment.config import get_preset
    from convrnn_video.train.tasks import get_task

    task = get_task("segment")
    torch.manual_seed(0)
    model = task.build(get_preset("tiny")).train()
    before = {k: b.clone() for k, b in model.named_buffers()}
    assert any("running_mean" in k for k in before)
    rng = torch.get_rng_state()
    assert unused_parameters(model, task.dummy_loss) == []
    after = dict(model.named_buffers())
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert torch.equal(torch.get_rng_state(), rng)
    assert all(p.grad is None for p in model.parameters()) and model.training


@pytest.mark.slow
def test_cli_logs_plain_lines_off_a_terminal_and_quiet_prints_nothing(
    shard_root: Path, tmp_path: Path
) -> None:
    def train(name: str, *before: str) -> subprocess.CompletedProcess:
        script, *rest = cli_train(shard_root, tmp_path / name, "--max-steps", "2", "--threads", "1")
        if before:  # with the bar asked for: a log file gets no bar, --quiet none at all
            rest.remove("--no-progress")
        args = [sys.executable, script, *before, *rest]  # options of every command come first
        return subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=300)

    done = train("plain")
    assert done.returncode == 0, done.stderr
    assert "training frames (tiny" in done.stderr and "batch 2, 2 steps per epoch" in done.stderr
    assert "budget 2 steps (--max-steps)" in done.stderr
    assert "step 1/2 (epoch 0): loss" in done.stderr and "ETA" in done.stderr  # --no-progress
    quiet = train("quiet", "--quiet")
    assert quiet.returncode == 0 and quiet.stderr == "", quiet.stderr


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/stat").exists(), reason="needs Linux /proc/stat")
def test_a_time_limited_run_beside_a_busy_process_says_so(
    shard_root: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # every core, over the 20%; they outlive both runs on a slow machine and are stopped below
    busy = [neighbour(60.0) for _ in range(os.cpu_count() or 1)]
    try:
        cfg = small(shard_root, tmp_path / "run", max_steps=None, epochs=10_000, time_limit=0.04)
        with caplog.at_level(logging.WARNING, logger="convrnn_video.train"):
            run = run_training(cfg)
            said = caplog.text
            # a time-limited run that ends on its epochs first did every step: no warning
            caplog.clear()
            epochs = run_training(dataclasses.replace(cfg, out=str(tmp_path / "e"), epochs=2,
                                                      time_limit=30.0))  # fmt: skip
    finally:
        for pid in busy:
            stop(pid)
    end = records(run, "end")[0]
    assert end["others_cores"] > 0.5
    assert "other processes kept" in said and "time-limited" in said
    end = records(epochs, "end")[0]
    assert end["step"] == 4 and end["others_cores"] > 0.5
    assert "other processes kept" not in caplog.text
