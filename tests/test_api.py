"""convrnn_video: the Python API on untrained tiny checkpoints and generated video folders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from convrnn_video.infer.errors import InferError
from convrnn_video.runtime.checkpoint import save_untrained
from convrnn_video.runtime.errors import RunError
from convrnn_video.stores.errors import StoreError
from convrnn_video.train.errors import TrainError

from convrnn_video import PipelineError, load_checkpoint, read_video


def test_read_video_orders_frames_by_number(synth_root: Path) -> None:
    from PIL import Image

    video = read_video(synth_root / "train" / "video_0")
    assert video.shape == (22, 160, 240, 3) and video.dtype == np.uint8
    tenth = np.asarray(Image.open(synth_root / "train" / "video_0" / "image_10.png"))
    assert np.array_equal(video[10], tenth)  # image_10 after image_9, not after image_1
    with pytest.raises(InferError, match="no image_<n>.png"):
        read_video(synth_root / "train")


def test_predict_for_every_task(synth_root: Path, tmp_path: Path) -> None:
    from convrnn_video.convrnn import get_preset
    from convrnn_video.segment import get_preset as seg_preset

    video = read_video(synth_root / "val" / "video_1000")  # (22, H, W, 3)
    frames = load_checkpoint(save_untrained(tmp_path / "f.pt", get_preset("tiny")), "cpu")
    assert frames.task == "frames"
    one = frames.predict(video[:11])
    assert one.shape == (11, 160, 240, 3) and one.dtype == np.uint8
    two = frames.predict(np.stack([video[:11], video[11:]]))
    assert two.shape == (2, 11, 160, 240, 3) and np.array_equal(two[0], one)
    seg = load_checkpoint(save_untrained(tmp_path / "s.pt", seg_preset("tiny")), "cpu")
    ids = seg.predict(video)
    assert ids.shape == (22, 160, 240) and ids.dtype == np.uint8 and int(ids.max()) < 49
    # a video's masks do not depend on the batch it comes in (one pass per video)
    assert np.array_equal(seg.predict(np.stack([video, video[::-1]]))[0], ids)
    masks = load_checkpoint(save_untrained(tmp_path / "m.pt", get_preset("tiny-masks")), "cpu")
    future = masks.predict(ids[:11])
    assert future.shape == (11, 160, 240) and future.dtype == np.uint8
    assert np.array_equal(masks.predict(np.stack([ids[:11], ids[11:]]))[0], future)
    with torch.no_grad():  # the API is the model: compare with a direct call
        direct = masks.module(torch.from_numpy(ids[None, :11].astype(np.int64))).argmax(2)
    if masks.precision == "fp32":
        assert np.array_equal(future, direct[0].numpy())


def test_bad_input_is_a_pipeline_error(tmp_path: Path) -> None:
    from convrnn_video.convrnn import get_preset

    for stage_error in (InferError, TrainError, RunError, StoreError):
        assert issubclass(stage_error, PipelineError)
    model = load_checkpoint(save_untrained(tmp_path / "f.pt", get_preset("tiny")), "cpu")
    with pytest.raises(PipelineError, match="reads 11 frames, got 4"):
        model.predict(np.zeros((4, 160, 240, 3), np.uint8))
    with pytest.raises(PipelineError, match="predicts from"):
        model.predict(np.zeros((160, 240, 3), np.uint8))
    with pytest.raises(PipelineError, match="inputs must be"):  # 1 channel for an RGB model
        model.predict(np.zeros((11, 160, 240, 1), np.uint8))
    with pytest.raises(PipelineError, match="not found"):
        load_checkpoint(tmp_path / "nope.pt")
