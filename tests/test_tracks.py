"""convrnn/tracks.py, convrnn/track_windows.py and train/tasks/tracks.py: the object-track
mask forecaster, from hand-made masks to a whole `train --task tracks` -> predict -> evaluate
on the conftest shards."""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from convrnn_video.convrnn import get_preset
from convrnn_video.convrnn.extrapolate import extrapolate_masks
from convrnn_video.convrnn.track_features import (
    MaskStats,
    mask_stats,
    unit_px,
)
from convrnn_video.convrnn.track_reads import (
    object_tracks,
    track_loss,
    tracks_of,
)
from convrnn_video.convrnn.track_windows import shifted, window_shifts
from convrnn_video.convrnn.tracks import TrackForecaster
from convrnn_video.runtime.checkpoint import load_checkpoint, load_model, save_untrained
from convrnn_video.train.config import TrainConfig
from convrnn_video.train.errors import TrainError
from convrnn_video.train.loop import run_training

from tests.track_masks import H, W, moving_squares, objects


def test_a_new_model_forecasts_the_extrapolation_baseline() -> None:
    # zero-initialised: the displacement is the guess, the last step's velocity slowing by
    # DECAY a frame, painted as extrapolate_masks paints it
    cfg = get_preset("tracks", frames_in=5, frames_out=4, height=H, width=W)
    masks = moving_squares(6, 5, seed=1, keep=0.9)
    out = TrackForecaster(cfg)(masks.long())
    assert out.shape == (6, 4, 49, H, W)
    assert torch.equal(out.argmax(2).to(torch.uint8), extrapolate_masks(masks, 4))


def test_objects_first_seen_in_the_last_input_frame_are_drawn_only_at_first() -> None:
    # their heading and speed are guesses: after track_new_frames forecast frames they are left
    # out (frame 22 gained on every screened set); 0 draws them in every frame
    cfg = get_preset("tracks", frames_in=3, frames_out=4, height=H, width=W, track_new_frames=2)
    masks = torch.zeros(1, 3, H, W, dtype=torch.long)
    masks[:, :, 10:14, 4:8] = 7  # seen throughout, still
    masks[0, 2, 30:34, 40:44] = 9  # only in the last frame
    moved, _ = TrackForecaster(cfg).forecast(masks)
    assert [bool((moved[0, t] == 9).any()) for t in range(4)] == [True, True, False, False]
    assert [int((moved[0, t] == 7).sum()) for t in range(4)] == [16] * 4
    every, _ = TrackForecaster(dataclasses.replace(cfg, track_new_frames=0)).forecast(masks)
    assert all((every[0, t] == 9).any() for t in range(4))
    assert get_preset("tracks").track_new_frames == 6
    with pytest.raises(ValueError, match="track_new_frames must be >= 0"):
        get_preset("tracks", track_new_frames=-1)


def test_the_forecast_of_a_mirrored_video_is_the_mirrored_forecast() -> None:
    # `forecast` averages the net's answers for the video and its mirror image: what it
    # forecasts is left-right symmetric, where one answer alone is not
    cfg = get_preset("tracks", frames_in=4, frames_out=3, height=H, width=W)
    torch.manual_seed(0)
    model = TrackForecaster(cfg).eval()
    torch.nn.init.normal_(model.net[-1].weight, std=0.5)  # a net that answers something
    masks = moving_squares(4, 4, seed=6, keep=0.95).long()
    ours, shift = model.forecast(masks)
    theirs, shift_flipped = model.forecast(masks.flip(-1))
    assert shift.abs().sum() > 0
    assert torch.equal(shift_flipped[..., 1], -shift[..., 1])  # columns mirrored
    assert torch.equal(shift_flipped[..., 0], shift[..., 0])
    one = model.shifts(object_tracks(masks, cfg), H, W)  # a single answer
    one_flipped = model.shifts(object_tracks(masks.flip(-1), cfg), H, W)
    assert not torch.equal(one_flipped[..., 1], -one[..., 1])


def test_training_windows_are_the_videos_seen_from_another_moment() -> None:
    # a window moved back s frames is the video with s frames of nothing before it (the
    # objects' early track unseen), moved forward the video's later frames with the missing
    # targets weighted 0
    cfg = get_preset("tracks", frames_in=4, frames_out=4, height=H, width=W)
    assert list(window_shifts(cfg)) == [-2, -1, 0, 1, 2, 3]
    masks = moving_squares(6, 8, seed=5, keep=0.9).long()
    stats = mask_stats(masks, cfg)
    blank = torch.zeros_like(masks[:, :2])
    for shift, seen in ((2, torch.cat([blank, masks[:, :-2]], 1)),
                        (-2, torch.cat([masks[:, 2:], blank], 1))):  # fmt: skip
        moved = MaskStats(*(None if f is None else shifted(f, shift) for f in stats))
        ours = objects(tracks_of(moved, H, W, cfg))
        direct = objects(object_tracks(seen, cfg))
        assert len(ours.features) >= 4
        for a, b_ in zip(ours, direct, strict=True):
            assert torch.allclose(a.float(), b_.float(), atol=1e-5)
    # the blank frames after a forward window hold no object: their targets never count
    assert ours.weight[:, 2:].sum() == 0 and ours.weight[:, :2].sum() > 0


def test_it_learns_motion_the_extrapolation_gets_wrong() -> None:
    # squares at constant velocity: the guess (slowing by 0.92) falls behind; 300 steps on
    # 200 videos cut its error on 50 others by over a quarter (what is left is mostly the
    # rounding of the squares' positions)
    cfg = get_preset("tracks", frames_in=4, frames_out=4, height=H, width=W, track_hidden=64)
    train, val = moving_squares(200, 8, seed=2, keep=1.0), moving_squares(50, 8, seed=3, keep=1.0)
    a, b = (objects(object_tracks(m.long(), cfg)) for m in (train, val))
    torch.manual_seed(0)
    model = TrackForecaster(cfg)
    opt = torch.optim.Adam(model.parameters(), 3e-3)
    unit = unit_px(H, W)
    for _ in range(300):
        loss = track_loss(model.displacements(a, H, W), a, unit)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        learned = track_loss(model.displacements(b, H, W), b, unit)
        guess = track_loss(b.guess, b, unit)
    assert float(learned) < 0.75 * float(guess)


@pytest.fixture(scope="module")
def segmenter(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from convrnn_video.segment import get_preset as seg_preset

    return save_untrained(tmp_path_factory.mktemp("seg") / "seg.pt", seg_preset("tiny"))


def tracks_config(shards: Path, out: Path, segmenter: Path, **overrides) -> TrainConfig:
    base = TrainConfig(
        task="tracks", shards=str(shards), out=str(out), frames_in=4, frames_out=4,
        batch_size=8, max_steps=6, log_every=1, val_every=3, progress=False, threads=1,
        segmenter=str(segmenter),
    )  # fmt: skip
    return dataclasses.replace(base, **overrides)


@pytest.mark.slow
def test_train_resume_and_predict(shard_root: Path, segmenter: Path, tmp_path: Path) -> None:
    from convrnn_video.infer.config import EvaluateConfig, PredictConfig
    from convrnn_video.infer.evaluate import run_evaluate
    from convrnn_video.infer.predict import run_predict
    from convrnn_video.stores.predictions import PredStore

    # 11 -> 11, the frames predict reads from a val video: its store scores as validation did
    full = run_training(
        tracks_config(shard_root, tmp_path / "full", segmenter, frames_in=11, frames_out=11)
    )
    lines = [json.loads(x) for x in (full / "metrics.jsonl").read_text().splitlines()]
    val = [r for r in lines if r["kind"] == "val"]
    assert [r["step"] for r in val] == [3, 6]
    # the same records as tables (train/tables.py): one row each, nested keys dotted
    with open(full / "val.csv") as f:
        table = list(csv.DictReader(f))
    assert [int(r["step"]) for r in table] == [3, 6]
    assert [float(r["model.jaccard.last"]) for r in table] == [
        r["model"]["jaccard"]["last"] for r in val
    ]
    with open(full / "train.csv") as f:
        assert [int(r["step"]) for r in csv.DictReader(f)] == list(range(1, 7))
    model, cfg, payload = load_model(full / "best.pt", task="tracks")
    assert payload["task"] == "tracks" and cfg.forecast == "tracks"
    assert (cfg.height, cfg.width) == (160, 240)
    # an interrupted run resumes the same object batches: the same weights at step 6 (a
    # schedule that does not follow --max-steps, so both runs step the same lr)
    part = tracks_config(shard_root, tmp_path / "part", segmenter, max_steps=4, val_split="",
                         lr_schedule="plateau")  # fmt: skip
    run_training(part)
    resumed = run_training(dataclasses.replace(part, max_steps=6, resume=True))
    # the reference reads its masks in 2 worker processes: the same table, the same batches
    ref = dataclasses.replace(part, out=str(tmp_path / "ref"), max_steps=6, workers=2)
    ref_run = run_training(ref)
    a, b = load_checkpoint(ref_run / "last.pt"), load_checkpoint(resumed / "last.pt")
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    # the API predicts a clip of any size (the net reads sizes in units of the frame)
    from convrnn_video import load_checkpoint as load_for_api

    clip = moving_squares(1, 11, seed=5, keep=0.9)[0]  # (11, 40, 60)
    api_out = load_for_api(full / "best.pt").predict(clip.numpy())
    assert api_out.shape == (11, H, W) and api_out.dtype == np.uint8
    assert np.array_equal(api_out, model(clip[None].long()).argmax(2)[0].numpy())
    # predict writes the moved masks of every val video; they score what the run's last
    # validation (its val inputs kept from the first) said of the same weights
    store = tmp_path / "val.zarr"
    run_predict(PredictConfig(shards=str(shard_root), ckpt=str(full / "last.pt"),
                              segmenter=str(segmenter), out=str(store), split="val",
                              progress=False))  # fmt: skip
    preds = PredStore.open(str(store))
    assert preds.frames is None and preds.masks.shape[:2] == (4, 11)
    report = run_evaluate(
        EvaluateConfig(
            preds=str(store),
            shards=str(shard_root),
            out=str(tmp_path / "report.json"),
            progress=False,
        )
    )
    for key in ("mean", "last"):
        assert report["jaccard"]["model"][key] == pytest.approx(val[-1]["model"]["jaccard"][key])


@pytest.mark.slow
def test_validation_reads_the_val_videos_once(
    shard_root: Path, segmenter: Path, tmp_path: Path
) -> None:
    from convrnn_video.runtime.device import autocast
    from convrnn_video.runtime.distributed import DistEnv
    from convrnn_video.shards.loader import make_loader
    from convrnn_video.train.tasks.tracks import TracksTask

    cfg = tracks_config(shard_root, tmp_path / "run", segmenter, frames_in=11, frames_out=11)
    cfg.validate()
    task = TracksTask()
    task.setup(cfg)
    assert task.val_batch_size(cfg) == 8  # videos, not the 256 objects of a training batch
    assert task.val_batch_size(dataclasses.replace(cfg, batch_size=256)) == 16
    model = TrackForecaster(get_preset("tracks", frames_in=11, frames_out=11)).eval()
    loader = make_loader(shard_root, "val", mode="eval", batch_size=2, masks=True)
    env, fp32 = DistEnv(), autocast("fp32", torch.device("cpu"))
    first, base = task.evaluate(model, loader, env, fp32, with_baseline=True)
    assert first["jaccard"]["last"] > 0 and base is not None
    # later validations: no loader is read (nothing decoded, no segmenter), the same scores
    again, _ = task.evaluate(model, [], env, fp32, with_baseline=False)
    assert again == first
    # changed weights score from the kept inputs what a fresh read of the videos scores
    torch.nn.init.constant_(model.net[-1].bias, 1.0)
    kept, _ = task.evaluate(model, [], env, fp32, with_baseline=False)
    fresh = TracksTask()
    fresh.setup(cfg)
    assert kept == fresh.evaluate(model, loader, env, fp32, with_baseline=False)[0]


def test_tracks_refusals(shard_root: Path, segmenter: Path, tmp_path: Path) -> None:
    with pytest.raises(TrainError, match="lower --batch-size"):
        run_training(tracks_config(shard_root, tmp_path / "a", segmenter, batch_size=100_000))
    with pytest.raises(TrainError, match="leave out --crop"):
        run_training(tracks_config(shard_root, tmp_path / "b", segmenter, crop=(64, 96)))
    with pytest.raises(TrainError, match="preset"):
        run_training(tracks_config(shard_root, tmp_path / "c", segmenter, preset="tiny-masks"))
    with pytest.raises(TrainError, match="--samples-per-epoch counts videos"):
        run_training(tracks_config(shard_root, tmp_path / "d", segmenter, samples_per_epoch=4))
    assert not any((tmp_path / name).exists() for name in "abd")
