"""infer.evaluate: a val store scored against the shards, beside copy-last-frame."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from infer_helpers import run_cli

from infer.config import EvaluateConfig
from infer.errors import InferError
from infer.evaluate import run_evaluate


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
