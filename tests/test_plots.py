"""train/plots.py: the curves of a run, including one begun before a metric existed."""

from __future__ import annotations

import json
from pathlib import Path

from convrnn_video.train.plots import write_curves
from convrnn_video.train.tasks.frames import FramesTask
from PIL import Image


def _val(step: int, names: tuple[str, ...]) -> dict:
    metrics = {name: {"mean": 0.5 + step / 100} for name in names}
    return {"kind": "val", "step": step, "loss": 0.1, "copy_last_loss": 0.2,
            "model": metrics, "copy_last": metrics}  # fmt: skip


def test_curves_draw_every_panel_even_where_old_records_lack_a_metric(tmp_path: Path) -> None:
    old, new = ("psnr", "ssim"), ("psnr", "ssim", "energy")
    records = [{"kind": "train", "step": 1, "loss": 0.3}, _val(10, old), _val(20, new)]
    metrics = tmp_path / "metrics.jsonl"
    metrics.write_text("".join(json.dumps(r) + "\n" for r in records))
    out = write_curves(metrics, tmp_path / "curves.png", panels=FramesTask.curve_panels)
    with Image.open(out) as img:
        assert img.width > 3 * img.height  # loss + three panels side by side
    assert not list(tmp_path.glob("*.tmp.png"))
