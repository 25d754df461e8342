"""train/config.py: the checks, the resume merge, and each task's defaults."""

from __future__ import annotations

import pytest
from convrnn_video.train.config import TrainConfig
from convrnn_video.train.errors import TrainError


def test_config_checks_and_resume_merging() -> None:
    from convrnn_video.train.config import merge_for_resume

    with pytest.raises(TrainError) as info:
        TrainConfig(shards="", preset="huge", batch_size=0, loss="l3").validate()
    for word in ("--shards", "--preset", "--batch-size", "--loss"):
        assert word in str(info.value)
    saved = TrainConfig(shards="s", preset="tiny", batch_size=2, max_steps=5).to_dict()
    given = TrainConfig(shards="s", preset="compact", batch_size=4, max_steps=9)
    merged = merge_for_resume(saved, given, explicit={"max_steps", "shards"})
    assert merged.max_steps == 9 and merged.batch_size == 2 and merged.preset == "tiny"
    assert merged.resume
    with pytest.raises(TrainError, match="--batch-size 4 .*started with 2"):
        merge_for_resume(saved, given, explicit={"batch_size"})
    # a run saved before --val-videos validated on every video, and still does when resumed
    seg = TrainConfig(shards="s", task="segment").validate().to_dict()
    assert merge_for_resume(seg, given, explicit=set()).val_videos == 100
    del seg["val_videos"]
    assert merge_for_resume(seg, given, explicit=set()).val_videos == 0
    with pytest.raises(TrainError, match="val_videos must be >= 0"):
        TrainConfig(shards="s", val_videos=-1).validate()


def test_defaults_are_each_tasks_measured_recipe() -> None:
    frames = TrainConfig(shards="s").validate()
    recipe = (frames.task, frames.preset, frames.batch_size, frames.lr)
    assert recipe == ("frames", "compact-motion", 4, 1e-3)
    assert (frames.lr_schedule, frames.warmup_steps, frames.ss_steps) == ("cosine", 30, 0)
    assert (frames.loss, frames.l1_weight, frames.early_stop) == ("mse+l1+ssim", 2.0, 0)
    assert frames.train_splits == ("train",)
    seg = TrainConfig(shards="s", task="segment").validate()
    assert (seg.preset, seg.batch_size, seg.lr, seg.crop) == ("small", 8, 2e-3, (64, 96))
    assert (seg.frames_per_video, seg.object_weight, seg.crop_object_bias) == (1, 3.0, 0.7)
    # validated every 2,000 steps on 100 videos: on a CPU every epoch on all would eat the budget
    assert (seg.val_every, seg.val_videos) == (2000, 100)
    assert (frames.val_every, frames.val_videos) == (None, 100)
    masks = TrainConfig(shards="s", task="masks", segmenter="seg.pt").validate()
    assert (masks.preset, masks.batch_size, masks.lr, masks.crop) == (
        "compact-masks-extrapolate", 4, 1e-3, (96, 144))  # fmt: skip
    assert (masks.lr_schedule, masks.warmup_steps, masks.ss_steps) == ("cosine", 20, 2000)
    # what the user gives wins, and the resolved values are what the run saves
    given = TrainConfig(shards="s", batch_size=2, lr_schedule="plateau", ss_steps=5).validate()
    assert (given.batch_size, given.lr_schedule, given.ss_steps, given.lr) == (2, "plateau", 5,
                                                                               1e-3)  # fmt: skip
    assert TrainConfig.from_dict(given.to_dict()) == given
