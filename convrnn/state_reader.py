"""A learned correction of the velocities the floor stage reads off the input masks.

The floor stage (`convrnn/floor_play.py`) starts each object from the velocity it reads off
the input masks. For an object seen in each of the last three input frames that read is close
to the truth (a median error of 0.0002 camera heights a frame on generated val); for one that
came into view in the last two frames or came out from behind another object it is not: an
object first seen in the last frame has no step at all (the stage aims it or leaves it to the
net), and one first seen in the frame before is cut by the border, so its one step lags. On
the generator's scenes those objects' velocities are off by a mean 0.044-0.056 camera heights
a frame, a third of their speed (docs/benchmarks.md, "A state reader trained on the
generator's scenes"). The others' small errors still cost frame 22 more in all: given the
truth for every object it rose by 0.08, for the short tracks alone by 0.02.

`StateReader` is a small MLP (or the mean of a few, `members`) that reads an object's state as
the stage has it (its read velocities, the net's first step, the two steps before, where it
is, its shape, whether it was new or aimed, its nearest neighbour) and returns a correction of
its floor velocity. It is fitted on the generator's own scenes (`train/reader.py`, `python
cli.py fit-reader`): the target is each object's true floor velocity after the last input
frame. It answers each object and its mirror image and returns the mean, so what it adds is
left-right symmetric. Its last layers start at zero: a new reader changes nothing.

Which objects take its correction (`corrected`): a reader fitted on 4,000 scenes (the first,
`every` False) corrects only those not seen in all of the last three input frames
(`short_tracks`): on the others it cost. Fitted on 32,000 scenes as four members, correcting
every object gains (frame 22 from the segmenter's masks up 0.006 on 700 generated videos no
rule was chosen on, level on 300 more, up 0.010-0.011 on the two sets it was screened on;
docs/benchmarks.md, "The state reader for every object"), and `fit-reader` writes `every`
True.

It also says where each object stands (`placed`): the floor stage starts an object at its
mask's centroid, but the point the camera sees an object's centre at lies a pixel or two above
it (half a pixel of it is where a pixel's centre is, the rest is how a solid shape looks from
above: a cube's more than a sphere's, more the nearer it stands). `placing` holds that offset
per shape, a line in the image row, fitted by least squares on the generator's scenes with the
rest (`train/reader.py`); a reader fitted before it places nothing.

Pure torch, no I/O (a models-floor module).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

from .floor import SHAPES, Camera, shape_of

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
    """(B, K) the present objects not seen in each of the last three input frames."""
    return present & ~state.seen[..., 0]


def corrected(reader: StateReader, state: StageState, present: Tensor) -> Tensor:
    """(B, K) the objects `reader` corrects: every present one, or with a reader that is not
    `every` the short tracks alone."""
    return present if reader.every else short_tracks(state, present)


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
    heights a frame: the mean over its `members` MLPs (each fitted on its own batches) of
    their answers for the object and for its mirror image. `every`: it corrects every object
    (`corrected`)."""

    def __init__(self, hidden: int, members: int = 1, every: bool = False) -> None:
        super().__init__()
        self.every = every
        self.register_buffer("mean", torch.zeros(FEATURES))
        self.register_buffer("scale", torch.ones(FEATURES))
        # per shape, the offset (x, y) from an object's mask centroid to where its centre is
        # seen, each as a + b * row, all in frame heights (`placed`)
        self.register_buffer("placing", torch.zeros(SHAPES, 2, 2, dtype=torch.float64))
        self.nets = nn.ModuleList(_member(hidden) for _ in range(members))

    def placed(self, centre: Tensor, classes: Tensor, height: int) -> Tensor:
        """Where the centres of objects of `classes` (B, K) whose mask centroids are `centre`
        (B, K, 2) px as (x, y) are seen, in frames `height` px high: the centroid moved by
        its shape's `placing` at its row."""
        shape = shape_of(classes.long())
        return centre + offsets(self.placing, shape, centre[..., 1], height).to(centre.dtype)

    def one_way(self, x: Tensor, member: int | None = None) -> Tensor:
        """The answer for features x without the mirror: one member's, or the members' mean."""
        x = (x.to(self.mean.dtype) - self.mean) / self.scale
        nets = self.nets if member is None else [self.nets[member]]
        return torch.stack([net(x) for net in nets]).mean(0)

    def forward(self, x: Tensor) -> Tensor:
        back = self.one_way(mirrored(x))
        back = torch.stack([-back[..., 0], back[..., 1]], -1)
        return ((self.one_way(x) + back) / 2).to(x.dtype)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:
        # a reader saved before `members` held one MLP under `net.`: it is member 0
        for key in [k for k in state_dict if k.startswith(prefix + "net.")]:
            state_dict[prefix + "nets.0." + key[len(prefix + "net.") :]] = state_dict.pop(key)
        # one saved before `placing` places nothing
        state_dict.setdefault(prefix + "placing", torch.zeros_like(self.placing))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


def offsets(placing: Tensor, shape: Tensor, row: Tensor, height: int) -> Tensor:
    """(..., 2) float64 px as (x, y): how far `placing` (SHAPES, 2, 2) moves objects of
    `shape` (...) whose centroids lie on image `row` (...) px, in frames `height` px high."""
    f64 = torch.float64  # whatever dtype the model runs in: a row is up to 160 px
    coef = placing.to(row.device, f64)[shape]  # (..., 2 axes, 2 terms)
    return (coef[..., 0] + coef[..., 1] * (row.to(f64) / height)[..., None]) * height


def _member(hidden: int) -> nn.Sequential:
    """One MLP of a reader, its last layer at zero (a new reader changes nothing)."""
    net = nn.Sequential(
        nn.Linear(FEATURES, hidden), nn.GELU(),
        nn.Linear(hidden, hidden), nn.GELU(),
        nn.Linear(hidden, 2),
    )  # fmt: skip
    nn.init.zeros_(net[-1].weight)
    nn.init.zeros_(net[-1].bias)
    return net
