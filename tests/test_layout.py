"""ingest.layout: any video size and length (free layout) through ingest -> shards-info --verify
-> loader, grayscale included; inconsistent splits refused; the course layout stays strict; the
auto layout (the default) takes the geometry a split shares, in one line when it cannot (names:
test_layout_names.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import write_square_video
from convrnn_video.ingest.errors import IngestError
from convrnn_video.shards.errors import ShardError
from convrnn_video.shards.loader import make_loader
from convrnn_video.shards.manifest import read_manifest, split_geometry
from ingest_helpers import bad_line, pixels
from ingest_helpers import ingest_free as ingest
from PIL import Image
from typer.testing import CliRunner

from convrnn_video.cli import app

FRAMES, SIZE = 20, 64  # Moving MNIST's geometry
# split -> (first id, videos, frames, masks)
SPLITS = {
    "train": (0, 3, FRAMES, True),
    "val": (1000, 3, FRAMES, True),
    "hidden": (15000, 2, 10, False),
}


def make_root(root: Path, mode: str, size: int = SIZE) -> Path:
    """Moving-square videos of `size` x `size` in `mode`, in the course's split folders."""
    for split, (first, n, frames, masks) in SPLITS.items():
        for i in range(n):
            folder = root / split / f"video_{first + i}"
            write_square_video(folder, frames, size, size, mode, seed=first + i, mask=masks)
    return root


@pytest.mark.parametrize("mode,channels", [("RGB", 3), ("L", 1)])
def test_free_layout_whole_chain(tmp_path: Path, mode: str, channels: int):
    data = make_root(tmp_path / "data", mode)
    out = tmp_path / "shards"
    result = CliRunner().invoke(
        app, ["ingest", str(data), "--out", str(out), "--layout", "free", "--workers", "1"]
    )
    assert result.exit_code == 0, result.output
    assert f"20 frames 64x64x{channels}" in result.output

    manifest = read_manifest(out)
    assert manifest["layout"] == "free"
    for split, (_, n, frames, masks) in SPLITS.items():
        entry = manifest["splits"][split]
        assert (entry["videos"], entry["masks"]) == (n, masks)
        assert (entry["frames"], entry["height"], entry["width"], entry["channels"]) == (
            frames,
            SIZE,
            SIZE,
            channels,
        )
        assert split_geometry(manifest, split) == (frames, SIZE, SIZE, channels)
    with pytest.raises(ShardError, match="present: train, val, hidden"):
        split_geometry(manifest, "unlabeled")

    result = CliRunner().invoke(app, ["shards-info", str(out), "--verify"])
    assert result.exit_code == 0, result.output
    assert (
        f"64x64x{channels}" in result.output and "verified 3 shards, 8 samples: ok" in result.output
    )

    loader = make_loader(
        out, "val", mode="eval", batch_size=2, frames_in=10, frames_out=10, masks=True
    )
    batches = list(loader)
    assert [b["inputs"].shape for b in batches] == [
        (2, 10, channels, 64, 64),
        (1, 10, channels, 64, 64),
    ]
    for batch in batches:
        assert batch["targets"].shape[1:] == (10, channels, 64, 64)
        frames = np.concatenate([pixels(batch["inputs"]), pixels(batch["targets"])], axis=1)
        for i, key in enumerate(batch["keys"]):
            folder = data / "val" / key
            ref = np.stack([np.asarray(Image.open(folder / f"image_{t}.png")) for t in range(20)])
            np.testing.assert_array_equal(frames[i], ref.reshape(frames[i].shape))
            np.testing.assert_array_equal(batch["masks"][i].numpy(), np.load(folder / "mask.npy"))
    train = make_loader(out, mode="train", batch_size=3, frames_in=5, frames_out=15, workers=2)
    (batch,) = list(train)
    assert batch["inputs"].shape == (3, 5, channels, 64, 64)
    assert batch["targets"].shape == (3, 15, channels, 64, 64)
    assert sorted(batch["keys"]) == ["video_0", "video_1", "video_2"]
    hidden = list(make_loader(out, "hidden", mode="eval", batch_size=4, frames_in=10))
    assert hidden[0]["inputs"].shape == (2, 10, channels, 64, 64) and hidden[0]["targets"] is None


def test_inconsistent_split_is_refused_naming_the_video(tmp_path: Path):
    data = make_root(tmp_path / "data", "RGB")
    train = data / "train"
    write_square_video(train / "video_3", FRAMES, 32, 32, "RGB", seed=3, mask=False)
    np.save(train / "video_3" / "mask.npy", np.zeros((FRAMES, 32, 32), np.uint8))
    write_square_video(train / "video_4", 18, SIZE, SIZE, "RGB", seed=4, mask=True)
    write_square_video(train / "video_5", FRAMES, SIZE, SIZE, "L", seed=5, mask=True)
    write_square_video(train / "video_6", FRAMES, SIZE, SIZE, "RGB", seed=6, mask=False)
    write_square_video(train / "video_7", FRAMES, SIZE, SIZE, "RGB", seed=7, mask=True)
    Image.open(train / "video_7" / "image_4.png").convert("RGBA").save(
        train / "video_7" / "image_4.png"
    )
    np.save(data / "val" / "video_1001" / "mask.npy", np.zeros((FRAMES, 32, 32), np.uint8))

    with pytest.raises(IngestError) as info:
        ingest(data, tmp_path / "out")
    message = str(info.value)
    assert "6 bad video(s)" in message and "nothing was published" in message
    line = bad_line(message, "video_3")
    assert "20 frames (image_0.png, image_1.png, image_2.png, ...)" in line
    assert "size 32x32, expected 64x64 (w x h) like most train videos" in line
    assert "mask.npy: shape (20, 32, 32), expected (20, 64, 64)" in line
    assert "18 frames, expected 20 like most train videos" in bad_line(message, "video_4")
    assert "mode L, expected RGB like most train videos" in bad_line(message, "video_5")
    assert "missing mask.npy (other train videos have one)" in bad_line(message, "video_6")
    line = bad_line(message, "video_7")
    assert "image_4.png" in line and "mode RGBA" in line and "convert" in line
    assert "shape (20, 32, 32)" in bad_line(message, "video_1001")
    assert not (tmp_path / "out" / "manifest.json").exists()

    manifest = ingest(data, tmp_path / "out", skip_bad=True)
    assert {e["video"] for e in manifest["skipped"]} == {
        f"video_{i}" for i in (3, 4, 5, 6, 7, 1001)
    }
    assert manifest["splits"]["train"]["videos"] == 3
    assert split_geometry(manifest, "train") == (FRAMES, SIZE, SIZE, 3)


def test_splits_of_different_sizes_cannot_share_a_loader(tmp_path: Path):
    data = make_root(tmp_path / "data", "L")
    for i in range(2):
        write_square_video(data / "unlabeled" / f"video_{2000 + i}", 12, 32, 48, "RGB", seed=i)
    out = tmp_path / "out"
    manifest = ingest(data, out)
    assert split_geometry(manifest, "unlabeled") == (12, 32, 48, 3)
    assert split_geometry(manifest, "train") == (FRAMES, SIZE, SIZE, 1)
    batch = next(
        iter(make_loader(out, "unlabeled", mode="eval", batch_size=2, frames_in=6, frames_out=6))
    )
    assert batch["inputs"].shape == (2, 6, 3, 32, 48)
    with pytest.raises(
        ShardError, match=r"different frame sizes.*train 64x64x1, unlabeled 32x48x3"
    ):
        make_loader(out, mode="train", batch_size=2, frames_in=6, frames_out=6)


def test_course_layout_stays_strict(tmp_path: Path):
    data = make_root(tmp_path / "data", "L")
    with pytest.raises(IngestError) as info:
        ingest(data, tmp_path / "out", layout="course")
    line = bad_line(str(info.value), "video_0")
    assert "missing frame(s) image_20.png, image_21.png" in line
    assert "size 64x64, expected 240x160 (w x h)" in line and "like most" not in line
    assert "mask.npy: shape (20, 64, 64), expected (22, 160, 240)" in line
    result = CliRunner().invoke(
        app, ["ingest", str(data), "--out", str(tmp_path / "o"), "--layout", "any"]
    )
    assert result.exit_code == 1 and "layout must be one of auto, course, free" in result.output


def test_course_manifest_records_the_course_geometry(shard_root: Path):
    manifest = json.loads((shard_root / "manifest.json").read_text())
    assert manifest["layout"] == "course"
    assert split_geometry(manifest, "val") == (22, 160, 240, 3)
    assert split_geometry(manifest, "hidden") == (11, 160, 240, 3)
    old = dict(
        manifest,
        splits={
            "val": {
                k: v
                for k, v in manifest["splits"]["val"].items()
                if k not in ("height", "width", "channels")
            }
        },
    )
    del old["layout"]
    assert split_geometry(old, "val") == (22, 160, 240, 3)  # manifests from before the fields


# --- auto layout: the geometry the videos share, without flags ----------------------------------


def test_auto_layout_ingests_another_uniform_geometry_beside_the_input(tmp_path: Path):
    data = make_root(tmp_path / "data", "L")
    result = CliRunner().invoke(app, ["ingest", str(data), "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert "not the course's geometry" in result.output and "--layout free" in result.output
    manifest = read_manifest(data / "shards")  # beside the videos, not ./data/shards
    assert manifest["layout"] == "free" and manifest["ignored"] == []
    for split, (_, n, frames, masks) in SPLITS.items():
        assert (manifest["splits"][split]["videos"], manifest["splits"][split]["masks"]) == (
            n,
            masks,
        )
        assert split_geometry(manifest, split) == (frames, SIZE, SIZE, 1)


def test_auto_layout_mixed_geometries_end_in_one_line(tmp_path: Path):
    data = make_root(tmp_path / "data", "L")
    write_square_video(data / "train" / "video_3", FRAMES, 32, 32, "L", seed=3, mask=True)
    write_square_video(data / "train" / "video_4", 18, SIZE, SIZE, "L", seed=4, mask=True)
    write_square_video(data / "hidden" / "video_15002", 12, SIZE, SIZE, "L", seed=5)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["ingest", str(data), "--out", str(out), "--workers", "1"])
    assert result.exit_code == 1
    (line,) = result.output.strip().splitlines()
    assert line.startswith("error: ") and "--layout free" in line
    assert "train: 3 videos of 20 frames of 64x64 L, " in line
    assert "1 of 20 frames of 32x32 L (video_3)" in line and "1 of 18 frames" in line
    assert "hidden: 2 videos of 10 frames of 64x64 L, 1 of 12 frames" in line
    assert not out.exists()
    with pytest.raises(IngestError, match="3 bad video"):  # the flag it names: per video
        ingest(data, out, layout="free")


def test_course_data_stays_strict_without_flags(synth_root: Path, tmp_path: Path):
    data = tmp_path / "data"
    for split in ("train", "hidden"):
        for video in sorted((synth_root / split).iterdir())[:3]:
            (data / split / video.name).mkdir(parents=True)
            for f in video.iterdir():
                (data / split / video.name / f.name).hardlink_to(f)
    write_square_video(data / "train" / "video_50", 22, SIZE, SIZE, "RGB", seed=1, mask=False)
    np.save(data / "train" / "video_50" / "mask.npy", np.zeros((22, SIZE, SIZE), np.uint8))
    with pytest.raises(IngestError) as info:
        ingest(data, tmp_path / "out", layout="auto")
    message = str(info.value)
    assert "1 bad video(s)" in message
    line = bad_line(message, "video_50")
    assert "size 64x64, expected 240x160 (w x h)" in line and "like most" not in line
    assert "mask.npy: shape (22, 64, 64), expected (22, 160, 240)" in line
    manifest = ingest(data, tmp_path / "out", layout="auto", skip_bad=True)
    assert manifest["layout"] == "course" and manifest["splits"]["train"]["videos"] == 3
