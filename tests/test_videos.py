"""infer.videos: a split's ids from the manifest, or from the shards (with the loaders' tar
reader) when the manifest's id ranges have gaps; broken shards are clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import write_square_video
from convrnn_video.infer.errors import InferError
from convrnn_video.infer.videos import split_videos
from convrnn_video.ingest.pack import IngestConfig, run_ingest


@pytest.fixture(scope="module")
def gappy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Shards whose val ids have gaps (1000, 1002, 1005) and train ids none (0, 1)."""
    data = tmp_path_factory.mktemp("gappy") / "data"
    for split, ids in {"train": (0, 1), "val": (1000, 1002, 1005)}.items():
        for i in ids:
            write_square_video(data / split / f"video_{i}", 6, 16, 16, "RGB", seed=i, mask=True)
    out = data.parent / "shards"
    run_ingest(IngestConfig(data_root=data, out=out, layout="free", workers=1, progress=False))
    return out


def test_ids_from_the_shards_when_ranges_have_gaps(gappy: Path) -> None:
    ids, frames = split_videos(gappy, "val")
    assert ids.dtype == np.int64 and ids.tolist() == [1000, 1002, 1005] and frames == 6


def test_ids_from_the_manifest_when_ranges_are_whole(gappy: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "shards"
    shutil.copytree(gappy, copy)
    for tar in copy.glob("train-*.tar"):
        tar.unlink()  # a contiguous range needs no tar read
    ids, _ = split_videos(copy, "train")
    assert ids.tolist() == [0, 1]


def test_broken_shards_are_clear_errors(gappy: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "shards"
    shutil.copytree(gappy, copy)
    (tar,) = copy.glob("val-*.tar")
    tar.write_bytes(tar.read_bytes()[:1500])  # cut inside the first sample
    with pytest.raises(InferError, match=f"shard .*{tar.name}"):
        split_videos(copy, "val")
    tar.unlink()
    with pytest.raises(InferError, match=f"{tar.name}"):
        split_videos(copy, "val")
    with pytest.raises(InferError, match="split 'hidden' is not in the manifest"):
        split_videos(copy, "hidden")
    manifest = json.loads((gappy / "manifest.json").read_text())
    manifest["splits"]["val"]["videos"] = 4
    manifest["splits"]["val"]["shards"][0]["videos"] = 4
    shutil.copytree(gappy, tmp_path / "counted")
    (tmp_path / "counted" / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(InferError, match="holds 3 samples but the manifest says 4"):
        split_videos(tmp_path / "counted", "val")
