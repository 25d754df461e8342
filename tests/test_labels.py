"""infer/labels.py: `label` writes the segmenter's masks of every frame, resumes, is verified,
and the masks trainer reads them for the split without masks."""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import zarr
from convrnn_video.infer.config import LabelConfig
from convrnn_video.infer.errors import InferError
from convrnn_video.infer.labels import run_label, verify_labels
from convrnn_video.runtime.checkpoint import load_model, save_untrained
from convrnn_video.segment.objects import whole_objects
from convrnn_video.stores.errors import StoreError
from convrnn_video.stores.labels import LabelStore

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def segmenter(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from convrnn_video.segment import get_preset

    return save_untrained(tmp_path_factory.mktemp("seg") / "seg.pt", get_preset("tiny"), seed=3)


@pytest.fixture(scope="module")
def labels(shard_root: Path, segmenter: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("labels") / "unlabeled.zarr"
    cfg = LabelConfig(shards=str(shard_root), segmenter=str(segmenter), out=str(out),
                      precision="fp32", progress=False)  # fmt: skip
    summary = run_label(cfg)
    assert summary["labelled"] == 6 and summary["complete"] is True
    return out


def test_labels_equal_the_segmenter_on_every_frame(
    labels: Path, shard_root: Path, segmenter: Path, synth_root: Path
) -> None:
    from convrnn_video import read_video

    store = LabelStore.open(labels)
    assert list(store.ids()) == list(range(2000, 2006))
    assert store.attrs["segmenter_sha256"] and store.attrs["split"] == "unlabeled"
    model, _, _ = load_model(segmenter, task="segment")
    video = read_video(synth_root / "unlabeled" / "video_2003")  # (22, H, W, 3)
    with torch.no_grad():
        x = torch.from_numpy(video).permute(0, 3, 1, 2).float() / 255
        expected = model(x).argmax(1)  # (22, H, W)
    expected = whole_objects(expected, model.cfg.num_classes).to(torch.uint8).numpy()
    got = store.read_ids([2003])[0]
    assert got.shape == (22, 160, 240) and np.array_equal(got, expected)
    assert verify_labels(labels, shard_root) == []


def test_an_interrupted_label_run_resumes_to_the_same_masks(
    labels: Path, shard_root: Path, segmenter: Path, tmp_path: Path
) -> None:
    # The state a kill leaves: masks are written before their flag, so some videos are
    # flagged, one has masks but no flag, the rest nothing.
    part = Path(shutil.copytree(labels, tmp_path / "part.zarr"))
    group = zarr.open_group(part, mode="r+")
    group["done"][2:] = False
    group["masks"][3:] = 0
    assert verify_labels(part, shard_root) == [
        f"{part}: 4 video(s) not labelled yet (rerun `label`)"
    ]
    cfg = LabelConfig(shards=str(shard_root), segmenter=str(segmenter), out=str(part),
                      precision="fp32", progress=False)  # fmt: skip
    summary = run_label(cfg)
    assert summary["resumed"] and summary["labelled"] == 4 and summary["already_done"] == 2
    a, b = LabelStore.open(labels), LabelStore.open(part)
    assert np.array_equal(a.masks[:], b.masks[:])
    # another segmenter is refused without --overwrite
    from convrnn_video.segment import get_preset

    other = save_untrained(tmp_path / "other.pt", get_preset("tiny"), seed=9)
    with pytest.raises(StoreError, match="another run.*segmenter_sha256"):
        run_label(dataclasses.replace(cfg, segmenter=str(other)))
    with pytest.raises(InferError, match="expected a segment checkpoint"):
        frames = save_untrained(tmp_path / "f.pt", _tiny())
        run_label(dataclasses.replace(cfg, segmenter=str(frames)))


def _tiny():
    from convrnn_video.convrnn import get_preset

    return get_preset("tiny")


def test_masks_training_reads_pseudo_labels(
    labels: Path, shard_root: Path, segmenter: Path, tmp_path: Path
) -> None:
    from convrnn_video.segment import get_preset
    from convrnn_video.train.config import TrainConfig
    from convrnn_video.train.errors import TrainError
    from convrnn_video.train.loop import run_training

    cfg = TrainConfig(
        task="masks", shards=str(shard_root), out=str(tmp_path / "run"), preset="tiny-masks",
        frames_in=4, frames_out=4, batch_size=4, max_steps=3, log_every=1, progress=False,
        threads=1, segmenter=str(segmenter), labels=str(labels), val_split="",
    )  # fmt: skip
    run = run_training(cfg)
    config = json.loads((run / "config.json").read_text())
    assert config["train"]["train_splits"] == ["train", "unlabeled"]
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines if r["kind"] == "train"] == [1, 2, 3]
    # a resume may find the label store and the segmenter elsewhere, not other ones
    copy = tmp_path / "copy.zarr"
    shutil.copytree(labels, copy)
    run_training(dataclasses.replace(cfg, labels=str(copy), max_steps=4, resume=True))
    other = save_untrained(tmp_path / "other.pt", get_preset("tiny"), seed=4)
    with pytest.raises(TrainError, match="--segmenter .*other.pt holds other data"):
        run_training(dataclasses.replace(cfg, segmenter=str(other), max_steps=5, resume=True))


def test_masks_training_checks_its_label_store_before_the_run_folder(
    labels: Path, shard_root: Path, segmenter: Path, tmp_path: Path
) -> None:
    from convrnn_video.train.config import TrainConfig
    from convrnn_video.train.errors import TrainError
    from convrnn_video.train.loop import run_training

    out = tmp_path / "run"
    cfg = TrainConfig(
        task="masks", shards=str(shard_root), out=str(out), preset="tiny-masks", frames_in=4,
        frames_out=4, batch_size=2, max_steps=1, progress=False, threads=1,
        segmenter=str(segmenter), labels=str(labels),
    )  # fmt: skip
    other = save_untrained(tmp_path / "other.pt", _tiny_segmenter(), seed=4)
    refused = {
        "no label store at": {"labels": str(tmp_path / "nope.zarr")},
        "was made by the segmenter": {"segmenter": str(other)},
        "every split of --train-splits train has true masks": {"train_splits": ("train",)},
    }
    for message, change in refused.items():
        with pytest.raises(TrainError, match=message):
            run_training(dataclasses.replace(cfg, **change))
        assert not out.exists(), message
    # the command line: one error line, no traceback, no run folder
    cmd = [sys.executable, "cli.py", "train", "--task", "masks", "--shards", str(shard_root),
           "--out", str(out), "--preset", "tiny-masks", "--segmenter", str(segmenter),
           "--labels", str(tmp_path / "nope.zarr"), "--no-progress"]  # fmt: skip
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    lines = [x for x in proc.stderr.splitlines() if x.startswith("error:")]
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert len(lines) == 1 and "--labels" in lines[0] and not out.exists()


def _tiny_segmenter():
    from convrnn_video.segment import get_preset

    return get_preset("tiny")


def test_cli_label_and_verify(shard_root: Path, segmenter: Path, labels: Path, tmp_path: Path):
    out = tmp_path / "val.zarr"
    cmd = [sys.executable, "cli.py", "label", "--segmenter", str(segmenter), "--shards",
           str(shard_root), "--split", "val", "--out", str(out), "--no-progress"]  # fmt: skip
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()  # a summary a person reads, not a JSON blob
    assert lines[0].startswith("labelled 4 of 4 val videos in ") and "frames/s" in lines[0]
    assert lines[1:] == [f"wrote {out}: train --task tracks (or masks) --labels {out} reads it"]
    proc = subprocess.run([*cmd, "--json"], cwd=REPO, capture_output=True, text=True, timeout=300)
    summary = json.loads(proc.stdout)  # the rerun finds every video done
    assert (summary["labelled"], summary["already_done"], summary["complete"]) == (0, 4, True)
    check = [sys.executable, "cli.py", "shards-info", str(shard_root), "--verify", "--labels",
             str(out), "--labels", str(labels)]  # fmt: skip
    proc = subprocess.run(check, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and "verified 2 label store(s): ok" in proc.stdout, proc.stderr
    group = zarr.open_group(out, mode="r+")
    group["done"][0] = False
    proc = subprocess.run(check, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1 and "not labelled yet" in proc.stderr
