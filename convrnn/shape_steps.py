"""Each object's step between consecutive masks, read where its centroid would mislead.

The centroid of an object's pixels moves with the object only while all of it is seen. Cut by
the picture's border, the centroid is the seen part's and lags behind the object; half hidden
behind another object, it drifts the same way. On 100 generated val videos (true masks) the
step from frame 10 to 11 read off centroids was off by a median 3.0 px/frame for objects at
the border (0.6 when read as below), and a physics reader given these steps forecast frame 22
at 0.634 against 0.588 (docs/benchmarks.md, "Reading a step by its shape").

Where an object is on the picture's border in either of two masks, or its pixel count
changes by over CHANGED between them, its step is read by matching its seen shape: the shift
that best lands the first mask's pixels of the object on the second's, counting a mismatch
only where the object could be seen (the floor or itself: not behind another object, not
outside the picture) and charging HIDDEN for each pixel the shift would hide. Everywhere else
the step is the centroid's, so a track of whole objects is the centroid track. Pure torch, no
I/O (a models-floor module).
"""

from __future__ import annotations

import torch
from torch import Tensor

REACH = 16  # px searched each way around the centroid step
HIDDEN = 0.25  # the cost of a pixel hidden by the shift, against 1 for a mismatched one
# a pixel count that changes by more from one frame to the next: cut, hidden or uncovered
# (on 100 generated val videos, the physics reader of docs/benchmarks.md forecast frame 22 as
# well from this as from objects touching another object, and it costs nothing to find)
CHANGED = 0.03
PULL = 1e-3  # per px^2 from the centroid step: settles ties, never outweighs a pixel
Box = tuple[int, int, int, int]  # (top, bottom, left, right), bottom and right exclusive


def at_border(ids: Tensor, num_classes: int) -> Tensor:
    """Class ids (N, H, W) -> (N, K) bool: the class has a pixel on the picture's border;
    never the background."""
    n = ids.shape[0]
    out = torch.zeros(n, num_classes, dtype=torch.bool, device=ids.device)
    edges = torch.cat([ids[:, 0], ids[:, -1], ids[:, :, 0], ids[:, :, -1]], 1).long()
    out.scatter_(1, edges, True)
    out[:, 0] = False
    return out


def _meetings(ids: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Where two objects of class ids (N, H, W) meet (a pixel left, right, above or below a
    pixel of another object; few): (the image (M,), the class there (M,), the class beside it
    (M,)), each meeting once from either side. Never the background."""
    images, mine, theirs = [], [], []
    for a, b in ((ids[:, :, 1:], ids[:, :, :-1]), (ids[:, 1:], ids[:, :-1])):
        n, y, x = ((a != b) & (a > 0) & (b > 0)).nonzero(as_tuple=True)
        one, other = a[n, y, x].long(), b[n, y, x].long()
        images += [n, n]
        mine += [one, other]
        theirs += [other, one]
    return torch.cat(images), torch.cat(mine), torch.cat(theirs)


def touching(ids: Tensor, num_classes: int) -> Tensor:
    """Class ids (N, H, W) -> (N, K) bool: the class has a pixel beside (left, right, above or
    below) a pixel of another object; never the background. A partly hidden object touches
    what hides it."""
    out = torch.zeros(ids.shape[0], num_classes, dtype=torch.bool, device=ids.device)
    n, mine, _ = _meetings(ids)
    out[n, mine] = True
    return out


def behind(ids: Tensor, rows: Tensor, num_classes: int) -> Tensor:
    """Class ids (N, H, W) and each class's centroid row (N, K) -> (N, K) bool: the class has
    a pixel beside a pixel of another object whose centroid is lower in the picture (nearer
    the camera, so drawn over it: what may hide part of it). An object in front of every
    object it touches is seen whole; `touching` counts it as well. Never the background."""
    out = torch.zeros(ids.shape[0], num_classes, dtype=torch.bool, device=ids.device)
    n, mine, theirs = _meetings(ids)
    hid = rows[n, theirs] > rows[n, mine]
    out[n[hid], mine[hid]] = True
    return out


def _fast(n: int) -> int:
    """The least length >= n whose only prime factors are 2, 3 and 5 (fast to transform)."""
    while True:
        m = n
        for p in (2, 3, 5):
            while m % p == 0:
                m //= p
        if m == 1:
            return n
        n += 1


def _window(image: Tensor, top: int, left: int, height: int, width: int) -> Tensor:
    """image[top : top + height, left : left + width] as float32, zeros outside the picture."""
    h, w = image.shape
    out = torch.zeros(height, width)
    y0, y1, x0, x1 = max(top, 0), min(top + height, h), max(left, 0), min(left + width, w)
    if y1 > y0 and x1 > x0:
        out[y0 - top : y1 - top, x0 - left : x1 - left] = image[y0:y1, x0:x1]
    return out


def _bounds(mask: Tensor) -> Box:
    """The bounding box (top, bottom, left, right; bottom and right exclusive) of a boolean
    mask (H, W) with a pixel set."""
    rows, cols = mask.sum(1).nonzero().flatten(), mask.sum(0).nonzero().flatten()
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def shape_step(before: Tensor, after: Tensor, cls: int, guess: Tensor) -> Tensor:
    """The step (2,) px as (x, y) of object `cls` from class ids `before` to `after` (H, W),
    both holding it: the best whole-pixel shift within REACH of `guess` (its centroid step),
    refined to a fraction of a pixel by a parabola through the costs beside it."""
    x, y = guess.tolist()
    found = _match_within(before.cpu(), after.cpu(), cls, x, y)
    return torch.tensor(found, dtype=guess.dtype, device=guess.device)


def _match(
    before: Tensor, after: Tensor, cls: int, x: float, y: float, boxes: tuple[Box, Box]
) -> list[float]:
    """`shape_step` on frames holding the search (`_match_within`), the guess as floats and
    the object's bounding boxes in both (`_bounds`) given -> [x, y]."""
    a, b = before == cls, after == cls
    gx, gy = int(round(x)), int(round(y))
    (ay0, ay1, ax0, ax1), (by0, by1, bx0, bx1) = boxes
    ka, kb = a[ay0:ay1, ax0:ax1], b[by0:by1, bx0:bx1]
    r, span = REACH, 2 * REACH + 1
    size = (_fast(max(ka.shape[0], kb.shape[0]) + 2 * r),
            _fast(max(ka.shape[1], kb.shape[1]) + 2 * r))  # fmt: skip
    # correlations by FFT: circular, but each window holds its kernel moved by every shift,
    # so no lag wraps; rounded, as they count pixels. A's pixels moved by d land on B
    # (overlap) or where B could be seen (the floor or itself); B's pixels moved back by d
    # (the shifts -d: flipped) land where A could be seen.
    top_a, left_a = ay0 + gy - r, ax0 + gx - r
    top_b, left_b = by0 - gy - r, bx0 - gx - r
    windows = torch.stack([_window(b, top_a, left_a, *size),
                           _window((after == 0) | b, top_a, left_a, *size),
                           _window((before == 0) | a, top_b, left_b, *size)])  # fmt: skip
    kernels = torch.zeros(2, *size)
    kernels[0, : ka.shape[0], : ka.shape[1]] = ka
    kernels[1, : kb.shape[0], : kb.shape[1]] = kb
    spectra = torch.fft.rfft2(kernels).conj()[[0, 0, 1]] * torch.fft.rfft2(windows)
    lags = torch.fft.irfft2(spectra, s=size)[:, :span, :span].round()
    overlap, lands_seen, came_seen = lags[0], lags[1], lags[2].flip(0, 1)
    # mismatched (seen, not on the object) + HIDDEN x hidden (not seen), less the constant
    # HIDDEN x both objects' pixel counts
    cost = (1 - HIDDEN) * (lands_seen + came_seen) - 2 * overlap
    shifts = torch.arange(-r, r + 1, dtype=torch.float32)
    pull_x, pull_y = (shifts + gx - x) ** 2, (shifts + gy - y) ** 2
    cost += PULL * (pull_y[:, None] + pull_x[None, :])
    iy, ix = divmod(int(cost.argmin()), span)
    step = [float(ix - r + gx), float(iy - r + gy)]
    for axis, (lo, mid, hi) in enumerate(_beside(cost, iy, ix)):
        bend = lo - 2 * mid + hi
        if bend > 0:
            step[axis] += max(-0.5, min(0.5, 0.5 * (lo - hi) / bend))
    return step


def _beside(cost: Tensor, iy: int, ix: int) -> list[tuple[float, float, float]]:
    """The costs left, at and right of the minimum along x, then along y (the minimum's own
    cost on both sides at the search's edge: no refinement there)."""
    last = cost.shape[0] - 1
    mid = float(cost[iy, ix])
    x = (float(cost[iy, ix - 1]) if ix > 0 else mid, mid,
         float(cost[iy, ix + 1]) if ix < last else mid)  # fmt: skip
    y = (float(cost[iy - 1, ix]) if iy > 0 else mid, mid,
         float(cost[iy + 1, ix]) if iy < last else mid)  # fmt: skip
    return [x, y]


def _match_within(before: Tensor, after: Tensor, cls: int, x: float, y: float) -> list[float]:
    """`_match` on the part of the frames (H, W) that the search reads: both of the object's
    boxes, each widened by every shift it tries (the same answer, a fraction of the work)."""
    h, w = before.shape
    wy, wx = abs(int(round(y))) + REACH + 1, abs(int(round(x))) + REACH + 1
    a, z = _bounds(before == cls), _bounds(after == cls)
    top, bottom = max(min(a[0], z[0]) - wy, 0), min(max(a[1], z[1]) + wy, h)
    left, right = max(min(a[2], z[2]) - wx, 0), min(max(a[3], z[3]) + wx, w)
    boxes = ((a[0] - top, a[1] - top, a[2] - left, a[3] - left),
             (z[0] - top, z[1] - top, z[2] - left, z[3] - left))  # fmt: skip
    crops = before[top:bottom, left:right], after[top:bottom, left:right]
    return _match(*crops, cls, x, y, boxes)


def object_steps(masks: Tensor, centre: Tensor, count: Tensor) -> Tensor:
    """Class ids (B, T, H, W) with their centroids (B, T, K, 2) as (x, y) and pixel counts
    (B, T, K) -> each object's step (B, T, K, 2) px as (x, y) from frame t - 1 to t: its
    `shape_step` where it touches the picture's border in either frame or its pixel count
    changes by over CHANGED (cut, hidden or uncovered), else its centroid step; 0 at t = 0
    and where it is not seen in both."""
    b, t = masks.shape[:2]
    k = centre.shape[2]
    seen = count > 0
    both = seen[:, 1:] & seen[:, :-1]  # (B, T - 1, K)
    step = (centre[:, 1:] - centre[:, :-1]) * both[..., None]
    edge = at_border(masks.flatten(0, 1), k).view(b, t, k)
    changed = (count[:, 1:] / count[:, :-1].clamp(min=1) - 1).abs() > CHANGED
    hard = both & (edge[:, 1:] | edge[:, :-1] | changed)
    picks = hard.nonzero().tolist()
    if picks:
        frames = masks.cpu()
        guesses = step[hard].tolist()  # in the order of `picks`
        found = [_match_within(frames[i, j], frames[i, j + 1], c, *g)
                 for (i, j, c), g in zip(picks, guesses, strict=True)]  # fmt: skip
        step[hard] = torch.tensor(found, dtype=step.dtype, device=step.device)
    return torch.cat([torch.zeros_like(step[:, :1]), step], 1)
