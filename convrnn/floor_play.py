"""Hits between the track forecaster's objects played out on the floor they slide on
(`convrnn/floor.py`), from the state read off the input masks.

The disc stage (`convrnn/contacts.py`) plays hits in the image: discs whose size is a line of
the image row, vertical distances stretched by a constant, the forecaster's own paths as the
motion before a hit and a constant slowing after it. On generated val (true input masks, 200
unseen videos) it left 0.03-0.06 of frame-22 Jaccard to the same hits played by the
generator's physics (docs/benchmarks.md, "Hits on the floor"). Three things made the
difference, each measured:

- the hit is decided and resolved on the floor plane (`Camera`: one footprint radius, the
  floor's distances at any depth);
- the motion that enters a hit is the object's read velocity slowed by sliding friction, not
  the forecaster's path, which has already learned to slow down for hits it expects and so
  under-drives them; after a hit the same friction slows it;
- two objects found overlapping are pushed apart, and touching pairs may hit at once.

A hit object leaves the forecaster's displacements for good. Since the state is read with care
(hits inside the last input step replayed, new objects aimed), the floor also plays the objects
no hit reaches better than the net's paths on generated videos (`all_on_floor`: frame 22 up
0.010-0.014 on 300 generated val videos, docs/benchmarks.md, "Every object on the floor"), not
on the real samples: `fit-contacts` decides. A new object not aimed keeps the net's path,
unless a state reader (`convrnn/state_reader.py`, `fit-reader`) corrects its velocity: then
it too slides from the corrected one. Not differentiable in the
forecaster's paths (a hit object's path is the physics'), so `fit-contacts` fine-tunes
through the disc stage and keeps this one where it scores higher.
Pure torch, no I/O (a models-floor module).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .floor import Camera, Floor, Slowing, friction, slide
from .state_reader import StageState, StateReader, corrected, features

# how this stage plays hits, recorded in a prediction store so that a resume never mixes rules
RULE = "floor; hits inside the last input step replayed, not those inside the step before"


def rule(f: Floor) -> str:
    """How the stage with the constants `f` plays hits, for a prediction store's record."""
    aim = f"; new objects aimed within {f.aim_cone:g} degrees" if f.aim_cone > 0 else ""
    every = "; every object it knows slides on the floor" if f.all_on_floor else ""
    whole = (
        "; partly hidden objects placed by their whole footprint (one in front of all it "
        "touches seen whole)"
        if f.whole_footprint
        else ""
    )
    return RULE + aim + every + whole


def play_on_floor(
    shift: Tensor,
    velocity: Tensor,
    centre: Tensor,
    present: Tensor,
    classes: Tensor,
    size: tuple[int, int],
    f: Floor,
    before: tuple[Tensor, Tensor] | None = None,
    fresh: Tensor | None = None,
    reader: StateReader | None = None,
) -> Tensor:
    """Displacements (B, K, T, 2) px as (x, y) of B videos' K object slots (the forecaster's),
    with the objects that a hit reaches (with `all_on_floor`, every object but a new one not
    aimed) moved as the floor's physics plays them instead.

    `velocity` (B, K, 2): each object's image step into the last input frame, px as (x, y);
    `centre` (B, K, 2): where it is then; `present` (B, K): the slot holds an object;
    `classes` (B, K): its class id (the shape sets its friction); `size`: (height, width) of
    the frames. `before`: (the steps into the frame before the last and into the one before
    that (B, K, 2, 2) px, whether the object was seen in the last three and in the last four
    input frames (B, K, 2)): given, the objects in a hit during the last step start from the
    velocity the hit left them (`_replayed`). `fresh` (B, K): the objects first seen in the
    last input frame (no step read); given, those the net heads at an object at rest are
    aimed at it and played by the floor (`_aimed`). `reader`: given, the objects it corrects
    (`convrnn.state_reader.corrected`: every one, or the short tracks) start from its
    corrected velocity, and are played by the floor, new or not (it needs `before`). Float64
    inside, returned in the input's dtype."""
    b, k, steps = shift.shape[:3]
    if k < 2 or steps == 0:
        return shift
    state, cam, slowed = read_state(shift, velocity, centre, present, classes, size, f, before,
                                    fresh)  # fmt: skip
    fresh, vel, aimed = state.fresh, state.velocity, state.aimed
    if reader is not None:
        fixed = corrected(reader, state, present)
        p = next(reader.parameters())
        fix = reader(features(state, present, classes, cam).to(p.device, p.dtype))
        vel = torch.where(fixed[..., None], vel + fix.to(vel.device, vel.dtype), vel)
        aimed = aimed | (fixed & fresh)  # a new object the reader starts is the floor's
    out, _, hit = slide(state.start, vel, present, steps, slowed, f)
    hit = hit | aimed  # an aimed object's path is the floor's, hit or not
    if f.all_on_floor:  # and so is every other one's but a new object's not aimed
        hit = hit | (present & ~fresh)
    played = cam.to_image(out) - cam.to_image(state.start)[:, :, None]  # (B, K, T, 2)
    return torch.where(hit[..., None, None], played.to(shift.dtype), shift)


def read_state(
    shift: Tensor,
    velocity: Tensor,
    centre: Tensor,
    present: Tensor,
    classes: Tensor,
    size: tuple[int, int],
    f: Floor,
    before: tuple[Tensor, Tensor] | None = None,
    fresh: Tensor | None = None,
) -> tuple[StageState, Camera, Slowing]:
    """What the stage reads of each object before it slides them, from `play_on_floor`'s
    arguments (positions, the velocity read, it after a replayed hit, it after new objects are
    aimed, and what `StateReader` reads), with the stage's camera and friction."""
    cam = Camera(f, *size)
    slowed = friction(classes, f)
    fresh = torch.zeros_like(present) if fresh is None else fresh & present
    f64 = torch.float64
    centre = torch.where(present[..., None], centre.to(f64), cam.cx)  # absent slots: no NaN
    into = velocity.to(f64)
    start, read = _state(centre, into, cam, slowed)  # (B, K, 2) each, at the last frame
    if before is None:  # no steps before: nothing replayed, every track taken as long
        b, k = present.shape
        before = (torch.zeros(b, k, 2, 2, dtype=f64), torch.ones(b, k, 2, dtype=torch.bool))
        replayed = read
    else:
        replayed = _replayed(read, centre - into, before, cam, slowed, f)
    vel, aimed = replayed, torch.zeros_like(present)
    heading = cam.to_floor(centre + shift[:, :, 0].to(f64)) - start  # the net's first step
    if f.aim_cone > 0:
        vel, aimed = _aimed(replayed, start, heading, fresh, present, f)
    steps, seen = before
    earlier = centre - into  # where each object was in the frame before the last
    state = StageState(start, read, replayed, vel, heading, fresh, aimed, seen, earlier, steps)
    return state, cam, slowed


def _state(at: Tensor, step: Tensor, cam: Camera, slowed: Slowing) -> tuple[Tensor, Tensor]:
    """(floor positions (B, K, 2), velocities (B, K, 2)) of objects at image points `at`
    (B, K, 2) px that moved by the image `step` (B, K, 2) px into them: the velocity is the
    floor step, already slowed once by the frame's friction after it."""
    x = cam.to_floor(at)
    return x, slowed(x - cam.to_floor(at - step))


def _replayed(
    vel: Tensor,
    earlier: Tensor,
    before: tuple[Tensor, Tensor],
    cam: Camera,
    slowed: Slowing,
    f: Floor,
) -> Tensor:
    """The state velocities (B, K, 2) at the last frame, with those of the objects in a hit
    during the last step replaced by what the hit left them. The step into the last frame
    (which `vel` was read from) is the motion before the hit: a striker's is too fast, a
    struck object's too slow. So the objects seen in the last three frames are played one
    frame on from the frame before the last (`earlier`, (B, K, 2) image px; its state from
    the step into it, `before`'s first), and those the play finds in a hit take the velocity
    it ends with. On frame 22 this gained 0.002-0.019 on four sets of generated videos and
    0.014 on the real samples (docs/benchmarks.md, "Hits inside the last step").

    Not where the hit came during the step before (the same play one frame on from the frame
    before that, for the objects seen in the last four frames, finds it there): the step into
    the last frame is then already the motion after the hit, and the step into the frame
    before, part before and part after, met the pair a second time in the replay and left
    both too slow. Reading them as they are raised frame 22 by 0.006-0.013 on four generated
    sets (docs/benchmarks.md, "A hit one step earlier is not replayed")."""
    steps, seen = before  # (B, K, 2, 2), (B, K, 2)
    steps = steps.to(earlier.dtype)
    after, hit = _one_frame(earlier, steps[:, :, 0], seen[..., 0], cam, slowed, f)
    _, sooner = _one_frame(earlier - steps[:, :, 0], steps[:, :, 1], seen[..., 1], cam, slowed, f)
    return torch.where((hit & ~sooner)[..., None], after, vel)


def _one_frame(
    at: Tensor, step: Tensor, seen: Tensor, cam: Camera, slowed: Slowing, f: Floor
) -> tuple[Tensor, Tensor]:
    """The `seen` objects (B, K) at image px `at` (B, K, 2), which moved by `step` (B, K, 2) px
    into there, slid one frame on the floor: (their velocities after it (B, K, 2), (B, K) which
    were in a hit). The rest play no part."""
    at = torch.where(seen[..., None], at, cam.cx)
    x, state = _state(at, step, cam, slowed)
    _, after, hit = slide(x, state, seen, 1, slowed, f)
    return after, hit & seen


def _aimed(
    vel: Tensor, x: Tensor, heading: Tensor, fresh: Tensor, present: Tensor, f: Floor
) -> tuple[Tensor, Tensor]:
    """(the velocities (B, K, 2) with those of the `fresh` objects (B, K) aimed, (B, K) which
    were): an object first seen in the last input frame has no step to read, and the net
    heads it (`heading` (B, K, 2), its first floor step) a median 12 degrees off its true
    course. Where an object at rest lies within `aim_cone` of that heading, the fresh object
    is aimed at the nearest in angle at the net's speed: objects rolled in mostly head for
    one at rest. On 200 unseen generated videos frame 22 rose 0.006-0.007, on the 100 val
    ones 0.001-0.002 (docs/benchmarks.md, "New objects aimed at objects at rest")."""
    resting = present & ~fresh & (vel.norm(dim=-1) < f.rest)  # (B, K)
    line = x[:, None] - x[:, :, None]  # (B, K, K, 2) from object i to object j
    dot = (line * heading[:, :, None]).sum(-1)  # (B, K, K)
    norms = line.norm(dim=-1) * heading.norm(dim=-1)[..., None]
    cos = dot / norms.clamp(min=1e-12)  # of the angle between the heading and the line
    ok = fresh[:, :, None] & resting[:, None, :] & (norms > 0)
    ok = ok & (cos >= math.cos(math.radians(f.aim_cone)))
    best = torch.where(ok, cos, -2.0).argmax(-1)  # (B, K) the target nearest in angle
    towards = line.gather(2, best[..., None, None].expand(*best.shape, 1, 2)).squeeze(2)
    speed = heading.norm(dim=-1, keepdim=True)
    aimed = ok.any(-1)
    new = towards / towards.norm(dim=-1, keepdim=True).clamp(min=1e-12) * speed
    return torch.where(aimed[..., None], new, vel), aimed
