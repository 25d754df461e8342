"""Whole objects out of a segmenter's class ids: one class for each object, not a patchwork.

A segmenter trained on generated frames splits many real objects into pieces of different
classes (a sphere half rubber, half metal; a cube's lit face a third colour): on the 6
labelled real samples a `small` segmenter finds 12 to 19 classes in frames that hold 5 to 7
objects. Every piece is then an object of its own to the track forecaster, whose centroid
track jumps as the pieces come and go, and the pieces fly apart in the forecast frames.

The rule, per frame: an object region is a connected (8-neighbour) stretch of non-floor
pixels. A class keeps its pixels in a region when it holds at least `MIN_SHARE` of the region
and the frame has at least `MIN_WEIGHT` times as many pixels of it as of the region's main
class (two touching objects of their own: both keep their classes); otherwise they take the
main class (a fragment). Measured in docs/benchmarks.md ("Whole objects"): it lifts the
segmenter's real-sample Jaccard and what the track forecaster makes of it.

Steady (`steady_last`, for the track forecaster's input masks): the segmenter sometimes changes
its mind about an object from one frame to the next (a cube called a cylinder in one frame).
In the last input frame that costs most: the object is then a new one with no track, and the
one it was vanishes. So a piece of the last frame whose pixels held another class in the two
frames before, where that class lost about as many pixels as the piece holds, takes that class
back. An object passing in front of another does not take its class: the one behind keeps
its pixel count. On true masks it changes nothing.

Pure torch, no I/O (a models-floor module).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

# A screen on the 6 labelled real samples and 50 generated val videos (docs/benchmarks.md)
# chose these among shares 0.05-0.2 and weights 0.2-0.5; a second, with a better segmenter, on
# 100 + 200 generated val videos and the 6 real ones, lowered the weight from 0.3 to 0.1
# (weights 0-0.3, shares 0.05-0.2): a partly hidden object behind a larger one keeps its class.
# The track forecast gained on every set, the segmenter's frames 11 and 22 on generated ones;
# on real frames more pieces of a generated-trained segmenter keep their class (frame 22
# 0.352 -> 0.320; docs/benchmarks.md, "Whole objects, the weight lowered"). A share of 0 and
# a weight of 0 keep every class (the raw ids).
MIN_SHARE = 0.1
MIN_WEIGHT = 0.1
# what label and prediction stores record as their masks' rule (a resumed store must match:
# a store written before the rule holds raw argmax masks, "argmax")
RULE = f"whole objects (share {MIN_SHARE}, weight {MIN_WEIGHT})"
# `steady_last`: the frames before the last that vote, and the share of a piece's size its
# new class must have lost from the frame before (screened on the segmenter's masks of 100 +
# 200 generated val videos: docs/benchmarks.md, "The track forecaster's input masks")
STEADY_BEFORE = 2
STEADY_LOST = 0.8


def regions(fg: Tensor) -> Tensor:
    """(H, W) int64: the 8-connected regions of a (H, W) bool mask numbered 1..n in raster
    order of their first pixel, 0 where `fg` is False.

    Run-length union-find: a region is a set of row runs, joined to the runs of the row above
    that touch them (diagonals included); a frame holds a few hundred runs, so this takes
    under a millisecond where flooding labels by max-pooling takes tens."""
    h, w = fg.shape
    edges = F.pad(fg.to(torch.int8), (1, 1)).diff(dim=1)  # (H, W+1): +1 a run starts, -1 past it
    row_t, start_t = (edges == 1).nonzero(as_tuple=True)
    end_t = (edges == -1).nonzero(as_tuple=True)[1]  # exclusive; runs in the same raster order
    row, start, end = row_t.tolist(), start_t.tolist(), end_t.tolist()
    parent = list(range(len(row)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    above = (0, 0)  # the runs [lo, hi) of the previous row holding any
    i = 0
    while i < len(row):
        j = i
        while j < len(row) and row[j] == row[i]:
            j += 1
        lo, hi = above
        if hi > lo and row[lo] == row[i] - 1:
            for a in range(i, j):  # both rows' runs sorted by start
                while lo < hi and end[lo] < start[a]:  # ends left of a, diagonal excluded
                    lo += 1
                m = lo
                while m < hi and start[m] <= end[a]:  # starts at most a diagonal right of a
                    ra, rm = root(a), root(m)
                    if ra != rm:
                        parent[max(ra, rm)] = min(ra, rm)
                    m += 1
        above = (i, j)
        i = j
    number: dict[int, int] = {}
    ids = [number.setdefault(root(a), len(number) + 1) for a in range(len(row))]
    out = torch.zeros(h, w, dtype=torch.long)
    out[fg.cpu()] = torch.repeat_interleave(torch.tensor(ids, dtype=torch.long), end_t - start_t)
    return out.to(fg.device)


def class_counts(frames: Tensor, k: int) -> Tensor:
    """(B, K): the pixels of each class in each of the frames (B, H, W)."""
    b = len(frames)
    index = torch.arange(b, device=frames.device)[:, None] * k + frames.flatten(1)
    return torch.bincount(index.flatten(), minlength=b * k).view(b, k)


def whole_objects(
    ids: Tensor, num_classes: int, min_share: float = MIN_SHARE, min_weight: float = MIN_WEIGHT
) -> Tensor:
    """Class ids (..., H, W) of the same dtype and device with each frame's fragments given
    their region's main class (module docstring); 0 is the floor and stays."""
    shape, k = ids.shape, num_classes
    frames = ids.reshape(-1, *shape[-2:]).long()  # (N, H, W)
    n, h, w = frames.shape
    if n == 0:
        return ids.clone()
    labels, offset = [], 0
    for frame in frames:  # regions numbered across the frames: frame f's from offset_f + 1
        reg = regions(frame > 0)
        labels.append(torch.where(reg > 0, reg + offset, 0))
        offset += int(reg.max())
    region = torch.stack(labels).view(n, h * w)  # (N, H*W), 0: floor
    cls = frames.view(n, h * w)
    counts = torch.bincount((region * k + cls).flatten(), minlength=(offset + 1) * k)
    counts = counts.view(offset + 1, k)  # (R+1, K): pixels of each class in each region
    counts[:, 0] = 0
    main = counts.argmax(1)  # (R+1,)
    share = counts.float() / counts.sum(1, keepdim=True).clamp_min(1)
    per_frame = class_counts(frames, k)  # (N, K)
    own = per_frame.gather(1, cls)  # (N, H*W): the frame's pixels of each pixel's class
    theirs = per_frame.gather(1, main[region])  # ... of its region's main class
    keep = (share[region, cls] >= min_share) & (own >= min_weight * theirs)
    out = torch.where(keep | (cls == 0), cls, main[region])
    return out.view(shape).to(ids.dtype)


def _pieces(last: Tensor) -> tuple[Tensor, int]:
    """((B, H, W) int64: the 8-connected stretches of one class in each frame of `last`
    (B, H, W), numbered across the batch from 1, 0 on the floor; how many there are)."""
    piece = torch.zeros_like(last)
    count = 0
    for i, frame in enumerate(last):
        for c in frame.unique().tolist():
            if c != 0:
                reg = regions(frame == c)
                piece[i] = torch.where(reg > 0, reg + count, piece[i])
                count += int(reg.max())
    return piece, count


def steady_last(
    ids: Tensor, num_classes: int, before: int = STEADY_BEFORE, lost: float = STEADY_LOST
) -> Tensor:
    """Class ids (B, T, H, W) of the same dtype with the last frame's pieces given back the
    class their pixels held in the `before` frames before it, where the segmenter changed its
    mind about an object there (module docstring); the earlier frames stay as they are.

    A piece is an 8-connected stretch of one class in the last frame. It takes class w, the
    class most of its pixels held in the frames before, when w held more than half of them
    (over those frames), more than twice as many as the piece's own class, and w's pixel count
    fell from the frame before the last to the last by at least `lost` times the piece's size
    (or w's count, if smaller): the pixels went from w to the piece's class. One object
    passing over another leaves w's count as it was, and keeps its class."""
    if ids.shape[1] <= before:
        return ids.clone()
    k, seq = num_classes, ids.long()
    last = seq[:, -1]  # (B, H, W)
    piece, n = _pieces(last)
    flat = piece.flatten()
    votes = sum(torch.bincount(flat * k + seq[:, t].flatten(), minlength=(n + 1) * k)
                for t in range(-1 - before, -1)).view(n + 1, k)  # fmt: skip
    votes[:, 0] = 0  # the floor is no class to take
    size = torch.bincount(flat, minlength=n + 1)
    own = torch.zeros_like(size).scatter_(0, flat, last.flatten())  # (n + 1,) each piece's class
    pixels_of = torch.arange(len(last), device=ids.device).repeat_interleave(last[0].numel())
    video = torch.zeros_like(size).scatter_(0, flat, pixels_of)  # each piece's video
    best, win = votes.max(1)
    was, now = (class_counts(seq[:, t], k)[video, win] for t in (-2, -1))
    change = (win != own) & (2 * best > size * before)
    change &= best > 2 * votes.gather(1, own[:, None])[:, 0]
    change &= (was - now) >= lost * torch.minimum(size, was)
    change[0] = False  # the floor
    out = seq.clone()
    out[:, -1] = torch.where(change, win, own)[piece]
    return out.to(ids.dtype)
