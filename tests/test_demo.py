"""The user's path: the four commands in sequence with their defaults, and the one-command demo."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from convrnn_video.infer.config import DemoConfig
from convrnn_video.infer.errors import InferError
from convrnn_video.stores.predictions import PredStore
from infer_helpers import run_cli
from PIL import Image

from convrnn_video.demo import run_demo


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


SMALL = ("--preset", "tiny", "--steps", "2", "--train", "2", "--val", "2", "--hidden", "2",
         "--batch-size", "2", "--seg-preset", "tiny", "--seg-steps", "2",
         "--tracks-steps", "2")  # fmt: skip


def test_demo_never_touches_a_folder_it_did_not_write(tmp_path: Path) -> None:
    work = tmp_path / "work"  # a user's working folder: their dataset, runs and a submission
    for name, data in (("data/train/video_0/image_0.png", b"png"), ("runs/a/best.pt", b"pt"),
                       ("submission.pt", b"mine"), ("notes.txt", b"todo")):  # fmt: skip
        (work / name).parent.mkdir(parents=True, exist_ok=True)
        (work / name).write_bytes(data)
    before = sorted((p, p.read_bytes()) for p in work.rglob("*") if p.is_file())
    for flags in ((), ("--overwrite",)):
        proc = run_cli("demo", "--out", str(work), *flags, *SMALL, check=False)
        errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
        assert proc.returncode == 1 and len(errors) == 1 and "Traceback" not in proc.stderr
        assert "data, runs, submission.pt" in errors[0] and "no .convrnn-demo marker" in errors[0]
        assert "--overwrite" not in errors[0].split(";")[-1]  # never advised here
    assert sorted((p, p.read_bytes()) for p in work.rglob("*") if p.is_file()) == before
    # a marker that is not one of ours proves nothing
    (work / ".convrnn-demo").write_text("{}")
    with pytest.raises(InferError, match="no .convrnn-demo marker"):
        run_demo(DemoConfig(out=str(work), overwrite=True))
    assert (work / "data" / "train" / "video_0" / "image_0.png").read_bytes() == b"png"


# The demo's own run, its output and its rerun: tests/test_readme.py, the README's quick start.
