"""runtime/checkpoint.py and runtime/runs.py: atomic saves, safe loads, RNG round trips, run
folders."""

from __future__ import annotations

import os
import random
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from convrnn_video.runtime.checkpoint import (
    load_checkpoint,
    load_model,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from convrnn_video.runtime.errors import RunError
from convrnn_video.runtime.runs import find_checkpoint, new_run_dir, newest_run, resolve_run_dir


def tiny_payload() -> dict:
    from convrnn_video.convrnn import build_model, get_preset

    cfg = get_preset("tiny", frames_in=3, frames_out=2)
    torch.manual_seed(0)
    model = build_model(cfg)
    return {
        "model_config": cfg.to_dict(),
        "model": model.state_dict(),
        "train_config": {"preset": "tiny"},
        "step": 7,
        "epoch": 1,
        "best_val": None,
        "rng": [rng_state()],
    }


def test_save_is_atomic_and_loads_with_weights_only(tmp_path: Path) -> None:
    path = save_checkpoint(tmp_path / "sub" / "last.pt", tiny_payload())
    assert path.is_file() and not (tmp_path / "sub" / "last.pt.tmp").exists()
    payload = load_checkpoint(path)  # torch.load(weights_only=True) inside
    assert payload["step"] == 7 and payload["format"] == 1
    # the same file through torch's safe loader directly
    assert torch.load(path, weights_only=True)["epoch"] == 1


def test_load_model_rebuilds_the_model(tmp_path: Path) -> None:
    payload = tiny_payload()
    save_checkpoint(tmp_path / "best.pt", payload)
    model, cfg, loaded = load_model(tmp_path / "best.pt", "cpu")
    assert not model.training and cfg.frames_out == 2 and loaded["step"] == 7
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, payload["model"][name])
    out = model(torch.rand(1, 3, 3, 32, 48))
    assert out.shape == (1, 2, 3, 32, 48)


def test_rng_states_round_trip_through_a_file(tmp_path: Path) -> None:
    torch.manual_seed(1)
    np.random.seed(1)
    random.seed(1)
    save_checkpoint(tmp_path / "c.pt", {"model": {}, "model_config": {}, "rng": [rng_state()]})
    first = (torch.rand(3), np.random.rand(3), [random.random() for _ in range(3)])
    set_rng_state(load_checkpoint(tmp_path / "c.pt")["rng"][0])
    again = (torch.rand(3), np.random.rand(3), [random.random() for _ in range(3)])
    assert torch.equal(first[0], again[0])
    assert np.array_equal(first[1], again[1]) and first[2] == again[2]


def test_damaged_or_foreign_files_are_clear_errors(tmp_path: Path) -> None:
    good = save_checkpoint(tmp_path / "good.pt", tiny_payload())
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    text = tmp_path / "text.pt"
    text.write_text("not a checkpoint")
    other = tmp_path / "other.pt"
    torch.save([1, 2, 3], other)
    for path, message in (
        (truncated, "corrupt"),
        (text, "corrupt"),
        (other, "not a training checkpoint"),
        (tmp_path / "missing.pt", "not found"),
    ):
        with pytest.raises(RunError, match=message):
            load_checkpoint(path)


def test_a_damaged_file_is_explained_in_whole_words(tmp_path: Path) -> None:
    # torch's message for a cut file is one 300-character line; ours quotes whole sentences
    good = save_checkpoint(tmp_path / "good.pt", tiny_payload())
    cut = tmp_path / "cut.pt"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    foreign = tmp_path / "foreign.pt"
    torch.save({"model": {}, "model_config": {}, "x": time.struct_time(range(9))}, foreign)
    for path in (cut, foreign):
        with pytest.raises(RunError) as info:
            load_checkpoint(path)
        detail = str(info.value).split(": ", 1)[1].split("); delete", 1)[0]  # torch's words
        assert detail.endswith((".", " ...")), detail
        assert "\x1b" not in detail and len(detail) <= 160, detail


def test_run_folders(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    with pytest.raises(RunError, match="no training run"):
        newest_run(root)
    a = new_run_dir(root)  # created when picked
    (a / "last.pt").write_bytes(b"x")
    b = new_run_dir(root)
    assert b != a  # same second: a suffix keeps names unique
    (b / "best.pt").write_bytes(b"x")
    os.utime(a, (time.time() - 100, time.time() - 100))
    assert newest_run(root) == b
    assert find_checkpoint(None, root) == b / "best.pt"
    assert find_checkpoint(a) == a / "last.pt"
    assert find_checkpoint(a / "last.pt") == a / "last.pt"
    with pytest.raises(RunError, match="already holds a run"):
        resolve_run_dir(a, resume=False)
    assert resolve_run_dir(a, resume=True) == a
    with pytest.raises(RunError, match="nothing to resume"):  # b has no last.pt
        resolve_run_dir(None, resume=True, root=root)
    with pytest.raises(RunError, match="nothing to resume"):
        resolve_run_dir(tmp_path / "empty", resume=True)
