"""infer.predict + stores.predictions: a tiny checkpoint over the shared shards, into real Zarr
stores."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from convrnn_video.infer.config import PredictConfig
from convrnn_video.infer.errors import InferError
from convrnn_video.infer.predict import run_predict
from convrnn_video.stores.errors import StoreError
from convrnn_video.stores.predictions import PredStore
from infer_helpers import (
    assert_frames_close,
    predict,
    run_cli,
    tiny_checkpoint,
)


@pytest.mark.slow
def test_store_layout_and_values(shard_root: Path, ckpt: Path, tmp_path: Path) -> None:
    import torch
    from convrnn_video.runtime.checkpoint import load_model
    from convrnn_video.shards.loader import make_loader
    from convrnn_video.shards.manifest import read_manifest

    out = tmp_path / "preds.zarr"
    summary = predict(shard_root, ckpt, out, batch_size=3, precision="fp32")
    assert summary["predicted"] == summary["videos"] == 4 and summary["complete"]

    store = PredStore.open(out)
    n = read_manifest(shard_root)["splits"]["hidden"]["videos"]
    assert store.frames.shape == (n, 11, 160, 240, 3) and store.frames.dtype == np.uint8
    assert store.frames.chunks == (1, 11, 160, 240, 3) and store.frames.compressors
    assert store.done.chunks == (1,) and store.done_mask().all()
    ids = store.ids()
    assert list(ids) == sorted(ids) and ids[0] == 15000
    attrs = store.attrs
    assert attrs["split"] == "hidden" and attrs["first_frame"] == 11
    assert attrs["frames_in"] == 11 and attrs["frames_out"] == 11
    assert len(attrs["ckpt_sha256"]) == 64 and attrs["model_config"]["frames_out"] == 11
    assert attrs["version"] and attrs["created"] and attrs["complete"] is True
    assert attrs["holds"] == ["frames"] and attrs["task"] == "frames" and store.masks is None

    # the stored frames are the model's output on the loader's batches, as uint8
    model, _, _ = load_model(ckpt, "cpu")
    loader = make_loader(str(shard_root), ["hidden"], mode="eval", batch_size=3)
    with torch.inference_mode():
        for batch in loader:
            expect = (model(batch["inputs"]).clamp(0, 1) * 255).round().byte()
            expect = expect.permute(0, 1, 3, 4, 2).numpy()  # (B, T, H, W, 3)
            assert np.array_equal(store.read(store.positions(batch["ids"])), expect)


def test_rerun_skips_done_and_refuses_other_runs(
    shard_root: Path, ckpt: Path, tmp_path: Path
) -> None:
    import torch

    out = tmp_path / "preds.zarr"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        predict(shard_root, ckpt, out)
        assert torch.get_num_threads() == 1  # a library call leaves process settings alone
    finally:
        torch.set_num_threads(threads)
    again = predict(shard_root, ckpt, out)
    assert again["predicted"] == 0 and again["already_done"] == 4 and again["resumed"]

    other = tiny_checkpoint(tmp_path / "other.pt", seed=1)
    with pytest.raises(StoreError, match="ckpt_sha256.*--overwrite"):
        predict(shard_root, other, out)
    with pytest.raises(StoreError, match="split"):
        predict(shard_root, ckpt, out, split="val")
    replaced = predict(shard_root, other, out, overwrite=True)
    assert replaced["predicted"] == 4 and not replaced["resumed"]

    folder = tmp_path / "not-a-store"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    with pytest.raises(StoreError, match="not empty and is not a predictions store"):
        predict(shard_root, ckpt, folder, overwrite=True)


def test_precision_policy_recorded_and_kept_apart(
    shard_root: Path, ckpt: Path, tmp_path: Path
) -> None:
    import torch
    from convrnn_video.runtime.device import resolve_precision

    fp32, bf16, auto = tmp_path / "fp32.zarr", tmp_path / "bf16.zarr", tmp_path / "auto.zarr"
    predict(shard_root, ckpt, fp32, split="val", precision="fp32")
    predict(shard_root, ckpt, bf16, split="val", precision="bf16")
    summary = predict(shard_root, ckpt, auto, split="val")  # the default: auto
    a, b = PredStore.open(fp32), PredStore.open(bf16)
    assert a.attrs["precision"] == "fp32" and b.attrs["precision"] == "bf16"
    resolved = resolve_precision("auto", torch.device("cpu"))
    c = PredStore.open(auto)
    assert summary["precision"] == c.attrs["precision"] == resolved
    assert c.attrs["precision_asked"] == "auto"
    assert np.array_equal(c.frames[:], (b if resolved == "bf16" else a).frames[:])
    diff = np.abs(a.frames[:].astype(int) - b.frames[:].astype(int))
    # an untrained tiny model: about 1 level on average, 5 at the 99th percentile
    assert diff.mean() < 1.5 and np.percentile(diff, 99) <= 8, (diff.mean(), diff.max())
    # a store is never a mix of precisions: resuming with another resolved one is refused
    with pytest.raises(StoreError, match="precision.*--overwrite"):
        predict(shard_root, ckpt, bf16, split="val", precision="fp32")
    other = fp32 if resolved == "bf16" else bf16
    with pytest.raises(StoreError, match="precision.*--overwrite"):
        predict(shard_root, ckpt, other, split="val")  # auto resolves to the other one
    with pytest.raises(InferError, match="precision must be one of auto, fp32, bf16"):
        predict(shard_root, ckpt, tmp_path / "x.zarr", precision="fp16")


def test_fsspec_url_store(shard_root: Path, ckpt: Path, tmp_path: Path) -> None:
    url = "memory://infer-test/preds.zarr"
    predict(shard_root, ckpt, url, split="val")
    local = tmp_path / "val.zarr"
    predict(shard_root, ckpt, f"file://{local}", split="val")
    a, b = PredStore.open(url), PredStore.open(local)
    assert a.attrs["split"] == "val" and np.array_equal(a.ids(), b.ids())
    assert np.array_equal(a.frames[:], b.frames[:])


def test_bad_checkpoints_and_shards(shard_root: Path, ckpt: Path, tmp_path: Path) -> None:
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(ckpt.read_bytes()[: ckpt.stat().st_size // 2])
    with pytest.raises(InferError, match="corrupt or not a checkpoint"):
        predict(shard_root, truncated, tmp_path / "a.zarr")
    text = tmp_path / "notes.pt"
    text.write_text("not a checkpoint")
    with pytest.raises(InferError, match="notes.pt"):
        predict(shard_root, text, tmp_path / "b.zarr")
    with pytest.raises(InferError, match="no training run"):
        run_predict(
            PredictConfig(
                shards=str(shard_root),
                runs=str(tmp_path / "runs"),
                out=str(tmp_path / "c.zarr"),
                progress=False,
            )
        )
    long_ctx = tiny_checkpoint(tmp_path / "long.pt", frames_in=12)
    with pytest.raises(InferError, match="expects 12 input frames.*11 frames per video"):
        predict(shard_root, long_ctx, tmp_path / "d.zarr")
    with pytest.raises(InferError, match="no manifest"):
        predict(tmp_path, ckpt, tmp_path / "e.zarr")


def test_cli_predict_uses_newest_run(shard_root: Path, ckpt: Path, tmp_path: Path) -> None:
    run = tmp_path / "runs" / "20260101-000000"
    run.mkdir(parents=True)
    (run / "best.pt").write_bytes(ckpt.read_bytes())
    proc = run_cli("predict", "--shards", str(shard_root), "--no-progress", cwd=tmp_path)
    assert "best.pt (newest run" in proc.stdout and "predicted 4 of 4" in proc.stdout
    assert PredStore.open(tmp_path / "preds.zarr").done_mask().all()
    bad = run_cli(
        "predict",
        "--shards",
        str(shard_root),
        "--ckpt",
        str(tmp_path / "nope.pt"),
        cwd=tmp_path,
        check=False,
    )
    assert bad.returncode == 1 and bad.stderr.startswith("error: ")
    assert "Traceback" not in bad.stderr


def test_cli_and_api_read_the_last_observed_frames(
    synth_root: Path, shard_root: Path, tmp_path: Path
) -> None:
    from convrnn_video import load_checkpoint, read_video

    # 10 in, 11 out: the observed frames are a hidden video's 11, the input their last 10
    ckpt = tiny_checkpoint(tmp_path / "short.pt", frames_in=10, frames_out=11)
    run_cli("predict", "--shards", str(shard_root), "--ckpt", str(ckpt), "--split", "val",
            "--out", "val.zarr", "--precision", "fp32", "--batch-size", "1", "--no-progress",
            cwd=tmp_path)  # fmt: skip
    store = PredStore.open(tmp_path / "val.zarr")
    model = load_checkpoint(ckpt, "cpu", precision="fp32")
    for vid, row in zip(store.ids(), store.read(range(len(store))), strict=True):
        video = read_video(synth_root / "val" / f"video_{vid}")  # (22, H, W, 3)
        assert_frames_close(row, model.predict(video[:11]), vid)  # frames 2-11 -> 12-22
    attrs = store.attrs  # the frame numbers (image_<n>) it read and holds
    assert attrs["observed_frames"] == 11 and attrs["input_frames"] == list(range(1, 11))
    assert attrs["first_frame"] == 11 and attrs["predicted_frames"] == list(range(11, 22))
    assert attrs["video_frames"] == 22


# --- motion (predict --motion) -----------------------------------------------------------------


def test_motion_stored_per_video_in_pixels(shard_root: Path, ckpt: Path, tmp_path: Path) -> None:
    from infer_helpers import motion_checkpoint

    moving = motion_checkpoint(tmp_path / "motion.pt", (-1.0, 0.5))  # grid cells per frame
    summary = predict(shard_root, moving, tmp_path / "m.zarr", split="val", motion=True)
    assert summary["holds"] == ["frames", "motion"] and summary["complete"]
    store = PredStore.open(tmp_path / "m.zarr")
    n = len(store)
    # tiny-motion: 8x8-pixel patches, a 20x30 grid for 160x240 frames
    assert store.motion.shape == (n, 11, 2, 20, 30) and store.motion.dtype == np.float16
    assert store.motion.chunks == (1, 11, 2, 20, 30) and store.attrs["holds"][-1] == "motion"
    assert store.motion.attrs["units"] == "pixels" and store.motion.attrs["cell_px"] == 8
    assert store.motion.attrs["axis"] == ["x", "y"]
    k = np.arange(1, 12, dtype=np.float32)[None, :, None, None]  # frames 1-11 after the input
    expect = np.stack([-8 * k, 4 * k], 2) * np.ones((n, 1, 1, 20, 30), np.float32)
    np.testing.assert_allclose(store.read_motion(range(n)).astype(np.float32), expect, atol=0.02)
    # resumable like the rest; the same store without --motion is another run's
    again = predict(shard_root, moving, tmp_path / "m.zarr", split="val", motion=True)
    assert again["predicted"] == 0 and again["resumed"]
    with pytest.raises(StoreError, match=r"arrays: store holds \('frames', 'motion'\)"):
        predict(shard_root, moving, tmp_path / "m.zarr", split="val")
    # a model without a motion output refuses --motion in one line, writing nothing
    common = ["predict", "--shards", str(shard_root), "--split", "val", "--no-progress"]
    still = run_cli(*common, "--ckpt", str(ckpt), "--motion", "--out", "s.zarr", cwd=tmp_path,
                    check=False)  # fmt: skip
    lines = still.stderr.strip().splitlines()
    assert still.returncode == 1 and "Traceback" not in still.stderr and len(lines) == 1
    assert lines[0].startswith("error: ") and "no motion output" in lines[0]
    assert not (tmp_path / "s.zarr").exists()
