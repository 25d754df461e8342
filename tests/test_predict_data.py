"""infer.predict on any data: ids with a gap (a video left out by ingest --skip-bad), 64x64
grayscale videos of 20 frames (frames and masks), and every split of the shards."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from convrnn_video.infer.errors import InferError
from convrnn_video.stores.predictions import PredStore
from infer_helpers import by_hand, predict, tiny_checkpoint, tiny_segmenter


def test_ids_with_a_gap_after_skip_bad(synth_root: Path, ckpt: Path, tmp_path: Path) -> None:
    """A video left out by `ingest --skip-bad` leaves a gap in a shard's id range."""
    import shutil

    from convrnn_video.ingest.pack import IngestConfig, run_ingest

    data = tmp_path / "data"
    shutil.copytree(synth_root / "hidden", data / "hidden")
    (data / "hidden" / "video_15001" / "image_4.png").unlink()  # a missing frame: a bad video
    run_ingest(
        IngestConfig(
            data_root=data,
            out=tmp_path / "shards",
            workers=1,
            progress=False,
            skip_bad=True,
            videos_per_shard=4,
        )
    )
    summary = predict(tmp_path / "shards", ckpt, tmp_path / "preds.zarr")
    assert summary["videos"] == 3 and summary["complete"]
    assert list(PredStore.open(tmp_path / "preds.zarr").ids()) == [15000, 15002, 15003]


@pytest.fixture(scope="module")
def gray_shards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Moving-square 64x64 grayscale videos: val 3 x 20 frames with masks, hidden 2 x 10."""
    from conftest import write_square_video
    from convrnn_video.ingest.pack import IngestConfig, run_ingest

    tmp = tmp_path_factory.mktemp("gray")
    for split, first, n, frames, mask in (
        ("val", 1000, 3, 20, True),
        ("hidden", 15000, 2, 10, False),
    ):
        for i in range(n):
            folder = tmp / "data" / split / f"video_{first + i}"
            write_square_video(folder, frames, 64, 64, "L", seed=first + i, mask=mask)
    out = tmp / "shards"
    run_ingest(IngestConfig(data_root=tmp / "data", out=out, workers=1, progress=False,
                            layout="free"))  # fmt: skip
    return out


def test_grayscale_64x64_end_to_end(gray_shards: Path, tmp_path: Path) -> None:
    import torch
    from convrnn_video.convrnn import get_preset
    from convrnn_video.runtime.checkpoint import load_model, save_untrained
    from convrnn_video.shards.loader import make_loader

    geometry = {"frames_in": 10, "frames_out": 10, "height": 64, "width": 64}
    geometry_48 = {**geometry, "height": 48, "width": 48}
    ckpt = tiny_checkpoint(tmp_path / "gray.pt", image_channels=1, **geometry)
    for split, n in (("val", 3), ("hidden", 2)):
        out = tmp_path / f"{split}.zarr"
        summary = predict(gray_shards, ckpt, out, split=split, batch_size=2, precision="fp32")
        assert summary["complete"] and summary["videos"] == n
        store = PredStore.open(out)
        assert store.frames.shape == (n, 10, 64, 64, 1) and store.attrs["first_frame"] == 10
    model, _, _ = load_model(ckpt, "cpu")
    loader = make_loader(str(gray_shards), ["val"], mode="eval", batch_size=2, frames_in=10,
                         frames_out=10)  # fmt: skip
    store = PredStore.open(tmp_path / "val.zarr")
    with torch.inference_mode():
        for batch in loader:
            expect = (model(batch["inputs"]).clamp(0, 1) * 255).round().byte()
            expect = expect.permute(0, 1, 3, 4, 2).numpy()  # (B, T, H, W, 1)
            assert np.array_equal(store.read(store.positions(batch["ids"])), expect)

    # the mask path at this geometry: a 1-channel segmenter and a mask forecaster
    seg = tiny_segmenter(tmp_path / "seg.pt", in_channels=1)
    masks_ckpt = save_untrained(tmp_path / "masks.pt", get_preset("tiny-masks", **geometry))
    out = tmp_path / "masks.zarr"
    predict(gray_shards, masks_ckpt, out, split="val", segmenter=str(seg), precision="fp32")
    masks = PredStore.open(out).masks[:]
    expect, _ = by_hand(gray_shards, "val", masks_ckpt, seg, batch_size=8)
    assert masks.shape == (3, 10, 64, 64) and np.array_equal(masks, expect)

    rgb = tiny_checkpoint(tmp_path / "rgb.pt", **geometry)
    with pytest.raises(InferError, match="rgb.pt takes 3-channel frames.*grayscale"):
        predict(gray_shards, rgb, tmp_path / "x.zarr", split="val")
    # a model configured for 48x48 frames (patch 12 x stride 2) does not tile 64x64 ones
    odd = tiny_checkpoint(tmp_path / "odd.pt", image_channels=1, patch=12, **geometry_48)
    with pytest.raises(InferError, match="divisible by 24.*64x64"):
        predict(gray_shards, odd, tmp_path / "y.zarr", split="val")


# --- which frames are the input: one rule for the CLI and the API -------------------------------


def test_any_split_of_the_shards_and_a_clear_refusal(
    shard_root: Path, ckpt: Path, tmp_path: Path
) -> None:
    """`predict --split train` (and unlabeled) predicts the frames after a hidden video's, as on
    val, and `evaluate` scores a train store; a split that is none names the ones accepted."""
    from convrnn_video.infer.config import EvaluateConfig
    from convrnn_video.infer.evaluate import run_evaluate

    for split, videos in (("train", 6), ("unlabeled", 6)):
        summary = predict(shard_root, ckpt, tmp_path / f"{split}.zarr", split=split)
        assert summary["split"] == split and summary["predicted"] == videos
        store = PredStore.open(tmp_path / f"{split}.zarr")
        assert store.attrs["first_frame"] == 11 and store.frames.shape[1] == 11
    report = run_evaluate(EvaluateConfig(preds=str(tmp_path / "train.zarr"),
                                         shards=str(shard_root), out=str(tmp_path / "r.json"),
                                         progress=False))  # fmt: skip
    assert report["split"] == "train" and report["videos"] == 6
    with pytest.raises(InferError, match="split must be one of train, val, unlabeled, hidden"):
        predict(shard_root, ckpt, tmp_path / "x.zarr", split="test")
