"""One batch of input frames -> the arrays a prediction store holds (`predict_batch`): a frame
model's frames, a mask forecaster's masks, the segmenter's masks of predicted frames, a motion
output's displacement, and with a track forecaster the objects moved as wholes. `BatchRun`
holds what that needs; `infer.predict` loads it and feeds the batches."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from convrnn_video.convrnn.masks import restrict_to_seen
from convrnn_video.segment.apply import seen_classes, segment_for_tracks, segment_frames
from convrnn_video.shards.buffers import frames_to_float


def to_uint8(pred: torch.Tensor) -> np.ndarray:
    """(B, T, C, H, W) float in [0, 1] -> (B, T, H, W, C) uint8, the store's layout."""
    u8 = (pred.clamp(0, 1) * 255).round_().to(torch.uint8)
    return u8.permute(0, 1, 3, 4, 2).contiguous().cpu().numpy()  # (B, T, H, W, C)


@dataclass
class BatchRun:
    """What predicting one batch needs."""

    model: torch.nn.Module  # the frame model or mask forecaster, in eval mode
    model_cfg: Any  # its ModelConfig
    segmenter: torch.nn.Module | None  # None: no masks (frame model only)
    autocast: Any  # the autocast context of the resolved precision (runtime.device.autocast)
    relabel: bool  # keep only classes the segmenter found in the input frames
    device: torch.device
    motion: bool = False  # also return the motion head's displacement, in pixels
    tracks: torch.nn.Module | None = None  # a track forecaster: objects move as wholes
    mirror: bool = True  # a track forecaster's input masks mirror-averaged (PredictConfig.mirror)


def reads_tracks(tracks_given: bool, model_cfg: Any) -> bool:
    """Whether a track forecaster reads the segmenter's masks (so they are made by
    `segment_for_tracks`): one given beside a frame model (`--tracks`), or the model itself."""
    return tracks_given or model_cfg.forecast == "tracks"


def motion_grid(model_cfg: Any, height: int, width: int) -> tuple[int, int, int]:
    """(h, w, pixels per cell) of a motion model's displacement for frames of this size: the
    patch grid, where the motion head runs (the first stage has stride 1)."""
    p = int(model_cfg.patch)
    return height // p, width // p, p


@torch.inference_mode()
def predict_batch(run: BatchRun, inputs: torch.Tensor) -> tuple[np.ndarray | None, ...]:
    """The store's arrays for one batch of input frames (B, T_in, C, H, W) in [0, 1]:
    (frames (B, T_out, H, W, C) uint8 or None, masks (B, T_out, H, W) uint8 or None, motion
    (B, T_out, 2, h, w) float16 in pixels, or None without `run.motion`). The segmenter runs
    through `segment_frames` (for a track forecaster, `segment_for_tracks`), in the run's
    precision like the model."""
    seen = None  # the segmenter's class ids of the input frames, when needed
    if reads_tracks(run.tracks is not None, run.model_cfg):
        seen = segment_for_tracks(run.segmenter, inputs, run.autocast, run.mirror)  # (B, T, H, W)
    elif run.model_cfg.masks or (run.relabel and run.segmenter is not None):
        seen = segment_frames(run.segmenter, inputs, run.autocast)
    # a mask forecaster reads class ids; its output is (B, T_out, K, H, W) logits, a frame
    # model's (B, T_out, C, H, W) frames in [0, 1]
    x = seen if run.model_cfg.masks else inputs.to(run.device)
    with run.autocast:
        out, moved = run.model(x, return_motion=True)  # moved: (B, T_out, 2, h, w) grid cells
    out, motion = out.float(), None
    if run.motion:
        motion = (moved.float() * run.model_cfg.patch).to(torch.float16).cpu().numpy()
    if run.model_cfg.masks:
        ids = restrict_to_seen(out, seen) if run.relabel else out.argmax(2)  # (B, T_out, H, W)
        return None, ids.to(torch.uint8).cpu().numpy(), motion
    if run.tracks is not None:
        return _with_tracks(run, inputs, seen, out, motion)
    frames = to_uint8(out)  # (B, T_out, H, W, C)
    if run.segmenter is None:
        return frames, None, motion
    # the stored frames, as anyone reading the store gets them back
    stored = frames_to_float(torch.from_numpy(frames))  # (B, T_out, C, H, W)
    allowed = None
    if seen is not None:  # only the classes found in the input frames
        allowed = seen_classes(seen, int(run.segmenter.cfg.num_classes))  # (B, K)
    ids = segment_frames(run.segmenter, stored, run.autocast, allowed)  # (B, T_out, H, W)
    return frames, ids.to(torch.uint8).cpu().numpy(), motion


def _with_tracks(run: BatchRun, inputs, seen, out, motion) -> tuple[np.ndarray | None, ...]:
    """`predict_batch`'s arrays with a track forecaster: the frame model's frames `out` with the
    last input frame's objects (the segmenter's ids `seen`) moved as wholes, and the track
    forecaster's masks, the objects' new places (`convrnn.objects`)."""
    moved, shift = run.tracks.forecast(seen)  # (B, T_out, H, W), (B, K, T_out, 2) on the CPU
    frames = run.tracks.frames_moved(inputs.float().cpu(), seen.cpu(), moved, shift, out.cpu())
    return to_uint8(frames), moved.to(torch.uint8).numpy(), motion
