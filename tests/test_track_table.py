"""train/tasks/track_table.py: the track forecaster's training table, read in this process or
in worker processes, the same either way."""

from __future__ import annotations

import multiprocessing
import os
import signal

import numpy as np
import pytest
import torch
from convrnn_video.convrnn import get_preset
from convrnn_video.convrnn.track_reads import Tracks
from convrnn_video.convrnn.track_windows import concat_tracks
from convrnn_video.train.errors import TrainError
from convrnn_video.train.tasks.track_table import AHEAD, chunk_table, tables

CFG = get_preset("tracks", frames_in=4, frames_out=4, height=40, width=60)


def sliding_squares(videos: int, seed: int) -> np.ndarray:
    """Class ids (videos, 8, 40, 60) uint8: two squares per video sliding at random steps, one
    of them out through the border."""
    rng = np.random.default_rng(seed)
    out = np.zeros((videos, 8, 40, 60), dtype=np.uint8)
    for v in range(videos):
        (x, y), (dx, dy) = rng.integers(5, 30, 2), rng.integers(-3, 4, 2)
        for t in range(8):
            out[v, t, 20:26, max(0, 40 + 4 * t) : 46 + 4 * t] = 3  # leaves on the right
            top, left = np.clip([y + dy * t, x + dx * t], 0, [34, 54])
            out[v, t, top : top + 6, left : left + 6] = 17
    return out


def test_a_chunks_table_holds_every_window_of_each_video_and_its_mirror() -> None:
    table = chunk_table(sliding_squares(2, 0), CFG)
    windows = 2 * 2 * len(range(-(CFG.frames_out // 2), CFG.frames_in))  # videos, mirror
    assert len(table.features) <= 2 * windows and len(table.features) > windows
    assert table.target is not None and table.target.shape[1:] == (CFG.frames_out, 2)
    assert torch.equal(concat_tracks([table]).features, table.features)


@pytest.mark.slow
def test_workers_read_the_same_table_in_the_same_order() -> None:
    chunks = [sliding_squares(3, seed) for seed in range(2 * AHEAD + 1)]  # more than in flight
    here = list(tables(chunks, CFG, workers=0))
    there = list(tables(iter(chunks), CFG, workers=2))
    assert len(here) == len(there) == len(chunks)
    for a, b in zip(here, there, strict=True):
        for name in Tracks._fields:
            assert torch.equal(getattr(a, name), getattr(b, name)), name


@pytest.mark.slow
def test_a_reader_that_dies_ends_in_one_clear_error() -> None:
    chunks = [sliding_squares(3, seed) for seed in range(4 * AHEAD + 2)]
    read = tables(iter(chunks), CFG, workers=2)
    next(read)  # the pool is up, more chunks in flight
    for child in multiprocessing.active_children():  # killed, as the kernel kills for memory
        os.kill(child.pid, signal.SIGKILL)
    with pytest.raises(TrainError, match="died .* fewer --workers"):
        list(read)
