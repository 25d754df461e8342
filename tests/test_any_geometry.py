"""export-png, evaluate and show at another geometry than the course's: 64x64 videos of 20
frames, RGB and grayscale, ingested with the free layout; stores written with the store's own
code (frames equal to the true future, so the scores are known exactly). And the chain from
such a folder in the course's layout with no ingest flags."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import write_square_video
from convrnn_video.infer.config import EvaluateConfig, ExportConfig, ShowConfig
from convrnn_video.infer.evaluate import run_evaluate
from convrnn_video.infer.export import run_export
from convrnn_video.infer.montage_rows import LABEL_W, ROW_MIN_H
from convrnn_video.infer.show import GAP, run_show
from convrnn_video.ingest.pack import IngestConfig, run_ingest
from convrnn_video.stores.predictions import PredStore, prepare_store
from PIL import Image

FRAMES, SIZE, FRAMES_IN = 20, 64, 10  # Moving MNIST's geometry; 10 in, 10 out
# split -> (first id, videos, frames, masks)
SPLITS = {
    "train": (0, 2, FRAMES, True),
    "val": (1000, 3, FRAMES, True),
    "hidden": (15000, 2, 10, False),
}
MODES = {"RGB": 3, "L": 1}


def make_shards(root: Path, mode: str) -> tuple[Path, Path]:
    """(data root, shards) of moving-square videos in `mode`, ingested with --layout free."""
    data = root / "data"
    for split, (first, n, frames, masks) in SPLITS.items():
        for i in range(first, first + n):
            folder = data / split / f"video_{i}"
            write_square_video(folder, frames, SIZE, SIZE, mode, seed=i, mask=masks)
    out = root / "shards"
    run_ingest(IngestConfig(data_root=data, out=out, layout="free", workers=1, progress=False))
    return data, out


def true_future(data: Path, vid: int) -> np.ndarray:
    """uint8 (T_out, H, W, C) frames FRAMES_IN ... FRAMES-1 of val video `vid`, from its PNGs."""
    folder = data / "val" / f"video_{vid}"
    frames = [np.asarray(Image.open(folder / f"image_{t}.png")) for t in range(FRAMES_IN, FRAMES)]
    return np.stack(frames).reshape(FRAMES - FRAMES_IN, SIZE, SIZE, -1)


def perfect_store(path: Path, data: Path, channels: int) -> Path:
    """A finished val store whose frames are the true future frames."""
    ids = list(range(1000, 1003))
    attrs = {"split": "val", "frames_in": FRAMES_IN, "frames_out": FRAMES - FRAMES_IN}
    attrs.update(first_frame=FRAMES_IN, ckpt="none", ckpt_sha256="0" * 64, precision="fp32")
    shape = (FRAMES - FRAMES_IN, SIZE, SIZE, channels)
    store, _ = prepare_store(path, attrs=attrs, video_ids=ids, frame_shape=shape, overwrite=False)
    store.write(np.arange(len(ids)), np.stack([true_future(data, v) for v in ids]))
    store.finish()
    return path


@pytest.fixture(scope="module", params=list(MODES))
def geometry(request, tmp_path_factory: pytest.TempPathFactory) -> dict:
    mode = request.param
    root = tmp_path_factory.mktemp(f"geometry-{mode}")
    data, shards = make_shards(root, mode)
    store = perfect_store(root / "val.zarr", data, MODES[mode])
    return {"mode": mode, "channels": MODES[mode], "data": data, "shards": shards, "store": store}


def test_export_writes_the_stored_size_and_mode(geometry: dict, tmp_path: Path) -> None:
    out = tmp_path / "png"
    summary = run_export(
        ExportConfig(preds=str(geometry["store"]), out=str(out), frames="all", progress=False)
    )
    assert summary["files"] == 3 * 10 and summary["frames"][0] == "image_10.png"
    for vid in (1000, 1002):
        for t in (10, 19):
            img = Image.open(out / f"video_{vid}" / f"image_{t}.png")
            assert img.mode == geometry["mode"] and img.size == (SIZE, SIZE)
            truth = Image.open(geometry["data"] / "val" / f"video_{vid}" / f"image_{t}.png")
            assert np.array_equal(np.asarray(img), np.asarray(truth))


def test_evaluate_scores_any_size_and_channels(geometry: dict, tmp_path: Path) -> None:
    report = run_evaluate(
        EvaluateConfig(
            preds=str(geometry["store"]),
            shards=str(geometry["shards"]),
            out=str(tmp_path / "report.json"),
            batch_size=2,
            progress=False,
        )
    )
    assert report["videos"] == 3 and report["frames"] == list(range(10, 20))
    model, copy = report["model"], report["copy_last_frame"]
    assert model["mse"]["mean"] == 0 and model["psnr"]["mean"] == pytest.approx(100)
    assert model["ssim"]["mean"] == pytest.approx(1, abs=1e-6)
    assert copy["mse"]["mean"] > 0 and copy["ssim"]["mean"] < 1
    assert len(copy["mse"]["per_frame"]) == 10 and "jaccard" not in report
    assert Path(report["plot"]).stat().st_size > 10_000


def test_show_tiles_follow_the_stored_size(geometry: dict, tmp_path: Path) -> None:
    common = {"preds": str(geometry["store"]), "shards": str(geometry["shards"])}
    s = run_show(ShowConfig(videos=["video_1001", "1000"], out=str(tmp_path / "m.png"), **common))
    assert s["truth"] and s["frames"] and not s["masks"]
    img = Image.open(s["out"])
    # 2 videos x 3 rows (input, true, predicted) of 32x32 tiles (rows at least ROW_MIN_H high)
    assert img.size == (LABEL_W + 10 * 32, 2 * 3 * max(32, ROW_MIN_H) + GAP)
    tile = np.asarray(img.convert("RGB"))[:32, LABEL_W + 16 : LABEL_W + 32]  # input frame 0
    if geometry["channels"] == 1:  # drawn in gray: equal channels
        assert (tile[..., 0] == tile[..., 1]).all() and (tile[..., 1] == tile[..., 2]).all()
    big = run_show(
        ShowConfig(videos=["1002"], out=str(tmp_path / "a.gif"), gif=True, scale=2, **common)
    )
    gif = Image.open(big["out"])
    assert gif.n_frames == 20 and gif.size == (LABEL_W + 2 * 128 + GAP, 128)
    assert PredStore.open(geometry["store"]).frames.shape[-1] == geometry["channels"]


@pytest.mark.slow
def test_whole_chain_at_64x64(geometry: dict, tmp_path: Path) -> None:
    """train (a step) -> predict (with a segmenter) -> export-png -> evaluate -> show, all
    from the command line, on the free-layout shards of this geometry."""
    from convrnn_video.convrnn import get_preset
    from convrnn_video.runtime.checkpoint import save_untrained
    from infer_helpers import run_cli, tiny_segmenter

    channels, shards = geometry["channels"], str(geometry["shards"])
    model = get_preset(
        "tiny", image_channels=channels, frames_in=10, frames_out=10, height=SIZE, width=SIZE
    )
    init = save_untrained(tmp_path / "init.pt", model, 0)
    run_cli(
        "train", "--shards", shards, "--init-from", str(init), "--frames-in", "10",
        "--frames-out", "10", "--max-steps", "1", "--batch-size", "2", "--train-splits", "train",
        "--device", "cpu", "--out", str(tmp_path / "run"), "--no-progress",
    )  # fmt: skip
    seg = tiny_segmenter(tmp_path / "seg.pt", in_channels=channels)
    run_cli(
        "predict", "--shards", shards, "--ckpt", str(tmp_path / "run" / "best.pt"),
        "--segmenter", str(seg), "--split", "val", "--out", str(tmp_path / "val.zarr"),
        "--no-progress",
    )  # fmt: skip
    store = PredStore.open(tmp_path / "val.zarr")
    assert store.frames.shape == (3, 10, SIZE, SIZE, channels) and store.shape == (10, SIZE, SIZE)

    run_cli(
        "export-png", "--preds", str(tmp_path / "val.zarr"), "--out", str(tmp_path / "png"),
        "--masks", "--no-progress",
    )  # fmt: skip
    img = Image.open(tmp_path / "png" / "video_1001" / "image_19.png")
    assert img.mode == geometry["mode"] and img.size == (SIZE, SIZE)
    assert np.array_equal(np.asarray(img).reshape(SIZE, SIZE, -1), store.frames[1, -1])
    mask = Image.open(tmp_path / "png" / "video_1001" / "mask_19.png")
    assert mask.mode == "P" and np.array_equal(np.asarray(mask), store.masks[1, -1])

    proc = run_cli(
        "evaluate", "--preds", str(tmp_path / "val.zarr"), "--shards", shards,
        "--out", str(tmp_path / "report.json"), "--no-progress",
    )  # fmt: skip
    assert "frames 11-20 (image_10-19)" in proc.stdout and "jaccard" in proc.stdout
    report = json.loads((tmp_path / "report.json").read_text())
    assert len(report["model"]["ssim"]["per_frame"]) == 10
    assert len(report["jaccard"]["model"]["per_frame"]) == 10

    proc = run_cli(
        "show", "--videos", "video_1000,video_1002", "--preds", str(tmp_path / "val.zarr"),
        "--shards", shards, "--out", str(tmp_path / "montage.png"),
    )  # fmt: skip
    # per video: input, true, predicted, true mask, predicted mask rows of 32x32 tiles
    size = Image.open(tmp_path / "montage.png").size
    assert size == (LABEL_W + 10 * 32, 2 * 5 * max(32, ROW_MIN_H) + GAP)


@pytest.mark.slow
def test_chain_from_course_folders_of_another_geometry_without_flags(tmp_path: Path) -> None:
    """ingest ROOT (no flags: shards land in ROOT/shards) -> train -> predict -> export-png on
    64x64 grayscale videos of 20 frames, hidden ones of 10, in the course's folders. train
    takes 10 -> 10 frames from the shards (only --preset tiny --max-steps 2 to keep it short)."""
    from infer_helpers import run_cli

    root = tmp_path / "clips"
    # 8 train videos: one batch of the default size
    for split, (first, n, frames, masks) in {**SPLITS, "train": (0, 8, FRAMES, True)}.items():
        for i in range(first, first + n):
            write_square_video(root / split / f"video_{i}", frames, SIZE, SIZE, "L", i, masks)
    proc = run_cli("ingest", str(root), cwd=tmp_path)
    assert "train           8 videos  20 frames 64x64x1" in proc.stdout
    assert "hidden          2 videos  10 frames 64x64x1" in proc.stdout
    shards, run = root / "shards", tmp_path / "run"
    assert (shards / "manifest.json").is_file() and not (tmp_path / "data").exists()
    run_cli(
        "train", "--shards", str(shards), "--preset", "tiny", "--max-steps", "2", "--out", str(run),
        cwd=tmp_path,
    )  # fmt: skip
    saved = json.loads((run / "config.json").read_text())["train"]
    assert (saved["frames_in"], saved["frames_out"], saved["train_splits"]) == (10, 10, ["train"])
    preds = tmp_path / "preds.zarr"
    run_cli("predict", "--shards", str(shards), "--ckpt", str(run), "--out", str(preds))
    store = PredStore.open(preds)
    assert store.frames.shape == (2, 10, SIZE, SIZE, 1) and store.attrs["split"] == "hidden"
    run_cli("export-png", "--preds", str(preds), "--out", str(tmp_path / "png"))
    for vid in (15000, 15001):
        img = Image.open(tmp_path / "png" / f"video_{vid}" / "image_19.png")
        assert img.mode == "L" and img.size == (SIZE, SIZE)
