"""The track forecaster's training table, read from masks chunk by chunk: every object of every
training window of each video and of its mirror image (`convrnn.track_windows.training_windows`).

Reading is the cost of `train --task tracks` before its first step (the steps read by shape
most of all), and each chunk is read on its own, so `--workers N` reads N chunks at a time in
worker processes (spawned, one thread each), their tables handed back in chunk order: the
table is the same with any number of workers.
"""

from __future__ import annotations

import multiprocessing
import signal
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

import numpy as np
import torch
from convrnn_video.convrnn.config import ModelConfig
from convrnn_video.convrnn.track_reads import Tracks
from convrnn_video.convrnn.track_windows import concat_tracks, training_windows
from convrnn_video.train.errors import TrainError

AHEAD = 2  # chunks in flight per worker: enough to keep each busy, few in memory


def chunk_table(chunk: np.ndarray, cfg: ModelConfig) -> Tracks:
    """The objects (N, ...) of every training window of class ids (B, T, H, W) uint8 and of
    their mirror image, the objects of each window in slot order."""
    parts = [Tracks(*(f[found.present] for f in found))
             for found in training_windows(torch.from_numpy(chunk), cfg)]  # fmt: skip
    return concat_tracks(parts)


def tables(chunks: Iterable[np.ndarray], cfg: ModelConfig, workers: int) -> Iterator[Tracks]:
    """`chunk_table` of each chunk, in order; with workers > 0, read in that many processes (a
    TrainError if one of them dies, e.g. killed for memory)."""
    if workers < 1:
        for chunk in chunks:
            yield chunk_table(chunk, cfg)
        return
    spawn = multiprocessing.get_context("spawn")  # a fork of a process running torch can hang
    try:
        with ProcessPoolExecutor(workers, mp_context=spawn, initializer=_one_thread) as pool:
            pending: deque[Future] = deque()
            for chunk in chunks:
                pending.append(pool.submit(_as_arrays, chunk, cfg))
                if len(pending) >= AHEAD * workers:
                    yield _as_tracks(pending.popleft().result())
            while pending:
                yield _as_tracks(pending.popleft().result())
    except BrokenProcessPool:
        raise TrainError(
            f"a process reading the masks (--workers {workers}) died before its chunk was read, "
            "most likely killed for memory: rerun with fewer --workers (0 reads in this process)"
        ) from None


def _one_thread() -> None:
    """A worker's set-up: one thread; Ctrl-C is the main process's to handle (it stops the
    pool), so a worker does not print a KeyboardInterrupt of its own."""
    torch.set_num_threads(1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _as_arrays(chunk: np.ndarray, cfg: ModelConfig) -> tuple[np.ndarray, ...]:
    """A worker's `chunk_table` as numpy arrays, sent back through a pipe: tensors would go
    through shared memory, which containers often keep small (64 MB in Docker's default)."""
    return tuple(f.numpy() for f in chunk_table(chunk, cfg))


def _as_tracks(arrays: tuple[np.ndarray, ...]) -> Tracks:
    return Tracks(*(torch.from_numpy(a) for a in arrays))
