"""The per-frame segmenter: one frame -> 49 class scores per pixel. Imports only torch, and
torch lazily: `SegConfig` and the presets are usable without it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .config import PRESETS, SegConfig, get_preset

if TYPE_CHECKING:
    from .unet import UNet

__all__ = ["PRESETS", "SegConfig", "build_segmenter", "get_preset"]


def build_segmenter(cfg: SegConfig) -> UNet:
    """The network a config describes (float32 parameters on the CPU)."""
    from .unet import build_segmenter as _build

    return _build(cfg)
