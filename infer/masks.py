"""Frames -> class-id masks with a segmenter checkpoint (predict --segmenter, evaluate).

Masks are always computed from uint8 frames (the store's, or the shards'), scaled to [0, 1]
the same way, in float32, one video's frames per forward pass: a store's masks are exactly the
segmenter's argmax on each video's stored frames, whatever the batch size (a convolution's
rounding can depend on how many images share a pass, and an unsure segmenter has near-ties),
so a resumed run writes the same masks and anyone can recompute them from the store. (Another
thread count can round differently too: ranks of a torchrun share the cores, and may flip a
rare near-tie pixel against a single-process run.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from convrnn_video.infer.errors import InferError
from convrnn_video.runtime.checkpoint import load_model
from convrnn_video.runtime.errors import RunError


def load_segmenter(path: str | Path, device: torch.device) -> tuple[torch.nn.Module, Any, dict]:
    """(segmenter in eval mode, SegConfig, payload); a checkpoint of another task (a frame
    model) is a one-line InferError."""
    try:
        return load_model(path, device, task="segment")
    except RunError as exc:
        raise InferError(f"--segmenter: {exc}") from None


def u8_to_float(frames: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 (..., H, W, 3) -> float32 (..., 3, H, W) in [0, 1]."""
    u8 = torch.as_tensor(frames)
    return u8.movedim(-1, -3).float().div_(255)  # (..., 3, H, W)


@torch.inference_mode()
def segment(model: torch.nn.Module, frames: torch.Tensor) -> torch.Tensor:
    """uint8 class ids (B, T, H, W) of float frames (B, T, 3, H, W) in [0, 1]: the T frames of
    one video per forward pass, on the segmenter's device."""
    device = next(model.parameters()).device
    ids = [model(video.to(device)).argmax(1).to(torch.uint8).cpu() for video in frames]
    return torch.stack(ids)  # (B, T, H, W)


def segment_u8(model: torch.nn.Module, frames: np.ndarray) -> np.ndarray:
    """uint8 class ids (B, T, H, W) of the store's uint8 frames (B, T, H, W, 3)."""
    return segment(model, u8_to_float(frames)).numpy()
