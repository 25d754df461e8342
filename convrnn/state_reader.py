"""A learned correction of the floor stage's state for objects with a short track.

The floor stage (`convrnn/floor_play.py`) starts each object from the velocity it reads off
the input masks. For an object seen in each of the last three input frames that read is close
to the truth (a median error of 0.0002 camera heights a frame on generated val); for one that
came into view in the last two frames or came out from behind another object it is not: an
object first seen in the last frame has no step at all (the stage aims it or leaves it to the
net), and one first seen in the frame before is cut by the border, so its one step lags. On
the generator's scenes those objects' velocities are off by a mean 0.044-0.056 camera heights
a frame, a third of their speed, and they are the largest share of what frame 22 still loses
(docs/benchmarks.md, "A state reader trained on the generator's scenes").

`StateReader` is a small MLP that reads such an object's state as the stage has it (its read
velocities, the net's first step, the two steps before, where it is, its shape, whether it
was new or aimed, its nearest neighbour) and returns a correction of its floor velocity. It is
fitted on the generator's own scenes (`train/reader.py`, `python cli.py fit-reader`): the
target is each object's true floor step after the last input frame. It answers each object
and its mirror image and returns the mean, so what it adds is left-right symmetric. Its last
layer starts at zero: a new reader changes nothing. Only the objects not seen in all of the
last three input frames take its correction (`short_tracks`); for the others it added error.

Pure torch, no I/O (a models-floor module).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

from .floor import Camera, shape_of

FEATURES = 26
# the features that are x components (a mirror image negates them): the read velocities, the
# net's first step, the two steps before, the floor position, the neighbour's offset and its
# relative velocity
MIRRORED = (0, 2, 4, 6, 8, 10, 20, 22)
CLIP = 1.0  # floor units a frame: the steps and relative velocities fed in are clipped here
FAR = 3.0  # camera heights: the neighbour's offset and distance are clipped here


class StageState(NamedTuple):
    """What the floor stage has read of each object (B, K, ...) before it slides them."""

    start: Tensor  # floor positions (B, K, 2)
    read: Tensor  # the velocity read from the step into the last frame (B, K, 2)
    replayed: Tensor  # after a hit inside the last step is replayed (B, K, 2)
    velocity: Tensor  # after new objects are aimed: what the stage slides (B, K, 2)
    heading: Tensor  # the net's first floor step (B, K, 2)
    fresh: Tensor  # first seen in the last input frame (B, K)
    aimed: Tensor  # aimed at an object at rest (B, K)
    seen: Tensor  # seen in the last three, and in the last four input frames (B, K, 2)
    earlier: Tensor  # image px (B, K, 2) where it was in the frame before the last
    steps: Tensor  # its image steps into that frame and the one before (B, K, 2, 2) px


def short_tracks(state: StageState, present: Tensor) -> Tensor:
    """(B, K) the objects the reader corrects: present, not seen in each of the last three
    input frames."""
    return present & ~state.seen[..., 0]


def features(state: StageState, present: Tensor, classes: Tensor, cam: Camera) -> Tensor:
    """(B, K, FEATURES) float64: each object's state as `StateReader` reads it."""
    b, k = present.shape
    earlier, steps = state.earlier, state.steps.to(state.earlier.dtype)
    before = earlier - steps[:, :, 0]
    step1 = cam.to_floor(earlier) - cam.to_floor(before)
    step2 = cam.to_floor(before) - cam.to_floor(before - steps[:, :, 1])
    shape = nn.functional.one_hot(shape_of(classes.long()), 3).to(earlier.dtype)
    start = state.start
    line = start[:, None] - start[:, :, None]  # (B, K, K, 2) from object i to object j
    dist = line.norm(dim=-1)
    away = torch.eye(k, dtype=torch.bool, device=dist.device) | ~present[:, None, :]
    dist = torch.where(away, 1e9, dist)
    near = dist.argmin(-1)  # (B, K) the nearest other object
    offset = line.gather(2, near[..., None, None].expand(b, k, 1, 2)).squeeze(2)
    relative = state.velocity.gather(1, near[..., None].expand(b, k, 2)) - state.velocity
    gap = dist.gather(2, near[..., None]).clamp(max=FAR)
    flags = torch.stack(
        [state.fresh, state.aimed, (state.replayed - state.read).norm(dim=-1) > 0], -1
    )
    return torch.cat([
        state.velocity, state.read, state.heading.clamp(-CLIP, CLIP),
        step1.clamp(-CLIP, CLIP), step2.clamp(-CLIP, CLIP), start, flags.to(start.dtype),
        state.seen.to(start.dtype), shape, offset.clamp(-FAR, FAR), relative.clamp(-CLIP, CLIP),
        gap, state.velocity.norm(dim=-1, keepdim=True),
    ], -1)  # fmt: skip


def mirrored(x: Tensor) -> Tensor:
    """The features of the mirror image (x components negated)."""
    sign = torch.ones(FEATURES, dtype=x.dtype, device=x.device)
    sign[list(MIRRORED)] = -1.0
    return x * sign


class StateReader(nn.Module):
    """Features (..., FEATURES) -> a correction (..., 2) of the floor velocity, in camera
    heights a frame, the mean of its answers for the object and for its mirror image."""

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(FEATURES))
        self.register_buffer("scale", torch.ones(FEATURES))
        self.net = nn.Sequential(
            nn.Linear(FEATURES, hidden), nn.GELU(),
            nn.Linear(hidden, hidden), nn.GELU(),
            nn.Linear(hidden, 2),
        )  # fmt: skip
        nn.init.zeros_(self.net[-1].weight)  # a new reader changes nothing
        nn.init.zeros_(self.net[-1].bias)

    def one_way(self, x: Tensor) -> Tensor:
        """The net's answer for features x, without the mirror."""
        return self.net((x.to(self.mean.dtype) - self.mean) / self.scale)

    def forward(self, x: Tensor) -> Tensor:
        back = self.one_way(mirrored(x))
        back = torch.stack([-back[..., 0], back[..., 1]], -1)
        return ((self.one_way(x) + back) / 2).to(x.dtype)
