"""convrnn-video as a library: load a trained checkpoint and predict from arrays or PNG folders.

    from convrnn_video import load_checkpoint, read_video

    model = load_checkpoint("runs/20261129-120000/best.pt")   # any task: frames, masks, segment
    frames = read_video("data/hidden/video_15000")           # uint8 (T, H, W, C), numeric order
    future = model.predict(frames)                             # uint8 (T_out, H, W, C)

Nothing here changes process-wide settings (threads, allocator, logging handlers).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

# The stages are subpackages (convrnn_video.train, convrnn_video.infer, ...) whose folders sit
# at the top of the repository; an installed copy holds them inside this package instead.
_CLONE = Path(__file__).resolve().parent.parent
if (_CLONE / "convrnn" / "forecaster.py").is_file() and (_CLONE / "train" / "loop.py").is_file():
    __path__.append(str(_CLONE))

__all__ = ["Model", "PipelineError", "load_checkpoint", "read_video"]


def __getattr__(name: str) -> Any:  # imported on first use: `import convrnn_video` stays light
    if name in ("Model", "load_checkpoint", "read_video"):
        from convrnn_video import api

        return getattr(api, name)
    if name == "PipelineError":
        from convrnn_video.errors import PipelineError

        return PipelineError
    raise AttributeError(f"module 'convrnn_video' has no attribute {name!r}")
