"""infer.evaluate: a val store scored against the shards, beside copy-last-frame; a store with
masks also by the course's Jaccard score, beside its two baselines."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from convrnn_video.infer.config import EvaluateConfig
from convrnn_video.infer.errors import InferError
from convrnn_video.infer.evaluate import run_evaluate
from infer_helpers import run_cli


@pytest.fixture(scope="module")
def stores(tiny_stores: dict[str, Path]) -> dict[str, Path]:
    return tiny_stores


@pytest.mark.slow
def test_report_and_plot(stores: dict[str, Path], shard_root: Path, tmp_path: Path) -> None:
    proc = run_cli(
        "evaluate",
        "--preds",
        str(stores["val"]),
        "--shards",
        str(shard_root),
        "--no-progress",
        cwd=tmp_path,
    )
    assert "copy-last-frame" in proc.stdout and "psnr" in proc.stdout
    saved = json.loads((tmp_path / "report.json").read_text())
    assert saved["videos"] == 4 and saved["frames"] == list(range(11, 22))
    for kind in ("model", "copy_last_frame"):
        for name in ("mse", "mae", "psnr", "ssim"):
            assert len(saved[kind][name]["per_frame"]) == 11
    # an untrained net is worse than copying the last frame
    assert saved["model"]["mse"]["mean"] > saved["copy_last_frame"]["mse"]["mean"]
    assert (tmp_path / "report.png").stat().st_size > 10_000
    # a second evaluate does not write over the report: refused before scoring, one line
    before = (tmp_path / "report.json").read_bytes()
    args = ("evaluate", "--preds", str(stores["val"]), "--shards", str(shard_root), "--no-progress")
    again = run_cli(*args, cwd=tmp_path, check=False)
    assert again.returncode == 1 and "Traceback" not in again.stderr
    (line,) = again.stderr.strip().splitlines()
    assert line.startswith("error: ") and "report.json" in line and "--overwrite" in line
    assert (tmp_path / "report.json").read_bytes() == before
    run_cli(*args, "--overwrite", cwd=tmp_path)
    assert json.loads((tmp_path / "report.json").read_text())["videos"] == 4


def test_hidden_store_is_a_clear_error(
    stores: dict[str, Path], shard_root: Path, tmp_path: Path
) -> None:
    with pytest.raises(InferError, match="'hidden' split, which has no ground truth"):
        run_evaluate(
            EvaluateConfig(
                preds=str(stores["hidden"]),
                shards=str(shard_root),
                out=str(tmp_path / "r.json"),
                progress=False,
            )
        )
    proc = run_cli(
        "evaluate",
        "--preds",
        str(stores["hidden"]),
        "--shards",
        str(shard_root),
        cwd=tmp_path,
        check=False,
    )
    assert proc.returncode == 1 and "no ground truth" in proc.stderr


def _course_jaccard(pred: np.ndarray, true: np.ndarray) -> float:
    """The course's score on stacked masks: torchmetrics' multiclass Jaccard over 49 classes."""
    from torchmetrics.classification import MulticlassJaccardIndex

    metric = MulticlassJaccardIndex(num_classes=49)
    return float(metric(torch.from_numpy(pred).long(), torch.from_numpy(true).long()))


@pytest.mark.slow
def test_jaccard_and_baselines(
    mask_stores: dict[str, Path], shard_root: Path, synth_root: Path, tmp_path: Path
) -> None:
    from convrnn_video.convrnn.extrapolate import FIT_FRAMES, extrapolate_masks
    from convrnn_video.runtime.checkpoint import load_model
    from convrnn_video.runtime.device import autocast
    from convrnn_video.segment.apply import segment_frames
    from convrnn_video.shards.buffers import frames_to_float
    from convrnn_video.stores.predictions import PredStore
    from PIL import Image

    proc = run_cli(
        "evaluate",
        "--preds",
        str(mask_stores["val"]),
        "--shards",
        str(shard_root),
        "--out",
        "val.json",
        "--no-progress",
        cwd=tmp_path,
    )
    assert "jaccard" in proc.stdout and "segmenter_on_true" in proc.stdout
    assert "extrapolate_objects" in proc.stdout
    report = json.loads((tmp_path / "val.json").read_text())
    jac = report["jaccard"]
    assert jac["segmenter"] == str(mask_stores["segmenter"]) and len(jac["segmenter_sha256"]) == 64
    for key in ("model", "copy_last_input", "extrapolate_objects", "segmenter_on_true"):
        assert len(jac[key]["per_frame"]) == 11 and len(jac[key]["per_class_last"]) == 49
        assert 0 <= jac[key]["mean"] <= 1 and jac[key]["last"] == jac[key]["per_frame"][-1]
    assert "mse" in report["model"] and (tmp_path / "val.png").stat().st_size > 10_000

    # frame 22 (image_21) of each line, recomputed from the files with torchmetrics
    store = PredStore.open(mask_stores["val"])
    folders = [synth_root / "val" / f"video_{v}" for v in store.ids()]
    true = np.stack([np.load(f / "mask.npy")[21] for f in folders])  # (N, H, W)
    seg, _, _ = load_model(mask_stores["segmenter"], "cpu", task="segment")
    context = autocast(store.attrs["precision"], torch.device("cpu"), warn=False)  # the masks'

    def segmented(frames: range) -> np.ndarray:  # (N, T, H, W) class ids of these frames
        def video(f: Path) -> np.ndarray:  # (T, H, W, 3)
            return np.stack([np.asarray(Image.open(f / f"image_{t}.png")) for t in frames])

        u8 = np.stack([video(f) for f in folders])  # (N, T, H, W, 3)
        return segment_frames(seg, frames_to_float(u8), context).numpy()

    # the extrapolation baseline: the last input frames segmented one at a time, objects moved
    seen = np.concatenate([segmented(range(t, t + 1)) for t in range(11 - FIT_FRAMES, 11)], 1)
    moved = extrapolate_masks(torch.from_numpy(seen), 11).numpy()  # (N, 11, H, W)
    expect = {
        "model": _course_jaccard(store.masks[:, -1], true),
        "copy_last_input": _course_jaccard(segmented(range(10, 11))[:, -1], true),
        "extrapolate_objects": _course_jaccard(moved[:, -1], true),
        "segmenter_on_true": _course_jaccard(segmented(range(11, 22))[:, -1], true),
    }
    for key, value in expect.items():
        assert jac[key]["last"] == pytest.approx(value, abs=1e-6), key


def test_out_must_be_json_and_segmenter_must_match(
    mask_stores: dict[str, Path], shard_root: Path, tmp_path: Path
) -> None:
    from infer_helpers import tiny_segmenter

    proc = run_cli(
        "evaluate",
        "--preds",
        str(mask_stores["val"]),
        "--shards",
        str(shard_root),
        "--out",
        "report.png",
        cwd=tmp_path,
        check=False,
    )
    assert proc.returncode == 1 and "must end in .json" in proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "report.png").exists()
    other = tiny_segmenter(tmp_path / "other.pt", seed=1)
    with pytest.raises(InferError, match="is not the segmenter that made the masks"):
        run_evaluate(
            EvaluateConfig(
                preds=str(mask_stores["val"]),
                shards=str(shard_root),
                out=str(tmp_path / "r.json"),
                segmenter=str(other),
                progress=False,
            )
        )
