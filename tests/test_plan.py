"""infer.plan: which frames a model reads and predicts, every way a checkpoint cannot run on a
split, and what the store records, on the shards of a generated course-like set."""

from __future__ import annotations

import copy
from pathlib import Path

from convrnn_video.convrnn import get_preset
from convrnn_video.infer.config import PredictConfig
from convrnn_video.infer.plan import fit_problems, frame_plan, store_attrs
from convrnn_video.runtime.checkpoint import load_checkpoint
from convrnn_video.shards.manifest import read_manifest
from infer_helpers import tiny_checkpoint


def test_course_videos_are_read_where_hidden_ones_end(shard_root: Path) -> None:
    manifest = read_manifest(shard_root)  # 22-frame videos, 11-frame hidden ones
    for split in ("val", "hidden"):
        plan = frame_plan(manifest, split, 10, 11)
        assert plan == {
            "observed_frames": 11,
            "input_frames": list(range(1, 11)),
            "first_frame": 11,
            "predicted_frames": list(range(11, 22)),
            "video_frames": 22,
        }


def test_without_hidden_videos_the_last_frames_are_predicted(shard_root: Path) -> None:
    manifest = copy.deepcopy(read_manifest(shard_root))
    del manifest["splits"]["hidden"]
    plan = frame_plan(manifest, "val", 4, 5)  # the last 5 of 22 frames, after 4 input frames
    assert plan["observed_frames"] == 17 and plan["input_frames"] == [13, 14, 15, 16]
    assert plan["predicted_frames"] == [17, 18, 19, 20, 21]
    # a model reading more frames than are left before them still reads its frames_in
    assert frame_plan(manifest, "val", 20, 5)["observed_frames"] == 20


def test_hidden_only_shards_do_not_know_a_whole_video(shard_root: Path) -> None:
    manifest = copy.deepcopy(read_manifest(shard_root))
    for split in ("train", "val", "unlabeled"):
        del manifest["splits"][split]
    assert frame_plan(manifest, "hidden", 10, 11)["video_frames"] is None


def test_every_misfit_is_named_at_once(shard_root: Path) -> None:
    manifest = read_manifest(shard_root)  # 64x64 RGB frames
    cfg = PredictConfig(shards=str(shard_root), split="val")
    ckpt = Path("model.pt")
    assert fit_problems(ckpt, get_preset("tiny"), cfg, None, manifest) == []
    wrong = get_preset("tiny", frames_in=12, image_channels=1)  # 11 observed, grayscale
    problems = fit_problems(ckpt, wrong, cfg, None, manifest)
    assert len(problems) == 2
    assert "expects 12 input frames" in problems[0] and "11 observed" in problems[0]
    assert "takes 1-channel frames" in problems[1] and "RGB" in problems[1]


def test_store_attrs_say_what_the_store_holds(shard_root: Path, tmp_path: Path) -> None:
    ckpt = tiny_checkpoint(tmp_path / "tiny.pt")
    payload = load_checkpoint(ckpt)
    model_cfg = get_preset("tiny")
    plan = frame_plan(read_manifest(shard_root), "hidden", 10, 11)
    cfg = PredictConfig(shards=str(shard_root), ckpt=str(ckpt))
    attrs = store_attrs(cfg, ckpt, model_cfg, payload, "fp32", plan)
    assert attrs["holds"] == ["frames"] and attrs["task"] == "frames"
    assert attrs["first_frame"] == 11 and attrs["tracks_sha256"] is None
    cfg = PredictConfig(shards=str(shard_root), ckpt=str(ckpt), segmenter="seg.pt", motion=True)
    assert store_attrs(cfg, ckpt, model_cfg, payload, "fp32", plan)["holds"] == [
        "frames",
        "masks",
        "motion",
    ]
