"""The motion output of a frames model (`ModelConfig.motion`): what is seen moves, it is not
redrawn.

Beside its residual, the head gives per future frame a displacement d_k on the recurrent grid
(2 channels, in grid cells; its conv starts at zero, so a new model copies the last frame).
The displacements accumulate into where each pixel of frame k comes from in the last observed
frame, D_k(x) = d_k(x) + D_{k-1}(x + d_k(x)) (a backward flow composed on the grid, where it is
smooth), and each predicted frame samples the last observed frame once along D_k, upsampled to
full resolution. Sampling once keeps moving objects sharp: a frame warped from the previous
prediction would be resampled k times and blur like the pixel heads' fading.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

FLOW_CHANNELS = 2  # (dx, dy) in grid cells


def build_flow_head(in_ch: int) -> nn.Conv2d:
    """3x3 conv from the forecaster's bottom output to a displacement, zero-initialised."""
    conv = nn.Conv2d(in_ch, FLOW_CHANNELS, 3, padding=1)
    nn.init.zeros_(conv.weight)
    nn.init.zeros_(conv.bias)
    return conv


def base_grid(h: int, w: int, like: Tensor) -> Tensor:
    """Pixel centres of an (h, w) image in grid_sample's [-1, 1] coordinates: (1, h, w, 2)."""
    ys = (torch.arange(h, device=like.device, dtype=like.dtype) + 0.5) * (2 / h) - 1
    xs = (torch.arange(w, device=like.device, dtype=like.dtype) + 0.5) * (2 / w) - 1
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([gx, gy], -1).unsqueeze(0)  # (1, h, w, 2), (x, y) last


def sample(image: Tensor, flow: Tensor, mode: str = "bilinear") -> Tensor:
    """image (N, C, H, W) sampled at x + flow(x): flow (N, 2, H, W) in pixels of image
    (channel 0 along the width). Outside the image: the nearest border pixel."""
    n, _, h, w = flow.shape
    scale = flow.new_tensor([2 / w, 2 / h]).view(1, 2, 1, 1)
    grid = base_grid(h, w, flow) + (flow * scale).permute(0, 2, 3, 1)  # (N, H, W, 2)
    return F.grid_sample(image, grid, mode=mode, padding_mode="border", align_corners=False)


def accumulate(step: Tensor, total: Tensor | None) -> Tensor:
    """D_k = d_k + D_{k-1} sampled at x + d_k: step, total (N, 2, h, w) in grid cells."""
    if total is None:
        return step
    return step + sample(total, step)


def warp_from(anchor: Tensor, total: Tensor, mode: str = "bilinear") -> Tensor:
    """The anchor frame (N, C, H, W) sampled once along the accumulated grid displacement
    total (N, 2, h, w), upsampled to the frame in pixels."""
    scale = anchor.shape[-1] // total.shape[-1]
    flow = F.interpolate(total, size=anchor.shape[-2:], mode="bilinear", align_corners=False)
    return sample(anchor, flow * scale, mode)  # (N, C, H, W)


def carry_mask(mask: Tensor, motion: Tensor) -> Tensor:
    """A mask moved along a frames model's motion: class ids (N, H, W) of the last observed
    frame and the accumulated displacement of each predicted frame (N, T, 2, h, w), from
    forward(return_motion=True) -> class ids (N, T, H, W), each frame sampled once from the
    mask by its nearest pixel, so ids stay ids (nothing blends two classes)."""
    n, t = motion.shape[:2]
    ids = mask.to(motion.dtype).unsqueeze(1).repeat_interleave(t, 0)  # (N * T, 1, H, W)
    moved = warp_from(ids, motion.flatten(0, 1), mode="nearest")  # (N * T, 1, H, W)
    return moved.round().to(mask.dtype).view(n, t, *mask.shape[-2:])
