"""Batch memory for the loader: reused uint8 buffers in workers, reused float32 outputs.

Workers decode PNGs straight into a uint8 (B, T, H, W, C) buffer, in shared memory when the
worker is a separate process, so handing the batch to the main process copies nothing. The main
process converts it once to float32 (B, T, C, H, W) in [0, 1] and then `release`s the buffer
so the worker can reuse it. Both sides reuse their arrays: a fresh 40 MB array per batch costs
as much in page faults as the conversion itself on this kind of VM.
"""

from __future__ import annotations

import sys

import numpy as np
import torch


def _alloc(size: int, shared: bool) -> torch.Tensor:
    """`size` uninitialised bytes; in shared memory when `shared` (a loader worker), so that
    handing a batch to the main process copies nothing."""
    if shared:
        try:
            return torch.empty(0, dtype=torch.uint8).set_(torch.UntypedStorage._new_shared(size))
        except (AttributeError, RuntimeError):  # private API gone: the DataLoader copies
            pass
    return torch.empty(size, dtype=torch.uint8)


class BufferRing:
    """uint8 batch buffers that a worker reuses instead of faulting in fresh pages per batch.

    Each buffer ends in an in-use byte: set here when the buffer is handed out, cleared by the
    main process (`release`) once it has converted the batch to float. The uint8 batch never
    leaves VideoLoader, so nothing else can still be reading a buffer that is reused.
    """

    def __init__(self, shared: bool, keep: int = 8) -> None:
        self.shared, self.keep = shared, keep
        self.buffers: list[tuple[torch.Tensor, np.ndarray]] = []

    def get(self, shape: tuple[int, ...]) -> tuple[torch.Tensor, np.ndarray]:
        n = int(np.prod(shape))
        for flat, raw in self.buffers:
            if flat.numel() == n + 1 and raw[n] == 0:
                break
        else:
            flat = _alloc(n + 1, self.shared)
            raw = flat.numpy()
            if len(self.buffers) < self.keep:
                self.buffers.append((flat, raw))
        raw[n] = 1
        tensor = flat[:n].view(shape)
        return tensor, tensor.numpy()


def release(frames: torch.Tensor | None) -> None:
    """Clear the in-use byte at the end of `frames`' storage (see BufferRing)."""
    if frames is not None:
        torch.empty(0, dtype=torch.uint8).set_(frames.untyped_storage())[-1] = 0


class FloatBuffers:
    """float32 output arrays reused once no tensor refers to them any more.

    An array is free when only this pool refers to it: any tensor made from it (or a view of
    one) holds a reference, so a batch the caller still uses is never overwritten.
    """

    def __init__(self, keep: int = 2) -> None:
        self.keep = keep
        self.arrays: list[np.ndarray] = []

    def get(self, shape: tuple[int, ...]) -> np.ndarray:
        for array in self.arrays:
            fits = array.shape[1:] == shape[1:] and array.shape[0] >= shape[0]
            # 3 references: self.arrays, `array`, getrefcount's argument: nobody else
            if fits and sys.getrefcount(array) == 3:
                return array[: shape[0]]
        array = np.empty(shape, np.float32)
        if len(self.arrays) < self.keep:
            self.arrays.append(array)
        return array


def to_float(frames: torch.Tensor | None, buffers: FloatBuffers | None = None):
    """uint8 (B, T, H, W, C) -> float32 (B, T, C, H, W) in [0, 1], in one numpy pass (the
    transpose rides along with the cast; numpy's cast is ~4x torch's on CPU)."""
    if frames is None:
        return None
    src = frames.numpy().transpose(0, 1, 4, 2, 3)  # (B, T, C, H, W), a strided view
    out = buffers.get(src.shape) if buffers else np.empty(src.shape, np.float32)
    np.divide(src, np.float32(255), out=out, dtype=np.float32)
    return torch.from_numpy(out)
