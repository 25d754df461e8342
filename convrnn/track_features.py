"""What the track forecaster (`convrnn/tracks.py`) reads of each object: the per-class
statistics of the masks (centroids and pixel counts), their mirror images, and the feature
groups beside the track (speeds, neighbours) with the units they are measured in.

Pure torch, no I/O (a models-floor module).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from .config import ModelConfig
from .extrapolate import class_centroids
from .floor import Floor
from .shape_steps import at_border, behind, object_steps

NEIGHBOUR_FEATURES = 6  # offset (2), relative velocity (2), size, present


def feature_count(cfg: ModelConfig) -> int:
    """Features per object for a config: track (3 per input frame), position 2, size 1,
    class one-hot K, neighbours, and with `track_speeds` the speed of each input step."""
    speeds = cfg.frames_in - 1 if cfg.track_speeds else 0
    return (3 * cfg.frames_in + 3 + cfg.num_classes + cfg.track_neighbours * NEIGHBOUR_FEATURES
            + speeds)  # fmt: skip


def unit_px(height: int, width: int) -> float:
    """Pixels per feature unit: a fifth of the longer side (48 px on 160x240)."""
    return max(height, width) / 5.0


class MaskStats(NamedTuple):
    """What `tracks_of` reads of class-id masks (B, T, H, W), per frame and class."""

    centre: Tensor  # (B, T, K, 2) the centroid as (x, y), (0, 0) where absent
    count: Tensor  # (B, T, K) the pixel count
    step: Tensor | None  # (B, T, K, 2) the step from the frame before (`object_steps`), or None
    # (B, T, K) seen whole: on neither the picture's border nor beside another object nearer
    # the camera (`behind`), so its centroid is its whole footprint's (`whole_centre`); None
    # where not asked for
    whole: Tensor | None


def places_whole(cfg: ModelConfig) -> bool:
    """Whether the config's floor stage starts partly hidden objects where their whole
    footprint is (`Floor.whole_footprint`): what needs `MaskStats.whole`."""
    return bool(cfg.track_floor) and bool(Floor(*cfg.track_floor).whole_footprint)


def mask_stats(masks: Tensor, cfg: ModelConfig, whole: bool | None = None) -> MaskStats:
    """Class ids (B, T, H, W) -> each class's centroids, pixel counts, with `track_shapes`
    steps (`object_steps`: by shape where the object is cut, hidden or uncovered) and, where
    `whole` (None: where the config `places_whole`), where it is seen whole."""
    b, t = masks.shape[:2]
    k = cfg.num_classes
    flat = masks.flatten(0, 1)
    centre, count = class_centroids(flat, k)  # (B*T, K, 2) xy
    centre, count = centre.view(b, t, -1, 2), count.view(b, t, -1)
    step = object_steps(masks, centre, count) if cfg.track_shapes else None
    seen_whole = None
    if places_whole(cfg) if whole is None else whole:
        hidden = at_border(flat, k) | behind(flat, centre.view(b * t, k, 2)[..., 1], k)
        seen_whole = (count > 0) & ~hidden.view(b, t, k)
    return MaskStats(centre, count, step, seen_whole)


def mirrored(stats: MaskStats, width: int) -> MaskStats:
    """The statistics of the masks flipped left-right (x -> width - 1 - x, steps' x negated)."""
    centre = torch.stack([(width - 1) - stats.centre[..., 0], stats.centre[..., 1]], -1)
    step = stats.step
    if step is not None:
        step = torch.stack([-step[..., 0], step[..., 1]], -1)
    return MaskStats(centre, stats.count, step, stats.whole)


def relative(stats: MaskStats, anchor: int) -> Tensor:
    """(B, T, K, 2) px as (x, y): each class's position in every frame relative to frame
    `anchor`'s. The centroids' difference; with steps, the steps summed over the frames
    between, where the object is seen in all of them (beyond a gap, the centroids')."""
    centre, count, step, _ = stats
    rel = centre - centre[:, anchor : anchor + 1]
    if step is None:
        return rel
    seen = (count > 0).int()
    walk = step.cumsum(1)
    chained = walk - walk[:, anchor : anchor + 1]
    back = seen[:, : anchor + 1].flip(1).cumprod(1).flip(1)  # seen from t on to the anchor
    on = seen[:, anchor:].cumprod(1)  # seen from the anchor on to t
    run = torch.cat([back[:, :-1], on], 1).bool()
    return torch.where(run[..., None], chained, rel)


def whole_centre(stats: MaskStats, anchor: int) -> Tensor:
    """(B, K, 2) px as (x, y): where each class's whole footprint is centred in frame
    `anchor`. The seen part's centroid drifts away from what hides the rest (or from the
    picture's border), so an object not seen whole there takes its centroid in the last frame
    it was seen whole in and walks on by its steps (with `track_shapes`, read by shape:
    `object_steps`) over the frames since, if it was seen in each of them; an object never
    seen whole since it was last unseen keeps its seen part's centroid. On 300 generated
    videos the floor stage placing pairs in a hit by their seen parts missed 45 of 86 hits
    inside the last input step; placed by the generator's whole footprints, frame 22 rose
    0.014, and by this 0.008 (docs/benchmarks.md, "Objects placed by their whole footprint").
    `stats` must hold `whole` (`mask_stats`)."""
    assert stats.whole is not None, "mask_stats(..., whole=True) gives what this reads"
    centre, count = stats.centre, stats.count
    seen = (count[:, : anchor + 1] > 0).int()
    run = seen.flip(1).cumprod(1).flip(1).bool()  # seen from t on to the anchor
    frames = torch.arange(anchor + 1, device=centre.device).view(1, -1, 1)
    found = torch.where(run & stats.whole[:, : anchor + 1], frames, -1).amax(1)  # (B, K)
    walk = relative(stats, anchor)[:, : anchor + 1]  # (B, T, K, 2): frame t's place from the
    # anchor's, by the steps between where seen throughout
    j = found.clamp(min=0)[:, None, :, None].expand(-1, 1, -1, 2)
    at = centre[:, : anchor + 1].gather(1, j)[:, 0] - walk.gather(1, j)[:, 0]
    return torch.where((found >= 0)[..., None], at, centre[:, anchor])


# Speeds in feature units per frame are about 0.2 (10 px on 160x240); this brings them near 1.
SPEED_SCALE = 5.0


def speeds(track: Tensor, seen: Tensor) -> Tensor:
    """(B, K, T_in - 1): the speed of each input step, SPEED_SCALE x feature units per frame,
    0 where either frame is unseen. The MLP could read them off the track; given them, it
    forecast frame 22 better in both seeds screened (+0.012, +0.005; with the ratios of
    successive speeds as well, +0.005 to +0.009 over three: docs/benchmarks.md)."""
    step = track[:, 1:] - track[:, :-1]  # (B, T_in - 1, K, 2)
    both = (seen[:, 1:] & seen[:, :-1]).float()  # (B, T_in - 1, K)
    return (step.norm(dim=-1) * both * SPEED_SCALE).transpose(1, 2)  # (B, K, T_in - 1)


def neighbours(last, velocity, size, present, cfg: ModelConfig, unit: float) -> Tensor:
    """(B, K, N * 6): each object's N nearest other objects (offset, relative velocity, size,
    1), zeros where there are fewer."""
    n = cfg.track_neighbours
    offset = last[:, None, :, :] - last[:, :, None, :]  # (B, K, K, 2): j's offset from k
    dist = offset.norm(dim=-1)  # (B, K, K)
    other = present[:, None, :] & present[:, :, None]
    other &= ~torch.eye(dist.shape[1], dtype=torch.bool, device=dist.device)
    dist = dist.masked_fill(~other, float("inf"))
    near, index = dist.topk(min(n, dist.shape[-1]), dim=-1, largest=False)  # (B, K, N)
    ok = near.isfinite()[..., None].float()
    rel_v = velocity[:, None, :, :] - velocity[:, :, None, :]  # (B, K, K, 2)
    pick = index[..., None].expand(*index.shape, 2)
    sizes = size[:, None, :].expand_as(dist).gather(2, index)[..., None]
    parts = [offset.gather(2, pick) / unit, rel_v.gather(2, pick) / 10.0, sizes,
             torch.ones_like(ok)]  # fmt: skip
    out = torch.cat(parts, -1) * ok  # (B, K, N, 6)
    if out.shape[2] < n:
        out = F.pad(out, (0, 0, 0, n - out.shape[2]))
    return out.flatten(2)
