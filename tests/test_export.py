"""infer.export: PNG folders from a predicted store; pixels equal the store."""

from __future__ import annotations

from pathlib import Path
from unittest.mock import ANY

import numpy as np
import pytest
from convrnn_video.infer.config import ExportConfig, PredictConfig
from convrnn_video.infer.errors import InferError
from convrnn_video.infer.export import run_export
from convrnn_video.infer.predict import run_predict
from convrnn_video.stores.predictions import PredStore
from infer_helpers import run_cli, tiny_checkpoint
from PIL import Image


@pytest.fixture(scope="module")
def store(shard_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("export")
    ckpt = tiny_checkpoint(tmp / "best.pt")
    out = tmp / "preds.zarr"
    run_predict(PredictConfig(shards=str(shard_root), ckpt=str(ckpt), out=str(out), progress=False))
    return out


def export(store: Path, out: Path, **kw) -> dict:
    return run_export(ExportConfig(preds=str(store), out=str(out), progress=False, **kw))


def test_last_frame_pixels_equal_store(store: Path, tmp_path: Path) -> None:
    summary = export(store, tmp_path / "png")
    preds = PredStore.open(store)
    assert summary == {**summary, "videos": 4, "files": 4, "frames": ["image_21.png"]}
    for vid, frames in zip(preds.ids(), preds.frames[:], strict=True):
        files = sorted(p.name for p in (tmp_path / "png" / f"video_{vid}").iterdir())
        assert files == ["image_21.png"]
        img = Image.open(tmp_path / "png" / f"video_{vid}" / "image_21.png")
        assert img.mode == "RGB" and img.size == (240, 160)
        assert np.array_equal(np.asarray(img), frames[-1])


def test_all_frames_and_overwrite(store: Path, tmp_path: Path) -> None:
    out = tmp_path / "png"
    summary = export(store, out, frames="all", workers=2)
    assert summary["files"] == 44
    names = {p.name for p in (out / "video_15001").iterdir()}
    assert names == {f"image_{t}.png" for t in range(11, 22)}
    preds = PredStore.open(store)
    img = np.asarray(Image.open(out / "video_15001" / "image_11.png"))
    assert np.array_equal(img, preds.frames[1, 0])
    # the same store again: its files are kept, none rewritten; --overwrite rewrites them
    assert export(store, out, frames="all") == {**summary, "files": 0, "kept": 44,
                                                "seconds": ANY}  # fmt: skip
    assert export(store, out, frames="all", overwrite=True)["files"] == 44
    assert not list(out.rglob("*.tmp"))
    # PNGs of unknown origin (no record of the store that wrote them) are not written over
    (out / ".export-source.json").unlink()
    with pytest.raises(InferError, match="44 PNG file.*--overwrite"):
        export(store, out, frames="all")


def test_incomplete_store_refused_unless_partial(store: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "copy.zarr"
    shutil.copytree(store, copy)
    PredStore.open(copy, "r+").done[2] = False
    with pytest.raises(InferError, match="1 of 4 videos are not predicted"):
        export(copy, tmp_path / "png")
    summary = export(copy, tmp_path / "png", partial=True)
    assert summary["videos"] == 3 and not (tmp_path / "png" / "video_15002").exists()


def test_cli_export_defaults(store: Path, tmp_path: Path) -> None:
    import shutil

    shutil.copytree(store, tmp_path / "preds.zarr")
    proc = run_cli("export-png", "--no-progress", cwd=tmp_path)
    assert "wrote 4 PNG files for 4 videos" in proc.stdout
    assert (tmp_path / "predictions" / "video_15003" / "image_21.png").is_file()
    again = run_cli("export-png", "--no-progress", "--frames", "all", cwd=tmp_path)
    assert "wrote 40 PNG files for 4 videos" in again.stdout and "4 already there" in again.stdout
    shutil.copytree(store, tmp_path / "other.zarr")  # a copy: another store to the CLI
    other = run_cli("export-png", "--preds", "other.zarr", cwd=tmp_path, check=False)
    assert other.returncode == 1 and "holds the export of" in other.stderr
    assert "--overwrite" in other.stderr
    missing = run_cli(
        "export-png", "--preds", str(tmp_path / "nope.zarr"), cwd=tmp_path, check=False
    )
    assert missing.returncode == 1 and "no prediction store" in missing.stderr


def test_mask_pngs(mask_stores: dict[str, Path], tmp_path: Path) -> None:
    from convrnn_video.infer.palette import PALETTE

    out = tmp_path / "png"
    summary = export(mask_stores["hidden"], out, masks=True)
    assert summary["files"] == 8 and summary["frames"] == ["image_21.png", "mask_21.png"]
    preds = PredStore.open(mask_stores["hidden"])
    for vid, frames, masks in zip(preds.ids(), preds.frames[:], preds.masks[:], strict=True):
        assert sorted(p.name for p in (out / f"video_{vid}").iterdir()) == [
            "image_21.png",
            "mask_21.png",
        ]
        img = Image.open(out / f"video_{vid}" / "mask_21.png")
        assert img.mode == "P" and img.size == (240, 160)
        assert np.array_equal(np.asarray(img), masks[-1])  # the class ids themselves
        assert np.array_equal(np.asarray(img.convert("RGB")), PALETTE[masks[-1]])
        image = np.asarray(Image.open(out / f"video_{vid}" / "image_21.png"))
        assert np.array_equal(image, frames[-1])
    every = export(mask_stores["hidden"], tmp_path / "all", masks=True, frames="all")
    assert every["files"] == 4 * 22
    # another model's masks beside these frames: refused though no file name collides
    with pytest.raises(InferError, match="holds the export of .*hidden.zarr"):
        export(mask_stores["val"], out, masks=True, frames="all")


def test_masks_of_a_store_without_them(store: Path, tmp_path: Path) -> None:
    with pytest.raises(InferError, match="holds no masks to export.*--segmenter SEG.pt"):
        export(store, tmp_path / "png", masks=True)
    assert not (tmp_path / "png").exists()


class Killed(Exception):
    """The fault injected into an export: the process dies while encoding a PNG."""


def test_export_killed_after_n_pngs_leaves_only_whole_ones(
    store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import io
    import threading

    save, lock, calls = Image.Image.save, threading.Lock(), [0]

    def dying_save(self, fp, *args, **kw):  # the 6th PNG and later: half a file, then death
        with lock:
            calls[0] += 1
            n = calls[0]
        if n <= 5:
            return save(self, fp, *args, **kw)
        buf = io.BytesIO()
        save(self, buf, *args, **kw)
        Path(fp).write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
        raise Killed

    out = tmp_path / "png"
    monkeypatch.setattr(Image.Image, "save", dying_save)
    with pytest.raises(Killed):
        export(store, out, frames="all", workers=2)
    monkeypatch.undo()
    preds = PredStore.open(store)
    whole = sorted(out.rglob("*.png"))
    assert len(whole) == 5 and list(out.rglob("*.tmp"))  # the half files kept their .tmp name
    for png in whole:
        t = int(png.stem.removeprefix("image_")) - 11
        p = int(preds.positions([int(png.parent.name.removeprefix("video_"))])[0])
        assert np.array_equal(np.asarray(Image.open(png)), preds.frames[p, t])
    # the rerun finishes the export: the 39 PNGs not written, the 5 whole ones kept
    assert export(store, out, frames="all")["files"] == 39
    assert len(list(out.rglob("*.png"))) == 44
    for png in out.rglob("*.png"):
        t = int(png.stem.removeprefix("image_")) - 11
        p = int(preds.positions([int(png.parent.name.removeprefix("video_"))])[0])
        assert np.array_equal(np.asarray(Image.open(png)), preds.frames[p, t])
