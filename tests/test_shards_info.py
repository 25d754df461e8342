"""shards-info: counts from the manifest; --verify (webdataset's reader) finds a corrupted
shard or sample; webdataset reads our shards as our own reader does."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import rewrite_tar, shards_url
from convrnn_video.shards.format import video_id
from convrnn_video.shards.info import summarize, verify
from convrnn_video.shards.manifest import read_manifest
from convrnn_video.shards.reader import read_shard, split_shards
from typer.testing import CliRunner

from convrnn_video.cli import app


def test_summary_counts(shard_root: Path):
    info = summarize(shard_root)
    assert {s: e["videos"] for s, e in info["splits"].items()} == {
        "train": 6,
        "val": 4,
        "unlabeled": 6,
        "hidden": 4,
    }
    assert info["splits"]["hidden"]["frames"] == 11 and info["splits"]["val"]["masks"]
    assert all(e["bytes"] > 0 and e["shards"] >= 1 for e in info["splits"].values())


def test_verify_passes_clean_shards(shard_root: Path):
    report = verify(shard_root)
    assert report == {"shards": 4, "samples": 20, "problems": [], "ok": True}
    result = CliRunner().invoke(app, ["shards-info", str(shard_root), "--verify"])
    assert result.exit_code == 0, result.output
    assert "verified 4 shards, 20 samples: ok" in result.output


def test_verify_names_the_bad_shard_and_sample(shard_root: Path, tmp_path: Path):
    root = Path(shutil.copytree(shard_root, tmp_path / "copy"))
    tar = root / "train-000000.tar"
    data = bytearray(tar.read_bytes())
    start = data.index(b"IDAT", data.index(b"video_3.f04.png")) + 8  # inside frame 4's pixels
    data[start : start + 64] = bytes(64)
    tar.write_bytes(bytes(data))
    report = verify(root)
    assert not report["ok"]
    text = "\n".join(report["problems"])
    assert "train-000000.tar" in text and "sha256" in text and "video_3" in text
    result = CliRunner().invoke(app, ["shards-info", str(root), "--verify"])
    assert result.exit_code == 1
    assert "FAILED" in result.output and "video_3" in result.output


def test_cli_summary_and_missing_manifest(shard_root: Path, tmp_path: Path):
    result = CliRunner().invoke(app, ["shards-info", str(shard_root)])
    assert result.exit_code == 0, result.output
    assert "hidden" in result.output and "skipped at ingest: 0" in result.output
    result = CliRunner().invoke(app, ["shards-info", str(tmp_path)])
    assert result.exit_code == 1 and "no manifest" in result.output


def test_webdataset_yields_what_our_reader_yields(shard_root: Path):
    import webdataset as wds

    manifest = read_manifest(shard_root)
    refs = [
        ref for split in manifest["splits"] for ref in split_shards(shard_root, manifest, split)
    ]
    ours = [
        (sample["__key__"], [(k, v) for k, v in sample.items() if not k.startswith("__")])
        for ref in refs
        for sample in read_shard(ref)
    ]
    theirs = [
        (sample["__key__"], [(k, v) for k, v in sample.items() if not k.startswith("__")])
        for sample in wds.WebDataset([ref.url for ref in refs], shardshuffle=False)
    ]
    assert len(ours) == 20 and [k for k, _ in theirs] == [k for k, _ in ours]
    assert theirs == ours  # the same members, in the same order, with the same bytes
    hidden = [
        video_id(s["__key__"])
        for r in split_shards(shard_root, manifest, "hidden")
        for s in read_shard(r)
    ]
    assert hidden == [15000, 15001, 15002, 15003]


@pytest.mark.parametrize("scheme", ["memory", "file"])
def test_verify_reads_fsspec_urls(shard_root: Path, scheme: str):
    url = shards_url(shard_root, scheme, "verify-test")
    assert verify(url) == {"shards": 4, "samples": 20, "problems": [], "ok": True}


def test_verify_checks_members_counts_and_truncation(shard_root: Path, tmp_path: Path):
    root = Path(shutil.copytree(shard_root, tmp_path / "copy"))

    def damage(members):  # val: a frame missing, a stray member, the last sample gone
        kept = [(n, d) for n, d in members if n not in ("video_1001.f05.png",)]
        kept = [(n, d) for n, d in kept if not n.startswith("video_1003.")]
        at = next(i for i, (n, _) in enumerate(kept) if n == "video_1002.json")
        return [*kept[:at], ("video_1002.txt", b"litter"), *kept[at:]]

    rewrite_tar(root / "val-000000.tar", damage)
    hidden = root / "hidden-000000.tar"
    hidden.write_bytes(hidden.read_bytes()[: hidden.stat().st_size // 2])
    report = verify(root)
    assert not report["ok"]
    val, cut = str(root / "val-000000.tar"), str(hidden)
    expected = [
        f"shard {val}: sample video_1001 has 21 of 22 frames, missing f05.png",
        f"shard {val}: sample video_1002 has 22 of 22 frames, unexpected txt",
        f"shard {val} holds 3 samples but the manifest says 4",
        f"shard {val} holds ids 1000..1002; the manifest says (1000, 1003)",
        f"shard {cut} cannot be read in sample video_1500",
    ]
    for line in expected:
        assert any(p.startswith(line) for p in report["problems"]), (line, report["problems"])
    assert sum("sha256" in p for p in report["problems"]) == 2
