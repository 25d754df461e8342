"""segment/apply.py: every path that segments frames gives the same masks for the same
checkpoint, frames and precision (label, segment validation, predict, evaluate, the API), and
the label store records the precision it was made in. Small free-layout shards (32x32), bf16:
the precision the old predict and evaluate ignored (they always segmented in float32)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import write_square_video
from convrnn_video.infer.config import EvaluateConfig, LabelConfig, PredictConfig
from convrnn_video.infer.evaluate import run_evaluate
from convrnn_video.infer.labels import run_label
from convrnn_video.infer.predict import run_predict
from convrnn_video.ingest.pack import IngestConfig, run_ingest
from convrnn_video.runtime.jaccard import FrameJaccard
from convrnn_video.segment.apply import seen_classes, segment_for_tracks, segment_frames
from convrnn_video.segment.objects import RULE, steady_last, whole_objects
from convrnn_video.shards.buffers import frames_to_float
from convrnn_video.shards.format import NUM_CLASSES
from convrnn_video.stores.errors import StoreError
from convrnn_video.stores.labels import LabelStore
from convrnn_video.stores.predictions import PredStore
from infer_helpers import tiny_checkpoint, tiny_segmenter

from convrnn_video import load_checkpoint, read_video

PRECISION = "bf16"
VAL = (1000, 1001)
SIZE = 32  # the tiny frame model's patch grid needs multiples of 16


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """32x32 shards (train and val with masks, 22 frames), a segmenter and its label store
    of val, a frame model and its prediction store of val with masks, all in bf16."""
    root = tmp_path_factory.mktemp("segment-once")
    data = root / "data"
    for split, ids in (("train", (0,)), ("val", VAL)):
        for i in ids:
            write_square_video(data / split / f"video_{i}", 22, SIZE, SIZE, "RGB", i, mask=True)
    shards = root / "shards"
    run_ingest(IngestConfig(data_root=data, out=shards, layout="free", workers=1, progress=False))
    paths = {"data": data, "shards": shards, "seg": tiny_segmenter(root / "seg.pt", seed=1)}
    paths["labels"] = root / "labels.zarr"
    run_label(LabelConfig(shards=str(shards), segmenter=str(paths["seg"]), split="val",
                          out=str(paths["labels"]), batch_size=2, precision=PRECISION,
                          progress=False))  # fmt: skip
    paths["preds"] = root / "preds.zarr"
    run_predict(PredictConfig(shards=str(shards), ckpt=str(tiny_checkpoint(root / "f.pt")),
                              segmenter=str(paths["seg"]), out=str(paths["preds"]), split="val",
                              batch_size=2, precision=PRECISION, progress=False))  # fmt: skip
    return paths


def _api(world: dict[str, Path]):
    return load_checkpoint(world["seg"], "cpu", precision=PRECISION)


@pytest.mark.slow  # whole stages, in emulated bf16 on an AVX2 CPU
def test_label_store_equals_the_api_and_records_its_precision(world: dict[str, Path]) -> None:
    store = LabelStore.open(world["labels"])
    assert store.attrs["precision"] == PRECISION and store.attrs["precision_asked"] == PRECISION
    api = _api(world)
    videos = np.stack([read_video(world["data"] / "val" / f"video_{i}") for i in VAL])
    masks = store.read_ids(list(VAL))  # (2, 22, H, W)
    assert np.array_equal(masks, api.predict(videos)) and len(np.unique(masks)) > 1
    # a batch of videos, one video alone: the same masks
    assert np.array_equal(masks[1], api.predict(videos[1]))


@pytest.mark.slow  # whole stages, in emulated bf16 on an AVX2 CPU
def test_predict_and_evaluate_segment_as_the_api(world: dict[str, Path]) -> None:
    store = PredStore.open(world["preds"])
    assert store.attrs["precision"] == PRECISION
    api = _api(world)
    assert np.array_equal(store.masks[:], api.predict(store.frames[:]))
    report = run_evaluate(EvaluateConfig(preds=str(world["preds"]), shards=str(world["shards"]),
                                         out=str(world["preds"].parent / "eval.json"),
                                         progress=False))  # fmt: skip
    # the ceiling line: the segmenter on the true future frames (11..21), as the API gives it
    on_true = FrameJaccard()
    for i in VAL:
        video = read_video(world["data"] / "val" / f"video_{i}")[11:]  # (11, H, W, 3)
        gold = np.load(world["data"] / "val" / f"video_{i}" / "mask.npy")[11:]
        on_true.update(torch.from_numpy(api.predict(video))[None], torch.from_numpy(gold)[None])
    assert report["jaccard"]["segmenter_on_true"]["per_frame"] == on_true.compute()["per_frame"]


@pytest.mark.slow  # whole stages, in emulated bf16 on an AVX2 CPU
def test_segment_validation_scores_the_label_store_masks(world: dict[str, Path]) -> None:
    from convrnn_video.runtime.checkpoint import load_model
    from convrnn_video.runtime.device import autocast
    from convrnn_video.runtime.distributed import DistEnv
    from convrnn_video.shards.loader import make_loader
    from convrnn_video.train.tasks.segment import SegmentTask

    model, _, _ = load_model(world["seg"], task="segment")
    loader = make_loader(str(world["shards"]), ["val"], mode="eval", batch_size=2, frames_in=11,
                         frames_out=11, masks=True)  # fmt: skip
    context = autocast(PRECISION, torch.device("cpu"), warn=False)
    scores, _ = SegmentTask().evaluate(model, loader, DistEnv(), context, with_baseline=False)
    labels, gold = LabelStore.open(world["labels"]), FrameJaccard()
    for i in VAL:
        truth = np.load(world["data"] / "val" / f"video_{i}" / "mask.npy")
        gold.update(torch.from_numpy(labels.read_ids([i])), torch.from_numpy(truth)[None])
    assert scores["jaccard"] == gold.compute()


@pytest.mark.slow  # whole stages, in emulated bf16 on an AVX2 CPU
def test_a_store_of_another_precision_is_refused(world: dict[str, Path], tmp_path: Path) -> None:
    import shutil

    part = Path(shutil.copytree(world["labels"], tmp_path / "part.zarr"))
    cfg = LabelConfig(shards=str(world["shards"]), segmenter=str(world["seg"]), split="val",
                      out=str(part), precision="fp32", progress=False)  # fmt: skip
    with pytest.raises(StoreError, match="made in bf16, this run's in fp32.*--precision bf16"):
        run_label(cfg)
    assert run_label(dataclasses.replace(cfg, precision="bf16"))["resumed"]


@pytest.mark.slow  # whole stages
def test_stores_of_raw_argmax_masks_are_not_resumed(world: dict[str, Path], tmp_path: Path) -> None:
    """A store from before `whole_objects` holds raw argmax masks: resuming it would mix the two
    rules, so label and predict refuse it and name the rule."""
    import shutil

    import zarr

    assert LabelStore.open(world["labels"]).attrs["mask_rule"] == RULE
    assert PredStore.open(world["preds"]).attrs["mask_rule"] == RULE
    labels = Path(shutil.copytree(world["labels"], tmp_path / "labels.zarr"))
    preds = Path(shutil.copytree(world["preds"], tmp_path / "preds.zarr"))
    for path in (labels, preds):  # as written before the attribute existed
        attrs = zarr.open_group(str(path), mode="r+").attrs
        attrs.put({k: v for k, v in attrs.asdict().items() if k != "mask_rule"})
    with pytest.raises(StoreError, match="mask_rule: store has 'argmax'"):
        run_label(LabelConfig(shards=str(world["shards"]), segmenter=str(world["seg"]),
                              split="val", out=str(labels), precision=PRECISION,
                              progress=False))  # fmt: skip
    with pytest.raises(StoreError, match="made by the rule 'argmax'.*--overwrite"):
        frames = world["preds"].parent / "f.pt"
        run_predict(PredictConfig(shards=str(world["shards"]), ckpt=str(frames), out=str(preds),
                                  segmenter=str(world["seg"]), split="val", precision=PRECISION,
                                  progress=False))  # fmt: skip


def test_segment_frames_contract() -> None:
    from convrnn_video.segment import build_segmenter, get_preset

    torch.manual_seed(0)
    model = build_segmenter(get_preset("tiny", head="flat", norm="group", norm_group_size=2))
    model.eval()
    u8 = torch.randint(0, 256, (3, 4, 16, 24, 3), dtype=torch.uint8)  # (B, T, H, W, C)
    frames = frames_to_float(u8)  # (B, T, C, H, W)
    assert torch.equal(frames, u8.permute(0, 1, 4, 2, 3).float() / 255)
    ids = segment_frames(model, frames)
    assert ids.shape == (3, 4, 16, 24) and ids.dtype == torch.int64
    assert torch.equal(ids[1:2], segment_frames(model, frames[1:2]))  # the batch is no matter
    with torch.no_grad():
        raw = model(frames[2]).argmax(1)  # (T, H, W)
    assert torch.equal(segment_frames(model, frames, whole=False)[2], raw)
    assert torch.equal(ids[2], whole_objects(raw, model.cfg.num_classes))
    assert not torch.equal(ids[2], raw)  # random frames: fragments everywhere
    allowed = seen_classes(ids[:, :1], model.cfg.num_classes)  # (B, K): the first frame's
    only = segment_frames(model, frames, allowed=allowed)
    for b in range(3):
        assert set(only[b].unique().tolist()) <= set(ids[b, 0].unique().tolist()) | {0}
    with pytest.raises(ValueError, match="float"):
        segment_frames(model, u8.permute(0, 1, 4, 2, 3))
    with pytest.raises(ValueError, match="uint8"):
        frames_to_float(frames)


def test_mirror_averaged_masks_mirror_with_the_frames() -> None:
    from convrnn_video.segment import build_segmenter, get_preset

    torch.manual_seed(0)
    model = build_segmenter(get_preset("tiny", head="flat", norm="group", norm_group_size=2))
    model.eval()
    frames = frames_to_float(torch.randint(0, 256, (2, 3, 16, 24, 3), dtype=torch.uint8))
    raw = segment_frames(model, frames, whole=False, mirror=True)
    with torch.no_grad():  # by hand: the argmax of the two answers' mean probability
        probs = torch.stack([model(v).softmax(1) + model(v.flip(-1)).flip(-1).softmax(1)
                             for v in frames])  # fmt: skip
    assert torch.equal(raw, probs.argmax(2))
    # the mirror image's masks are the masks mirrored (a plain segmenter's need not be)
    assert torch.equal(segment_frames(model, frames.flip(-1), whole=False, mirror=True),
                       raw.flip(-1))  # fmt: skip
    plain = segment_frames(model, frames, whole=False)
    assert not torch.equal(segment_frames(model, frames.flip(-1), whole=False), plain.flip(-1))
    # the track forecaster's: mirror-averaged, whole objects, the last frame steadied
    ours = segment_for_tracks(model, frames)
    whole = whole_objects(segment_frames(model, frames, whole=False, mirror=True), 49)
    assert torch.equal(ours, steady_last(whole, 49)) and torch.equal(ours[:, :-1], whole[:, :-1])


def test_num_classes_is_defined_once() -> None:
    from convrnn_video.convrnn import ModelConfig
    from convrnn_video.segment import SegConfig

    assert SegConfig().num_classes == ModelConfig().num_classes == NUM_CLASSES == 49


def test_restrict_to_seen_is_the_rule_of_seen_and_pick_classes() -> None:
    """convrnn.masks.restrict_to_seen restates segment.apply's rule (the models floor imports no
    other stage): background and the seen classes only, compared in float32."""
    from convrnn_video.convrnn.masks import restrict_to_seen
    from convrnn_video.segment.apply import pick_classes

    g = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 4, NUM_CLASSES, 6, 5, generator=g).to(torch.bfloat16)
    seen = torch.randint(0, 5, (3, 2, 6, 5), generator=g)  # a few classes per video
    seen[1] = 7  # a video that shows one class and no background
    allowed = seen_classes(seen, NUM_CLASSES)
    expected = torch.stack([pick_classes(v, ok) for v, ok in zip(logits, allowed, strict=True)])
    assert torch.equal(restrict_to_seen(logits, seen), expected)
