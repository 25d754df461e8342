"""The Python API: `load_checkpoint(path) -> Model`, `Model.predict(array)`, `read_video(folder)`.

Arrays go in and come out as numpy, in the layout of the files (frames (T, H, W, C) uint8, class
masks (T, H, W)); the model runs in batches under the project's precision policy
(`runtime.device.resolve_precision`), on the device given (default: CUDA when present).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from convrnn_video.infer.errors import InferError

FRAME_NAME = re.compile(r"image_(\d+)\.png")


def read_video(folder: str | Path) -> np.ndarray:
    """The frames `image_0.png`, `image_1.png`, ... of a video folder in numeric order (never
    text order: image_10 comes after image_9) -> uint8 (T, H, W, C), C = 3 (RGB) or 1."""
    from PIL import Image

    folder = Path(folder)
    if not folder.is_dir():
        raise InferError(f"{folder} is not a folder of PNG frames")
    numbered = {}
    for path in folder.iterdir():
        match = FRAME_NAME.fullmatch(path.name)
        if match:
            numbered[int(match.group(1))] = path
    if not numbered:
        raise InferError(f"{folder} holds no image_<n>.png frames")
    missing = [t for t in range(max(numbered) + 1) if t not in numbered]
    if missing:
        raise InferError(
            f"{folder}: frame(s) image_{missing[0]}.png missing (of 0..{max(numbered)})"
        )
    frames = []
    for t in range(len(numbered)):
        with Image.open(numbered[t]) as image:
            if image.mode not in ("RGB", "L"):
                raise InferError(f"{numbered[t]}: mode {image.mode}, expected RGB or L")
            array = np.asarray(image)
        frames.append(array if array.ndim == 3 else array[..., None])
    shapes = {f.shape for f in frames}
    if len(shapes) > 1:
        raise InferError(f"{folder}: frames of different sizes {sorted(shapes)}")
    return np.stack(frames)  # (T, H, W, C)


class Model:
    """A trained model of any task, ready to predict from numpy arrays.

    - frames (the RGB forecaster): `predict(frames)` uint8 (T, H, W, C) or (B, T, H, W, C)
      -> uint8 (T_out, H, W, C) or (B, T_out, H, W, C).
    - masks (the mask forecaster): `predict(masks)` class ids (T, H, W) or (B, T, H, W)
      -> uint8 class ids (T_out, H, W) or (B, T_out, H, W).
    - segment (the segmenter): `predict(frames)` uint8 (..., H, W, C) -> uint8 class ids
      (..., H, W), any number of leading axes.

    The T frames given are the observed ones: the model reads the last `frames_in` of them and
    predicts the `frames_out` frames that follow them, the rule `python cli.py predict` follows
    too (`predict(video[:11])` is what it stores for a course video: frames 12, 13, ...).

    Each video is predicted in a forward pass of its own (a segmenter: each (T, H, W, C)
    video, or a single frame), so a video's result never depends on what else is in the
    batch: the kernels a CPU library picks, and so the last bit of rounding, can depend on the
    batch size.
    """

    def __init__(self, module: torch.nn.Module, config: Any, task: str, device, precision: str):
        self.module, self.config, self.task = module, config, task
        self.device, self.precision = device, precision

    def __repr__(self) -> str:
        return f"Model(task={self.task!r}, device={self.device}, precision={self.precision!r})"

    @torch.inference_mode()
    def predict(self, x: np.ndarray) -> np.ndarray:
        """See the class docstring for the shapes of each task."""
        x = np.asarray(x)
        try:
            return self._predict(x)
        except (ValueError, RuntimeError) as exc:  # the model's own check of what it reads
            raise InferError(f"cannot predict from an array of shape {x.shape}: {exc}") from None

    def _predict(self, x: np.ndarray) -> np.ndarray:
        if self.task == "segment":
            return self._segment(x)
        single = x.ndim == (4 if self.task == "frames" else 3)
        batch = x[None] if single else x
        want = 5 if self.task == "frames" else 4
        if batch.ndim != want:
            layout = "(T, H, W, C)" if self.task == "frames" else "(T, H, W) class ids"
            raise InferError(f"a {self.task} model predicts from {layout} arrays (or a batch of "
                             f"them), got shape {x.shape}")  # fmt: skip
        fi = int(self.config.frames_in)
        if batch.shape[1] < fi:
            raise InferError(f"the model reads {fi} frames, got {batch.shape[1]}")
        # the last frames_in observed frames are the input (infer.plan.frame_plan's rule)
        out = np.concatenate([self._forecast(batch[i : i + 1, -fi:]) for i in range(len(batch))])
        return out[0] if single else out

    def _forecast(self, chunk: np.ndarray) -> np.ndarray:
        from convrnn_video.runtime.device import autocast

        with autocast(self.precision, self.device, warn=False):
            if self.task == "frames":
                x = _unit(chunk).to(self.device)  # (B, T, C, H, W)
                pred = self.module(x)  # (B, T_out, C, H, W)
                pred = pred.float().clamp(0, 1).permute(0, 1, 3, 4, 2)  # (B, T_out, H, W, C)
                return (pred * 255).round().to(torch.uint8).cpu().numpy()
            ids = torch.from_numpy(chunk.astype(np.int64)).to(self.device)  # (B, T, H, W)
            return self.module(ids).float().argmax(2).to(torch.uint8).cpu().numpy()

    def _segment(self, x: np.ndarray) -> np.ndarray:
        from convrnn_video.runtime.device import autocast
        from convrnn_video.segment.apply import segment_frames

        if x.ndim < 3:
            raise InferError(f"a segmenter reads (..., H, W, C) frames, got shape {x.shape}")
        lead, (h, w) = x.shape[:-3], x.shape[-3:-1]
        # (N, T, H, W, C): one video (or a lone frame) per forward pass (segment_frames)
        videos = x.reshape(-1, *x.shape[-4:]) if x.ndim >= 4 else x[None, None]
        context = autocast(self.precision, self.device, warn=False)
        out = [segment_frames(self.module, _unit(video[None]), context)[0] for video in videos]
        ids = torch.stack(out).to(torch.uint8).cpu().numpy()  # (N, T, H, W)
        return ids.reshape(*lead, h, w)


def _unit(frames: np.ndarray) -> torch.Tensor:
    """Frames (..., H, W, C), uint8 in 0..255 (`frames_to_float`) or floats already in [0, 1]
    -> float32 (..., C, H, W) in [0, 1]."""
    from convrnn_video.shards.buffers import frames_to_float

    if frames.dtype == np.uint8:
        return frames_to_float(frames)
    return torch.from_numpy(frames.astype(np.float32)).movedim(-1, -3)


def load_checkpoint(
    path: str | Path, device: str | torch.device = "auto", precision: str = "auto"
) -> Model:
    """A checkpoint (`best.pt`, `last.pt`, or a run folder) as a `Model` on `device` ("auto":
    CUDA when present), predicting in `precision` ("auto": bf16 where the device computes bf16
    natively, else float32)."""
    from convrnn_video.runtime.checkpoint import checkpoint_task, load_model
    from convrnn_video.runtime.device import resolve_precision
    from convrnn_video.runtime.errors import RunError
    from convrnn_video.runtime.runs import find_checkpoint

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(device)
    try:
        ckpt = find_checkpoint(path)
        module, config, payload = load_model(ckpt, device)
        return Model(module, config, checkpoint_task(payload), device,
                     resolve_precision(precision, device))  # fmt: skip
    except (RunError, ValueError) as exc:
        raise InferError(str(exc)) from None
