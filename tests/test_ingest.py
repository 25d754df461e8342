"""ingest: videos -> shards and back; litter; existing outputs; atomic resume (bad input:
test_ingest_bad.py).

The videos are generated (`ingest.synth`) and the litter is made here, so every test runs in a
fresh clone; the real samples beside the repository, when present, run the round trips again.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from convrnn_video.ingest.errors import IngestError
from convrnn_video.ingest.staging import STAGING
from convrnn_video.shards.format import member_suffixes
from convrnn_video.shards.loader import make_loader
from faults import run_faulted
from ingest_helpers import copy_tree, final_shards, ingest, link_video
from PIL import Image

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def dataset_shards(dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("shards") / "shards"
    ingest(dataset, out, videos_per_shard=2)
    return out


def test_roundtrip_matches_pil_decode_in_numeric_order(dataset: Path, dataset_shards: Path):
    manifest = json.loads((dataset_shards / "manifest.json").read_text())
    assert {s: e["videos"] for s, e in manifest["splits"].items()} == {
        "train": 4,
        "val": 3,
        "unlabeled": 3,
    }
    assert manifest["source"] == str(dataset.resolve())
    for split in ("train", "val", "unlabeled"):
        entry = manifest["splits"][split]
        seen = []
        loader = make_loader(
            dataset_shards, split, mode="eval", batch_size=3, masks=split != "unlabeled"
        )
        for batch in loader:
            assert batch["inputs"].dtype == torch.float32 == batch["targets"].dtype
            frames = np.concatenate([batch["inputs"].numpy(), batch["targets"].numpy()], axis=1)
            for i, key in enumerate(batch["keys"]):
                folder = dataset / split / key
                ref = np.stack(
                    [np.asarray(Image.open(folder / f"image_{t}.png")) for t in range(22)]
                )
                got = np.rint(frames[i].transpose(0, 2, 3, 1) * 255).astype(np.uint8)
                np.testing.assert_array_equal(got, ref)
                if batch["masks"] is not None:
                    np.testing.assert_array_equal(
                        batch["masks"][i].numpy(), np.load(folder / "mask.npy")
                    )
            seen += batch["ids"]
        assert seen == sorted(seen) and len(seen) == entry["videos"]
    assert [s["first_id"] for s in manifest["splits"]["train"]["shards"]] == [0, 2]
    assert manifest["splits"]["train"]["shards"][-1]["last_id"] == 10


def test_tar_members_are_original_bytes_in_contract_order(dataset: Path, dataset_shards: Path):
    with tarfile.open(dataset_shards / "train-000000.tar") as tar:
        names = tar.getnames()
        members = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}
        infos = tar.getmembers()
    expected = [f"{key}.{s}" for key in ("video_0", "video_1") for s in member_suffixes(22, True)]
    assert names == expected
    assert members["video_0.f13.png"] == (dataset / "train/video_0/image_13.png").read_bytes()
    assert members["video_1.mask.npy"] == (dataset / "train/video_1/mask.npy").read_bytes()
    meta = json.loads(members["video_1.json"])
    assert meta == {
        "split": "train",
        "video": "video_1",
        "id": 1,
        "frames": 22,
        "height": 160,
        "width": 240,
    }
    assert {(m.mtime, m.uid, m.gid, m.uname, m.gname) for m in infos} == {(946684800, 0, 0, "", "")}


def test_litter_is_ignored_and_listed(dataset_shards: Path):
    ignored = json.loads((dataset_shards / "manifest.json").read_text())["ignored"]
    for litter in (
        "__MACOSX",
        "README.md",
        "train/.DS_Store",
        "train/video_0/.DS_Store",
        "train/video_0/image_3 copy.png",
        "val/notes.txt",
    ):
        assert litter in ignored
    assert not (dataset_shards / STAGING).exists()


def test_same_input_gives_identical_bytes(dataset: Path, dataset_shards: Path, tmp_path: Path):
    again = tmp_path / "again"
    ingest(dataset, again, videos_per_shard=2, workers=2)
    names = final_shards(dataset_shards)
    assert names == final_shards(again) and len(names) == 6
    for name in [*names, "manifest.json"]:
        assert (again / name).read_bytes() == (dataset_shards / name).read_bytes(), name


def test_existing_output_needs_overwrite_and_foreign_files_survive(dataset: Path, tmp_path: Path):
    out = tmp_path / "shards"  # like the repo's shards/ package folder: .py files, no manifest
    out.mkdir()
    (out / "__init__.py").write_text("# package\n")
    (out / "loader.py").write_text("# code\n")
    ingest(dataset, out, videos_per_shard=1)
    assert "train-000003.tar" in final_shards(out)
    with pytest.raises(IngestError, match="--overwrite"):
        ingest(dataset, out, videos_per_shard=2)
    manifest = ingest(dataset, out, videos_per_shard=2, overwrite=True)
    listed = sorted(s["name"] for e in manifest["splits"].values() for s in e["shards"])
    assert final_shards(out) == listed  # the old train-000002/3.tar are gone
    assert (out / "__init__.py").read_text() == "# package\n"
    assert (out / "loader.py").read_text() == "# code\n"
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [*listed, "manifest.json", "__init__.py", "loader.py"]
    )


@pytest.mark.slow
def test_killed_ingest_publishes_nothing_and_a_rerun_completes_it(
    synth_samples: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    data = tmp_path / "data"
    for n in range(12):  # 12 videos, 6 shards
        link_video(synth_samples / "train" / f"video_{n % 3}", data / "train" / f"video_{n}")
    out = tmp_path / "out"
    # SIGKILL right after the fourth shard's tar is staged, before its record (which marks a
    # shard finished): three shards are done, the fourth must be written again
    args = ["ingest", data, "--out", out, "--workers", "1", "--videos-per-shard", "2"]
    killed = run_faulted(args, "os:replace", 4, match=f"*/{STAGING}/*.tar", cwd=REPO,
                         capture_output=True, text=True)  # fmt: skip
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    staged = len(list((out / STAGING).glob("*.json")))
    assert staged == 3 and len(list((out / STAGING).glob("*.tar"))) == 4
    assert not (out / "manifest.json").exists()
    assert final_shards(out) == []

    with caplog.at_level(logging.INFO, logger="convrnn_video.ingest.pack"):
        ingest(data, out, videos_per_shard=2)
    assert f"resuming: {staged} of 6 shards already staged" in caplog.text
    clean = tmp_path / "clean"
    ingest(data, clean, videos_per_shard=2, workers=2)
    names = final_shards(clean)
    assert len(names) == 6 and final_shards(out) == names
    for name in [*names, "manifest.json"]:
        assert (out / name).read_bytes() == (clean / name).read_bytes(), name
    assert not (out / STAGING).exists()


def test_output_defaults_beside_the_input_and_other_data_is_not_overwritten(
    dataset: Path, tmp_path: Path
):
    from typer.testing import CliRunner

    from convrnn_video.cli import app

    data = copy_tree(dataset / "val", tmp_path / "data" / "val").parent
    other = copy_tree(dataset / "train", tmp_path / "other" / "train").parent
    work = tmp_path / "work"  # the working folder: nothing may land in work/data/shards
    work.mkdir()
    runner = CliRunner()
    previous = os.getcwd()
    os.chdir(work)
    try:
        result = runner.invoke(app, ["ingest", str(data), "--workers", "1"])
        assert result.exit_code == 0, result.output
        assert f"wrote {data / 'shards' / 'manifest.json'}" in result.output
        assert list(work.iterdir()) == []
        result = runner.invoke(app, ["ingest", str(data), "--workers", "1"])  # the same data
        assert result.exit_code == 1 and "pass --overwrite to replace them" in result.output
        result = runner.invoke(app, ["ingest", str(other), "--out", str(data / "shards")])
    finally:
        os.chdir(previous)
    assert result.exit_code == 1
    (line,) = result.output.strip().splitlines()
    assert f"holds the shards of another dataset ({data.resolve()})" in line
    assert "--overwrite" not in line and f"--out {other / 'shards'}" in line
    assert json.loads((data / "shards" / "manifest.json").read_text())["splits"].keys() == {"val"}
