"""train/tasks/segment.py: the segmenter trained by the one trainer, on the conftest shards."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from convrnn_video.runtime.checkpoint import load_checkpoint, load_model, save_untrained
from convrnn_video.runtime.errors import RunError
from convrnn_video.train.config import TrainConfig
from convrnn_video.train.errors import TrainError
from convrnn_video.train.loop import run_training
from convrnn_video.train.tasks.segment import crop_frames, sample_frames, weighted_cross_entropy
from train_helpers import assert_same_run, records

REPO = Path(__file__).resolve().parents[1]


def seg_config(shards: Path, out: Path, **overrides) -> TrainConfig:
    """tiny segmenter, 2 videos x 2 frames per step, 2 steps per epoch, validated at each
    epoch end (the task validates every 2,000 steps)."""
    base = TrainConfig(
        task="segment", shards=str(shards), out=str(out), preset="tiny", batch_size=2,
        samples_per_epoch=4, max_steps=4, frames_per_video=2, log_every=1, lr=1e-2,
        progress=False, threads=1, val_every=2,
    )  # fmt: skip
    return dataclasses.replace(base, **overrides)


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
    # whole frames here (--crop 0 0); test_segment_run_on_crops_resumes_exactly does windows
    full = run_training(seg_config(shard_root, tmp_path / "full", max_steps=6, crop=(0, 0)))
    part = seg_config(shard_root, tmp_path / "part", max_steps=2, crop=(0, 0))
    run_training(part)
    assert load_checkpoint(tmp_path / "part" / "last.pt")["batch_in_epoch"] == 0
    resumed = run_training(dataclasses.replace(part, max_steps=6, resume=True))
    assert_same_run(full, resumed)


def test_segment_task_refusals(shard_root: Path, tmp_path: Path) -> None:
    with pytest.raises(TrainError, match="no masks"):
        run_training(seg_config(shard_root, tmp_path / "a", train_splits=("unlabeled",)))
    with pytest.raises(TrainError, match="--preset must be one of.*segment"):
        run_training(seg_config(shard_root, tmp_path / "b", preset="compact"))
    with pytest.raises(TrainError, match="--task must be one of"):
        run_training(seg_config(shard_root, tmp_path / "c", task="nope"))
    from convrnn_video.convrnn import get_preset

    frames_ckpt = save_untrained(tmp_path / "frames.pt", get_preset("tiny"))
    with pytest.raises(RunError, match="is a frames checkpoint; expected a segment"):
        load_model(frames_ckpt, task="segment")


def test_sample_frames_picks_matching_frames_and_masks() -> None:
    frames = torch.arange(2 * 5).float().view(2, 5, 1, 1, 1).expand(2, 5, 3, 4, 6).contiguous()
    masks = torch.arange(2 * 5).view(2, 5, 1, 1).expand(2, 5, 4, 6).to(torch.uint8)
    torch.manual_seed(0)
    x, y = sample_frames(frames, masks, 3, flip=True)
    assert x.shape == (6, 3, 4, 6) and y.shape == (6, 4, 6) and y.dtype == torch.int64
    assert torch.equal(x[:, 0].long(), y)  # every frame travels with its own mask
    assert len(set(y[:3, 0, 0].tolist())) == 3  # distinct frames of one video


def coordinate_frames(n: int, h: int, w: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Frames whose channels hold (row, column, frame index), masks holding row * w + column."""
    rows = torch.arange(h).view(1, h, 1).expand(n, h, w).float()
    cols = torch.arange(w).view(1, 1, w).expand(n, h, w).float()
    idx = torch.arange(n).view(n, 1, 1).expand(n, h, w).float()
    x = torch.stack([rows, cols, idx], dim=1)  # (n, 3, h, w)
    y = (rows * w + cols).long()  # (n, h, w)
    return x, y


def test_crops_keep_frames_and_masks_aligned() -> None:
    x, y = coordinate_frames(50, 16, 24)
    torch.manual_seed(0)
    cx, cy = crop_frames(x, y, (8, 12), object_bias=0.5)
    assert cx.shape == (50, 3, 8, 12) and cy.shape == (50, 8, 12)
    assert torch.equal((cx[:, 0] * 24 + cx[:, 1]).long(), cy)  # every pixel with its label
    assert torch.equal(cx[:, 2, 0, 0], torch.arange(50).float())  # each frame its own window
    # windows are contiguous: rows and columns step by one
    assert bool((cx[:, 0, 1:] - cx[:, 0, :-1] == 1).all())
    assert bool((cx[:, 1, :, 1:] - cx[:, 1, :, :-1] == 1).all())
    assert len({int(v) for v in cy[:, 0, 0]}) > 10  # windows are spread over the frame


def test_biased_crops_cover_the_objects() -> None:
    # one 2x2 object in a corner of an otherwise empty 32x48 frame
    x = torch.rand(40, 3, 32, 48)
    y = torch.zeros(40, 32, 48, dtype=torch.long)
    y[:, 1:3, 44:46] = 7
    torch.manual_seed(0)
    _, always = crop_frames(x, y, (8, 8), object_bias=1.0)
    assert bool((always == 7).flatten(1).any(1).all())  # every window holds the object
    _, never = crop_frames(x, y, (8, 8), object_bias=0.0)
    assert int((never == 7).flatten(1).any(1).sum()) < 10  # uniform windows rarely do
    empty = torch.zeros(3, 32, 48, dtype=torch.long)  # no object: a uniform window, no error
    assert crop_frames(x[:3], empty, (8, 8), object_bias=1.0)[1].shape == (3, 8, 8)
    with pytest.raises(ValueError, match="larger than the frames"):
        crop_frames(x, y, (40, 8), object_bias=0.0)


def test_object_weighted_cross_entropy() -> None:
    logits = torch.randn(2, 5, 4, 6)
    y = torch.randint(0, 5, (2, 4, 6))
    plain = torch.nn.functional.cross_entropy(logits, y)
    assert torch.allclose(weighted_cross_entropy(logits, y, 1.0), plain)
    per_pixel = torch.nn.functional.cross_entropy(logits, y, reduction="none")
    w = torch.where(y > 0, 3.0, 1.0)
    assert torch.allclose(weighted_cross_entropy(logits, y, 3.0), (per_pixel * w).sum() / w.sum())


def test_segment_run_on_crops_resumes_exactly(shard_root: Path, tmp_path: Path) -> None:
    opts = {"crop": (32, 48), "crop_object_bias": 0.5, "object_weight": 2.0, "dice_weight": 0.5}
    full = run_training(seg_config(shard_root, tmp_path / "full", max_steps=4, **opts))
    part = seg_config(shard_root, tmp_path / "part", max_steps=2, **opts)
    run_training(part)
    resumed = run_training(dataclasses.replace(part, max_steps=4, resume=True))
    assert json.loads((full / "config.json").read_text())["train"]["crop"] == [32, 48]
    a, b = load_checkpoint(full / "last.pt"), load_checkpoint(resumed / "last.pt")
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    val = records(full, "val")[-1]["model"]["jaccard"]
    assert len(val["per_frame"]) == 22  # validation still scores full frames


def test_crop_refusals(shard_root: Path, tmp_path: Path) -> None:
    with pytest.raises(TrainError, match="multiples of the model's stride 4"):
        run_training(seg_config(shard_root, tmp_path / "a", crop=(30, 48)))
    with pytest.raises(TrainError, match="larger than the frames"):
        run_training(seg_config(shard_root, tmp_path / "b", crop=(200, 48)))
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()  # nothing written
    assert seg_config(shard_root, tmp_path / "d", crop=(0, 0)).validate().crop == (0, 0)
    assert seg_config(shard_root, tmp_path / "d", crop=None).validate().crop == (64, 96)
    every = "(?s)--crop must be two sizes.*--crop-object-bias.*--object-weight"
    with pytest.raises(TrainError, match=every):
        seg_config(shard_root, tmp_path / "c", crop=(0, 8), crop_object_bias=2.0,
                   object_weight=0).validate()  # fmt: skip


def test_cli_train_segment(shard_root: Path, tmp_path: Path) -> None:
    cmd = [
        sys.executable, "cli.py", "train", "--task", "segment", "--preset", "tiny",
        "--shards", str(shard_root), "--out", str(tmp_path / "run"), "--max-steps", "1",
        "--batch-size", "2", "--samples-per-epoch", "2", "--no-progress", "--threads", "1",
        "--crop", "32", "48", "--crop-object-bias", "0.5",
    ]  # fmt: skip
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "Jaccard" in proc.stderr and (tmp_path / "run" / "best.pt").is_file()
    bad_cmd = [a if a != "tiny" else "seed" for a in cmd]
    bad_cmd[bad_cmd.index("--out") + 1] = str(tmp_path / "x")
    bad = subprocess.run(bad_cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert bad.returncode == 1 and "Traceback" not in bad.stderr
    assert bad.stderr.startswith("error:") and "--preset must be one of" in bad.stderr


def test_the_default_window_gives_way_to_small_frames_a_given_one_does_not() -> None:
    from convrnn_video.train.tasks.segment import settle_crop

    cfg = TrainConfig(shards="s", task="segment").validate()  # the recipe's 64x96 windows
    settle_crop(cfg, 4, (48, 64))  # clips smaller than the window: whole frames
    assert cfg.crop == (0, 0)
    cfg = TrainConfig(shards="s", task="segment").validate()
    settle_crop(cfg, 4, (160, 240))
    assert cfg.crop == (64, 96)
    given = TrainConfig(shards="s", task="segment", crop=(64, 96)).validate()
    with pytest.raises(TrainError, match="larger than the frames 48x64"):
        settle_crop(given, 4, (48, 64))
