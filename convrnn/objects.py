"""Predicted frames with the objects of the last input frame moved as wholes.

A frame model trained with a pixel loss fades what moves: where an object's next place is
uncertain, pulling background over it costs less than drawing it at a wrong place (measured in
docs/benchmarks.md; no loss term tried removed it). The track forecaster (`convrnn.tracks`)
already says where each object of the last input mask goes, and moves it as a whole. This
module moves the object's pixels with it: every pixel of a forecast mask that belongs to an
object is copied from the last input frame at that object's displacement, so an object stays
as sharp in frame 22 as in frame 11. Where an object stood in the last input frame and has
left, the floor it uncovered (with the object's edge, `MARGIN`) is taken from the latest input
frame that showed floor there (`background_memory`); every other pixel (the floor, what
enters) is the frame model's.

Pure torch, no I/O (a models-floor module); one layout, (B, T, C, H, W).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .extrapolate import class_centroids

# Pixels within MARGIN px of an object do not count as floor: a mask leaves out an object's
# blended edge, which would otherwise stay behind as an outline where the object left. On 50
# generated val videos (benchmarks/object_frames.py's setup) 1 px lifted SSIM from 0.9482 to
# 0.9514 at the same MSE; 2 px gave 0.9511.
MARGIN = 1


def floor_pixels(ids: Tensor, margin: int = MARGIN) -> Tensor:
    """(B, T, H, W) bool: where class ids (B, T, H, W) show floor (0) with no object within
    `margin` pixels."""
    objects = (ids > 0).flatten(0, 1)[:, None].float()  # (B*T, 1, H, W)
    if margin > 0:
        objects = F.max_pool2d(objects, 2 * margin + 1, stride=1, padding=margin)
    return (objects[:, 0] == 0).view(ids.shape)


def background_memory(frames: Tensor, floor: Tensor) -> Tensor:
    """(B, C, H, W): each pixel from the latest of the input frames (B, T, C, H, W) that shows
    floor there (`floor` (B, T, H, W), from `floor_pixels`); the last frame where none does."""
    memory = frames[:, -1].clone()  # (B, C, H, W)
    found = floor[:, -1].clone()  # (B, H, W)
    for t in range(frames.shape[1] - 2, -1, -1):
        take = ~found & floor[:, t]  # (B, H, W)
        memory = torch.where(take[:, None], frames[:, t], memory)
        found |= take
    return memory


def objects_moved(
    frames: Tensor,
    ids: Tensor,
    moved: Tensor,
    shift: Tensor,
    base: Tensor,
    scale: Tensor | None = None,
) -> Tensor:
    """The predicted frames (B, T_out, C, H, W) with the last input frame's objects moved.

    frames: input frames (B, T_in, C, H, W); ids: their class ids (B, T_in, H, W), 0 the floor;
    moved: the forecast class ids (B, T_out, H, W) (`TrackForecaster.moved`); shift: the whole
    pixel displacement (B, K, T_out, 2) as (row, column) that moved class k's pixels there;
    base: the frame model's prediction (B, T_out, C, H, W), kept wherever no object is;
    scale: (B, K, T_out) the size each object was drawn at (`TrackForecaster.scales`), so its
    pixels are read back through the same scaling about its centroid; None: its own size.
    """
    b, t_out, h, w = moved.shape
    c = frames.shape[2]
    last = frames[:, -1].to(base.dtype)  # (B, C, H, W)
    # under the last input frame's objects (and their edges), the floor they may uncover
    floor = floor_pixels(ids)  # (B, T_in, H, W)
    memory = background_memory(frames, floor).to(base.dtype)  # (B, C, H, W)
    vacated = ~floor[:, -1][:, None, None]  # (B, 1, 1, H, W)
    out = torch.where(vacated, memory[:, None], base)  # (B, T_out, C, H, W)
    # each object pixel's source in the last input frame: its class's displacement back
    cls = moved.long().flatten(2)  # (B, T_out, H*W)
    by_step = shift.long().transpose(1, 2)  # (B, T_out, K, 2)
    step = by_step.gather(2, cls[..., None].expand(-1, -1, -1, 2))  # (B, T_out, H*W, 2)
    rows = torch.arange(h, device=moved.device).repeat_interleave(w)  # (H*W,)
    cols = torch.arange(w, device=moved.device).repeat(h)
    if scale is None:
        src_r, src_c = rows - step[..., 0], cols - step[..., 1]
    else:  # back through the scaling about the moved centroid to the nearest source pixel
        centre = class_centroids(ids[:, -1].long(), shift.shape[1], torch.float64)[0]
        at = centre.flip(-1)[:, None].expand(-1, t_out, -1, -1)  # (B, T_out, K, 2) row, col
        grow = scale.transpose(1, 2).double()  # (B, T_out, K)
        mid = at.gather(2, cls[..., None].expand(-1, -1, -1, 2))  # (B, T_out, H*W, 2)
        s = grow.gather(2, cls)  # (B, T_out, H*W)
        src_r = (mid[..., 0] + (rows - step[..., 0] - mid[..., 0]) / s).round().long()
        src_c = (mid[..., 1] + (cols - step[..., 1] - mid[..., 1]) / s).round().long()
    src_r, src_c = src_r.clamp(0, h - 1), src_c.clamp(0, w - 1)
    source = (src_r * w + src_c).view(b, 1, t_out * h * w).expand(-1, c, -1)  # (B, C, T*H*W)
    pixels = last.flatten(2).gather(2, source).view(b, c, t_out, h, w).transpose(1, 2)
    return torch.where((moved > 0)[:, :, None], pixels, out)  # (B, T_out, C, H, W)
