"""What happens to a predicted frame after the head: the optional full-resolution refinement
(`ModelConfig.refine`) and the snapping of sub-level changes (`ModelConfig.still_levels`)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .config import ModelConfig


class Refine(nn.Module):
    """Full-resolution refinement of a predicted frame (`cfg.refine`): 3x3 conv + LeakyReLU
    per entry on [frame, last frame] (6 channels), then a 3x3 conv to a correction added to
    the frame. The last conv starts at zero, so a new model's refinement is the identity."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        in_ch = 2 * cfg.image_channels
        for ch in cfg.refine:
            layers += [nn.Conv2d(in_ch, ch, 3, padding=1), nn.LeakyReLU(cfg.leak)]
            in_ch = ch
        last = nn.Conv2d(in_ch, cfg.image_channels, 3, padding=1)
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
        self.net = nn.Sequential(*layers, last)

    def forward(self, frame: Tensor, base: Tensor) -> Tensor:
        """frame, base (N, C, H, W) -> the refined frame (N, C, H, W) in [0, 1]."""
        return (frame + self.net(torch.cat([frame, base], 1))).clamp(0.0, 1.0)


def build_refine(cfg: ModelConfig) -> Refine | None:
    """The refinement a frames config asks for (None without `cfg.refine`)."""
    return Refine(cfg) if cfg.refine else None


def snap_still(frame: Tensor, base: Tensor, levels: float) -> Tensor:
    """frame with every value that differs from base (same shape) by less than `levels`/255
    set to base's: a change too small to be a real one is no change."""
    if levels <= 0:
        return frame
    return torch.where((frame - base).abs() < levels / 255, base, frame)
