"""shards.loader on damaged shards: a broken PNG, a missing frame, a short or cut tar, a bad
tar header, wrong arguments; each a clear ShardError naming the shard, or skipped and logged."""

from __future__ import annotations

import logging
import shutil
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import rewrite_tar
from convrnn_video.shards.errors import ShardError
from convrnn_video.shards.loader import make_loader
from loader_helpers import FAST, keys_of


def damaged_copy(shard_root: Path, tmp_path: Path, change: Callable[[list], list]) -> Path:
    """A copy of the shards whose val shard's members went through `change`."""
    out = Path(shutil.copytree(shard_root, tmp_path / "damaged"))
    rewrite_tar(out / "val-000000.tar", change)
    return out


def _bad_png(members):
    return [(n, b"\x89PNG broken" if n == "video_1002.f03.png" else d) for n, d in members]


def _missing_frame(members):
    return [(n, d) for n, d in members if n != "video_1001.f05.png"]


def _two_samples(members):
    return [(n, d) for n, d in members if n.split(".")[0] in ("video_1000", "video_1001")]


@pytest.mark.parametrize(
    "change,words,bad_key",
    [
        (_bad_png, ["video_1002", "does not decode"], "video_1002"),
        (_missing_frame, ["video_1001", "21 of 22 frames", "f05.png"], "video_1001"),
        (_two_samples, ["holds 2 samples", "manifest says 4"], None),
    ],
)
def test_damaged_samples_raise_or_are_skipped(shard_root, tmp_path, caplog, change, words, bad_key):
    root = damaged_copy(shard_root, tmp_path, change)
    with pytest.raises(ShardError) as info:
        keys_of(make_loader(root, "val", mode="eval", batch_size=2))
    for word in [*words, "val-000000.tar"]:
        assert word in str(info.value)
    with caplog.at_level(logging.WARNING):
        batches = list(make_loader(root, "val", mode="eval", batch_size=2, on_error="skip"))
    assert "val-000000.tar" in caplog.text
    expected = [
        f"video_{i}" for i in range(1000, 1004) if f"video_{i}" != bad_key and (bad_key or i < 1002)
    ]
    assert keys_of(batches) == expected
    assert all(b["targets"].shape[1:] == (11, 3, 160, 240) for b in batches)


def test_truncated_shard(shard_root: Path, tmp_path: Path, caplog):
    root = Path(shutil.copytree(shard_root, tmp_path / "cut"))
    tar = root / "val-000000.tar"
    tar.write_bytes(tar.read_bytes()[: tar.stat().st_size // 2])
    for workers in (0, 2):  # a worker's error arrives as the same one-line ShardError
        with pytest.raises(
            ShardError, match=r"val-000000\.tar.*(in sample video_10|incomplete)"
        ) as info:
            keys_of(make_loader(root, "val", mode="eval", batch_size=2, workers=workers))
        assert "Traceback" not in str(info.value)
    with caplog.at_level(logging.WARNING):
        keys = keys_of(make_loader(root, "val", mode="eval", batch_size=2, on_error="skip"))
    assert 1 <= len(keys) < 4 and keys == sorted(keys)
    # train mode with skipping still delivers its fixed number of full batches
    loader = make_loader(root, "val", mode="train", batch_size=2, on_error="skip")
    assert [b["inputs"].shape[0] for b in loader] == [2, 2]


def test_clear_errors(shard_root: Path, tmp_path: Path):
    with pytest.raises(ShardError, match="no manifest"):
        make_loader(tmp_path, "val", mode="eval", batch_size=1)
    with pytest.raises(ShardError, match="present: train, val, unlabeled, hidden"):
        make_loader(shard_root, "test", mode="eval", batch_size=1)
    with pytest.raises(ShardError, match="frames_out"):
        make_loader(shard_root, "val", mode="eval", batch_size=1, frames_in=11, frames_out=12)
    with pytest.raises(ShardError, match="less than one batch"):
        make_loader(shard_root, "val", mode="train", batch_size=8)
    with pytest.raises(ShardError, match="mode"):
        make_loader(shard_root, "val", mode="predict", batch_size=1)


def test_tar_reader_matches_tarfile_and_rejects_a_bad_header(shard_root: Path, tmp_path: Path):
    from convrnn_video.shards.reader import tar_members

    tar_path = shard_root / "hidden-000000.tar"
    with tarfile.open(tar_path) as tar:
        expected = [(m.name, tar.extractfile(m).read()) for m in tar.getmembers()]
    with open(tar_path, "rb") as f:
        assert list(tar_members(f)) == expected
    root = Path(shutil.copytree(shard_root, tmp_path / "hdr"))
    data = bytearray((root / "val-000000.tar").read_bytes())
    at = data.index(b"video_1001.f00.png")  # the start of that member's header
    data[at : at + 5] = b"XXXXX"
    (root / "val-000000.tar").write_bytes(bytes(data))
    with pytest.raises(ShardError, match="checksum"):
        keys_of(make_loader(root, "val", mode="eval", batch_size=2, **FAST))
