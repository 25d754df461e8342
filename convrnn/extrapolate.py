"""A hand-written mask baseline: each object of the last input mask moved along its velocity.

A learned forecaster that cannot beat this has not learned motion. An object is a class id
(the course's 49 classes: 0 is the background, each of 1-48 is one shape, material and colour,
so one object per id in practice). For each object of the last input mask:

- its velocity is the least-squares slope of its centroid (row, column) over the last
  `fit_frames` input masks in which it shows; an object that shows only in the last mask (it
  just entered) has no velocity and stays where it is;
- it slows by `decay` per frame: moved `v * (decay + decay**2 + ... + decay**s)` after s
  steps (decay 1: constant velocity); `decay=None` fits a decay per object from its first
  and last step in the fit window (fit_frames >= 3; clamped to [0, 1]);
- it moves as a whole, by the rounded displacement, so class ids stay ids (no blending);
  pixels moved outside the frame are dropped (objects leave), the hole it leaves is
  background, and objects not in the last mask (entering later) are not predicted;
- objects are drawn far to near: the one whose moved centroid is lower in the image (nearer
  the camera) is drawn last, on top.

Pure torch, no I/O (a models-floor module): a mask forecaster with `mask_base="extrapolate"`
builds on it, `infer/scorer.py` (evaluate) and `benchmarks/mask_quality.py` call it on a
segmenter's masks of the input frames, `benchmarks/extrapolate.py` on true masks.
`class_centroids` is the one centroid-per-class of the torch code: the masks task's tracked
displacement uses it too (float32); ingest/synth/motion.py keeps its own numpy one (the data
floor cannot import this).
"""

from __future__ import annotations

from typing import NamedTuple

import torch

# Chosen with benchmarks/extrapolate.py on 300 generated val videos (true input masks): the
# last step's velocity (2 masks) beats slopes over 3 or 4 at every decay; on frame 22, decay
# 0.92 is within 0.001 of the best (0.95), the best over frames 12-22, and better on the
# real samples, whose objects slow harder.
FIT_FRAMES = 2  # input masks the velocity is fitted over (the last ones)
DECAY = 0.92  # speed kept per frame


def _fit(centroids: torch.Tensor, times: torch.Tensor) -> torch.Tensor:
    """Least-squares slope (2,) of centroids (N, 2) against times (N,), N >= 2."""
    t = times - times.mean()
    return (t[:, None] * (centroids - centroids.mean(0))).sum(0) / t.square().sum()


def _fitted_decay(centroids: torch.Tensor, times: torch.Tensor) -> float:
    """A speed ratio per frame from the first and the last step of the window (1 when the
    object shows in fewer than 3 masks or did not move), clamped to [0, 1]."""
    if len(times) < 3:
        return 1.0
    first = (centroids[1] - centroids[0]).norm() / (times[1] - times[0])
    last = (centroids[-1] - centroids[-2]).norm() / (times[-1] - times[-2])
    if float(first) < 1e-6:
        return 1.0
    span = float((times[-1] + times[-2]) - (times[1] + times[0])) / 2  # frames between the steps
    return float((last / first).clamp(0, 1) ** (1 / span))


class Motion(NamedTuple):
    """One object of the last mask and how it moved over the fit window."""

    cls: int  # class id, 1-48
    velocity: torch.Tensor  # (2,) px/frame as (row, column): the least-squares slope
    decay: float  # speed kept per frame, fitted from the window (1 when it cannot be)


def class_centroids(
    ids: torch.Tensor, num_classes: int, dtype: torch.dtype = torch.float32
) -> tuple[torch.Tensor, torch.Tensor]:
    """Class ids (N, H, W) -> (centroid of every class in every mask (N, K, 2) in pixels as
    (x, y), its pixel count (N, K)), both in `dtype`, on the ids' device; an absent class has
    count 0 and centroid (0, 0). The sums of whole pixel coordinates are integers, exact, so the
    result does not depend on the summation order; a class id of num_classes or more is an
    error (RuntimeError), not a pixel of another mask."""
    n, h, w = ids.shape
    device = ids.device
    idx = ids.long()
    # per row of each mask, each class's pixel count and the sum of their columns: integers,
    # two scatters through the same index (faster than three weighted bincounts, and exact)
    rows = torch.zeros(n, h, num_classes, dtype=torch.int32, device=device)
    rows.scatter_add_(2, idx, torch.ones(1, 1, 1, dtype=torch.int32, device=device).expand_as(idx))
    columns = torch.arange(w, dtype=torch.int32, device=device).view(1, 1, w).expand_as(idx)
    xsum = torch.zeros(n, h, num_classes, dtype=torch.int32, device=device)
    xsum.scatter_add_(2, idx, columns)  # (N, H, K)
    count = rows.sum(1, dtype=torch.int64)  # (N, K)
    sy = (rows * torch.arange(h, device=device).view(1, h, 1)).sum(1)  # int64: no overflow
    sx = xsum.sum(1, dtype=torch.int64)
    centre = torch.stack([sx, sy], -1).to(dtype) / count.clamp(min=1).to(dtype).unsqueeze(-1)
    return centre, count.to(dtype)


def object_motion(masks: torch.Tensor, fit_frames: int = FIT_FRAMES) -> list[Motion]:
    """The Motion of every object of the last of one video's masks (T, H, W)."""
    window = masks[-fit_frames:].long()  # (F, H, W)
    f = window.shape[0]
    k = int(window.max()) + 1 if window.numel() else 1  # class ids 0..k-1 (0: background)
    centre, area = class_centroids(window, k, torch.float64)  # (F, K, 2), (F, K)
    cx, cy = centre.unbind(-1)  # (F, K) each
    motion = []
    for c in (area[-1, 1:] > 0).nonzero().flatten().add(1).tolist():
        shows = area[:, c] > 0
        times = torch.arange(f, dtype=torch.float64)[shows]
        centroids = torch.stack([cy[shows, c], cx[shows, c]], 1)  # (N, 2)
        if len(times) < 2:  # just entered: no velocity to fit
            motion.append(Motion(c, centroids.new_zeros(2), 1.0))
            continue
        motion.append(Motion(c, _fit(centroids, times), _fitted_decay(centroids, times)))
    return motion


def _paint(last: torch.Tensor, motion: list[Motion], steps: int, decay: float | None):
    """(steps, H, W) uint8: the objects of `last` (H, W) moved along their velocity."""
    ids = torch.tensor([m.cls for m in motion])  # (N,)
    keep = torch.tensor([m.decay if decay is None else decay for m in motion])  # (N,)
    velocity = torch.stack([m.velocity for m in motion])  # (N, 2)
    gain = (keep[:, None] ** torch.arange(1, steps + 1, dtype=torch.float64)).cumsum(1)
    return paint_shifted(last, ids, (gain[..., None] * velocity[:, None]).round().long())


def paint_shifted(
    last: torch.Tensor,
    ids: torch.Tensor,
    shift: torch.Tensor,
    scale: torch.Tensor | None = None,
    shown: torch.Tensor | None = None,
) -> torch.Tensor:
    """(steps, H, W) uint8: the objects `ids` (N,) of `last` (H, W) moved as wholes by `shift`
    (N, steps, 2) whole pixels as (row, column), the nearest on top; other pixels background.
    With `scale` (N, steps) in [1/2, 2), each object is also drawn that many times its size
    about its centroid: every drawn pixel is the object's pixel nearest to where it maps back
    to (no holes when it grows); scale 1 draws exactly what `shift` alone does. `shown` (N,
    steps) bool: the steps each object is drawn in (what it covered shows what lies behind)."""
    h, w = last.shape
    steps = shift.shape[1]
    lookup = torch.full((max(int(last.max()), int(ids.max())) + 1,), -1, dtype=torch.long)
    lookup[ids] = torch.arange(len(ids))  # class -> object
    ys, xs = (lookup[last.long()] >= 0).nonzero(as_tuple=True)  # (P,) every moved pixel
    obj = lookup[last[ys, xs].long()]  # (P,) its object
    count = torch.bincount(obj, minlength=len(ids)).clamp(min=1)
    rows = torch.zeros(len(ids), dtype=torch.float64).index_add_(0, obj, ys.double()) / count
    if scale is None:
        y = ys[:, None] + shift[obj, :, 0]  # (P, steps)
        x = xs[:, None] + shift[obj, :, 1]
        drawn = torch.ones_like(y, dtype=torch.bool)
    else:
        cols = torch.zeros(len(ids), dtype=torch.float64).index_add_(0, obj, xs.double()) / count
        y, x, drawn, obj = _grown(ys, xs, obj, rows, cols, shift, scale.double())
    if shown is not None:
        drawn = drawn & shown[obj]  # (P, steps)
    # draw order per step by the moved centroid row: lower in the image = nearer = on top
    depth = (rows[:, None] + shift[..., 0]).argsort(dim=0, stable=True).argsort(dim=0)  # (N, steps)
    inside = drawn & (y >= 0) & (y < h) & (x >= 0) & (x < w)  # (P, steps): the rest left
    step = torch.arange(steps).expand_as(y)
    target = (step * h * w + y * w + x)[inside]
    rank = depth[obj[:, None].expand_as(y), step][inside] + 1  # 0 stays background
    canvas = torch.zeros(steps * h * w, dtype=torch.long)
    canvas.scatter_reduce_(0, target, rank, reduce="amax")  # the nearest object wins a pixel
    by_rank = torch.zeros(steps, len(ids) + 1, dtype=torch.long)  # (steps, N + 1) -> class id
    by_rank[:, 1:].scatter_(1, depth.T, ids.expand(steps, -1))
    return by_rank.gather(1, canvas.view(steps, h * w)).view(steps, h, w).to(torch.uint8)


def _grown(ys, xs, obj, rows, cols, shift, scale):
    """The target pixels of source pixels (ys, xs) (P,) of objects `obj` (P,) whose centroids
    are (rows, cols) (N,), moved by `shift` (N, steps, 2) and scaled by `scale` (N, steps):
    (y, x, drawn, obj), each (4P, steps) but obj (4P,). A target pixel q belongs to source p
    when p is the nearest pixel to q mapped back, i.e. q lies in [c' + s(p - c - 1/2),
    c' + s(p - c + 1/2)) on each axis: a span of s < 2 holds at most two whole pixels."""
    s = scale[obj]  # (P, steps)
    span = []
    for source, centre, axis in ((ys, rows, 0), (xs, cols, 1)):
        c = centre[obj, None]  # (P, 1)
        low = c + shift[obj, :, axis] + s * (source[:, None] - c - 0.5)
        first = low.ceil()
        span.append((first.long(), first, low + s))  # (P, steps) each
    (y0, fy, ey), (x0, fx, ex) = span
    y, x, drawn = [], [], []
    for dy, dx in ((0, 0), (0, 1), (1, 0), (1, 1)):
        y.append(y0 + dy)
        x.append(x0 + dx)
        drawn.append((fy + dy < ey) & (fx + dx < ex))
    return torch.cat(y), torch.cat(x), torch.cat(drawn), obj.repeat(4)


def extrapolate_masks(
    masks: torch.Tensor,
    steps: int,
    decay: float | None = DECAY,
    fit_frames: int = FIT_FRAMES,
) -> torch.Tensor:
    """Class ids (B, steps, H, W) uint8 of the `steps` frames after masks (B, T, H, W): the
    objects of the last mask moved along their fitted velocity, slowing by `decay` per frame
    (1.0: constant velocity; None: a decay fitted per object)."""
    if masks.dim() != 4:
        raise ValueError(f"masks must be (B, T, H, W); got {tuple(masks.shape)}")
    if steps < 1 or fit_frames < 2:
        raise ValueError(f"steps must be >= 1 and fit_frames >= 2; got {steps}, {fit_frames}")
    if decay is not None and not 0.0 <= decay <= 1.0:
        raise ValueError(f"decay must be in [0, 1] or None; got {decay}")
    if decay is None and fit_frames < 3:
        raise ValueError("a fitted decay (decay=None) needs fit_frames >= 3")
    b, _, h, w = masks.shape
    masks = masks.cpu()
    out = torch.zeros(b, steps, h, w, dtype=torch.uint8)
    for i in range(b):
        motion = object_motion(masks[i], fit_frames)
        if motion:
            out[i] = _paint(masks[i, -1], motion, steps, decay)
    return out
