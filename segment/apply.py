"""Frames -> class ids with a segmenter: the one way every command segments (label stores,
segment and masks validation, predict, evaluate's baselines, the Python API).

The rule, so that all of them give the same masks for the same checkpoint and frames:

- one video's frames per forward pass, so a video's masks never depend on the other videos
  of the batch (a convolution's rounding can depend on how many images share a pass, and an
  unsure segmenter has near-ties);
- each frame's classes made whole objects (`segment.objects.whole_objects`: a fragment of an
  object takes the object's main class), unless the caller asks for the raw argmax;
- under the precision the caller resolved once for its whole command (an autocast context,
  `runtime.device.autocast(resolve_precision(...))`; None: float32), the same context as the model
  beside it; the class is the argmax of the float32 logits.

The masks the track forecaster reads (`segment_for_tracks`: predict's input masks for it, and
the benchmarks that score it) are made with two more steps, each measured on generated val
(docs/benchmarks.md, "The track forecaster's input masks"): the class of each pixel from the
mean of the probabilities for the frame and for its mirror image (`mirror`, twice the
segmenter's work), and the last frame's pieces given back the class the segmenter gave them
just before (`segment.objects.steady_last`).

Frames come in as float in [0, 1]; uint8 frames are scaled by `shards.buffers.frames_to_float`
(this file imports only torch). Imports only torch.
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch

from .objects import RULE, steady_last, whole_objects


def track_rule(mirror: bool) -> str:
    """What a prediction store records as the rule of the masks its track forecaster read."""
    return f"{RULE}{', mirror-averaged' if mirror else ''}, the last frame steadied"


def seen_classes(ids: torch.Tensor, num_classes: int) -> torch.Tensor:
    """(B, K) bool: background and every class present in each video's class ids (B, ...)."""
    b = ids.shape[0]
    seen = torch.zeros(b, num_classes, dtype=torch.bool, device=ids.device)
    seen.scatter_(1, ids.reshape(b, -1).long(), True)  # (B, K)
    seen[:, 0] = True
    return seen


def pick_classes(logits: torch.Tensor, allowed: torch.Tensor | None = None) -> torch.Tensor:
    """Class ids (N, H, W) int64 of logits (N, K, H, W), compared in float32; with `allowed`
    (K,) bool, only among those classes."""
    logits = logits.float()
    if allowed is not None:
        logits = logits.masked_fill(~allowed.view(1, -1, 1, 1), float("-inf"))
    return logits.argmax(1)


@torch.no_grad()
def segment_frames(
    model: torch.nn.Module,
    frames: torch.Tensor,
    autocast: contextlib.AbstractContextManager[Any] | None = None,
    allowed: torch.Tensor | None = None,
    whole: bool = True,
    mirror: bool = False,
) -> torch.Tensor:
    """Class ids (B, T, H, W) int64, on the segmenter's device, of float frames (B, T, C, H, W)
    in [0, 1] (anywhere: each video is moved to the segmenter's device in turn).

    `autocast`: the caller's precision context, entered around each forward pass (None:
    float32). `allowed`: (B, K) bool, the classes each video's masks may hold (`seen_classes`
    of its input masks; None: every class). `whole`: fragments take their object's main class
    (`whole_objects`; False: the argmax as it is). The model must be in eval mode."""
    if frames.dim() != 5:
        raise ValueError(f"frames must be (B, T, C, H, W), got shape {tuple(frames.shape)}")
    if not frames.is_floating_point():
        raise ValueError(f"frames must be float in [0, 1], got {frames.dtype}")
    device = next(model.parameters()).device
    context = autocast if autocast is not None else contextlib.nullcontext()
    out = []
    for i, video in enumerate(frames):  # one video per forward pass
        with context:
            logits = model(video.to(device))  # (T, K, H, W)
            if mirror:
                flipped = model(video.to(device).flip(-1)).flip(-1)
        if mirror:  # the log of the mean probability: its argmax is the mean's
            logits = ((logits.float().softmax(1) + flipped.float().softmax(1)) / 2).log()
        ids = pick_classes(logits, None if allowed is None else allowed[i].to(device))  # (T, H, W)
        out.append(whole_objects(ids, logits.shape[1]) if whole else ids)
    if not out:  # no video
        return torch.zeros(0, frames.shape[1], *frames.shape[-2:], dtype=torch.long, device=device)
    return torch.stack(out)  # (B, T, H, W)


def segment_for_tracks(
    model: torch.nn.Module,
    frames: torch.Tensor,
    autocast: contextlib.AbstractContextManager[Any] | None = None,
    mirror: bool = True,
) -> torch.Tensor:
    """Class ids (B, T, H, W) int64 of float frames (B, T, C, H, W) in [0, 1] for the track
    forecaster (module docstring): `segment_frames` (with `mirror`), then `steady_last`."""
    ids = segment_frames(model, frames, autocast, mirror=mirror)
    return steady_last(ids, int(model.cfg.num_classes))
