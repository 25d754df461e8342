"""Bad input (issue 20, section 2): one clear error of the stage's type, never a traceback or
a hang. Shards made by hand here are written with webdataset's own TarWriter."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import shutil
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
import webdataset as wds
from convrnn_video.infer.config import EvaluateConfig, ShowConfig
from convrnn_video.infer.errors import InferError
from convrnn_video.infer.evaluate import run_evaluate
from convrnn_video.infer.show import parse_video, run_show
from convrnn_video.runtime.checkpoint import (
    cuda_state_for_device,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from convrnn_video.runtime.runs import new_run_dir
from convrnn_video.shards.errors import ShardError
from convrnn_video.shards.format import TAR_MTIME, sample_meta, video_id
from convrnn_video.shards.loader import make_loader
from convrnn_video.shards.manifest import read_manifest, write_manifest
from convrnn_video.train.config import TrainConfig
from convrnn_video.train.errors import TrainError
from convrnn_video.train.loop import run_training
from infer_helpers import run_cli, tiny_checkpoint
from PIL import Image
from typer.testing import CliRunner

from convrnn_video.cli import app

FRAMES, SIZE = 3, 8  # hand-made videos: 3 grayscale frames of 8x8


def png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def npy(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array)
    return buf.getvalue()


def video(key: str, **members: bytes) -> dict[str, bytes | str]:
    """One good sample of FRAMES 8x8 grayscale frames and a mask; `members` replace some
    (e.g. `**{"mask.npy": ...}`)."""
    rng = np.random.default_rng(video_id(key))
    sample: dict[str, bytes | str] = {"__key__": key}
    for t in range(FRAMES):
        sample[f"f{t:02d}.png"] = png(rng.integers(0, 256, (SIZE, SIZE), dtype=np.uint8))
    sample["mask.npy"] = npy(rng.integers(0, 49, (FRAMES, SIZE, SIZE), dtype=np.uint8))
    sample["json"] = sample_meta("val", key, FRAMES, SIZE, SIZE)
    sample.update(members)
    return sample


def hand_shards(root: Path, samples: list[dict], name: str = "val-000000.tar") -> Path:
    """A val split of `samples` in one tar written by webdataset's TarWriter, and its manifest
    (what a hand-made or old shard folder looks like to the loader)."""
    root.mkdir(parents=True)
    tar = root / name
    with wds.TarWriter(str(tar), mtime=TAR_MTIME) as sink:
        for sample in samples:
            sink.write(sample)
    ids = [video_id(s["__key__"]) for s in samples]
    shard = {"name": name, "videos": len(samples), "bytes": tar.stat().st_size,
             "sha256": hashlib.sha256(tar.read_bytes()).hexdigest(),
             "first_id": ids[0], "last_id": ids[-1]}  # fmt: skip
    entry = {"videos": len(samples), "frames": FRAMES, "height": SIZE, "width": SIZE,
             "channels": 1, "masks": True, "shards": [shard]}  # fmt: skip
    manifest = {"format": "convrnn-video-shards", "version": 1, "layout": "free",
                "source": "by hand", "splits": {"val": entry}, "skipped": [],
                "ignored": []}  # fmt: skip
    write_manifest(root, manifest)
    return root


def read_all(root: Path, **kwargs) -> list[dict]:
    args = {"mode": "eval", "batch_size": 2, "frames_in": 1, "frames_out": FRAMES - 1, **kwargs}
    return list(make_loader(root, "val", **args))


def one_error_line(result) -> str:
    """The single `error:` line of a CliRunner result that failed cleanly."""
    assert result.exit_code == 1, result.output
    assert not isinstance(result.exception, Exception), repr(result.exception)  # a clean exit
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    return lines[0]


# --- show: video ids -----------------------------------------------------------------------


def test_show_refuses_a_video_id_of_non_ascii_digits(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["show", "--videos", "²", "--preds", str(tmp_path / "p.zarr"), "--shards", "x"]
    )
    assert "'²'" in one_error_line(result)
    for name in ("video_²", "٣", "video_٣", "video_-3", "1e3"):  # ٣: int() reads it as 3
        with pytest.raises(InferError, match="not a video name"):
            run_show(ShowConfig(videos=[name], preds=str(tmp_path / "p.zarr")))
    assert parse_video(" video_0012 ") == 12
    with pytest.raises(ValueError, match="not a video key"):
        video_id("video_٣")  # the shard format's keys are ASCII too


# --- evaluate --device cuda ----------------------------------------------------------------


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_evaluate_on_cuda_without_cuda_is_one_line(tmp_path: Path) -> None:
    cfg = EvaluateConfig(preds=str(tmp_path / "p.zarr"), out=str(tmp_path / "r.json"))
    with pytest.raises(InferError, match="--device cuda was asked for but CUDA is not avail"):
        run_evaluate(dataclasses.replace(cfg, device="cuda"))
    result = CliRunner().invoke(app, ["evaluate", "--preds", cfg.preds, "--device", "cuda:1"])
    assert "CUDA is not available" in one_error_line(result)


# --- train --init-from a checkpoint of another shape -----------------------------------------


def test_init_from_a_checkpoint_of_another_shape(shard_root: Path, tmp_path: Path) -> None:
    ckpt = tiny_checkpoint(tmp_path / "t44.pt", frames_in=4, frames_out=4)
    cfg = TrainConfig(shards=str(shard_root), out=str(tmp_path / "run"), preset="tiny",
                      batch_size=2, samples_per_epoch=2, max_steps=1, val_split="",
                      progress=False, threads=1, init_from=str(ckpt))  # fmt: skip
    with pytest.raises(TrainError, match=r"reads 4 frames and predicts 4.*--frames-in 10"):
        run_training(dataclasses.replace(cfg, frames_in=10, frames_out=10))
    assert not (tmp_path / "run").exists()  # refused before the run folder
    # weights that do not fit the model their checkpoint describes
    payload = load_checkpoint(ckpt)
    payload["model_config"]["hidden"] = [c * 2 for c in payload["model_config"]["hidden"]]
    save_checkpoint(tmp_path / "wide.pt", payload)
    with pytest.raises(TrainError, match="wide.pt.*do not fit"):
        run_training(dataclasses.replace(cfg, init_from=str(tmp_path / "wide.pt")))
    assert not (tmp_path / "run").exists()


# --- masks of the wrong dtype, shape or classes --------------------------------------------


@pytest.mark.parametrize(
    "mask,words",
    [
        (np.zeros((FRAMES, SIZE, SIZE), np.int64), "dtype int64, expected uint8"),
        (np.zeros((FRAMES - 1, SIZE, SIZE), np.uint8), "shape (2, 8, 8), expected (3, 8, 8)"),
        (np.full((FRAMES, SIZE, SIZE), 60, np.uint8), "value 60 > 48"),
        (np.zeros((FRAMES, SIZE), np.uint8), "shape (3, 8), expected (3, 8, 8)"),
    ],
)
def test_a_bad_mask_names_shard_and_video(tmp_path: Path, mask: np.ndarray, words: str) -> None:
    bad = video("video_2", **{"mask.npy": npy(mask)})
    root = hand_shards(tmp_path / "s", [video("video_1"), bad])
    assert len(read_all(root)) == 1  # without masks the frames are fine
    with pytest.raises(ShardError) as info:
        read_all(root, masks=True)
    for word in ("val-000000.tar", "video_2", "mask", words):
        assert word in str(info.value)
    kept = read_all(root, masks=True, on_error="skip")
    assert [k for b in kept for k in b["keys"]] == ["video_1"]


@pytest.mark.slow
def test_a_bad_mask_is_one_line_from_the_cli(tmp_path: Path) -> None:
    bad = npy(np.full((FRAMES, SIZE, SIZE), 60, np.uint8))
    root = hand_shards(tmp_path / "s", [video("video_1"), video("video_2", **{"mask.npy": bad})],
                       name="train-000000.tar")  # fmt: skip
    manifest = json.loads((root / "manifest.json").read_text())
    manifest["splits"]["train"] = manifest["splits"].pop("val")
    write_manifest(root, manifest)
    proc = run_cli("train", "--task", "segment", "--shards", str(root), "--out",
                   str(tmp_path / "run"), "--preset", "tiny", "--batch-size", "2", "--crop", "8",
                   "8", "--val-split", "", "--max-steps", "1", "--threads", "1", "--no-progress",
                   cwd=tmp_path, check=False)  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "video_2" in lines[0] and "value 60 > 48" in lines[0]


# --- manifests naming files outside the shard folder ---------------------------------------


@pytest.mark.parametrize("where", ["dotdot", "absolute", "subfolder"])
def test_shard_names_outside_the_folder_are_refused(tmp_path: Path, where: str) -> None:
    root = hand_shards(tmp_path / "s", [video("video_1"), video("video_2")])
    outside = tmp_path / "outside" / "val-000000.tar"
    outside.parent.mkdir()
    shutil.move(root / "val-000000.tar", outside)
    name = {"dotdot": "../outside/val-000000.tar", "absolute": str(outside),
            "subfolder": "outside/val-000000.tar"}[where]  # fmt: skip
    manifest = json.loads((root / "manifest.json").read_text())
    manifest["splits"]["val"]["shards"][0]["name"] = name
    write_manifest(root, manifest)
    with pytest.raises(ShardError, match="bad manifest .*manifest.json.*not a file name"):
        read_all(root)
    with pytest.raises(ShardError, match=str(root / "manifest.json")):
        read_manifest(root)
    line = one_error_line(CliRunner().invoke(app, ["shards-info", str(root)]))
    assert str(root / "manifest.json") in line and repr(name) in line


# --- PNG bombs -----------------------------------------------------------------------------


def png_header_only(width: int, height: int) -> bytes:
    """A grayscale PNG whose header claims width x height, with a few bytes of pixel data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    pixels = zlib.compress(b"\0" * 1024)
    chunks = chunk(b"IHDR", ihdr) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + chunks


@pytest.mark.parametrize("side", [100_000, 9_000])  # over PIL's bomb limit, and under it
def test_a_png_bomb_is_refused_from_its_header(tmp_path: Path, side: int) -> None:
    bomb = png_header_only(side, side)
    root = hand_shards(tmp_path / "s", [video("video_1", **{"f01.png": bomb}), video("video_2")])
    with pytest.raises(ShardError) as info:
        read_all(root)
    text = str(info.value)
    for word in ("val-000000.tar", "video_1", "f01.png", f"{side}x{side} in its header"):
        assert word in text, text
    assert [k for b in read_all(root, on_error="skip") for k in b["keys"]] == ["video_2"]


def test_a_frame_that_is_not_a_png_says_so(tmp_path: Path) -> None:
    root = hand_shards(tmp_path / "s", [video("video_1", **{"f02.png": b"GIF89a...."})])
    with pytest.raises(ShardError, match="video_1: f02.png does not decode.*not a PNG"):
        read_all(root)


# --- run folders picked in the same second -------------------------------------------------


def test_run_folders_picked_in_the_same_second_are_distinct(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    picked = [new_run_dir(root) for _ in range(3)]  # well within one or two seconds
    assert len(set(picked)) == 3
    assert all(p.is_dir() and not any(p.iterdir()) for p in picked)  # made when picked


# --- CUDA RNG states of another number of GPUs ---------------------------------------------


def test_cuda_rng_state_is_the_current_devices_and_old_lists_restore() -> None:
    saved = rng_state()["cuda"]
    assert saved is None if not torch.cuda.is_available() else isinstance(saved, torch.Tensor)
    states = [torch.full((16,), i, dtype=torch.uint8) for i in range(4)]  # 4 GPUs saved
    assert torch.equal(cuda_state_for_device(states, 1), states[1])
    assert cuda_state_for_device(states, 5) is None  # that GPU is not in the saved list
    assert cuda_state_for_device(states[2], 0) is states[2]  # this format: one state
    assert cuda_state_for_device(None, 0) is None and cuda_state_for_device([], 0) is None
    # an older checkpoint with 8 GPUs' states restores here (CPU or fewer GPUs)
    torch.manual_seed(3)
    state = {**rng_state(), "cuda": [torch.zeros(16, dtype=torch.uint8)] * 8}
    expected = torch.rand(2)
    set_rng_state(state)
    assert torch.equal(torch.rand(2), expected)
