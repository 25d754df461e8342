"""The user's path: the four commands in sequence with their defaults, and the one-command demo."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from infer_helpers import run_cli
from PIL import Image

from infer.store import PredStore


@pytest.mark.slow
def test_four_commands_with_defaults(synth_root: Path, tmp_path: Path) -> None:
    shutil.copytree(synth_root, tmp_path / "data")
    run_cli("ingest", cwd=tmp_path)
    run_cli(
        "train",
        "--shards",
        "data/shards",
        "--preset",
        "tiny",
        "--max-steps",
        "2",
        "--batch-size",
        "2",
        "--train-splits",
        "train",
        cwd=tmp_path,
    )
    pred = run_cli("predict", "--out", "preds.zarr", "--no-progress", cwd=tmp_path)
    assert "(newest run under runs/)" in pred.stdout and "predicted 4 of 4" in pred.stdout
    run_cli("export-png", cwd=tmp_path)
    store = PredStore.open(tmp_path / "preds.zarr")
    for vid, frames in zip(store.ids(), store.frames[:], strict=True):
        png = tmp_path / "predictions" / f"video_{vid}" / "image_21.png"
        assert np.array_equal(np.asarray(Image.open(png)), frames[-1])


@pytest.mark.slow
def test_demo_small(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    proc = run_cli(
        "demo",
        "--out",
        str(out),
        "--preset",
        "tiny",
        "--steps",
        "2",
        "--train",
        "2",
        "--val",
        "2",
        "--hidden",
        "2",
        "--batch-size",
        "2",
        "--seg-preset",
        "tiny",
        "--seg-steps",
        "2",
        timeout=600,
    )
    assert "copy-last-frame" in proc.stdout and "montage" in proc.stdout
    assert "segmenter on true frames" in proc.stdout and "submission" in proc.stdout
    report = json.loads((out / "report.json").read_text())
    assert report["videos"] == 2 and report["split"] == "val"
    assert set(report["jaccard"]) >= {"model", "copy_last_input", "segmenter_on_true"}
    assert len(list((out / "predictions").glob("video_*/image_21.png"))) == 2
    assert len(list((out / "predictions").glob("video_*/mask_21.png"))) == 2
    assert (out / "montage.png").is_file() and (out / "report.png").is_file()
    val = PredStore.open(out / "preds-val.zarr")
    assert val.masks is not None and val.attrs["task"] == "frames"
    assert val.attrs["segmenter_config"]["base_channels"] == 4  # the tiny segmenter it trained
    submission = json.loads((out / "submission.json").read_text())
    assert submission["shape"] == [2, 160, 240] and submission["split"] == "hidden"
    again = run_cli("demo", "--out", str(out), cwd=tmp_path, check=False)
    assert again.returncode == 1 and "--overwrite" in again.stderr
