"""train/loop.py resumed: a run stopped and resumed is the run not stopped; best.pt, the
data and the options a resume may and may not change."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import shutil
from pathlib import Path

import pytest
import torch
from convrnn_video.runtime.checkpoint import load_checkpoint
from convrnn_video.train.config import TrainConfig
from convrnn_video.train.errors import TrainError
from convrnn_video.train.loop import run_training
from train_helpers import assert_same_run, records, small


def test_resume_reproduces_an_uninterrupted_run(shard_root: Path, tmp_path: Path) -> None:
    # 3 steps, stop mid-epoch (after a validation), resume to 5: same steps, losses, weights.
    full = run_training(small(shard_root, tmp_path / "full", max_steps=5))
    part = small(shard_root, tmp_path / "part", max_steps=3)
    run_training(part)
    assert load_checkpoint(tmp_path / "part" / "last.pt")["batch_in_epoch"] == 1
    history = tmp_path / "history.jsonl"  # a second name for the metrics file before resume
    os.link(tmp_path / "part" / "metrics.jsonl", history)
    lines = len(history.read_text().splitlines())
    resumed = run_training(dataclasses.replace(part, max_steps=5, resume=True))
    a, b = load_checkpoint(full / "last.pt"), load_checkpoint(resumed / "last.pt")
    assert a["step"] == b["step"] == 5
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    assert a["optimizer"]["param_groups"][0]["lr"] == b["optimizer"]["param_groups"][0]["lr"]
    assert a["best_val"] == b["best_val"]
    assert os.stat(tmp_path / "part" / "metrics.jsonl").st_ino != history.stat().st_ino
    assert len(history.read_text().splitlines()) == lines  # the old file was never truncated
    losses_a = [(r["step"], r["loss"]) for r in records(full, "train")]
    losses_b = [(r["step"], r["loss"]) for r in records(resumed, "train")]
    assert losses_a == losses_b


@pytest.mark.slow
def test_resume_at_an_epoch_end_is_exact_with_scheduled_sampling(
    shard_root: Path, tmp_path: Path
) -> None:
    # compact feeds its predictions back and flips scheduled-sampling coins from the global
    # RNG; the loader of the next epoch must not draw from it before the saved state returns.
    cfg = small(shard_root, tmp_path / "part", preset="compact", frames_in=3, frames_out=3,
                max_steps=2, ss_steps=8, val_split="")  # fmt: skip
    full = run_training(dataclasses.replace(cfg, out=str(tmp_path / "full"), max_steps=6))
    run_training(cfg)
    assert load_checkpoint(tmp_path / "part" / "last.pt")["batch_in_epoch"] == 0
    resumed = run_training(dataclasses.replace(cfg, max_steps=6, resume=True))
    assert_same_run(full, resumed)


def test_best_pt_is_not_replaced_by_worse_weights_after_a_resume(
    shard_root: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # 3 steps of 2 per epoch: a validation at step 2, then a report-only one at step 3 that
    # may save best.pt; last.pt must know what best.pt holds, or a resume would overwrite it.
    cfg = small(shard_root, tmp_path / "run", max_steps=3, lr=0.05)
    run_training(cfg)
    val = records(tmp_path / "run", "val")
    saved = min(r["loss"] for r in val)
    assert [r["best"] for r in val].count(True) >= 1
    assert load_checkpoint(tmp_path / "run" / "last.pt")["best_saved"] == saved
    assert load_checkpoint(tmp_path / "run" / "best.pt")["best_saved"] == saved
    with caplog.at_level(logging.INFO, logger="convrnn_video.train"):
        run_training(dataclasses.replace(cfg, max_steps=4, resume=True))
    val = records(tmp_path / "run", "val")
    best = load_checkpoint(tmp_path / "run" / "best.pt")
    # the losses a person reads are rounded (not "best val loss 1.081145875070619")
    said = re.findall(r"best val (?:loss )?([0-9.e+-]+)", caplog.text)  # resuming ..., done: ...
    digits = [x.split("e")[0].replace(".", "").lstrip("0") for x in said]
    assert len(said) >= 2 and all(len(d) <= 5 for d in digits), said  # logging levels vary
    assert best["best_saved"] == min(r["loss"] for r in val)
    assert best["step"] == min(val, key=lambda r: r["loss"])["step"]


def test_resume_with_other_data_is_refused(shard_root: Path, tmp_path: Path) -> None:
    from convrnn_video.ingest.pack import IngestConfig, run_ingest
    from convrnn_video.ingest.synth import SynthConfig, generate

    run = tmp_path / "run"
    cfg = small(shard_root, run, max_steps=1, val_split="", train_splits=("train",))
    run_training(cfg)
    # the same shards under another path (a copy) resume; other shards are refused
    copy = tmp_path / "copy"
    shutil.copytree(shard_root, copy)
    run_training(dataclasses.replace(cfg, shards=str(copy), max_steps=2, resume=True))
    assert load_checkpoint(run / "last.pt")["step"] == 2
    other = tmp_path / "other"
    generate(SynthConfig(out=tmp_path / "data", train=2, val=0, unlabeled=0, hidden=0, seed=1,
                         progress=False))  # fmt: skip
    run_ingest(IngestConfig(data_root=tmp_path / "data", out=other, workers=1, progress=False))
    with pytest.raises(TrainError, match="with other data: --shards .* holds other data") as info:
        run_training(dataclasses.replace(cfg, shards=str(other), max_steps=3, resume=True))
    assert "--init-from" in str(info.value) and "\n" not in str(info.value)
    assert load_checkpoint(run / "last.pt")["step"] == 2  # nothing written


def test_resume_from_a_checkpoint_without_options_and_init_from(
    shard_root: Path, tmp_path: Path
) -> None:
    from convrnn_video.convrnn import get_preset
    from convrnn_video.runtime.checkpoint import save_untrained

    run = tmp_path / "run"
    run.mkdir()
    save_untrained(run / "last.pt", get_preset("tiny", frames_in=4, frames_out=4))
    with pytest.raises(TrainError, match="no training options"):
        run_training(small(shard_root, run, resume=True))
    # --init-from: a new run that starts from those weights, with the checkpoint's model
    start = load_checkpoint(run / "last.pt")["model"]
    tuned_cfg = small(shard_root, tmp_path / "tuned", init_from=str(run / "last.pt"),
                      max_steps=1, lr=1e-9, val_split="")  # fmt: skip
    tuned = run_training(tuned_cfg)
    after = load_checkpoint(tuned / "last.pt")["model"]
    assert all(torch.allclose(start[k], after[k], atol=1e-6) for k in start)
    assert json.loads((tuned / "config.json").read_text())["train"]["preset"] == "init-from"
    resumed = dataclasses.replace(tuned_cfg, resume=True, max_steps=2)
    run_training(resumed, explicit={"resume", "max_steps"})  # as `train --resume --max-steps 2`
    assert load_checkpoint(tuned / "last.pt")["step"] == 2
    with pytest.raises(TrainError, match="is a frames checkpoint; this run trains --task segment"):
        run_training(TrainConfig(task="segment", shards=str(shard_root), out=str(tmp_path / "s"),
                                 init_from=str(run / "last.pt"), progress=False))  # fmt: skip
