"""ingest.layout, names: the course's video_<id>/image_<t>.png, or with --layout free any
folder and frame names with a number, in numeric order; clashes and gaps in one line a video."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import square_frames
from convrnn_video.ingest.errors import IngestError
from convrnn_video.shards.loader import make_loader
from convrnn_video.shards.manifest import split_geometry
from ingest_helpers import bad_line, pixels
from ingest_helpers import ingest_free as ingest
from PIL import Image
from typer.testing import CliRunner

from convrnn_video.cli import app


def make_clips(root: Path, counts: dict[str, int], frames: int = 12) -> Path:
    """`root/<split>/clip_<n>/frame_<t>.png`, numbers unpadded so text order is not numeric."""
    for split, n in counts.items():
        for i in range(n):
            folder = root / split / f"clip_{i * 5}"
            folder.mkdir(parents=True)
            for t, frame in enumerate(square_frames(frames, 32, 48, "RGB", seed=i)):
                Image.fromarray(frame).save(folder / f"frame_{t}.png")
    return root


def test_other_names_are_an_error_naming_the_layout_and_the_flag(tmp_path: Path):
    data = make_clips(tmp_path / "clips", {"train": 3, "val": 2})
    out = tmp_path / "out"
    for layout in ("auto", "course"):
        result = CliRunner().invoke(
            app, ["ingest", str(data), "--out", str(out), "--layout", layout, "--workers", "1"]
        )
        assert result.exit_code == 1, result.output
        (line,) = result.output.strip().splitlines()
        assert "no video in" in line and "train (found train/clip_0, train/clip_10" in line
        assert "video_<id>/image_<t>.png" in line and "--layout free" in line
        assert not out.exists()
    (data / "hidden").mkdir()  # an empty split folder is no result either
    with pytest.raises(IngestError, match=r"; \S+hidden \(found nothing\): the auto") as info:
        ingest(data, out, layout="auto")
    assert "\n" not in str(info.value)
    with pytest.raises(IngestError, match=r"no video in \S+hidden \(found nothing\): expected"):
        ingest(data, out)


def test_free_layout_takes_any_numbered_names_in_numeric_order(tmp_path: Path):
    data = make_clips(tmp_path / "clips", {"train": 3, "val": 2})
    (data / "train" / "notes").mkdir()  # no number: not a video
    (data / "train" / "clip_0" / "thumbnail.png").write_bytes(b"x")  # no number: not a frame
    (data / "train" / "clip_0" / ".frame_3.png").write_bytes(b"x")  # hidden file: litter
    clip = data / "val" / "clip_5"
    for t in reversed(range(12)):  # numbered from 1: frame_1 ... frame_12
        (clip / f"frame_{t}.png").rename(clip / f"frame_{t + 1}.png")
    manifest = ingest(data, tmp_path / "out")
    assert manifest["layout"] == "free" and manifest["splits"]["val"]["videos"] == 2
    assert split_geometry(manifest, "train") == (12, 32, 48, 3)
    assert sorted(manifest["ignored"]) == [
        "train/clip_0/.frame_3.png",
        "train/clip_0/thumbnail.png",
        "train/notes",
    ]
    loader = make_loader(tmp_path / "out", "train", mode="eval", batch_size=3, frames_in=12)
    (batch,) = list(loader)
    assert batch["keys"] == ["video_0", "video_5", "video_10"]  # clip_10 after clip_5
    for i, n in enumerate((0, 5, 10)):
        folder = data / "train" / f"clip_{n}"
        ref = np.stack([np.asarray(Image.open(folder / f"frame_{t}.png")) for t in range(12)])
        np.testing.assert_array_equal(pixels(batch["inputs"])[i], ref)  # frame_10 after frame_9


def test_free_layout_frame_numbers_clash_and_stray_numbers(tmp_path: Path):
    data = make_clips(tmp_path / "clips", {"train": 3})
    clip = data / "train" / "clip_5"
    (clip / "frame_003.png").write_bytes((clip / "frame_3.png").read_bytes())
    (data / "train" / "take_05").mkdir()
    (data / "train" / "take_05" / "frame_0.png").write_bytes((clip / "frame_0.png").read_bytes())
    stray = data / "train" / "clip_10" / "frame_99999.png"
    stray.write_bytes((clip / "frame_0.png").read_bytes())
    with pytest.raises(IngestError) as info:
        ingest(data, tmp_path / "out")
    message = str(info.value)
    assert len(message) < 2000  # not a list of 99,987 missing frames
    line = bad_line(message, "clip_5")
    assert "frame 3 appears more than once (frame_003.png, frame_3.png)" in line
    assert "video number 5 is taken by 2 folders (clip_5, take_05)" in line
    line = bad_line(message, "clip_10")
    assert "frames 0..99999 with gaps: first missing 12, 99987 missing in all" in line


def test_missing_frames_is_counted_not_listed():
    from convrnn_video.ingest.scan import missing_frames

    numbers = {*range(20), 999_999_999}
    assert missing_frames(numbers, 0, 10**9, free=True) == (
        "frames 0..999999999 with gaps: first missing 20, 999999979 missing in all"
    )
    assert missing_frames({0, 1, 3}, 0, 4, free=False) == (
        "missing frame(s) image_2.png (expected image_0..image_3)"
    )
    assert missing_frames({1, 2}, 1, 2, free=True) is None
