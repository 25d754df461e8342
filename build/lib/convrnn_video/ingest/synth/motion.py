"""How objects move in a labelled video, measured from its masks alone (real or generated).

Both statistics follow each object by its class id: its track is the centroid of its mask
pixels in every frame where it is seen, so occlusion and the image border move it as they
would move a person's eye. `benchmarks/realism.py` compares them between generated and real
videos; tests/test_synth.py keeps the generator's values near the real ones.

- slow-down ratio: an object's mean speed over frames 18-22 over its mean speed over frames
  7-11 (1-based, the task's input and target ends), for objects seen in all ten frames that
  move over MOVING_PX px/frame in the first window. Real objects slow down hard: ~0.25.
- started at rest: the share of moving objects that rest when the video starts and are set
  moving later (by a collision; nothing else moves a resting object).
"""

from __future__ import annotations

import numpy as np

EARLY = (6, 10)  # frames 7-11 (0-based image indices, both ends included)
LATE = (17, 21)  # frames 18-22
MOVING_PX = 1.0  # px/frame: a mean speed above it is motion, not centroid jitter
REST_PX = 0.5  # px/frame: a step below it is at rest


def centroid_tracks(mask: np.ndarray) -> dict[int, dict[int, np.ndarray]]:
    """Class id -> frame -> centroid (x, y) of its mask pixels, in the frames where it is seen.

    mask: (T, H, W) class ids, 0 the floor.
    """
    out: dict[int, dict[int, np.ndarray]] = {}
    for t, m in enumerate(mask):
        ids = np.unique(m)[1:]
        if not len(ids):
            continue
        ys, xs = np.nonzero(m)
        cls = m[ys, xs]
        # per-id sums in one pass: bincount over the class ids
        n = np.bincount(cls, minlength=ids.max() + 1)
        sx = np.bincount(cls, weights=xs, minlength=ids.max() + 1)
        sy = np.bincount(cls, weights=ys, minlength=ids.max() + 1)
        for oid in ids.tolist():
            out.setdefault(oid, {})[t] = np.array([sx[oid] / n[oid], sy[oid] / n[oid]])
    return out


def _mean_speed(track: dict[int, np.ndarray], first: int, last: int) -> float | None:
    """Mean step speed (px/frame) from frame `first` to `last`; None unless seen in all."""
    if any(t not in track for t in range(first, last + 1)):
        return None
    steps = [np.hypot(*(track[t + 1] - track[t])) for t in range(first, last)]
    return float(np.mean(steps))


def slowdown_ratios(tracks: dict[int, dict[int, np.ndarray]]) -> list[float]:
    """Late over early mean speed of every object that moves in frames 7-11 and is seen
    in all of frames 7-11 and 18-22."""
    out = []
    for track in tracks.values():
        early, late = _mean_speed(track, *EARLY), _mean_speed(track, *LATE)
        if early is not None and late is not None and early > MOVING_PX:
            out.append(late / early)
    return out


def moving_and_started_at_rest(tracks: dict[int, dict[int, np.ndarray]]) -> tuple[int, int]:
    """(moving objects, those among them that rested when the video started).

    Moving: two successive steps over MOVING_PX px/frame somewhere in the track. Started at
    rest: seen in frames 1-3, its first two steps under REST_PX, so it was set moving later.
    """
    moving = at_rest = 0
    for track in tracks.values():
        speed = {t: np.hypot(*(track[t + 1] - track[t])) for t in track if t + 1 in track}
        if not any(speed[t] > MOVING_PX and speed.get(t + 1, 0.0) > MOVING_PX for t in speed):
            continue
        moving += 1
        at_rest += all(speed.get(t, np.inf) < REST_PX for t in (0, 1))
    return moving, at_rest
