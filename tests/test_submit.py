"""infer.submit: the frame-22 masks of a store with masks as one tensor, plus its JSON."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from infer_helpers import run_cli

from infer.config import SubmitConfig
from infer.errors import InferError
from infer.predict import file_sha256
from infer.store import PredStore
from infer.submit import run_submit


def submit(preds: Path, out: Path, **kw) -> dict:
    return run_submit(SubmitConfig(preds=str(preds), out=str(out), **kw))


def test_tensor_order_and_description(mask_stores: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "sub" / "submission.pt"
    s = submit(mask_stores["hidden"], out)
    masks = torch.load(out, weights_only=True)
    store = PredStore.open(mask_stores["hidden"])
    assert masks.shape == (4, 160, 240) and masks.dtype == torch.uint8
    # row i is the last predicted frame (image_21) of the i-th video in id order
    assert np.array_equal(masks.numpy(), store.masks[:, -1])
    saved = json.loads((tmp_path / "sub" / "submission.json").read_text())
    assert saved["video_ids"] == [15000, 15001, 15002, 15003] == sorted(saved["video_ids"])
    assert saved["shape"] == [4, 160, 240] and saved["dtype"] == "uint8"
    assert saved["split"] == "hidden" and saved["frame"] == "image_21"
    assert saved["ckpt_sha256"] == file_sha256(mask_stores["ckpt"])
    assert saved["segmenter_sha256"] == file_sha256(mask_stores["segmenter"])
    assert saved["sha256"] == file_sha256(out) and s["json"].endswith("submission.json")
    assert not list(out.parent.glob("*.tmp"))

    wide = submit(mask_stores["hidden"], tmp_path / "wide.pt", dtype="int64")
    as_int = torch.load(tmp_path / "wide.pt", weights_only=True)
    assert wide["dtype"] == "int64" and as_int.dtype == torch.int64
    assert torch.equal(as_int, masks.long())


def test_refusals(
    mask_stores: dict[str, Path], tiny_stores: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "submission.pt"
    submit(mask_stores["hidden"], out)
    with pytest.raises(InferError, match="already exist.*--overwrite"):
        submit(mask_stores["hidden"], out)
    assert submit(mask_stores["hidden"], out, overwrite=True)["videos"] == 4

    copy = tmp_path / "copy.zarr"
    shutil.copytree(mask_stores["hidden"], copy)
    PredStore.open(copy, "r+").done[2] = False
    with pytest.raises(InferError, match="incomplete: 1 of 4 videos are not predicted"):
        submit(copy, tmp_path / "x.pt")
    with pytest.raises(InferError, match="no masks to submit.*--segmenter SEG.pt"):
        submit(tiny_stores["hidden"], tmp_path / "y.pt")
    with pytest.raises(InferError, match="dtype must be one of uint8, int64"):
        submit(mask_stores["hidden"], tmp_path / "z.pt", dtype="float32")
    with pytest.raises(InferError, match="tensor file"):
        submit(mask_stores["hidden"], tmp_path / "z.json")
    assert not (tmp_path / "x.pt").exists() and not (tmp_path / "y.pt").exists()


def test_cli_submit(mask_stores: dict[str, Path], tiny_stores: dict[str, Path], tmp_path: Path):
    shutil.copytree(mask_stores["hidden"], tmp_path / "preds.zarr")
    proc = run_cli("submit", cwd=tmp_path)
    assert "wrote submission.pt (uint8 4x160x240, image_21 of 4 hidden videos)" in proc.stdout
    assert (tmp_path / "submission.json").is_file()
    again = run_cli("submit", cwd=tmp_path, check=False)
    assert again.returncode == 1 and "--overwrite" in again.stderr
    no_masks = run_cli(
        "submit", "--preds", str(tiny_stores["hidden"]), "--out", "b.pt", cwd=tmp_path, check=False
    )
    lines = no_masks.stderr.strip().splitlines()
    assert no_masks.returncode == 1 and len(lines) == 1 and "Traceback" not in no_masks.stderr
    assert lines[0].startswith("error: ") and "no masks to submit" in lines[0]
