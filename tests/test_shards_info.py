"""shards-info: counts from the manifest; --verify finds a corrupted shard or sample."""

from __future__ import annotations

import shutil
from pathlib import Path

from typer.testing import CliRunner

from cli import app
from shards.info import summarize, verify


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
