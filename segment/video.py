"""A segmenter over whole videos: every frame's class ids, a bounded number of frames per call.
Imports only torch."""

from __future__ import annotations

import torch

EVAL_CHUNK = 16  # frames per segmenter call (bounds memory, not the result)


@torch.no_grad()
def segment_video_frames(model: torch.nn.Module, frames: torch.Tensor, autocast) -> torch.Tensor:
    """Class ids of every frame: (B, T, C, H, W) float -> (B, T, H, W) int64."""
    b, t = frames.shape[:2]
    flat = frames.flatten(0, 1)  # (B*T, C, H, W)
    out = []
    for lo in range(0, flat.shape[0], EVAL_CHUNK):
        with autocast:
            logits = model(flat[lo : lo + EVAL_CHUNK])  # (n, K, H, W)
        out.append(logits.float().argmax(1))
    return torch.cat(out).view(b, t, *flat.shape[-2:])  # (B, T, H, W)
