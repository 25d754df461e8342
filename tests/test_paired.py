"""benchmarks/paired.py: two forecasters judged on the same videos, with a paired bootstrap."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from convrnn_video.convrnn import get_preset
from convrnn_video.convrnn.floor import Floor
from convrnn_video.runtime.checkpoint import save_untrained
from convrnn_video.runtime.jaccard import FrameJaccard, macro_jaccard

from benchmarks.paired import paired_bootstrap
from tests.infer_helpers import tiny_segmenter

REPO = Path(__file__).resolve().parents[1]
K = 49


def per_video(pred: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """(N, K, K) confusion matrices (rows truth) of class ids (N, H, W)."""
    return torch.stack([torch.bincount((t * K + p).flatten(), minlength=K * K).view(K, K)
                        for p, t in zip(pred, truth, strict=True)])  # fmt: skip


def masks(seed: int, n: int = 12) -> torch.Tensor:
    """(n, 16, 24) class ids: floor and a few of the 49 classes, like a frame's mask."""
    g = torch.Generator().manual_seed(seed)
    classes = torch.tensor([0, 0, 0, 3, 17, 25, 48])
    return classes[torch.randint(0, len(classes), (n, 16, 24), generator=g)]


def course_score(pred: torch.Tensor, truth: torch.Tensor) -> float:
    jac = FrameJaccard()
    jac.update(pred[:, None], truth[:, None])
    return jac.compute()["last"]


def test_summed_matrices_score_as_the_course_does() -> None:
    truth, pred = masks(0), masks(1)
    cms = per_video(pred, truth)
    assert macro_jaccard(cms.sum(0)) == pytest.approx(course_score(pred, truth), abs=1e-6)
    # a class only predicted counts, at 0; one in neither is left out
    ones, zeros = torch.ones(1, 2, 2, dtype=torch.long), torch.zeros(1, 2, 2, dtype=torch.long)
    assert macro_jaccard(per_video(ones, zeros)[0]) == 0.0


def test_the_bootstrap_is_paired_and_says_which_is_better() -> None:
    truth, noise = masks(0), masks(1)
    better = torch.where(torch.arange(truth.numel()).view(truth.shape) % 3 > 0, truth, noise)
    ours, theirs = per_video(better, truth), per_video(noise, truth)
    same = paired_bootstrap(theirs, theirs, 200)
    assert same["difference"] == same["sd"] == 0 and same["interval95"] == [0, 0]
    out = paired_bootstrap(ours, theirs, 500, seed=3)
    full = course_score(better, truth) - course_score(noise, truth)
    assert out["difference"] == pytest.approx(full, abs=1e-4) and full > 0.3
    assert 0 < out["interval95"][0] < out["difference"] < out["interval95"][1]
    assert out["share_higher"] == 1.0 and out["sd"] > 0
    assert paired_bootstrap(ours, theirs, 500, seed=3) == out  # the seed fixes the draws
    assert paired_bootstrap(ours, theirs, 500, seed=4)["mean"] != out["mean"]


def run_paired(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, str(REPO / "benchmarks" / "paired.py"), *args],
                          capture_output=True, text=True, env=env, timeout=300)  # fmt: skip


@pytest.mark.slow
def test_paired_scores_as_input_masks_does_on_real_shards(shard_root: Path, tmp_path: Path) -> None:
    """The script end to end on ingested shards: its frame 22 for a forecaster is
    benchmarks/input_masks.py's from the same segmenter's masks, a forecaster against itself
    differs by nothing, and two forecasters are told apart."""
    floor = dataclasses.replace(get_preset("tracks"), track_floor=Floor().as_tuple())
    a = save_untrained(tmp_path / "floor.pt", floor)
    b = save_untrained(tmp_path / "plain.pt", get_preset("tracks"))
    seg = tiny_segmenter(tmp_path / "seg.pt")
    run = run_paired("--shards", str(shard_root), "--segmenter", str(seg), "--ckpt", str(a),
                     "--against", str(b), str(a), "--videos", "3",
                     "--resamples", "100")  # fmt: skip
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert report["videos"] == 3 and report["inputs"] == str(seg)
    assert report["against"][str(a)]["difference"] == 0
    other = report["against"][str(b)]
    diff = report["frame22"][str(a)] - report["frame22"][str(b)]
    assert other["difference"] == pytest.approx(diff, abs=2e-4)
    assert other["interval95"][0] <= other["mean"] <= other["interval95"][1]
    script = REPO / "benchmarks" / "input_masks.py"
    same = subprocess.run([sys.executable, str(script), "--shards", str(shard_root), "--tracks",
                           str(a), "--segmenter", str(seg), "--videos", "3"],
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert same.returncode == 0, same.stderr
    expected = json.loads(same.stdout)["frame22"]["segmenter"]
    assert report["frame22"][str(a)] == pytest.approx(expected, abs=1e-4)


@pytest.mark.slow
def test_against_segmenter_judges_two_whole_paths(shard_root: Path, tmp_path: Path) -> None:
    """With --against-segmenter the --against forecasters read the other segmenter's masks:
    each row scores as a plain run on that segmenter does, one forecaster named on both sides
    is judged on each, and the same segmenter on both sides differs by nothing."""
    a = save_untrained(tmp_path / "plain.pt", get_preset("tracks"))
    seg, other = tiny_segmenter(tmp_path / "a.pt"), tiny_segmenter(tmp_path / "b.pt", seed=5)
    common = ["--shards", str(shard_root), "--ckpt", str(a), "--videos", "3", "--resamples", "100"]
    run = run_paired(*common, "--segmenter", str(seg), "--against", str(a),
                     "--against-segmenter", str(other))  # fmt: skip
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    name = f"{a} + {other}"
    assert report["against_inputs"] == str(other) and list(report["against"]) == [name]
    plain = json.loads(run_paired(*common, "--segmenter", str(other), "--against", str(a)).stdout)
    assert report["frame22"][name] == plain["frame22"][str(a)]
    assert report["frame22"][str(a)] != report["frame22"][name]  # the two segmenters differ
    diff = report["frame22"][str(a)] - report["frame22"][name]
    assert report["against"][name]["difference"] == pytest.approx(diff, abs=2e-4)
    same = run_paired(*common, "--segmenter", str(seg), "--against", str(a),
                      "--against-segmenter", str(seg))  # fmt: skip
    assert json.loads(same.stdout)["against"][f"{a} + {seg}"]["difference"] == 0


def test_bad_arguments_and_files_end_in_one_error_line(shard_root: Path, tmp_path: Path) -> None:
    both = run_paired("--shards", str(shard_root), "--ckpt", "a.pt", "--against", "b.pt",
                      "--videos", "0", "--resamples", "5")  # fmt: skip
    assert both.returncode != 0
    assert both.stderr.strip().splitlines() == [
        "error: --videos must be at least 1, got 0; --resamples must be at least 100, got 5"
    ]
    missing = run_paired("--shards", str(shard_root), "--ckpt", str(tmp_path / "none.pt"),
                         "--against", str(tmp_path / "none.pt"))  # fmt: skip
    assert missing.returncode != 0 and "Traceback" not in missing.stderr
    lines = missing.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "none.pt" in lines[0]
