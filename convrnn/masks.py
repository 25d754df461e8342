"""The edges of a mask model: class ids -> the encoder's grid, head output -> class logits, and a
prediction fed back as the encoder's grid. Imports only torch.

Layouts, chosen so the full-resolution logits (K = 49 channels) are copied once per frame:
- the encoder reads a frame as the space-to-depth grid (N, E*p*p, h, w), channels ordered
  (embedding channel, i, j) as for frames, from the class-last embedding (N, H, W, E);
- the mask head writes (N, p*p*K, h, w) with channels ordered (i, j, class), so in channels_last
  memory each pixel's K logits are contiguous: the logits come out class-last, (N, H, W, K), and
  the feedback's softmax runs along contiguous memory.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor


def copy_bonus_init(num_classes: int) -> float:
    """The residual bonus that gives the last mask's class probability 0.9 under a zero head."""
    return math.log(9.0 * (num_classes - 1))


def class_last_to_grid(x: Tensor, p: int) -> Tensor:
    """(N, H, W, E) -> the space-to-depth grid (N, E*p*p, h, w), channels (E, i, j), laid out
    channels_last (a view for p = 1)."""
    n, hh, ww, e = x.shape
    h, w = hh // p, ww // p
    blocks = x.reshape(n, h, p, w, p, e).permute(0, 1, 3, 5, 2, 4)  # (N, h, w, E, i, j)
    return blocks.reshape(n, h, w, e * p * p).permute(0, 3, 1, 2)  # (N, E*p*p, h, w)


def ids_to_grid(ids: Tensor, table: Tensor, p: int) -> Tensor:
    """Class ids (N, H, W) (int64) -> their embeddings table[ids] as the grid (N, E*p*p, h, w)."""
    return class_last_to_grid(F.embedding(ids, table), p)  # embedding: (N, H, W, E)


def logits_to_grid(logits: Tensor, table: Tensor, p: int) -> Tensor:
    """Class logits (N, H, W, K) -> their expected embedding softmax(logits) @ table as the grid
    (N, E*p*p, h, w): differentiable, and it keeps the prediction's uncertainty."""
    probs = logits.softmax(-1)  # (N, H, W, K)
    return class_last_to_grid(probs @ table.to(probs.dtype), p)  # (N, H, W, E) -> grid


def head_to_logits(
    raw: Tensor, last: Tensor | tuple[Tensor, Tensor], bonus: Tensor | None, p: int
) -> Tensor:
    """Mask head output (N, p*p*K, h, w), channels (i, j, class) -> class logits (N, H, W, K),
    class last. With a residual `bonus` (a scalar), the logit of each pixel's class in `last`
    (N, H, W), the last observed mask, gets the bonus added; `last` may instead be that mask
    as (classes (N, M), planes (N, M, H, W)) from `present_planes`, moved by a motion head:
    each class gets the bonus times its (soft) share of the pixel."""
    n, c, h, w = raw.shape
    k = c // (p * p)
    blocks = raw.permute(0, 2, 3, 1).reshape(n, h, w, p, p, k).transpose(2, 3)  # (N, h, i, w, j, K)
    # (N, H, W, K): the one copy of the logits (a view of channels_last input for p = 1; NCHW
    # input, on AVX2 CPUs, is copied here)
    logits = blocks.reshape(n, h * p, w * p, k).contiguous()
    if bonus is None:
        return logits
    if isinstance(last, tuple):  # moved planes of the classes present
        classes, planes = last  # (N, M), (N, M, H, W)
        index = classes.view(n, 1, 1, -1).expand(n, h * p, w * p, classes.shape[1])
        share = planes.permute(0, 2, 3, 1).to(logits.dtype)  # (N, H, W, M)
        return logits.scatter_add(-1, index, bonus.to(logits.dtype) * share)
    index = last.unsqueeze(-1)  # (N, H, W, 1): where the bonus goes along the class axis
    # In place: nothing saved for backward reads the head output (a conv's backward needs its
    # input and weight only).
    return logits.scatter_add_(-1, index, bonus.to(logits.dtype).expand(index.shape))


def present_planes(ids: Tensor, num_classes: int) -> tuple[Tensor, Tensor]:
    """Class ids (N, H, W) -> (classes (N, M), planes (N, M, H, W)): the one-hot planes of the
    M classes present (M: the most any image has, a handful of the K), for a motion head to
    move; an image with fewer classes gets all-zero planes. Moving M planes instead of K costs
    M/K of the sampling."""
    n = ids.shape[0]
    ids = ids.long()
    present = torch.zeros(n, num_classes, dtype=torch.bool, device=ids.device)
    present.scatter_(1, ids.flatten(1), True)  # (N, K)
    m = int(present.sum(1).max())  # one host sync per forward
    classes = present.to(torch.uint8).topk(m, dim=1).indices  # (N, M): present ones first
    valid = present.gather(1, classes)  # (N, M)
    planes = (ids.unsqueeze(1) == classes.view(n, m, 1, 1)) & valid.view(n, m, 1, 1)
    return classes, planes.float()


def check_masks(name: str, ids: Tensor, shape: tuple[int, ...] | None, num_classes: int) -> None:
    """ValueError unless `ids` are class ids (B, T, H, W) in 0..num_classes-1 (and of `shape`).

    The range is checked on CPU tensors only: on a GPU reading it back would stall every
    forward until the queued kernels finish, so code that moves masks to a GPU checks them on
    the host first (an id out of range on the GPU still stops the embedding with an error)."""
    if ids.dim() != 4 or ids.is_floating_point() or ids.is_complex() or ids.dtype == torch.bool:
        raise ValueError(
            f"{name} of a mask model must be class ids (B, T, H, W) of an integer dtype, "
            f"got {ids.dtype} {tuple(ids.shape)}"
        )
    if shape is not None and tuple(ids.shape) != shape:
        raise ValueError(f"{name} must be {shape}, got {tuple(ids.shape)}")
    if ids.device.type != "cpu":
        return
    lo, hi = torch.aminmax(ids)
    if lo < 0 or hi >= num_classes:
        raise ValueError(
            f"{name} hold class ids {int(lo)}..{int(hi)}; the model has {num_classes} classes "
            f"(0..{num_classes - 1})"
        )


def restrict_to_seen(logits: torch.Tensor, seen_ids: torch.Tensor) -> torch.Tensor:
    """Class ids from logits (B, T, K, H, W), allowing only background and the classes present
    in `seen_ids` (B, T_in, H, W): an object kind occurs at most once per video, so a class
    never seen in the input frames is usually a mistake. -> (B, T, H, W) int64.

    The rule of `segment.apply.seen_classes` + `pick_classes` (the masks every command makes
    from frames): background always allowed, the logits compared in float32. The models floor
    imports no other stage, so it is restated here; tests/test_segment_apply.py checks that the
    two agree."""
    b, k = logits.shape[0], logits.shape[2]
    seen = torch.zeros(b, k, dtype=torch.bool, device=logits.device)
    seen.scatter_(1, seen_ids.to(logits.device).reshape(b, -1).long(), True)  # (B, K)
    seen[:, 0] = True
    masked = logits.float().masked_fill(~seen.view(b, 1, k, 1, 1), float("-inf"))
    return masked.argmax(2)
