"""export-png, evaluate and show on the store of a mask forecaster, which holds masks and no
frames (`PredStore.frames is None`)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from convrnn_video.infer.config import EvaluateConfig, ExportConfig, PredictConfig, ShowConfig
from convrnn_video.infer.errors import InferError
from convrnn_video.infer.evaluate import run_evaluate
from convrnn_video.infer.export import run_export
from convrnn_video.infer.montage_rows import LABEL_W
from convrnn_video.infer.predict import run_predict
from convrnn_video.infer.show import GAP, run_show
from convrnn_video.stores.predictions import PredStore
from infer_helpers import run_cli
from PIL import Image


@pytest.fixture(scope="module")
def stores(
    shard_root: Path, mask_stores: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Path]:
    """Val and hidden stores of an untrained `tiny-masks` forecaster fed by the untrained
    segmenter of `mask_stores`; "segmenter" is that segmenter."""
    from convrnn_video.convrnn import get_preset
    from convrnn_video.runtime.checkpoint import save_untrained

    tmp = tmp_path_factory.mktemp("masks-only")
    ckpt = save_untrained(tmp / "masks.pt", get_preset("tiny-masks"), 0)
    paths = {"segmenter": mask_stores["segmenter"]}
    for split in ("val", "hidden"):
        paths[split] = tmp / f"{split}.zarr"
        run_predict(
            PredictConfig(
                shards=str(shard_root),
                ckpt=str(ckpt),
                segmenter=str(paths["segmenter"]),
                out=str(paths[split]),
                split=split,
                precision="fp32",
                progress=False,
            )
        )
        assert PredStore.open(paths[split]).frames is None
    return paths


def test_export_needs_masks(stores: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "png"
    with pytest.raises(InferError, match="holds only masks.*export them with --masks"):
        run_export(ExportConfig(preds=str(stores["hidden"]), out=str(out), progress=False))
    proc = run_cli("export-png", "--preds", str(stores["hidden"]), "--out", str(out), check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "--masks" in proc.stderr
    assert not out.exists()

    summary = run_export(
        ExportConfig(preds=str(stores["hidden"]), out=str(out), masks=True, progress=False)
    )
    assert summary["files"] == 4 and summary["frames"] == ["mask_21.png"]
    store = PredStore.open(stores["hidden"])
    for vid, masks in zip(store.ids(), store.masks[:], strict=True):
        assert [p.name for p in (out / f"video_{vid}").iterdir()] == ["mask_21.png"]
        img = Image.open(out / f"video_{vid}" / "mask_21.png")
        assert img.mode == "P" and np.array_equal(np.asarray(img), masks[-1])
    every = run_export(
        ExportConfig(
            preds=str(stores["hidden"]),
            out=str(tmp_path / "all"),
            masks=True,
            frames="all",
            progress=False,
        )
    )
    assert every["files"] == 4 * 11 and every["frames"][0] == "mask_11.png"


@pytest.mark.slow
def test_evaluate_scores_the_masks_only(
    stores: dict[str, Path], shard_root: Path, synth_root: Path, tmp_path: Path
) -> None:
    from torchmetrics.classification import MulticlassJaccardIndex

    report = run_evaluate(
        EvaluateConfig(
            preds=str(stores["val"]),
            shards=str(shard_root),
            out=str(tmp_path / "r.json"),
            progress=False,
        )
    )
    assert "model" not in report and "copy_last_frame" not in report
    jac = report["jaccard"]
    assert report["videos"] == 4 and report["frames"] == list(range(11, 22))
    assert jac["segmenter"] == str(stores["segmenter"])
    for key in ("model", "copy_last_input", "segmenter_on_true"):
        assert len(jac[key]["per_frame"]) == 11 and 0 <= jac[key]["mean"] <= 1
    store = PredStore.open(stores["val"])
    true = np.stack(
        [np.load(synth_root / "val" / f"video_{v}" / "mask.npy")[21] for v in store.ids()]
    )
    metric = MulticlassJaccardIndex(num_classes=49)
    expect = float(
        metric(torch.from_numpy(store.masks[:, -1]).long(), torch.from_numpy(true).long())
    )
    assert jac["model"]["last"] == pytest.approx(expect, abs=1e-6)
    assert json.loads((tmp_path / "r.json").read_text())["jaccard"]["model"] == jac["model"]
    assert Path(report["plot"]).stat().st_size > 5_000

    proc = run_cli(
        "evaluate", "--preds", str(stores["val"]), "--shards", str(shard_root), "--no-progress",
        cwd=tmp_path,
    )  # fmt: skip
    assert "jaccard" in proc.stdout and "copy_last_input" in proc.stdout
    assert "mse" not in proc.stdout and "copy-last-frame" not in proc.stdout


def test_show_draws_inputs_and_masks(
    stores: dict[str, Path], shard_root: Path, tmp_path: Path
) -> None:
    common = {"shards": str(shard_root)}
    s = run_show(
        ShowConfig(videos=["1001", "1000"], preds=str(stores["val"]), out=str(tmp_path / "v.png"),
                   **common)
    )  # fmt: skip
    assert s["truth"] and s["masks"] and not s["frames"]
    # per video: input, true mask, predicted mask rows of 120x80 tiles
    assert Image.open(s["out"]).size == (LABEL_W + 11 * 120, 2 * 3 * 80 + GAP)
    hidden = run_show(
        ShowConfig(videos=["video_15002"], preds=str(stores["hidden"]),
                   out=str(tmp_path / "h.png"), **common)
    )  # fmt: skip
    assert not hidden["truth"] and Image.open(hidden["out"]).size[1] == 2 * 80  # input, mask
    gif = run_show(
        ShowConfig(videos=["1003"], preds=str(stores["val"]), out=str(tmp_path / "a.gif"),
                   gif=True, **common)
    )  # fmt: skip
    assert Image.open(gif["out"]).n_frames == 22
