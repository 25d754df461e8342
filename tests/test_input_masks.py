"""benchmarks/input_masks.py's rows that read the tracks off one set of masks and move the
objects of another's last frame (`read_apart`)."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from convrnn_video.convrnn import get_preset
from convrnn_video.convrnn.floor import Floor
from convrnn_video.convrnn.tracks import TrackForecaster
from convrnn_video.ingest.synth.render import render
from convrnn_video.ingest.synth.sliding import simulate
from convrnn_video.ingest.synth.writer import video_rng
from convrnn_video.runtime.checkpoint import save_untrained

from benchmarks.input_masks import ROWS, read_apart
from tests.infer_helpers import tiny_segmenter

REPO = Path(__file__).resolve().parents[1]


def generated_masks(videos: int) -> torch.Tensor:
    """(B, 11, H, W) int64: the true masks of frames 1-11 of generated videos."""
    out = [render(simulate(video_rng(0, vid)), 11)[1] for vid in range(videos)]
    return torch.from_numpy(np.stack(out)).long()


def test_read_apart_is_the_forecast_when_both_masks_are_one() -> None:
    cfg = dataclasses.replace(get_preset("tracks"), track_floor=Floor().as_tuple())
    model = TrackForecaster(cfg).eval()
    masks = generated_masks(3)
    with torch.inference_mode():
        same = read_apart(model, masks, masks)
        assert torch.equal(same, model.forecast(masks)[0][:, -1:])
        # the objects drawn are the other masks': one left out of their last frame is gone
        cls = int(masks[0, -1][masks[0, -1] > 0][0])
        drawn = masks.clone()
        drawn[0, -1][drawn[0, -1] == cls] = 0
        apart = read_apart(model, masks, drawn)
    assert (same[0] == cls).any() and not (apart[0] == cls).any()
    assert torch.equal(apart[1:], same[1:])


@pytest.mark.slow
def test_the_script_reports_every_row(shard_root: Path, tmp_path: Path) -> None:
    ckpt = save_untrained(tmp_path / "floor.pt", get_preset("tracks"))
    seg = tiny_segmenter(tmp_path / "seg.pt")
    run = subprocess.run([sys.executable, str(REPO / "benchmarks" / "input_masks.py"),
                          "--shards", str(shard_root), "--tracks", str(ckpt), "--segmenter",
                          str(seg), "--videos", "2"],
                         capture_output=True, text=True, timeout=300)  # fmt: skip
    assert run.returncode == 0, run.stderr
    frame22 = json.loads(run.stdout)["frame22"]
    assert set(frame22) == set(ROWS) and all(0.0 <= v <= 1.0 for v in frame22.values())
