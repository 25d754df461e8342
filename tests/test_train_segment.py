"""train/tasks/segment.py: the segmenter trained by the one trainer, on the conftest shards."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from train.checkpoint import load_checkpoint, load_model, save_untrained
from train.config import TrainConfig
from train.errors import TrainError
from train.loop import run_training
from train.tasks.segment import sample_frames

REPO = Path(__file__).resolve().parents[1]


def seg_config(shards: Path, out: Path, **overrides) -> TrainConfig:
    """tiny segmenter, 2 videos x 2 frames per step, 2 steps per epoch."""
    base = TrainConfig(
        task="segment", shards=str(shards), out=str(out), preset="tiny", batch_size=2,
        samples_per_epoch=4, max_steps=4, frames_per_video=2, log_every=1, lr=1e-2,
        progress=False, threads=1,
    )  # fmt: skip
    return dataclasses.replace(base, **overrides)


def records(run: Path, kind: str) -> list[dict]:
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["kind"] == kind]


def test_segment_run_writes_every_file(shard_root: Path, tmp_path: Path) -> None:
    run = run_training(seg_config(shard_root, tmp_path / "run"))
    for name in ("config.json", "metrics.jsonl", "curves.png", "last.pt", "best.pt"):
        assert (run / name).is_file(), name
    config = json.loads((run / "config.json").read_text())
    assert config["train"]["task"] == "segment" and config["train"]["train_splits"] == ["train"]
    assert config["model"]["num_classes"] == 49
    train = records(run, "train")
    assert [r["step"] for r in train] == [1, 2, 3, 4]
    assert all(r["loss"] > 0 and r["ce"] > 0 for r in train)
    val = records(run, "val")
    assert [r["step"] for r in val] == [2, 4]
    for r in val:
        j = r["model"]["jaccard"]
        assert 0 <= j["mean"] <= 1 and len(j["per_frame"]) == 22 and len(j["per_class"]) == 49
        assert r["loss"] == pytest.approx(1 - j["mean"])
        base = r["copy_mask"]["jaccard"]
        assert len(base["per_frame"]) == 11 and 0 < base["last"] <= 1
    model, cfg, payload = load_model(run / "best.pt", task="segment")
    assert payload["task"] == "segment" and type(cfg).__name__ == "SegConfig"
    logits = model(torch.rand(1, 3, 160, 240))
    assert logits.shape == (1, 49, 160, 240)


def test_segment_resume_is_exact_at_an_epoch_end(shard_root: Path, tmp_path: Path) -> None:
    # Frames are drawn from the global RNG each step: a resume from the checkpoint written at
    # the end of epoch 1 must draw the same frames and flips as the uninterrupted run.
    full = run_training(seg_config(shard_root, tmp_path / "full", max_steps=6))
    part = seg_config(shard_root, tmp_path / "part", max_steps=2)
    run_training(part)
    assert load_checkpoint(tmp_path / "part" / "last.pt")["batch_in_epoch"] == 0
    resumed = run_training(dataclasses.replace(part, max_steps=6, resume=True))
    a, b = load_checkpoint(full / "last.pt"), load_checkpoint(resumed / "last.pt")
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    assert [r["loss"] for r in records(full, "train")] == [
        r["loss"] for r in records(resumed, "train")
    ]


def test_segment_task_refusals(shard_root: Path, tmp_path: Path) -> None:
    with pytest.raises(TrainError, match="no masks"):
        run_training(seg_config(shard_root, tmp_path / "a", train_splits=("unlabeled",)))
    with pytest.raises(TrainError, match="--preset must be one of.*segment"):
        run_training(seg_config(shard_root, tmp_path / "b", preset="compact"))
    with pytest.raises(TrainError, match="--task must be one of"):
        run_training(seg_config(shard_root, tmp_path / "c", task="nope"))
    from convrnn import get_preset

    frames_ckpt = save_untrained(tmp_path / "frames.pt", get_preset("tiny"))
    with pytest.raises(TrainError, match="is a frames checkpoint; expected a segment"):
        load_model(frames_ckpt, task="segment")


def test_sample_frames_picks_matching_frames_and_masks() -> None:
    frames = torch.arange(2 * 5).float().view(2, 5, 1, 1, 1).expand(2, 5, 3, 4, 6).contiguous()
    masks = torch.arange(2 * 5).view(2, 5, 1, 1).expand(2, 5, 4, 6).to(torch.uint8)
    torch.manual_seed(0)
    x, y = sample_frames(frames, masks, 3, flip=True)
    assert x.shape == (6, 3, 4, 6) and y.shape == (6, 4, 6) and y.dtype == torch.int64
    assert torch.equal(x[:, 0].long(), y)  # every frame travels with its own mask
    assert len(set(y[:3, 0, 0].tolist())) == 3  # distinct frames of one video


def test_cli_train_segment(shard_root: Path, tmp_path: Path) -> None:
    cmd = [
        sys.executable, "cli.py", "train", "--task", "segment", "--preset", "tiny",
        "--shards", str(shard_root), "--out", str(tmp_path / "run"), "--max-steps", "1",
        "--batch-size", "2", "--samples-per-epoch", "2", "--no-progress", "--threads", "1",
    ]  # fmt: skip
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "Jaccard" in proc.stderr and (tmp_path / "run" / "best.pt").is_file()
    bad_cmd = [a if a != "tiny" else "seed" for a in cmd]
    bad_cmd[bad_cmd.index("--out") + 1] = str(tmp_path / "x")
    bad = subprocess.run(bad_cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert bad.returncode == 1 and "Traceback" not in bad.stderr
    assert bad.stderr.startswith("error:") and "--preset must be one of" in bad.stderr
