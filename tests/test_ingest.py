"""ingest: videos -> shards and back; litter; every kind of bad input; atomic resume.

The videos are generated (`ingest.synth`) and the litter is made here, so every test runs in a
fresh clone; the real samples beside the repository, when present, run the round trips again.
"""

from __future__ import annotations

import io
import json
import logging
import os
import pickle
import signal
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from convrnn_video.ingest.errors import IngestError
from convrnn_video.ingest.pack import IngestConfig, run_ingest
from convrnn_video.ingest.staging import STAGING
from convrnn_video.shards.format import SHARD_RE, member_suffixes
from convrnn_video.shards.loader import make_loader
from faults import run_faulted
from PIL import Image

REPO = Path(__file__).resolve().parents[1]


def copy_tree(src: Path, dst: Path) -> Path:
    """Copy a data tree with writable files (the shared samples are read-only)."""
    for path in sorted(src.rglob("*")):
        target = dst / path.relative_to(src)
        if path.is_dir():
            target.mkdir(parents=True, exist_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(path.read_bytes())
    return dst


def link_video(src: Path, dst: Path) -> None:
    """A new video folder whose files are hard links to `src`'s (cheap extra videos)."""
    dst.mkdir(parents=True)
    for f in src.iterdir():
        os.link(f, dst / f.name)


def final_shards(out: Path) -> list[str]:
    return (
        sorted(p.name for p in out.iterdir() if SHARD_RE.fullmatch(p.name)) if out.exists() else []
    )


def ingest(data: Path, out: Path, **kw) -> dict:
    kw.setdefault("workers", 1)
    return run_ingest(IngestConfig(data_root=data, out=out, progress=False, **kw))


SAMPLE_VIDEOS = {
    "train": ("video_0", "video_1", "video_2"),
    "val": ("video_1000", "video_1001", "video_1002"),
    "unlabeled": ("video_2000", "video_2001", "video_2002"),
}


@pytest.fixture(scope="module")
def synth_samples(synth_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Nine generated videos shaped like the real samples (three each of train, val,
    unlabeled), with the litter of a real download: a README and a .DS_Store."""
    data = tmp_path_factory.mktemp("samples") / "data"
    for split, videos in SAMPLE_VIDEOS.items():
        for video in videos:
            copy_tree(synth_root / split / video, data / split / video)
    (data / "README.md").write_text("# nine sample videos\n")
    (data / "train" / ".DS_Store").write_bytes(bytes(range(256)) * 24)
    return data


@pytest.fixture(scope="module", params=["synth", "real"])
def samples(request: pytest.FixtureRequest) -> Path:
    """The generated samples, then the real ones (skipped when they are absent)."""
    return request.getfixturevalue("synth_samples" if request.param == "synth" else "real_samples")


@pytest.fixture(scope="module")
def dataset(samples: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The samples plus more litter and a video_10 (to check numeric order)."""
    data = copy_tree(samples, tmp_path_factory.mktemp("data") / "data")
    (data / "__MACOSX" / "train").mkdir(parents=True)
    (data / "__MACOSX" / "train" / "._video_0").write_bytes(b"junk")
    (data / "train" / "video_0" / ".DS_Store").write_bytes(b"junk")
    (data / "train" / "video_0" / "image_3 copy.png").write_bytes(b"junk")
    (data / "val" / "notes.txt").write_text("stray")
    link_video(data / "train" / "video_1", data / "train" / "video_10")
    return data


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
