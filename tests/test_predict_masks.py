"""infer.predict with a segmenter (`--segmenter`): the masks of a frames checkpoint's stored
frames and a masks checkpoint's forecast masks, into real Zarr stores, resumed, refused and
submitted."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from convrnn_video.infer.errors import InferError
from convrnn_video.segment.objects import whole_objects
from convrnn_video.stores.errors import StoreError
from convrnn_video.stores.predictions import PredStore
from infer_helpers import by_hand, predict, run_cli, tiny_checkpoint, tiny_segmenter


def test_masks_equal_segmenter_on_stored_frames(
    mask_stores: dict[str, Path], tiny_stores: dict[str, Path]
) -> None:
    import torch
    from convrnn_video.ingest.writer import sha256_file
    from convrnn_video.runtime.checkpoint import load_model
    from convrnn_video.runtime.device import autocast

    store = PredStore.open(mask_stores["val"])
    attrs = store.attrs
    assert attrs["segmenter"] == str(mask_stores["segmenter"])
    assert attrs["segmenter_sha256"] == sha256_file(mask_stores["segmenter"])
    assert attrs["segmenter_config"]["base_channels"] > 0
    assert store.masks.shape == (4, 11, 160, 240) and store.masks.dtype == np.uint8
    assert store.masks.chunks == (1, 11, 160, 240) and store.done_mask().all()
    # the frames are those of a store predicted without a segmenter
    assert np.array_equal(store.frames[:], PredStore.open(tiny_stores["val"]).frames[:])

    seg, _, _ = load_model(mask_stores["segmenter"], "cpu", task="segment")
    frames = torch.from_numpy(store.frames[:]).permute(0, 1, 4, 2, 3).float() / 255
    context = autocast(attrs["precision"], torch.device("cpu"), warn=False)  # the store's
    with torch.inference_mode(), context:
        expect = torch.stack([seg(video).argmax(1) for video in frames])  # (N, T, H, W)
    expect = whole_objects(expect, seg.cfg.num_classes)  # as every command segments
    masks = store.masks[:]
    assert np.array_equal(masks, expect.to(torch.uint8).numpy())
    assert len(np.unique(masks)) > 1  # not a constant picture


def test_mask_store_resume_and_refusals(
    shard_root: Path, mask_stores: dict[str, Path], tmp_path: Path
) -> None:
    import shutil

    ckpt, seg = mask_stores["ckpt"], mask_stores["segmenter"]
    out = tmp_path / "val.zarr"
    shutil.copytree(mask_stores["val"], out)
    whole = PredStore.open(out).masks[:]
    broken = PredStore.open(out, "r+")
    broken.done[1] = False  # as if killed after writing videos 0, 2, 3
    broken.masks[1] = 0
    broken.frames[1] = 0
    again = predict(shard_root, ckpt, out, split="val", segmenter=str(seg))
    assert again["resumed"] and again["predicted"] == 1 and again["already_done"] == 3
    resumed = PredStore.open(out)
    assert resumed.done_mask().all() and np.array_equal(resumed.masks[:], whole)

    other = tiny_segmenter(tmp_path / "other-seg.pt", seed=1)
    with pytest.raises(StoreError, match="masks come from segmenter .*seg.pt.*--overwrite"):
        predict(shard_root, ckpt, out, split="val", segmenter=str(other))
    with pytest.raises(StoreError, match="pass --segmenter with that file to resume"):
        predict(shard_root, ckpt, out, split="val")
    no_masks = tmp_path / "frames-only.zarr"
    predict(shard_root, ckpt, no_masks, split="val")
    assert PredStore.open(no_masks).masks is None
    with pytest.raises(StoreError, match="store has no masks.*--overwrite"):
        predict(shard_root, ckpt, no_masks, split="val", segmenter=str(seg))
    replaced = predict(shard_root, ckpt, out, split="val", segmenter=str(other), overwrite=True)
    assert replaced["predicted"] == 4 and not replaced["resumed"]
    assert PredStore.open(out).attrs["segmenter"] == str(other)


def test_cli_wrong_task_checkpoints(
    shard_root: Path, mask_stores: dict[str, Path], tmp_path: Path
) -> None:
    ckpt, seg = str(mask_stores["ckpt"]), str(mask_stores["segmenter"])
    common = ["predict", "--shards", str(shard_root), "--no-progress"]
    frames_as_seg = run_cli(
        *common, "--ckpt", ckpt, "--segmenter", ckpt, "--out", "a.zarr", cwd=tmp_path, check=False
    )
    seg_as_frames = run_cli(*common, "--ckpt", seg, "--out", "b.zarr", cwd=tmp_path, check=False)
    for proc, expected in ((frames_as_seg, "segment"), (seg_as_frames, "frames or masks")):
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
        assert lines[-1].startswith("error: ") and f"expected a {expected} checkpoint" in lines[-1]
    assert "--segmenter" in frames_as_seg.stderr
    assert not (tmp_path / "a.zarr").exists() and not (tmp_path / "b.zarr").exists()


# --- mask forecasters (predict --ckpt MASKS.pt --segmenter SEG.pt) -----------------------------


@pytest.fixture(scope="module")
def masks_ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from convrnn_video.convrnn import get_preset
    from convrnn_video.runtime.checkpoint import save_untrained

    return save_untrained(tmp_path_factory.mktemp("masks") / "masks.pt", get_preset("tiny-masks"))


def test_masks_checkpoint_store_and_submit(
    shard_root: Path, masks_ckpt: Path, mask_stores: dict[str, Path], tmp_path: Path
) -> None:
    import torch
    from convrnn_video.infer.config import SubmitConfig
    from convrnn_video.infer.submit import run_submit

    seg = mask_stores["segmenter"]
    out = tmp_path / "hidden.zarr"
    summary = predict(
        shard_root, masks_ckpt, out, segmenter=str(seg), batch_size=3, precision="fp32"
    )
    assert summary["task"] == "masks" and summary["holds"] == ["masks"] and summary["complete"]
    store = PredStore.open(out)
    assert store.frames is None and "frames" not in store.group
    assert store.masks.shape == (4, 11, 160, 240) and store.masks.dtype == np.uint8
    assert store.masks.chunks == (1, 11, 160, 240) and store.shape == (11, 160, 240)
    attrs = store.attrs
    assert attrs["holds"] == ["masks"] and attrs["task"] == "masks"
    assert attrs["segmenter"] == str(seg) and attrs["relabel_unseen"] is False
    assert attrs["first_frame"] == 11 and attrs["model_config"]["forecast"] == "masks"
    expect, _ = by_hand(shard_root, "hidden", masks_ckpt, seg, batch_size=3)
    assert np.array_equal(store.masks[:], expect)
    assert len(np.unique(expect)) > 1  # not a constant picture
    with pytest.raises(StoreError, match="holds no frames.*mask forecaster"):
        store.read([0])

    sub = run_submit(SubmitConfig(preds=str(out), out=str(tmp_path / "submission.pt")))
    tensor = torch.load(tmp_path / "submission.pt")
    assert sub["shape"] == [4, 160, 240] and sub["frame"] == "image_21"
    assert np.array_equal(tensor.numpy(), expect[:, -1])

    again = predict(shard_root, masks_ckpt, out, segmenter=str(seg), precision="fp32")
    assert again["resumed"] and again["predicted"] == 0
    broken = PredStore.open(out, "r+")
    broken.done[2] = False  # as if killed before video 2 was written
    broken.masks[2] = 0
    resumed = predict(shard_root, masks_ckpt, out, segmenter=str(seg), precision="fp32")
    assert resumed["predicted"] == 1 and np.array_equal(PredStore.open(out).masks[:], expect)
    with pytest.raises(StoreError, match="relabel_unseen.*--overwrite"):
        predict(shard_root, masks_ckpt, out, segmenter=str(seg), precision="fp32",
                relabel_unseen=True)  # fmt: skip
    frames_store = mask_stores["hidden"]  # a frame model's store with masks
    with pytest.raises(StoreError, match="task: store has 'frames', this run 'masks'"):
        predict(shard_root, masks_ckpt, frames_store, segmenter=str(seg))


def test_relabel_unseen(shard_root: Path, masks_ckpt: Path, mask_stores: dict[str, Path],
                        tmp_path: Path) -> None:  # fmt: skip
    seg = mask_stores["segmenter"]
    common = {"segmenter": str(seg), "split": "val", "precision": "fp32", "batch_size": 2}
    off, on = tmp_path / "off.zarr", tmp_path / "on.zarr"
    predict(shard_root, masks_ckpt, off, **common)
    predict(shard_root, masks_ckpt, on, relabel_unseen=True, **common)
    assert PredStore.open(on).attrs["relabel_unseen"] is True
    a, b = PredStore.open(off).masks[:], PredStore.open(on).masks[:]
    expect, inputs = by_hand(shard_root, "val", masks_ckpt, seg, batch_size=2, relabel=True)
    assert np.array_equal(b, expect)
    unseen_somewhere = 0
    for off_v, on_v, seen_v in zip(a, b, inputs, strict=True):
        allowed = np.union1d(np.unique(seen_v), [0])
        assert np.isin(on_v, allowed).all()  # relabelled ids are always seen (or background)
        unseen = ~np.isin(off_v, allowed)  # where the model predicts a class never seen
        assert (
            np.array_equal(on_v[~unseen], off_v[~unseen]) and (on_v[unseen] != off_v[unseen]).all()
        )
        unseen_somewhere += int(unseen.sum())
    assert unseen_somewhere > 0, "the untrained forecaster never predicted an unseen class"

    # the frame path: the segmenter's masks of the predicted frames, restricted the same way
    frames_on = tmp_path / "frames-on.zarr"
    predict(shard_root, mask_stores["ckpt"], frames_on, relabel_unseen=True, **common)
    masks = PredStore.open(frames_on).masks[:]
    for mask, seen_v in zip(masks, inputs, strict=True):
        assert np.isin(mask, np.union1d(np.unique(seen_v), [0])).all()
    with pytest.raises(InferError, match="relabel_unseen needs a segmenter"):
        predict(shard_root, mask_stores["ckpt"], tmp_path / "x.zarr", relabel_unseen=True)


def test_masks_checkpoint_refusals(
    shard_root: Path, masks_ckpt: Path, mask_stores: dict[str, Path], tmp_path: Path
) -> None:
    proc = run_cli(
        "predict", "--shards", str(shard_root), "--ckpt", str(masks_ckpt),
        "--out", "m.zarr", "--no-progress", cwd=tmp_path, check=False,
    )  # fmt: skip
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert "mask forecaster" in lines[0] and "--segmenter" in lines[0]
    assert not (tmp_path / "m.zarr").exists()
    rgb_seg = mask_stores["segmenter"]
    gray_seg = tiny_segmenter(tmp_path / "gray-seg.pt", in_channels=1)
    with pytest.raises(InferError, match="gray-seg.pt takes 1-channel frames.*RGB"):
        predict(shard_root, masks_ckpt, tmp_path / "a.zarr", segmenter=str(gray_seg))
    gray = tiny_checkpoint(tmp_path / "gray.pt", image_channels=1)
    with pytest.raises(InferError, match="gray.pt takes 1-channel frames.*RGB \\(3 channel"):
        predict(shard_root, gray, tmp_path / "b.zarr", segmenter=str(rgb_seg))
    assert not (tmp_path / "a.zarr").exists() and not (tmp_path / "b.zarr").exists()


# --- any geometry: 64x64 grayscale videos of 20 frames -------------------------------------------
