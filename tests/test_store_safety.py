"""stores.group.claim_store through predict and label: a location that is not our store of that
kind (a user's folder, a bucket prefix holding objects, a Zarr group we did not write, the other
kind of store) is refused with or without --overwrite, and left exactly as it was."""

from __future__ import annotations

from pathlib import Path

import fsspec
import numpy as np
import pytest
import zarr
from convrnn_video.infer.config import LabelConfig, PredictConfig
from convrnn_video.infer.labels import run_label
from convrnn_video.infer.predict import run_predict
from convrnn_video.stores.errors import StoreError
from convrnn_video.stores.group import KIND
from convrnn_video.stores.labels import prepare_labels
from convrnn_video.stores.predictions import PredStore, prepare_store
from infer_helpers import run_cli, tiny_checkpoint, tiny_segmenter


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("safety")
    return {"ckpt": tiny_checkpoint(tmp / "best.pt"), "seg": tiny_segmenter(tmp / "seg.pt")}


def predict(shards: Path, ckpt: Path, out, **kw) -> dict:
    return run_predict(PredictConfig(shards=str(shards), ckpt=str(ckpt), out=str(out),
                                     split="val", progress=False, **kw))  # fmt: skip


def label(shards: Path, seg: Path, out, **kw) -> dict:
    return run_label(LabelConfig(shards=str(shards), segmenter=str(seg), out=str(out),
                                 split="val", progress=False, **kw))  # fmt: skip


def tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.mark.parametrize("overwrite", [False, True])
def test_local_folders_not_ours_are_refused_untouched(
    shard_root: Path, ckpts: dict[str, Path], tmp_path: Path, overwrite: bool
) -> None:
    user = tmp_path / "results"
    user.mkdir()
    (user / "thesis.txt").write_text("three years of work")
    theirs = tmp_path / "their.zarr"  # a Zarr group with data that no run of ours wrote
    zarr.open_group(theirs, mode="w").create_array("x", shape=(3,), dtype="int8")[:] = [1, 2, 3]
    before = {"user": tree(user), "theirs": tree(theirs)}
    for out in (user, theirs):
        with pytest.raises(StoreError, match="is not empty and is not a predictions store"):
            predict(shard_root, ckpts["ckpt"], out, overwrite=overwrite)
        with pytest.raises(StoreError, match="is not empty and is not a labels store"):
            label(shard_root, ckpts["seg"], out, overwrite=overwrite)
    assert tree(user) == before["user"] and tree(theirs) == before["theirs"]


def test_bucket_prefix_with_objects_is_refused_untouched(
    shard_root: Path, ckpts: dict[str, Path]
) -> None:
    fs = fsspec.filesystem("memory")
    fs.pipe("/safety-bucket/project/raw/video_0.mp4", b"not ours")
    fs.pipe("/safety-bucket/project/notes.txt", b"mine")
    before = {p: fs.cat(p) for p in fs.find("/safety-bucket")}
    for overwrite in (False, True):
        for out in ("memory://safety-bucket/project", "memory://safety-bucket"):  # + a parent
            with pytest.raises(StoreError, match="is not empty.*left as it is"):
                predict(shard_root, ckpts["ckpt"], out, overwrite=overwrite)
            with pytest.raises(StoreError, match="is not empty.*left as it is"):
                label(shard_root, ckpts["seg"], out, overwrite=overwrite)
    assert {p: fs.cat(p) for p in fs.find("/safety-bucket")} == before
    # an empty prefix beside them is fine, and a store there is resumed, then replaced
    url = "memory://safety-bucket/preds.zarr"
    assert predict(shard_root, ckpts["ckpt"], url)["predicted"] == 4
    assert predict(shard_root, ckpts["ckpt"], url)["resumed"]
    assert {p: fs.cat(p) for p in fs.find("/safety-bucket/project")} == before


def test_overwrite_replaces_only_a_store_of_the_same_kind(
    shard_root: Path, ckpts: dict[str, Path], tmp_path: Path
) -> None:
    labels, preds = tmp_path / "labels.zarr", tmp_path / "preds.zarr"
    label_attrs = {"segmenter_sha256": "0" * 64, "split": "val", "frames": 2, "height": 4,
                   "width": 4}  # fmt: skip
    prepare_labels(labels, label_attrs, np.arange(3), overwrite=False)
    predict(shard_root, ckpts["ckpt"], preds)
    kept = tree(labels)
    with pytest.raises(StoreError, match="is a labels store, not a predictions store"):
        predict(shard_root, ckpts["ckpt"], labels, overwrite=True)
    with pytest.raises(StoreError, match="is a predictions store, not a labels store"):
        label(shard_root, ckpts["seg"], preds, overwrite=True)
    assert tree(labels) == kept and PredStore.open(preds).done_mask().all()

    # a store written before the kind attribute existed is still known by its attributes
    del zarr.open_group(preds, mode="r+").attrs[KIND]
    assert predict(shard_root, ckpts["ckpt"], preds)["resumed"]
    assert PredStore.open(preds).attrs.get(KIND) is None  # a resumed store is left as it was
    store, resumed = prepare_store(preds, attrs={}, video_ids=[7], frame_shape=(1, 4, 4, 1),
                                   overwrite=True)  # fmt: skip
    assert not resumed and store.attrs[KIND] == "predictions" and list(store.ids()) == [7]

    # a run killed right after creating the group: ours (the kind is written first), so
    # --overwrite makes it anew; without it, the store is not resumed
    half = tmp_path / "half.zarr"
    zarr.open_group(half, mode="w", attributes={KIND: "predictions"})
    with pytest.raises(StoreError, match="creation was cut short.*--overwrite"):
        predict(shard_root, ckpts["ckpt"], half)
    prepare_store(half, attrs={}, video_ids=[7], frame_shape=(1, 4, 4, 1), overwrite=True)
    assert PredStore.open(half).attrs["created"]


def test_cli_refusal_is_one_line(shard_root: Path, ckpts: dict[str, Path], tmp_path: Path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "keep.png").write_bytes(b"png")
    for command in (["predict", "--ckpt", str(ckpts["ckpt"])],):
        proc = run_cli(*command, "--shards", str(shard_root), "--split", "val", "--out",
                       "data", "--overwrite", cwd=tmp_path, check=False)  # fmt: skip
        errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
        assert proc.returncode == 1 and len(errors) == 1 and "Traceback" not in proc.stderr
        assert "data is not empty" in errors[0] and "(it holds: keep.png)" in errors[0]
    assert (tmp_path / "data" / "keep.png").read_bytes() == b"png"
