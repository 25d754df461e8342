"""Whole footprints as the generator draws them (ingest/synth/render.py `footprints`) and
benchmarks/footprints.py, which measures the floor stage's read of partly hidden objects
against them."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from convrnn_video.convrnn import get_preset
from convrnn_video.convrnn.floor import Floor
from convrnn_video.ingest.synth.render import footprints, render
from convrnn_video.ingest.synth.sliding import simulate
from convrnn_video.ingest.synth.writer import video_rng
from convrnn_video.runtime.checkpoint import (
    load_checkpoint,
    load_model,
    save_checkpoint,
    save_untrained,
)
from convrnn_video.train.reader import fit_placing, placing_samples

from benchmarks.footprints import generator_centres
from convrnn_video.errors import PipelineError

REPO = Path(__file__).resolve().parents[1]


def test_a_footprint_holds_what_shows_and_only_objects_hide_the_rest() -> None:
    hidden = 0
    for vid in range(6):
        scene = simulate(video_rng(0, vid))
        mask = render(scene, 11)[1][10]
        whole = footprints(scene, 10)
        assert set(np.unique(mask)) - {0} <= set(whole)  # every object seen has one
        for cls, pixels in whole.items():
            assert pixels.shape == mask.shape and pixels.any()
            assert pixels[mask == cls].all()  # what shows lies in it
            assert (mask[pixels & (mask != cls)] != 0).all()  # the rest is behind objects
            hidden += int((pixels & (mask != cls)).sum())
    assert hidden > 0  # some object was partly hidden, so the check above checked something


def test_generator_centres_are_the_centroids_of_whole_objects() -> None:
    scene = simulate(video_rng(0, 3))
    last = torch.from_numpy(render(scene, 11)[1][10].astype(np.int64))[None]
    centre, shown, seen_at = generator_centres(0, [3], last, 10)
    for cls in last.unique().tolist()[1:]:
        if shown[0, cls] == 1.0:  # shown whole: the mask's own centroid
            ys, xs = (last[0] == cls).nonzero(as_tuple=True)
            expect = torch.stack([xs.double().mean(), ys.double().mean()])
            assert torch.allclose(centre[0, cls], expect)
            # its centre is seen near the centroid, above it (a solid seen from above)
            off = seen_at[0, cls] - expect
            assert off.norm() < 4 and off[1] < 0, off
        assert 0 < shown[0, cls] <= 1
    assert centre[0, 0].isnan().all() and seen_at[0, 0].isnan().all()  # the floor is no object
    with pytest.raises(PipelineError, match="is not what synth --seed 1 draws"):
        generator_centres(1, [3], last, 10)


def run_script(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, str(REPO / "benchmarks" / "footprints.py"), *args],
                          capture_output=True, text=True, env=env, timeout=300)  # fmt: skip


@pytest.mark.slow
def test_the_script_scores_four_ways_and_names_a_wrong_seed(
    shard_root: Path, tmp_path: Path
) -> None:
    floor = dataclasses.replace(get_preset("tracks"), track_floor=Floor().as_tuple(),
                                track_reader=8)  # fmt: skip
    ckpt = save_untrained(tmp_path / "floor.pt", floor)
    payload = load_checkpoint(ckpt)  # a reader that places objects, fitted on 20 scenes
    model = load_model(ckpt, task="tracks")[0]
    payload["model"]["reader.placing"] = fit_placing(*placing_samples(model, 0, range(20)), 160)
    save_checkpoint(ckpt, payload)
    run = run_script("--shards", str(shard_root), "--seed", "0", "--ckpt", str(ckpt))
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert report["videos"] == 4 and report["inputs"] == "true masks"
    assert set(report["frame22"]) == {"seen", "read", "generator", "centres"}
    assert all(0 < v <= 1 for v in report["frame22"].values())
    placed, unplaced = (report["centre_error_px"][k]["median"] for k in ("placed", "unplaced"))
    assert report["objects"] > 4 and placed < unplaced * 0.8, report["centre_error_px"]
    wrong = run_script("--shards", str(shard_root), "--seed", "5", "--ckpt", str(ckpt))
    assert wrong.returncode != 0 and "Traceback" not in wrong.stderr
    assert wrong.stderr.strip().splitlines()[-1].startswith("error: video ")
    plain = save_untrained(tmp_path / "plain.pt", get_preset("tracks"))
    none = run_script("--shards", str(shard_root), "--seed", "0", "--ckpt", str(plain))
    assert none.returncode != 0 and "has no floor stage" in none.stderr
    assert len(none.stderr.strip().splitlines()) == 1
