"""shards.loader: values, eval coverage over ranks and workers, train epochs, URLs (damaged
shards: test_loader_damage.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import rewrite_tar, shards_url
from convrnn_video.ingest.pack import IngestConfig, run_ingest
from convrnn_video.shards.errors import ShardError
from convrnn_video.shards.loader import make_loader
from loader_helpers import FAST, keys_of
from PIL import Image


@pytest.fixture(scope="module")
def small_shards(synth_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """synth_root in shards of 4 videos: unequal shard sizes (4 + 2), more shards than ranks."""
    out = tmp_path_factory.mktemp("small") / "shards"
    run_ingest(
        IngestConfig(data_root=synth_root, out=out, workers=1, videos_per_shard=4, progress=False)
    )
    return out


def test_batches_hold_the_original_pixels(shard_root: Path, synth_root: Path):
    batch = next(
        iter(make_loader(shard_root, "val", mode="eval", batch_size=2, frames_in=5, frames_out=3))
    )
    assert batch["inputs"].shape == (2, 5, 3, 160, 240)
    assert batch["targets"].shape == (2, 3, 3, 160, 240)
    assert batch["inputs"].dtype == torch.float32 and batch["inputs"].is_contiguous()
    assert batch["keys"] == ["video_1000", "video_1001"] and batch["ids"] == [1000, 1001]
    for t, frame in [
        (0, batch["inputs"][1, 0]),
        (4, batch["inputs"][1, 4]),
        (7, batch["targets"][1, 2]),
    ]:
        ref = np.asarray(Image.open(synth_root / "val" / "video_1001" / f"image_{t}.png"))
        np.testing.assert_array_equal(
            (frame.permute(1, 2, 0) * 255).round().to(torch.uint8).numpy(), ref
        )
    assert float(batch["inputs"].min()) >= 0.0 and float(batch["inputs"].max()) <= 1.0


def test_hidden_has_inputs_only(shard_root: Path):
    batches = list(make_loader(shard_root, "hidden", mode="eval", batch_size=3))
    assert [b["inputs"].shape[:2] for b in batches] == [(3, 11), (1, 11)]
    assert all(b["targets"] is None for b in batches)
    assert keys_of(batches) == [f"video_{i}" for i in range(15000, 15004)]
    with pytest.raises(ShardError, match="hidden"):
        make_loader(shard_root, "hidden", mode="train", batch_size=2)


@pytest.mark.parametrize("shards", ["shard_root", "small_shards"])
@pytest.mark.parametrize("world_size,workers", [(1, 2), (2, 0), (2, 2), (3, 2)])
def test_eval_gives_every_video_once_in_id_order(shards, world_size, workers, request):
    root = request.getfixturevalue(shards)
    seen = []
    for rank in range(world_size):
        loader = make_loader(
            root,
            "val",
            mode="eval",
            batch_size=1,
            workers=workers,
            rank=rank,
            world_size=world_size,
            **FAST,
        )
        keys = keys_of(loader)
        ids = [int(k.split("_")[1]) for k in keys]
        assert ids == sorted(ids)
        assert len(loader) == len(keys)
        seen += keys
    assert seen == [f"video_{i}" for i in range(1000, 1004)]


@pytest.mark.parametrize("workers", [0, 2])
def test_train_ranks_get_equal_batch_counts_from_unequal_shards(small_shards: Path, workers):
    counts = []
    for rank in range(2):
        loader = make_loader(
            small_shards,
            mode="train",
            batch_size=2,
            workers=workers,
            rank=rank,
            world_size=2,
            **FAST,
        )
        batches = list(loader)
        assert len(batches) == len(loader) == 3  # (6 train + 6 unlabeled) // 2 ranks // 2
        assert all(b["inputs"].shape == (2, 2, 3, 160, 240) for b in batches)
        counts.append(len(batches))
    assert counts[0] == counts[1]
    loader = make_loader(
        small_shards,
        "train",
        mode="train",
        batch_size=3,
        samples_per_epoch=10,
        **FAST,
        rank=1,
        world_size=2,
        workers=workers,
    )
    assert len(list(loader)) == len(loader) == 3


def test_train_order_is_reshuffled_per_epoch_and_reproducible(small_shards: Path):
    def order(epoch: int, seed: int = 0) -> list[str]:
        return keys_of(
            make_loader(
                small_shards,
                mode="train",
                batch_size=2,
                seed=seed,
                epoch=epoch,
                shuffle_buffer=4,
                **FAST,
            )
        )

    e0, e1 = order(0), order(1)
    assert e0 == order(0) and e0 != e1 and order(0, seed=1) != e0
    assert sorted(e0) == sorted(e1) and len(set(e0)) == 12  # one pass over the 12 videos
    loader = make_loader(small_shards, mode="train", batch_size=2, shuffle_buffer=4, **FAST)
    assert keys_of(loader) == e0 and keys_of(loader) == e1  # each pass advances the epoch
    loader.set_epoch(0)
    assert keys_of(loader) == e0


@pytest.mark.parametrize("scheme", ["memory", "file"])
def test_reads_fsspec_urls(shard_root: Path, scheme: str):
    url = shards_url(shard_root, scheme, "loader-test")
    local = list(make_loader(shard_root, "val", mode="eval", batch_size=4))
    for workers in (0, 2):
        remote = list(make_loader(url, "val", mode="eval", batch_size=4, workers=workers))
        assert keys_of(remote) == keys_of(local)
        assert torch.equal(remote[0]["targets"], local[0]["targets"])
    assert len(list(make_loader(url, mode="train", batch_size=4))) == 3


def test_batches_kept_by_the_caller_are_never_overwritten(small_shards: Path):
    loader = make_loader(small_shards, mode="train", batch_size=2, **FAST)
    streamed = [(b["inputs"].clone(), b["targets"].clone()) for b in loader]  # buffers reused
    loader.set_epoch(0)
    kept = list(loader)  # every batch still referenced: none may share memory with another
    assert len(kept) == len(streamed) == 6
    for (inputs, targets), batch in zip(streamed, kept, strict=True):
        assert torch.equal(inputs, batch["inputs"]) and torch.equal(targets, batch["targets"])


def test_available_masks_mix_labelled_and_unlabelled_splits(shard_root: Path) -> None:
    loader = make_loader(
        shard_root, ["train", "unlabeled"], mode="eval", batch_size=4, masks="available"
    )
    seen = {True: 0, False: 0}
    for batch in loader:
        assert batch["masks"].shape == (len(batch["ids"]), 22, 160, 240)
        for i, present in enumerate(batch["mask_present"]):
            seen[present] += 1
            if not present:
                assert batch["masks"][i].sum() == 0
            else:
                assert batch["masks"][i].any()  # every generated video shows some object
    assert seen == {True: 6, False: 6}
    plain = next(iter(make_loader(shard_root, "val", mode="eval", batch_size=2, masks=True)))
    assert plain["mask_present"] == [True, True]
    assert (
        next(iter(make_loader(shard_root, "val", mode="eval", batch_size=2)))["mask_present"]
        is None
    )


@pytest.mark.parametrize("workers", [0, 2])
def test_start_batch_resumes_an_epoch_without_decoding_the_skipped_part(
    shard_root: Path, tmp_path: Path, workers: int
) -> None:
    def loader(source, start=0):
        return make_loader(source, ["train", "unlabeled"], mode="train", batch_size=2, seed=3,
                           epoch=1, workers=workers, start_batch=start, **FAST)  # fmt: skip

    full = [batch["keys"] for batch in loader(shard_root)]
    assert len(full) == 6
    resumed = loader(shard_root, start=4)
    assert len(resumed) == 2 and [batch["keys"] for batch in resumed] == full[4:]
    assert [batch["keys"] for batch in loader(shard_root, start=3)] == full[3:]  # odd: a drop
    # a broken frame in the first batch: skipped as raw bytes, it is never decoded
    victim = full[0][0]
    out = Path(shutil.copytree(shard_root, tmp_path / "damaged"))
    for tar in out.glob("*.tar"):
        rewrite_tar(tar, lambda ms: [(n, b"\x89PNG broken" if n == f"{victim}.f00.png" else d)
                                     for n, d in ms])  # fmt: skip
    assert [batch["keys"] for batch in loader(out, start=4)] == full[4:]
    with pytest.raises(ShardError):
        keys_of(loader(out))
    with pytest.raises(ShardError, match="start_batch 7"):
        loader(shard_root, start=7)


@pytest.fixture(scope="module")
def one_video_shards(synth_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """synth_root in shards of one video each: 12 train + unlabeled shards."""
    out = tmp_path_factory.mktemp("single") / "shards"
    run_ingest(
        IngestConfig(data_root=synth_root, out=out, workers=1, videos_per_shard=1, progress=False)
    )
    return out


def simulated_epoch(shards: Path, ranks: int, workers: int, epoch: int = 0) -> list[str]:
    """The keys of one train epoch of `ranks` x `workers` slots, each slot's stream taken
    straight from the partition (no processes), for its quota of batches."""
    from convrnn_video.shards.partition import train_samples, worker_batches

    keys = []
    for rank in range(ranks):
        spec = make_loader(
            shards, mode="train", batch_size=1, rank=rank, world_size=ranks, epoch=epoch, **FAST
        ).spec
        for worker in range(workers):
            stream = train_samples(spec, rank * workers + worker, ranks * workers)
            keys += [next(stream)["__key__"] for _ in range(worker_batches(spec, worker, workers))]
    return keys


@pytest.mark.parametrize("fixture", ["one_video_shards", "small_shards", "shard_root"])
@pytest.mark.parametrize("ranks,workers", [(1, 1), (2, 1), (1, 5), (4, 3)])
def test_every_video_once_per_epoch_over_ranks_and_workers(
    request: pytest.FixtureRequest, fixture: str, ranks: int, workers: int
) -> None:
    """12 videos in 12, 4 (of 4 and 2 videos) or 2 shards, on 1, 2, 5 and 12 slots: whole
    shards do not split evenly over the slots, and with fewer shards than slots the shards are
    shared; each video still comes exactly once an epoch."""
    shards = request.getfixturevalue(fixture)
    for epoch in range(4):
        keys = simulated_epoch(shards, ranks, workers, epoch)
        assert len(keys) == 12 and len(set(keys)) == 12, (epoch, sorted(keys))


def test_device_batches_convert_like_the_host_path() -> None:
    """The GPU path's conversion (uint8 sent as it is, cast and transposed on the device),
    run here on the CPU: every grey level gives the host path's float exactly, in the
    (B, T, C, H, W) layout, and the uint8 batch can be reused as soon as it returns."""
    from convrnn_video.shards.buffers import DeviceBatches, to_float

    levels = torch.arange(256, dtype=torch.uint8)
    frames = levels.repeat(2 * 3 * 4).view(2, 3, 4, 64, 4)[..., :3].contiguous()  # (B,T,H,W,C)
    convert = DeviceBatches(torch.device("cpu"))
    out = convert.to_float(frames)
    want = to_float(frames).clone()
    frames.zero_()  # the worker reuses its buffer
    assert out.shape == (2, 3, 3, 4, 64) and out.is_contiguous()
    assert torch.equal(out, want) and convert.to_float(None) is None
