"""infer.submit: the frame-22 masks of a store with masks as one tensor, plus its JSON."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from convrnn_video.infer.config import SubmitConfig
from convrnn_video.infer.errors import InferError
from convrnn_video.infer.submit import run_submit
from convrnn_video.ingest.writer import sha256_file
from convrnn_video.stores.predictions import PredStore
from infer_helpers import run_cli


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
    assert saved["ckpt_sha256"] == sha256_file(mask_stores["ckpt"])
    assert saved["segmenter_sha256"] == sha256_file(mask_stores["segmenter"])
    assert saved["sha256"] == sha256_file(out) and s["json"].endswith("submission.json")
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


def test_refuses_a_store_not_ending_on_frame_22(shard_root: Path, tmp_path: Path) -> None:
    from convrnn_video.infer.config import PredictConfig
    from convrnn_video.infer.predict import run_predict
    from infer_helpers import tiny_checkpoint, tiny_segmenter

    seg = tiny_segmenter(tmp_path / "seg.pt")
    stores = {}
    for fi, fo in ((11, 10), (10, 11)):
        ckpt = tiny_checkpoint(tmp_path / f"{fi}-{fo}.pt", frames_in=fi, frames_out=fo)
        stores[fo] = tmp_path / f"{fi}-{fo}.zarr"
        run_predict(PredictConfig(shards=str(shard_root), ckpt=str(ckpt), segmenter=str(seg),
                                  out=str(stores[fo]), progress=False))  # fmt: skip
    with pytest.raises(InferError, match="predicts up to image_20.*image_21 \\(frame 22\\)"):
        submit(stores[10], tmp_path / "short.pt")
    assert not (tmp_path / "short.pt").exists() and not (tmp_path / "short.json").exists()
    assert submit(stores[11], tmp_path / "ok.pt")["frame"] == "image_21"


def test_refuses_another_split_than_hidden_unless_asked(
    mask_stores: dict[str, Path], tmp_path: Path
) -> None:
    with pytest.raises(InferError, match="'val' split.*--split hidden.*--allow-split"):
        submit(mask_stores["val"], tmp_path / "val.pt")
    assert not (tmp_path / "val.pt").exists()
    done = submit(mask_stores["val"], tmp_path / "val.pt", allow_split=True)
    assert done["split"] == "val" and done["frame"] == "image_21"
    proc = run_cli("submit", "--preds", str(mask_stores["val"]), "--out", "v.pt",
                   cwd=tmp_path, check=False)  # fmt: skip
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert proc.returncode == 1 and len(errors) == 1 and "--allow-split" in errors[0]
    helped = run_cli("submit", "--help").stdout
    assert "uint8" in helped and "(N, 160, 240)" in helped and "--allow-split" in helped
