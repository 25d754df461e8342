"""The segmenter of predict --segmenter, evaluate and label, loaded from its checkpoint.

Frames become masks through `segment.apply.segment_frames` alone (one video per forward pass,
in the command's resolved precision): a store's masks are exactly the segmenter's argmax on each
video's stored frames, whatever the batch size, so a resumed run writes the same masks and anyone
can recompute them from the store with the precision it records. (Another thread count can
round differently too: ranks of a torchrun share the cores, and may flip a rare near-tie pixel
against a single-process run.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

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
