"""Frames -> class-id masks with a segmenter checkpoint (predict --segmenter, evaluate).

Masks are always computed from uint8 frames (the store's, or the shards'), scaled to [0, 1]
the same way, in float32: a store's masks are exactly the segmenter's argmax on its stored
frames, so anyone can recompute them from the store and a resumed run writes the same masks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from infer.errors import InferError

SEG_FRAMES = 16  # frames per segmenter forward pass


def load_segmenter(path: str | Path, device: torch.device) -> tuple[torch.nn.Module, Any, dict]:
    """(segmenter in eval mode, SegConfig, payload); a checkpoint of another task (a frame
    model) is a one-line InferError."""
    from train.checkpoint import load_model
    from train.errors import TrainError

    try:
        return load_model(path, device, task="segment")
    except TrainError as exc:
        raise InferError(f"--segmenter: {exc}") from None


def u8_to_float(frames: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 (..., H, W, 3) -> float32 (..., 3, H, W) in [0, 1]."""
    u8 = torch.as_tensor(frames)
    return u8.movedim(-1, -3).float().div_(255)  # (..., 3, H, W)


@torch.inference_mode()
def segment(model: torch.nn.Module, frames: torch.Tensor, chunk: int = SEG_FRAMES) -> torch.Tensor:
    """uint8 class ids (B, T, H, W) of float frames (B, T, 3, H, W) in [0, 1], `chunk` frames
    per forward pass on the segmenter's device."""
    b, t = frames.shape[:2]
    flat = frames.reshape(b * t, *frames.shape[2:])  # (B*T, 3, H, W)
    device = next(model.parameters()).device
    ids = [
        model(flat[i : i + chunk].to(device)).argmax(1).to(torch.uint8).cpu()  # (n, H, W)
        for i in range(0, len(flat), chunk)
    ]
    return torch.cat(ids).reshape(b, t, *flat.shape[2:])  # (B, T, H, W)


def segment_u8(model: torch.nn.Module, frames: np.ndarray) -> np.ndarray:
    """uint8 class ids (B, T, H, W) of the store's uint8 frames (B, T, H, W, 3)."""
    return segment(model, u8_to_float(frames)).numpy()
