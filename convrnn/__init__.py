"""ConvLSTM / ConvGRU cells and the encoder-forecaster. Imports only torch, and torch lazily:
`ModelConfig` and the presets are usable without it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .config import ModelConfig
from .presets import PRESETS, get_preset

if TYPE_CHECKING:
    from .forecaster import EncoderForecaster

__all__ = ["PRESETS", "ModelConfig", "build_model", "get_preset"]


def build_model(cfg: ModelConfig, channels_last: bool | None = None) -> EncoderForecaster:
    """The network a config describes (float32 parameters on the CPU); channels_last: the
    convolutions' memory layout (None: the faster one on this machine; the math is the same)."""
    from .forecaster import build_model as _build

    return _build(cfg, channels_last)
