"""Where reading frame 11's state off the masks loses the hits: the physics reader of
`knowable.py` (each object's state from its centroids in frames 10 and 11, slid by the
generator's physics), with the true velocity given to one group of objects at a time.

    python benchmarks/state_read.py --videos 200 --first-id 1100

Each object of frame 11's true mask falls in one group:
    new        not in frame 10 (it enters at frame 11): no velocity can be read
    edge       cut by the picture's border in frame 10 or 11: its centroid is the seen part's
    occluded   not at the border, but its pixel count in frame 10 or 11 is under OCCLUDED of
               its largest over frames 5-11 (behind another object, or in a hit)
    clean      the rest
Rows (frame 22 and frames 12-22 of the course's Jaccard, true input masks): `masks`, the
reader alone; `true_velocity_<group>`, the reader with that group's true floor velocity at
frame 11; `true_velocity_all`; `true_state_all` (positions too). The gain of a row over
`masks` is what a better reading of that group's velocity can buy; `masks_by_shape`, the
reader with the step from frame 10 to 11 the track forecaster reads (`object_steps`: by
shape where an object is cut, hidden or uncovered). Per group, the count and the reader's
velocity error in px/frame, read off centroids and by shape (floor units scaled at the
object's depth; most objects rest, so the share off by over 1 px/frame says more than the
median). The videos are the generator's (seed, id), as knowable.py reads them: nothing is
read from disk. Prints JSON with the CPU model.
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
from convrnn_video.convrnn.extrapolate import class_centroids  # noqa: E402
from convrnn_video.ingest.synth.config import SPLITS  # noqa: E402
from convrnn_video.ingest.synth.render import render  # noqa: E402
from convrnn_video.runtime.jaccard import FrameJaccard  # noqa: E402
from convrnn_video.shards.format import NUM_CLASSES  # noqa: E402
from extrapolate import cpu_model  # noqa: E402
from knowable import (  # noqa: E402
    FORK,
    FRAMES,
    FRAMES_IN,
    SL,
    S,
    copy_rng,
    scene_at_fork,
    slide_and_paint,
    state_from_masks,
)

OCCLUDED = 0.85
GROUPS = ("new", "edge", "occluded", "clean")


def groups(mask: np.ndarray, ids: list[int]) -> np.ndarray:
    """(N,) the group index (into GROUPS) of each of frame 11's objects `ids` of `mask`."""
    _, count = class_centroids(torch.from_numpy(mask[:FRAMES_IN]).long(), NUM_CLASSES)
    count = count.numpy()  # (11, K)
    h, w = mask.shape[1:]
    out = np.zeros(len(ids), dtype=int)
    for j, k in enumerate(ids):
        if count[FORK - 1, k] == 0:
            continue  # new
        ys, xs = np.nonzero((mask[FORK - 1] == k) | (mask[FORK] == k))
        if xs.min() == 0 or ys.min() == 0 or xs.max() == w - 1 or ys.max() == h - 1:
            out[j] = 1
        elif min(count[FORK - 1, k], count[FORK, k]) < OCCLUDED * count[FORK - 6 :, k].max():
            out[j] = 2
        else:
            out[j] = 3
    return out


def score_video(
    seed: int, video_id: int, acc: dict[str, FrameJaccard], errors: dict[str, list[list[float]]]
) -> None:
    """Add one generated video's rows to `acc` and its objects' velocity errors (px/frame) to
    `errors` (read off centroids, and by shape), one list per group."""
    state, rng = scene_at_fork(seed, video_id)
    whole = state.copy()
    SL.slide(whole, copy_rng(rng), FORK + 1, FRAMES)
    true = render(whole.scene(), FRAMES)[1]  # (22, H, W)
    target = torch.from_numpy(true[None, FRAMES_IN:])
    ids, read = state_from_masks(true)
    if not ids:
        return
    scene_ids = state.scene().ids  # (N,) each object's class id
    own = [int(np.flatnonzero(scene_ids == k)[0]) for k in ids]
    true_pos, true_vel = state.pos[own], state.vel[own]
    group = groups(true, ids)
    px = S.px_per_unit(true_pos[:, 1])  # (N,) px per floor unit at each object's depth
    shaped = state_from_masks(true, by_shape=True)[1]
    for name, state_read in (("centroid", read), ("shape", shaped)):
        err = np.hypot(*(state_read.vel - true_vel).T) * px
        for g in range(len(GROUPS)):
            errors[name][g] += err[group == g].tolist()
    acc.setdefault("masks_by_shape", FrameJaccard()).update(
        slide_and_paint(true, ids, shaped), target
    )
    given = {"masks": np.zeros(len(ids), bool)}
    given |= {f"true_velocity_{name}": group == g for g, name in enumerate(GROUPS)}
    given |= {"true_velocity_all": np.ones(len(ids), bool), "true_state_all": None}
    for name, which in given.items():
        s = read.copy()
        if which is None:  # every object's true position and velocity
            s.vel[:], s.pos[:] = true_vel, true_pos
            s.out_pos[FORK] = s.pos
        else:
            s.vel[which] = true_vel[which]
        acc.setdefault(name, FrameJaccard()).update(slide_and_paint(true, ids, s), target)


def spread(e: list[float]) -> dict[str, float | None]:
    """The median and RMS of velocity errors (px/frame), and the share over 1 px/frame."""
    if not e:
        return dict.fromkeys(("velocity_error_px_median", "velocity_error_px_rms",
                              "share_off_by_over_1px"))  # fmt: skip
    return {"velocity_error_px_median": round(float(np.median(e)), 3),
            "velocity_error_px_rms": round(float(np.sqrt(np.mean(np.square(e)))), 3),
            "share_off_by_over_1px": round(float(np.mean(np.array(e) > 1.0)), 3)}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--videos", type=int, default=200, help="generated val videos")
    ap.add_argument("--seed", type=int, default=0, help="the generation's seed (synth --seed)")
    ap.add_argument("--first-id", type=int, default=SPLITS["val"][0], help="the first video id")
    args = ap.parse_args()
    if args.videos < 1:
        ap.error(f"--videos must be at least 1, got {args.videos}")
    torch.set_num_threads(1)
    start = time.perf_counter()
    acc: dict[str, FrameJaccard] = {}
    errors: dict[str, list[list[float]]] = {k: [[] for _ in GROUPS] for k in ("centroid", "shape")}
    for video_id in range(args.first_id, args.first_id + args.videos):
        score_video(args.seed, video_id, acc, errors)
    report = {
        "benchmark": "state_read",
        "cpu": cpu_model(),
        "videos": args.videos,
        "seed": args.seed,
        "first_id": args.first_id,
        "inputs": "the generator's scenes; true input masks; the physics reader of knowable.py",
        "rows": {
            name: {"frame22": round(r["last"], 4), "frames12_22": round(r["mean"], 4)}
            for name, r in ((n, a.compute()) for n, a in acc.items())
        },
        "groups": {
            name: {"objects": len(errors["centroid"][g])}
            | {
                f"{key}_{how}": value
                for how in ("centroid", "shape")
                for key, value in spread(errors[how][g]).items()
            }
            for g, name in enumerate(GROUPS)
        },
        "seconds": round(time.perf_counter() - start, 1),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
