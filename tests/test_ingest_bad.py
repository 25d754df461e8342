"""ingest: every kind of bad input fails the whole ingest, naming the file and what is wrong,
or is skipped and listed (--skip-bad); the CLI's exit codes and one-line messages."""

from __future__ import annotations

import io
import logging
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
from convrnn_video.ingest.errors import IngestError
from convrnn_video.ingest.pack import IngestConfig, run_ingest
from convrnn_video.shards.loader import make_loader
from ingest_helpers import copy_tree, final_shards, ingest
from PIL import Image


def _png(mode: str = "RGB", size=(240, 160)) -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size).save(buf, format="PNG")
    return buf.getvalue()


def _npy(array) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=True)
    return buf.getvalue()


MASK = np.zeros((22, 160, 240), np.uint8)
# video -> (split, change to make, file that must be named, words the reason must hold)
BAD = {
    "video_20": ("train", lambda v: (v / "image_5.png").unlink(), "video_20", "image_5.png"),
    "video_21": (
        "train",
        lambda v: (v / "image_3.png").write_bytes((v / "image_3.png").read_bytes()[:2000]),
        "image_3.png",
        "decode",
    ),
    "video_22": (
        "train",
        lambda v: (v / "image_0.png").write_bytes(b"not a png"),
        "image_0.png",
        "decode",
    ),
    "video_23": (
        "train",
        lambda v: (v / "image_7.png").write_bytes(_png(size=(120, 80))),
        "image_7.png",
        "120x80",
    ),
    "video_24": (
        "train",
        lambda v: (v / "image_1.png").write_bytes(_png("RGBA")),
        "image_1.png",
        "RGBA",
    ),
    "video_25": (
        "train",
        lambda v: (v / "image_2.png").write_bytes(_png("L")),
        "image_2.png",
        "mode L",
    ),
    "video_26": ("train", lambda v: (v / "mask.npy").unlink(), "mask.npy", "missing"),
    "video_27": (
        "train",
        lambda v: (v / "mask.npy").write_bytes(_npy(np.array([{"a": 1}], dtype=object))),
        "mask.npy",
        "pickle",
    ),
    "video_28": (
        "train",
        lambda v: (v / "mask.npy").write_bytes(_npy(MASK[:21])),
        "mask.npy",
        "shape",
    ),
    "video_29": (
        "train",
        lambda v: (v / "mask.npy").write_bytes(_npy(MASK.astype(np.int64))),
        "mask.npy",
        "int64",
    ),
    "video_30": (
        "train",
        lambda v: (v / "mask.npy").write_bytes(_npy(MASK + 49)),
        "mask.npy",
        "49",
    ),
    "video_31": (
        "train",
        lambda v: (v / "mask.npy").write_bytes(pickle.dumps(MASK)),
        "mask.npy",
        "pickle",
    ),
    "video_1010": (
        "val",
        lambda v: os.link(v / "image_0.png", v / "image_22.png"),
        "image_22.png",
        "unexpected frame",
    ),
    "video_15000": (
        "hidden",
        lambda v: (v / "image_10.png").unlink(),
        "video_15000",
        "image_10.png",
    ),
}


@pytest.fixture(scope="module")
def bad_root(synth_samples: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two good videos per labelled split plus one video per kind of bad input."""
    data = tmp_path_factory.mktemp("bad") / "data"
    for split, video in (("train", "video_0"), ("train", "video_1"), ("val", "video_1000")):
        copy_tree(synth_samples / split / video, data / split / video)
    (data / "hidden").mkdir()
    copy_tree(synth_samples / "unlabeled" / "video_2000", data / "hidden" / "video_15001")
    for n in range(11, 22):
        (data / "hidden" / "video_15001" / f"image_{n}.png").unlink()
    for video, (split, change, _, _) in BAD.items():
        if split == "hidden":
            copy_tree(data / "hidden" / "video_15001", data / split / video)
        else:
            copy_tree(synth_samples / "train" / "video_2", data / split / video)
        change(data / split / video)
    return data


def test_bad_videos_fail_the_whole_ingest(bad_root: Path, tmp_path: Path):
    out = tmp_path / "out"
    with pytest.raises(IngestError) as info:
        ingest(bad_root, out, videos_per_shard=3, workers=2)
    message = str(info.value)
    assert f"{len(BAD)} bad video(s)" in message and "--skip-bad" in message
    lines = message.splitlines()
    for video, (split, _, path, words) in BAD.items():
        line = next((ln for ln in lines if f"{split}/{video}" in ln), None)
        assert line is not None, video
        assert path in line and words in line, (video, line)
    assert not (out / "manifest.json").exists()
    assert final_shards(out) == []


def test_skip_bad_publishes_the_rest_and_lists_the_bad(bad_root: Path, tmp_path: Path):
    out = tmp_path / "out"
    manifest = ingest(bad_root, out, videos_per_shard=3, skip_bad=True)
    skipped = {e["video"]: e for e in manifest["skipped"]}
    assert set(skipped) == set(BAD)
    for video, (split, _, path, words) in BAD.items():
        assert skipped[video]["split"] == split
        assert path in skipped[video]["path"] or path in skipped[video]["reason"]
        assert words in skipped[video]["reason"]
    counts = {s: e["videos"] for s, e in manifest["splits"].items()}
    assert counts == {"train": 2, "val": 1, "hidden": 1}
    keys = [k for b in make_loader(out, "train", mode="eval", batch_size=4) for k in b["keys"]]
    assert keys == ["video_0", "video_1"]
    # shards whose videos were all bad are not published; names are in the manifest
    assert final_shards(out) == sorted(
        s["name"] for e in manifest["splits"].values() for s in e["shards"]
    )


def test_no_split_is_an_error(tmp_path: Path):
    (tmp_path / "data" / "stuff").mkdir(parents=True)
    with pytest.raises(IngestError, match="no split folders"):
        ingest(tmp_path / "data", tmp_path / "out")
    with pytest.raises(IngestError, match="not a folder"):
        ingest(tmp_path / "missing", tmp_path / "out")


def test_cli_ingest_exit_code_and_messages(bad_root: Path, dataset: Path, tmp_path: Path):
    from typer.testing import CliRunner

    from convrnn_video.cli import app

    runner = CliRunner()
    result = runner.invoke(
        app, ["ingest", str(bad_root), "--out", str(tmp_path / "a"), "--workers", "1"]
    )
    assert result.exit_code == 1
    assert "error:" in result.output and "video_24" in result.output and "RGBA" in result.output
    result = runner.invoke(
        app,
        [
            "ingest",
            str(dataset),
            "--out",
            str(tmp_path / "b"),
            "--workers",
            "1",
            "--videos-per-shard",
            "2",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "train/.DS_Store" in result.output and "manifest.json" in result.output
    assert "train: 4 videos, 22 frames of 160x240 (h x w) RGB" in result.output  # INFO shows
    out = ["--out", str(tmp_path / "c"), "--workers", "1"]
    result = runner.invoke(app, ["--quiet", "ingest", str(dataset), *out])
    assert result.exit_code == 0, result.output
    # --quiet: only warnings and errors (the summary and the info lines stay silent)
    assert "22 frames of" not in result.output and "manifest.json" not in result.output
    assert (tmp_path / "c" / "manifest.json").is_file()
    result = runner.invoke(app, ["-q", "-v", "ingest", str(dataset), *out])
    assert result.exit_code == 2 and "exclude each other" in result.output


def test_a_split_without_a_readable_frame_names_no_size(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    for clip in ("train/clip_1", "train/clip_2", "val/clip_3"):
        (tmp_path / clip).mkdir(parents=True)
        for t in range(4):
            (tmp_path / clip / f"frame_{t}.png").write_text("not a png")
    cfg = IngestConfig(data_root=tmp_path, layout="free", skip_bad=True, workers=1, progress=False)
    with (
        caplog.at_level(logging.INFO, logger="convrnn_video.ingest.pack"),
        pytest.raises(IngestError),
    ):
        run_ingest(cfg)  # every video skipped: nothing to ingest
    assert "train: 2 videos, 4 frames, none readable" in caplog.text  # was "4 frames of 0x0"
    assert "val: 1 video, 4 frames, none readable" in caplog.text and "0x0" not in caplog.text
