"""What can a forecaster that moves frame 11's objects know? The generator's own scenes, slid
to frame 11 and then copied: each copy slides on to frame 22 with part of the future hidden
from it (objects that enter later, each object's friction factor, collisions, the exact state),
and frame 11's true objects are moved by the copy's centroid displacements
(`extrapolate.true_shifts`), scored with the course's Jaccard on the true frames 12-22.

    python benchmarks/knowable.py --videos 100 --tracks runs/tracks/best.pt

Rows, each hiding more than the one before (frame 22 and frames 12-22):
    copy_frame11                   frame 11's mask kept
    true_future                    the ceiling of moving whole objects (extrapolate.py's)
    no_later_entries               objects entering after frame 11 never come
    mean_friction                  and every object's friction factor is the spread's mean
    mean_friction_noise_pP_vV      and positions and velocities at frame 11 are off by Gaussian
                                   noise of P px and V px/frame (each axis, velocity only on
                                   moving objects): a state read from masks
    no_collisions[_mean_friction]  objects pass through each other after frame 11
    physics_from_masks[_no_collisions]   no truth at all: each frame-11 object's state read
                                   off the true masks' centroids (`state_from_masks`), its
                                   friction factor the mean, slid by the generator's physics,
                                   each object drawn at its depths' ratio as the forecaster
                                   with the floor stage draws it (the rows above move
                                   frame 11's objects at their own size)
With --tracks, the track forecaster on the same true input masks, and the precision of a
velocity read from true-mask centroids (`centroid_velocity_error_px`: against the floor
contact point's true image velocity, objects moving over 1 px/frame at frame 11 and seen
whole in frames 5-11), so a noise row can be read against what masks allow. The videos are
the generator's (seed, id), val ids from --first-id (1000, as `cli.py synth` numbers them):
nothing is read from disk. The physics rows use the generator's own physics and camera; on
real videos they are not a forecaster (docs/benchmarks.md). Prints JSON with the CPU model.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))
from convrnn_video.convrnn.extrapolate import class_centroids, paint_shifted  # noqa: E402
from convrnn_video.convrnn.shape_steps import object_steps  # noqa: E402
from convrnn_video.ingest.synth import scene as S  # noqa: E402
from convrnn_video.ingest.synth import sliding as SL  # noqa: E402
from convrnn_video.ingest.synth.config import SPLITS  # noqa: E402
from convrnn_video.ingest.synth.render import render  # noqa: E402
from convrnn_video.ingest.synth.writer import video_rng  # noqa: E402
from convrnn_video.runtime.checkpoint import load_model  # noqa: E402
from convrnn_video.runtime.jaccard import FrameJaccard  # noqa: E402
from convrnn_video.shards.format import NUM_CLASSES  # noqa: E402
from extrapolate import FRAMES_IN, cpu_model, true_shifts  # noqa: E402

from convrnn_video import PipelineError  # noqa: E402

FORK = FRAMES_IN - 1  # index of frame 11, the last one seen
FRAMES = 22
MOVING_PX = 1.0  # px/frame at frame 11: a moving object for the velocity precision


def forks(state: SL.Sliding, rng: np.random.Generator, noise: list, video_id: int) -> dict:
    """{row: Scene} slid from `state` (at frame 11) to the end, each with part of the future
    hidden; `rng` is the scene's own (its later draws are for entries); the noise is drawn
    from `video_id`."""
    later = state.enter_at > FORK  # (N,) objects that enter after frame 11
    typical = float(np.mean(SL.FRICTION_SPREAD))
    out = {}

    def run(name: str, entries: bool, mean_friction: bool, collide: bool, p=0.0, v=0.0):
        s = state.copy()
        if not entries:
            s.enter_at[later] = np.iinfo(s.enter_at.dtype).max
        if mean_friction:
            s.drag *= typical / s.friction
            s.decel *= typical / s.friction
        if p or v:
            noisy = np.random.default_rng([video_id, int(p * 100), int(v * 100)])
            seen = s.enter_at <= FORK
            moving = seen & (np.hypot(s.vel[:, 0], s.vel[:, 1]) > 0)
            per_px = S.px_per_unit(s.pos[:, 1])[:, None]  # (N, 1) px per floor unit
            s.pos[seen] += noisy.normal(0, p, (int(seen.sum()), 2)) / per_px[seen]
            s.vel[moving] += noisy.normal(0, v, (int(moving.sum()), 2)) / per_px[moving]
        SL.slide(s, copy_rng(rng), FORK + 1, FRAMES, collide)
        out[name] = s.scene()

    run("true_future", True, False, True)
    run("no_later_entries", False, False, True)
    run("mean_friction", False, True, True)
    for p, v in noise:
        run(f"mean_friction_noise_p{p:g}_v{v:g}", False, True, True, p, v)
    run("no_collisions", False, False, False)
    run("no_collisions_mean_friction", False, True, False)
    return out


def copy_rng(rng: np.random.Generator) -> np.random.Generator:
    """A generator that draws what `rng` would next, leaving `rng` where it is."""
    twin = np.random.default_rng()
    twin.bit_generator.state = rng.bit_generator.state
    return twin


def scene_at_fork(seed: int, video_id: int) -> tuple[SL.Sliding, np.random.Generator]:
    """The video's scene slid to frame 11 and its RNG, drawn as `simulate` draws it (a scene
    with too many objects in view is drawn again from the same RNG)."""
    rng = video_rng(seed, video_id)
    for _ in range(20):
        state = SL.start(rng, FRAMES)
        SL.slide(state, rng, 0, FORK + 1)
        whole = state.copy()
        SL.slide(whole, copy_rng(rng), FORK + 1, FRAMES)
        if S.in_view(whole.scene()).sum(axis=1).max() <= S.MAX_IN_VIEW:
            break
        SL.slide(state, rng, FORK + 1, FRAMES)  # as simulate would, before drawing again
    return state, rng


def state_from_masks(mask: np.ndarray, by_shape: bool = False) -> tuple[list[int], SL.Sliding]:
    """Frame 11's objects of a class-id stack (T >= 11, H, W) and a Sliding state of them at
    frame 11 read off their centroids alone: floor position and velocity from a line through
    the centroids of frames 10 and 11, unprojected at object-centre height (RADIUS), the
    velocity slowed by frame 11's friction (the generator slows an object after each step,
    so the step 10 -> 11 is faster than the state at 11); the shape (so the friction) from
    the class id; the friction factor the spread's mean. `by_shape`: the step from frame 10
    to 11 is the track forecaster's (`convrnn.shape_steps.object_steps`: read by shape where
    the object is cut, hidden or uncovered), frame 10's point frame 11's centroid less it."""
    masks = torch.from_numpy(mask[:FRAMES_IN]).long()
    centre, count = class_centroids(masks, NUM_CLASSES, torch.float64)
    step = (centre[FORK] - centre[FORK - 1]).numpy()  # (K, 2)
    if by_shape:
        pair = masks[None, FORK - 1 :]
        step = object_steps(pair, centre[None, FORK - 1 :], count[None, FORK - 1 :])[0, 1].numpy()
    centre, count = centre.numpy(), count.numpy()  # (11, K, 2), (11, K)
    ids = [k for k in range(1, NUM_CLASSES) if count[FORK, k] > 0]
    n = len(ids)
    pos, vel = np.zeros((n, 2)), np.zeros((n, 2))
    for j, k in enumerate(ids):
        ends = np.stack([centre[FORK, k] - step[k], centre[FORK, k]])  # (2, 2): frames 10, 11
        x, z = S.unproject_floor(ends[:, 0], ends[:, 1], S.RADIUS)
        pos[j] = x[-1], z[-1]
        if count[FORK - 1, k] > 0:  # seen in frame 10 too
            vel[j] = x[1] - x[0], z[1] - z[0]
    kinds = S.kinds_of(np.array(ids, dtype=int)).reshape(n, 3)
    friction = np.full(n, float(np.mean(SL.FRICTION_SPREAD)))
    drag, decel = SL.slowing(kinds[:, 0], friction)
    speed = np.hypot(vel[:, 0], vel[:, 1])
    slower = np.maximum(speed * (1.0 - drag) - decel, 0.0)
    vel *= np.divide(slower, speed, out=np.zeros_like(speed), where=speed > 0)[:, None]
    vel[np.hypot(vel[:, 0], vel[:, 1]) < SL.REST_SPEED] = 0.0
    out_pos = np.zeros((FRAMES, n, 2))
    out_pos[FORK] = pos
    state = SL.Sliding(kinds, friction, drag, decel, pos, vel, np.ones(n), np.zeros(n),
                      np.zeros(n, dtype=int), {}, out_pos, np.zeros((FRAMES, n)))  # fmt: skip
    return ids, state


def physics_from_masks(mask: np.ndarray, collide: bool) -> torch.Tensor:
    """(1, 11, H, W) class ids: frame 11's objects of `mask` (22 or 11 frames) moved by the
    image displacement of their centres when `state_from_masks` is slid to frame 22."""
    return slide_and_paint(mask, *state_from_masks(mask), collide)


def slide_and_paint(
    mask: np.ndarray, ids: list[int], state: SL.Sliding, collide: bool = True
) -> torch.Tensor:
    """(1, 11, H, W): frame 11's objects `ids` of `mask` moved by the image displacement of
    their centres when `state` (theirs at frame 11, in `ids` order) is slid to frame 22, each
    drawn at the ratio of its depths (the generator's camera), as the track forecaster with
    the floor stage draws them."""
    last = torch.from_numpy(mask[FORK])
    if not ids:
        return torch.zeros(1, FRAMES - FRAMES_IN, *last.shape, dtype=torch.uint8)
    SL.slide(state, np.random.default_rng(0), FORK + 1, FRAMES, collide)  # no entries: no draws
    centre = state.out_pos[FORK:]  # (12, N, 2) floor points, frame 11 first
    lifted = np.stack([centre[..., 0], np.full(centre.shape[:-1], S.RADIUS), centre[..., 1]], -1)
    image, depth = S.project(lifted)  # (12, N, 2) x, y; (12, N)
    shift = torch.from_numpy((image[1:] - image[0]).transpose(1, 0, 2)[..., ::-1].copy())
    scale = torch.from_numpy((depth[0] / depth[1:]).T.clip(0.5, 1.99))  # (N, 11)
    return paint_shifted(last, torch.tensor(ids), shift.round().long(), scale)[None]


def velocity_errors(scene: S.Scene, mask: np.ndarray) -> list[tuple[float, float]]:
    """(last step, 5-frame fit) errors in px/frame of the image velocity read from the true
    mask's centroids, against the floor contact point's, for objects moving at frame 11."""
    floor = np.stack([scene.pos[..., 0], np.zeros_like(scene.pos[..., 0]), scene.pos[..., 1]], -1)
    image = S.project(floor)[0]  # (T, N, 2)
    out = []
    for i, oid in enumerate(scene.ids):
        centres = []
        for t in range(FORK - 6, FORK + 1):
            ys, xs = np.nonzero(mask[t] == oid)
            if len(xs) < 30 or xs.min() == 0 or ys.min() == 0 or xs.max() == mask.shape[2] - 1 \
                    or ys.max() == mask.shape[1] - 1:  # fmt: skip
                break
            centres.append((xs.mean(), ys.mean()))
        true_step = image[FORK, i] - image[FORK - 1, i]
        if len(centres) < 7 or np.hypot(*true_step) < MOVING_PX:
            continue
        c = np.array(centres)  # (7, 2) frames 5-11
        fit = np.polyfit(np.arange(5), c[-5:], 1)[0]  # (2,) slope
        true_fit = np.polyfit(np.arange(5), image[FORK - 4 : FORK + 1, i], 1)[0]
        out.append((float(np.hypot(*(c[-1] - c[-2] - true_step))),
                    float(np.hypot(*(fit - true_fit)))))  # fmt: skip
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--videos", type=int, default=100, help="generated val videos")
    ap.add_argument("--seed", type=int, default=0, help="the generation's seed (synth --seed)")
    ap.add_argument("--first-id", type=int, default=SPLITS["val"][0], help="the first video id")
    ap.add_argument("--noise", default="0.5:0.2,1:0.5,2:1",
                    help="P:V pairs, px and px/frame, of the noisy-state rows")  # fmt: skip
    ap.add_argument("--tracks", type=Path, default=None, help="a track forecaster: its row too")
    args = ap.parse_args()
    if args.videos < 1:
        ap.error(f"--videos must be at least 1, got {args.videos}")
    try:
        noise = [(float(p), float(v)) for p, v in (pair.split(":") for pair in
                                                    args.noise.split(",") if pair)]  # fmt: skip
    except ValueError:
        ap.error(f"--noise takes P:V pairs of numbers, e.g. 0.5:0.2,1:0.5; got {args.noise!r}")
    tracks = None
    if args.tracks is not None:
        try:
            tracks = load_model(args.tracks, task="tracks")[0]
        except PipelineError as e:  # a missing or broken checkpoint: one line, no traceback
            sys.exit(f"error: {e}")
    torch.set_num_threads(1)
    start = time.perf_counter()
    acc: dict[str, FrameJaccard] = {"copy_frame11": FrameJaccard()}
    errors = []
    for video_id in range(args.first_id, args.first_id + args.videos):
        state, rng = scene_at_fork(args.seed, video_id)
        scenes = forks(state, rng, noise, video_id)
        if not np.array_equal(
            scenes["true_future"].pos, SL.simulate(video_rng(args.seed, video_id)).pos
        ):
            sys.exit(f"error: video {video_id}: the copy at frame 11 does not slide as synth does")
        true = render(scenes["true_future"], FRAMES)[1]  # (22, H, W) the video's true mask
        target = torch.from_numpy(true[None, FRAMES_IN:])  # (1, 11, H, W)
        acc["copy_frame11"].update(torch.from_numpy(true[None, FORK : FORK + 1]).expand_as(target),
                                   target)  # fmt: skip
        for name, scene in scenes.items():
            future = true if name == "true_future" else render(scene, FRAMES)[1]
            hybrid = np.concatenate([true[:FRAMES_IN], future[FRAMES_IN:]])  # seen, then the copy's
            acc.setdefault(name, FrameJaccard()).update(true_shifts(torch.from_numpy(hybrid[None])),
                                                        target)  # fmt: skip
        for name, collide in (
            ("physics_from_masks", True),
            ("physics_from_masks_no_collisions", False),
        ):
            acc.setdefault(name, FrameJaccard()).update(physics_from_masks(true, collide), target)
        if tracks is not None:
            with torch.no_grad():
                pred = tracks(torch.from_numpy(true[None, :FRAMES_IN]).long()).argmax(2)
            acc.setdefault("tracks_model", FrameJaccard()).update(pred, target)
        errors += velocity_errors(scenes["true_future"], true)
    rows = {}
    for name, a in acc.items():
        r = a.compute()
        rows[name] = {"frame22": round(r["last"], 4), "frames12_22": round(r["mean"], 4)}
    err = np.array(errors).reshape(-1, 2)
    report = {
        "benchmark": "knowable",
        "cpu": cpu_model(),
        "videos": args.videos,
        "seed": args.seed,
        "first_id": args.first_id,
        "inputs": "the generator's scenes; frame 11's true objects moved by each copy's shifts",
        "tracks": str(args.tracks) if args.tracks else None,
        "rows": rows,
        "centroid_velocity_error_px": {
            "objects": len(err),
            **{
                f"{name}_{stat}": round(float(f(err[:, k])), 3)
                for k, name in enumerate(("last_step", "fit5"))
                for stat, f in (("median", np.median), ("rms", lambda e: np.sqrt((e**2).mean())))
            },
        },  # fmt: skip
        "seconds": round(time.perf_counter() - start, 1),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
