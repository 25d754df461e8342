"""Batch memory for the loader: reused uint8 buffers in workers, reused float32 outputs.

Workers decode PNGs straight into a uint8 (B, T, H, W, C) buffer, in shared memory when the
worker is a separate process, so handing the batch to the main process copies nothing. The main
process converts it once to float32 (B, T, C, H, W) in [0, 1] and then `release`s the buffer
so the worker can reuse it. Both sides reuse their arrays: a fresh 40 MB array per batch costs
as much in page faults as the conversion itself on this kind of VM.

For a GPU (`DeviceBatches`) the uint8 batch goes to the device as it is (4x fewer bytes than
float32), through a pinned host buffer so the copy runs asynchronously, and is converted there.
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


def frames_to_float(frames: torch.Tensor | np.ndarray, out: torch.Tensor | None = None):
    """uint8 frames (..., H, W, C) -> float32 (..., C, H, W) in [0, 1], on the frames' device:
    each value / 255, rounded once in float32. The one scaling of every frame the project
    reads (loaders, stores, the Python API). On the CPU one numpy pass (the transpose rides
    along with the cast; numpy's cast is ~4x torch's); elsewhere on the device. `out`: a
    float32 tensor of the result's shape to write into (returned)."""
    on_host = isinstance(frames, np.ndarray) or frames.device.type == "cpu"
    u8 = frames if isinstance(frames, np.ndarray) or not on_host else frames.numpy()
    if u8.dtype != (np.uint8 if on_host else torch.uint8):
        raise ValueError(f"frames must be uint8, got {frames.dtype}")
    if on_host:
        src = np.moveaxis(u8, -1, -3)  # (..., C, H, W), a strided view
        dst = np.empty(src.shape, np.float32) if out is None else out.numpy()  # C order
        np.divide(src, np.float32(255), out=dst, dtype=np.float32)
        return out if out is not None else torch.from_numpy(dst)
    src = frames.movedim(-1, -3)  # (..., C, H, W)
    if out is None:
        out = torch.empty(src.shape, dtype=torch.float32, device=frames.device)
    out.copy_(src)  # the cast and the transpose
    return out.div_(255)


def to_float(frames: torch.Tensor | None, buffers: FloatBuffers | None = None):
    """uint8 (B, T, H, W, C) -> float32 (B, T, C, H, W) in [0, 1] (`frames_to_float`), into
    one of `buffers` when given."""
    if frames is None:
        return None
    b, t, h, w, c = frames.shape
    out = torch.from_numpy(buffers.get((b, t, c, h, w))) if buffers else None
    return frames_to_float(frames, out)


class DeviceBatches:
    """uint8 (B, T, H, W, C) host batches -> float32 (B, T, C, H, W) in [0, 1] on `device`,
    converted there.

    On CUDA each batch is first copied into a pinned host buffer (after which the worker's
    buffer may be released) and sent with an asynchronous copy. The pinned buffers are reused
    in turn, and one is refilled only once the copy that read it has finished (a CUDA event
    recorded after the copy), never while it is in flight. On other devices the copy is a
    plain synchronous one."""

    def __init__(self, device: torch.device, keep: int = 3) -> None:
        self.device, self.keep = device, keep
        self.pinned = device.type == "cuda"
        self.staged: dict[tuple[int, ...], list[list]] = {}  # shape -> [[buffer, event]]
        self.turn: dict[tuple[int, ...], int] = {}

    def _stage(self, frames: torch.Tensor) -> torch.Tensor:
        """`frames` on `device`, as uint8 (copied through a pinned buffer on CUDA)."""
        if not self.pinned:
            return frames.to(self.device, copy=True)
        shape = tuple(frames.shape)
        ring = self.staged.setdefault(shape, [])
        turn = self.turn.get(shape, 0)
        self.turn[shape] = (turn + 1) % self.keep
        if turn == len(ring):
            ring.append([torch.empty(shape, dtype=torch.uint8, pin_memory=True), None])
        entry = ring[turn]
        if entry[1] is not None:
            entry[1].synchronize()  # the last copy out of this buffer is done
        entry[0].copy_(frames)
        on_device = entry[0].to(self.device, non_blocking=True)
        entry[1] = torch.cuda.Event()
        entry[1].record()
        return on_device

    def to_float(self, frames: torch.Tensor | None) -> torch.Tensor | None:
        """The batch, float32 (B, T, C, H, W) in [0, 1] on the device; `frames` may be reused
        once this returns."""
        if frames is None:
            return None
        return frames_to_float(self._stage(frames))  # (B, T, C, H, W)
