"""Every CUDA path, small: the check to run first on a GPU machine (`python -m pytest -m cuda`).

Skipped without a GPU. Each test runs a stage into tmp_path with the tiny presets: training
every task with the default precision (bf16 autocast where the GPU computes bf16, compute
capability 8 or more; fp32 elsewhere) and channels_last weights, the batches sent to the GPU as
uint8 through pinned buffers, resume, predict, label, submit, and torchrun over NCCL on the
GPUs present (skipped with fewer than 2).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from infer_helpers import ROOT, run_cli, tiny_checkpoint, tiny_segmenter
from train_helpers import records

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]

# 4 -> 4 frames, batches of 2, a line per step; the default precision, on the GPU
TRAIN = ("--frames-in", "4", "--frames-out", "4", "--batch-size", "2",
         "--log-every", "1", "--no-progress", "--device", "cuda")  # fmt: skip


def expected_precision() -> str:
    """What --precision auto must pick on this GPU: bf16 from compute capability 8 on."""
    major, _ = torch.cuda.get_device_capability()
    return "bf16" if major >= 8 and torch.cuda.is_bf16_supported() else "fp32"


def channels_last(model: torch.nn.Module) -> bool:
    """Are all 4-D conv weights laid out channels_last?"""
    weights = [p for p in model.parameters() if p.dim() == 4]
    return bool(weights) and all(
        p.is_contiguous(memory_format=torch.channels_last) for p in weights
    )


@pytest.fixture(scope="module")
def segmenter(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_segmenter(tmp_path_factory.mktemp("cuda-seg") / "seg.pt")


@pytest.mark.parametrize("task", ["frames", "segment", "masks"])
def test_every_task_trains_on_the_gpu(
    shard_root: Path, segmenter: Path, tmp_path: Path, task: str
) -> None:
    from convrnn_video.runtime.checkpoint import load_model

    run = tmp_path / task
    extra = ("--preset", "tiny-masks", "--segmenter", str(segmenter)) if task == "masks" else ()
    proc = run_cli("train", "--task", task, "--shards", str(shard_root), "--out", str(run),
                   *TRAIN, "--samples-per-epoch", "4", "--max-steps", "2",
                   *(extra or ("--preset", "tiny")))  # fmt: skip
    config = json.loads((run / "config.json").read_text())
    assert config["device"].startswith("cuda") and config["precision"] == expected_precision()
    train = records(run, "train")
    assert [r["step"] for r in train] == [1, 2], proc.stderr[-2000:]
    assert all(np.isfinite(r["loss"]) for r in train)
    assert records(run, "val") and records(run, "end")[0]["step"] == 2
    model, _, _ = load_model(run / "best.pt", "cuda", task=task)
    assert next(model.parameters()).is_cuda and channels_last(model)


def test_resume_on_the_gpu_continues_the_run(shard_root: Path, tmp_path: Path) -> None:
    """2 + 2 steps give the losses of 4 uninterrupted ones (fp32; cuDNN may pick other
    kernels in another process, so within a tolerance, not bit for bit)."""
    fp32 = ("--precision", "fp32", "--lr-schedule", "plateau", "--val-split", "")
    base = (*TRAIN, "--preset", "tiny", "--samples-per-epoch", "4")
    full, part = tmp_path / "full", tmp_path / "part"
    run_cli("train", "--shards", str(shard_root), "--out", str(full), *base, *fp32,
            "--max-steps", "4")  # fmt: skip
    run_cli("train", "--shards", str(shard_root), "--out", str(part), *base, *fp32,
            "--max-steps", "2")  # fmt: skip
    run_cli("train", "--shards", str(shard_root), "--out", str(part), *base, *fp32,
            "--max-steps", "4", "--resume")  # fmt: skip
    want = [r["loss"] for r in records(full, "train")]
    got = [r["loss"] for r in records(part, "train")]
    assert [r["step"] for r in records(part, "train")] == [1, 2, 3, 4]
    np.testing.assert_allclose(got, want, rtol=1e-3)


def test_gpu_batches_hold_the_host_batches(shard_root: Path) -> None:
    """The loader's GPU path (uint8 through reused pinned buffers, converted on the GPU) gives
    the host path's frames, batch after batch, with two workers (no buffer reused early)."""
    from convrnn_video.shards.loader import make_loader

    kwargs = {"mode": "eval", "batch_size": 1, "frames_in": 5, "frames_out": 3, "workers": 2}
    host = list(make_loader(shard_root, "val", **kwargs))
    gpu = list(make_loader(shard_root, "val", device=torch.device("cuda"), **kwargs))
    assert [b["keys"] for b in gpu] == [b["keys"] for b in host] and len(gpu) >= 3
    for g, h in zip(gpu, host, strict=True):
        for name in ("inputs", "targets"):
            assert g[name].is_cuda and g[name].shape == h[name].shape
            assert torch.equal((g[name] * 255).round().byte().cpu(), (h[name] * 255).round().byte())


def test_predict_label_and_submit_on_the_gpu(
    shard_root: Path, segmenter: Path, tmp_path: Path
) -> None:
    """predict (frames + the segmenter's masks) and label on the GPU agree with the CPU in
    fp32; submit writes the GPU store's masks."""
    from convrnn_video.stores.labels import LabelStore
    from convrnn_video.stores.predictions import PredStore

    ckpt = tiny_checkpoint(tmp_path / "best.pt")
    stores = {}
    for device in ("cuda", "cpu"):
        stores[device] = tmp_path / f"{device}.zarr"
        run_cli("predict", "--shards", str(shard_root), "--ckpt", str(ckpt), "--segmenter",
                str(segmenter), "--split", "hidden", "--out", str(stores[device]),
                "--device", device, "--precision", "fp32", "--no-progress")  # fmt: skip
    gpu, cpu = PredStore.open(stores["cuda"]), PredStore.open(stores["cpu"])
    rows = list(range(len(gpu)))
    frames_diff = np.abs(gpu.read(rows).astype(int) - cpu.read(rows).astype(int))
    assert frames_diff.max() <= 2
    assert (gpu.read_masks(rows) == cpu.read_masks(rows)).mean() > 0.99
    run_cli("submit", "--preds", str(stores["cuda"]), "--out", str(tmp_path / "sub.pt"))
    sub = torch.load(tmp_path / "sub.pt")
    assert sub.dtype == torch.uint8 and sub.shape[0] == len(gpu)

    labels = {}
    for device in ("cuda", "cpu"):
        out = tmp_path / f"labels-{device}.zarr"
        run_cli("label", "--segmenter", str(segmenter), "--shards", str(shard_root), "--split",
                "val", "--out", str(out), "--device", device, "--precision", "fp32",
                "--no-progress")  # fmt: skip
        store = LabelStore.open(out)
        labels[device] = store.read_ids(sorted(int(i) for i in store.ids()))
    assert (labels["cuda"] == labels["cpu"]).mean() > 0.99


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="torchrun over NCCL needs 2 GPUs")
def test_torchrun_over_nccl_on_every_gpu(shard_root: Path, tmp_path: Path) -> None:
    """One process per GPU (nccl for the gradients, gloo beside it for the loop's flags): the
    ranks take the same steps and end with the same weights, and a resume continues."""
    gpus = torch.cuda.device_count()
    run = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                f"--nproc_per_node={gpus}"]  # fmt: skip
    for steps, extra in (("2", ()), ("3", ("--resume",))):
        done = subprocess.run(
            [*torchrun, str(ROOT / "cli.py"), "train", "--shards", str(shard_root), "--out",
             str(run), *TRAIN, "--preset", "tiny", "--samples-per-epoch", "2",
             "--max-steps", steps, *extra],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
    end = records(run, "end")
    assert [e["rank_steps"] for e in end] == [[2] * gpus, [3] * gpus]
    assert all(d == 0.0 for e in end for d in e["rank_weight_diff"])
    assert json.loads((run / "config.json").read_text())["world_size"] == gpus
