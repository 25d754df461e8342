"""train/tasks/masks.py: the mask forecaster trained by the one trainer, on the conftest shards."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch
from convrnn_video.runtime.checkpoint import load_checkpoint, load_model, save_untrained
from convrnn_video.runtime.errors import RunError
from convrnn_video.train.config import TrainConfig
from convrnn_video.train.errors import TrainError
from convrnn_video.train.loop import run_training
from train_helpers import records


@pytest.fixture(scope="module")
def segmenter(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from convrnn_video.segment import get_preset

    return save_untrained(tmp_path_factory.mktemp("seg") / "seg.pt", get_preset("tiny"))


def masks_config(shards: Path, out: Path, segmenter: Path, **overrides) -> TrainConfig:
    """tiny-masks, 4 -> 4 frames, 2 steps per epoch."""
    base = TrainConfig(
        task="masks", shards=str(shards), out=str(out), preset="tiny-masks", frames_in=4,
        frames_out=4, batch_size=2, samples_per_epoch=4, max_steps=4, log_every=1, lr=1e-2,
        progress=False, threads=1, segmenter=str(segmenter), lr_schedule="plateau",
    )  # fmt: skip
    return dataclasses.replace(base, **overrides)


def test_masks_run_trains_and_scores_jaccard(
    shard_root: Path, segmenter: Path, tmp_path: Path
) -> None:
    run = run_training(masks_config(shard_root, tmp_path / "run", segmenter))
    train = records(run, "train")
    assert [r["step"] for r in train] == [1, 2, 3, 4]
    assert train[-1]["loss"] < train[0]["loss"]  # cross-entropy on class ids goes down
    val = records(run, "val")
    assert [r["step"] for r in val] == [2, 4]
    for r in val:
        j, base = r["model"]["jaccard"], r["copy_mask"]["jaccard"]
        assert len(j["per_frame"]) == 4 and len(base["per_frame"]) == 4
        assert r["loss"] == pytest.approx(1 - j["last"])
    model, cfg, payload = load_model(run / "best.pt", task="masks")
    assert payload["task"] == "masks" and cfg.forecast == "masks"
    ids = torch.randint(0, 49, (1, 4, 160, 240))
    assert model(ids).shape == (1, 4, 49, 160, 240)


@pytest.mark.parametrize("crop", [(0, 0), (64, 96)])
def test_masks_resume_is_exact(
    shard_root: Path, segmenter: Path, tmp_path: Path, crop: tuple[int, int]
) -> None:
    # (64, 96): training windows through all frames, drawn from the restored RNG on resume
    cfg = masks_config(shard_root, tmp_path / "part", segmenter, max_steps=3, val_split="",
                       crop=crop)  # fmt: skip
    full = run_training(dataclasses.replace(cfg, out=str(tmp_path / "full"), max_steps=5))
    run_training(cfg)
    resumed = run_training(dataclasses.replace(cfg, max_steps=5, resume=True))
    a, b = load_checkpoint(full / "last.pt"), load_checkpoint(resumed / "last.pt")
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])


def test_masks_task_refusals(shard_root: Path, segmenter: Path, tmp_path: Path) -> None:
    cfg = masks_config(shard_root, tmp_path / "a", segmenter)
    with pytest.raises(TrainError, match="pass --segmenter"):
        run_training(dataclasses.replace(cfg, segmenter=None))
    with pytest.raises(TrainError, match="'unlabeled' has no masks.*label"):
        run_training(dataclasses.replace(cfg, train_splits=("train", "unlabeled")))
    with pytest.raises(TrainError, match="--preset must be one of.*masks"):
        run_training(dataclasses.replace(cfg, preset="tiny"))
    with pytest.raises(TrainError, match="--preset must be one of.*frames"):
        run_training(dataclasses.replace(cfg, task="frames", preset="tiny-masks"))
    with pytest.raises(
        TrainError, match="--crop 60 96: both sizes must be multiples of the model's"
    ):
        run_training(dataclasses.replace(cfg, crop=(60, 96), out=str(tmp_path / "c")))
    assert not (tmp_path / "c").exists()  # refused before the run folder is written
    assert cfg.validate().crop == (96, 144)  # the windows of the measured recipe
    with pytest.raises(RunError, match="expected a segment checkpoint"):
        frames = save_untrained(tmp_path / "frames.pt", _tiny_frames())
        run_training(dataclasses.replace(cfg, segmenter=str(frames), out=str(tmp_path / "b")))


def _tiny_frames():
    from convrnn_video.convrnn import get_preset

    return get_preset("tiny")


def test_init_from_takes_the_task_and_segmenter_of_its_run(
    shard_root: Path, segmenter: Path, tmp_path: Path
) -> None:
    source = run_training(masks_config(shard_root, tmp_path / "masks", segmenter, max_steps=2))
    # `train --init-from runs/masks/best.pt --ss-steps 100`: no --task, no --segmenter
    tuned = TrainConfig(
        shards=str(shard_root), out=str(tmp_path / "tuned"), init_from=str(source / "best.pt"),
        ss_steps=100, frames_in=4, frames_out=4, batch_size=2, samples_per_epoch=4, max_steps=2,
        progress=False, threads=1,
    )  # fmt: skip
    run = run_training(tuned)
    saved = json.loads((run / "config.json").read_text())["train"]
    assert (saved["task"], saved["segmenter"], saved["ss_steps"]) == ("masks", str(segmenter), 100)
    assert saved["crop"] == [96, 144] and saved["lr_schedule"] == "cosine"  # the masks recipe
    assert [r["step"] for r in records(run, "val")] == [2]  # validated with that segmenter
