"""train/: whole runs of the `tiny` preset on the conftest shards, into tmp_path."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest
import torch
from convrnn_video.runtime.checkpoint import load_checkpoint, load_model
from convrnn_video.runtime.errors import RunError
from convrnn_video.train.config import TrainConfig
from convrnn_video.train.errors import TrainError
from convrnn_video.train.loop import run_training
from convrnn_video.train.tasks.frames import compute_loss
from train_helpers import records, small


def test_run_writes_every_file(shard_root: Path, tmp_path: Path) -> None:
    run = run_training(small(shard_root, tmp_path / "run"))
    assert run == tmp_path / "run"
    for name in ("config.json", "metrics.jsonl", "curves.png", "last.pt", "best.pt"):
        assert (run / name).is_file(), name
    config = json.loads((run / "config.json").read_text())
    assert config["train"]["preset"] == "tiny" and config["model"]["frames_out"] == 4
    train, val = records(run, "train"), records(run, "val")
    assert [r["step"] for r in train] == [1, 2, 3, 4]
    # the default loss is MSE + L1 + (1 - SSIM): above the MSE it also reports
    assert all(0 < r["mse"] < r["loss"] < 4 and r["samples_per_s"] > 0 for r in train)
    assert [r["step"] for r in val] == [2, 4]  # one validation per epoch (2 steps)
    for r in val:
        for name in ("mse", "mae", "psnr", "ssim"):
            assert len(r["model"][name]["per_frame"]) == 4
            assert len(r["copy_last"][name]["per_frame"]) == 4
        assert r["beats_copy_last"] == (r["model"]["mse"]["mean"] < r["copy_last"]["mse"]["mean"])
    last = load_checkpoint(run / "last.pt")  # weights_only=True inside
    assert last["step"] == 4 and last["epoch"] == 2 and last["batch_in_epoch"] == 0
    assert last["train_config"]["preset"] == "tiny" and last["best_val"] is not None
    assert set(last["model_config"]) >= {"frames_in", "frames_out"}
    assert records(run, "end")[0]["rank_steps"] == [4]


def test_bad_runs_and_options_are_refused(shard_root: Path, tmp_path: Path) -> None:
    cfg = small(shard_root, tmp_path / "run", max_steps=1)
    run_training(cfg)
    with pytest.raises(RunError, match="already holds a run"):
        run_training(cfg)
    with pytest.raises(TrainError, match="--preset 'compact'.*started with 'tiny'"):
        run_training(dataclasses.replace(cfg, resume=True, preset="compact"))
    with pytest.raises(RunError, match="nothing to resume"):
        run_training(dataclasses.replace(cfg, out=str(tmp_path / "other"), resume=True))
    with pytest.raises(TrainError, match="no manifest"):
        run_training(dataclasses.replace(cfg, shards=str(tmp_path), out=str(tmp_path / "x")))
    with pytest.raises(TrainError, match="'nope'.*not in"):
        run_training(dataclasses.replace(cfg, train_splits=("nope",), out=str(tmp_path / "y")))
    with pytest.raises(TrainError, match="batch-size must be >= 1(.|\n)*--lr must be > 0"):
        run_training(dataclasses.replace(cfg, batch_size=0, lr=0.0))
    # a damaged checkpoint is a clear error, not a traceback
    last = tmp_path / "run" / "last.pt"
    last.write_bytes(last.read_bytes()[:1000])
    with pytest.raises(RunError, match="corrupt"):
        run_training(dataclasses.replace(cfg, resume=True, max_steps=2))


@pytest.mark.slow
def test_amp_trains_in_bf16_on_cpu(shard_root: Path, tmp_path: Path) -> None:
    fp32 = run_training(small(shard_root, tmp_path / "fp32", precision="fp32"))
    amp = run_training(small(shard_root, tmp_path / "amp", precision="bf16"))
    a, b = load_checkpoint(fp32 / "last.pt")["model"], load_checkpoint(amp / "last.pt")["model"]
    assert all(t.dtype == torch.float32 for t in b.values())  # float32 master weights
    diff = max((a[k] - b[k]).abs().max().item() for k in a)
    assert 0 < diff < 1e-2, diff  # bf16 arithmetic ran, and stayed close to fp32
    la = [r["loss"] for r in records(fp32, "train")]
    lb = [r["loss"] for r in records(amp, "train")]
    assert all(abs(x - y) <= 0.05 * x for x, y in zip(la, lb, strict=True)), (la, lb)


def test_without_a_val_split_best_follows_last(shard_root: Path, tmp_path: Path) -> None:
    shards = tmp_path / "shards"
    shutil.copytree(shard_root, shards)
    manifest = json.loads((shards / "manifest.json").read_text())
    del manifest["splits"]["val"]
    (shards / "manifest.json").write_text(json.dumps(manifest))
    run = run_training(small(shards, tmp_path / "run", max_steps=3))
    assert (run / "best.pt").read_bytes() == (run / "last.pt").read_bytes()
    assert records(run, "val") == []
    assert load_checkpoint(run / "last.pt")["step"] == 3


@pytest.mark.slow
def test_a_small_batch_is_overfitted(shard_root: Path) -> None:
    from convrnn_video.convrnn import build_model, get_preset
    from convrnn_video.shards.loader import make_loader

    torch.manual_seed(0)
    batch = next(iter(make_loader(shard_root, ["train"], mode="eval", batch_size=2,
                                  frames_in=4, frames_out=4)))  # fmt: skip
    crop = (..., slice(48, 112), slice(80, 144))  # a 64 x 64 window keeps it fast
    x, y = batch["inputs"][crop], batch["targets"][crop]
    model = build_model(get_preset("tiny", frames_in=4, frames_out=4))
    opt = torch.optim.Adam(model.parameters(), lr=2e-2)
    cfg = TrainConfig(loss="mse")  # capacity, measured on the plain MSE
    losses = []
    for _ in range(250):  # about 110 steps are needed
        loss, _ = compute_loss(model(x, targets=y), y, cfg)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        losses.append(loss.item())
        if losses[-1] < losses[0] / 10:
            break
    assert losses[-1] < losses[0] / 10, (losses[0], min(losses), len(losses))


def test_time_limit_stops_with_a_resumable_checkpoint(shard_root: Path, tmp_path: Path) -> None:
    run = run_training(small(shard_root, tmp_path / "run", max_steps=1000, time_limit=0.001))
    last = load_checkpoint(run / "last.pt")
    assert last["step"] < 1000  # may be 0 on a busy machine: the limit is 0.06 s
    assert records(run, "end")[0]["step"] == last["step"]


def test_snapshots_keep_the_weights_as_the_clock_passes_each_minute(
    shard_root: Path, tmp_path: Path
) -> None:
    # 1e-6 min passes at the first step; 1000 min never does
    run = run_training(small(shard_root, tmp_path / "run", snapshot_minutes=(1e-6, 1000.0)))
    early = load_checkpoint(run / "at-1e-06min.pt")
    assert early["step"] == 1 and early["clock_seconds"] >= 6e-5
    assert not (run / "at-1000min.pt").exists()
    assert load_checkpoint(run / "last.pt")["step"] == 4
    with pytest.raises(TrainError, match="snapshot-at"):
        small(shard_root, tmp_path / "bad", snapshot_minutes=(0.0,)).validate()


@pytest.mark.parametrize("mode,channels", [("RGB", 3), ("L", 1)])
def test_trains_on_any_frame_size_and_channels(tmp_path: Path, mode: str, channels: int) -> None:
    from conftest import write_square_video
    from convrnn_video.ingest.pack import IngestConfig, run_ingest

    for split, first in (("train", 0), ("val", 1000)):
        for i in range(2):
            folder = tmp_path / "data" / split / f"video_{first + i}"
            write_square_video(folder, 20, 64, 64, mode, seed=first + i, mask=True)
    shards = tmp_path / "shards"
    run_ingest(IngestConfig(data_root=tmp_path / "data", out=shards, workers=1, progress=False,
                            layout="free"))  # fmt: skip
    cfg = small(shards, tmp_path / "run", frames_in=10, frames_out=10, train_splits=("train",),
                samples_per_epoch=2, max_steps=2)  # fmt: skip
    run = run_training(cfg)
    model = json.loads((run / "config.json").read_text())["model"]
    assert (model["image_channels"], model["height"], model["width"]) == (channels, 64, 64)
    val = records(run, "val")[-1]
    assert len(val["model"]["mse"]["per_frame"]) == 10
    seg = run_training(small(shards, tmp_path / "seg", task="segment", train_splits=("train",),
                             samples_per_epoch=2, max_steps=1, crop=(32, 32)))  # fmt: skip
    assert json.loads((seg / "config.json").read_text())["model"]["in_channels"] == channels
    from convrnn_video.train.tasks import get_task

    other = 4 - channels  # a trained model must already read the shards' channels
    trained = dataclasses.replace(load_model(run / "last.pt")[1], image_channels=other)
    with pytest.raises(TrainError, match=f"reads {other}-channel frames"):
        get_task("frames").fit_geometry(trained, (20, 64, 64, channels), fresh=False)
    with pytest.raises(TrainError, match="do not fit the model"):
        get_task("frames").fit_geometry(trained, (20, 60, 60, other), fresh=False)


def test_val_videos_scores_the_first_videos_of_the_val_split(
    shard_root: Path, tmp_path: Path
) -> None:
    """--val-videos 1 with val batches of 2 scores the first batch whole (2 of the 4 val
    videos); 0 scores all of them."""
    runs = {}
    for n in (1, 0):
        runs[n] = run_training(small(shard_root, tmp_path / f"v{n}", task="segment",
                                     train_splits=("train",), samples_per_epoch=2, max_steps=1,
                                     crop=(32, 32), val_videos=n))  # fmt: skip
    scored = {n: records(run, "val")[-1]["model"]["jaccard"]["videos"] for n, run in runs.items()}
    assert scored == {1: 2, 0: 4}


def test_training_as_a_library_leaves_the_thread_count_alone(
    shard_root: Path, tmp_path: Path
) -> None:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        run_training(small(shard_root, tmp_path / "run", threads=None, max_steps=1))
        assert torch.get_num_threads() == 1  # the CLI tunes the process, not run_training
    finally:
        torch.set_num_threads(before)


def test_a_refused_run_leaves_no_folder_and_the_retry_runs(
    shard_root: Path, tmp_path: Path
) -> None:
    # 6 train videos: a batch of 8 is more than an epoch (found before the folder is made)
    for out in (str(tmp_path / "run"), None):
        cfg = small(shard_root, tmp_path, runs_root=str(tmp_path / "runs"), batch_size=8,
                    samples_per_epoch=None)  # fmt: skip
        with pytest.raises(TrainError, match="--batch-size 8.*less than one batch"):
            run_training(dataclasses.replace(cfg, out=out))
    assert not (tmp_path / "run").exists()
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
    # a failure after the folder was written (an unreadable shard) removes what it wrote
    shards = tmp_path / "shards"
    shutil.copytree(shard_root, shards)
    (shards / "train-000000.tar").write_bytes(b"not a tar")
    with pytest.raises(Exception):  # noqa: B017 - what matters is what is left behind
        run_training(small(shards, tmp_path / "run", max_steps=1, val_split=""))
    assert not (tmp_path / "run").exists()
    run = run_training(small(shard_root, tmp_path / "run", max_steps=1))  # the retry runs
    assert (run / "last.pt").is_file()
