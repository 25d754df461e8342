"""Generated vs real videos, side by side: floor, object counts, sizes by row, motion. Prints JSON.

    python benchmarks/realism.py                       # generates 40 labelled videos to compare
    python benchmarks/realism.py --generated DATA_ROOT --real ../shared/real-samples

Only train/ and val/ videos are measured (they have mask.npy). Every scalar is compared as
generated / real; the ones off by more than a third are listed under `differ_by_over_a_third`.
Motion is what makes the mask task hard: `moving_fraction` (object-frame steps whose mask
centroid moves over 0.5 px), the speeds, and `class_change_11_to_22`, the share of object
pixels (non-background in either mask) whose class differs between frame 11 (image_10) and
frame 22 (image_21), pooled over the videos. `slowdown_ratio_median` is the median over
moving objects of their speed over frames 18-22 / their speed over frames 7-11 (real objects
slow down hard), and `moving_started_at_rest` the share of moving objects that rested at the
start and were set moving by a collision (ingest/synth/motion.py defines both).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
REAL_SAMPLES = REPO.parent / "shared" / "real-samples"  # as tests/conftest.py resolves it
BANDS = ((0, 40), (40, 70), (70, 100), (100, 160))
COUNTS = ("videos", "slowdown_objects")  # sizes of the samples, not statistics to compare

from convrnn_video.ingest.synth import SynthConfig, generate  # noqa: E402
from convrnn_video.ingest.synth.motion import (  # noqa: E402
    centroid_tracks,
    moving_and_started_at_rest,
    slowdown_ratios,
)


def labelled_videos(root: Path) -> list[Path]:
    """Video folders with a mask.npy under root/train and root/val, in id order."""
    out = []
    for split in ("train", "val"):
        folders = [p for p in (root / split).glob("video_*") if (p / "mask.npy").is_file()]
        out += sorted(folders, key=lambda p: int(p.name.split("_")[1]))
    return out


def measure(videos: list[Path]) -> dict:
    """The statistics of a set of labelled videos."""
    floor_px, top_px = [], []
    visible, first_visible, distinct = [], [], []
    area: dict[str, list[float]] = {f"{a}-{b}": [] for a, b in BANDS}
    speeds, entry_speeds, metal_std, rubber_std = [], [], [], []
    changed = objects = 0  # object pixels of frames 11 and 22, and those whose class differs
    ratios, moving_objects, started_at_rest = [], 0, 0
    for video in videos:
        mask = np.load(video / "mask.npy")
        frames = [
            np.asarray(Image.open(video / f"image_{t}.png").convert("RGB"), np.float32)
            for t in range(len(mask))
        ]
        distinct.append(len(np.unique(mask)) - 1)
        if len(mask) >= 22:
            either = (mask[10] > 0) | (mask[21] > 0)
            objects += int(either.sum())
            changed += int((either & (mask[10] != mask[21])).sum())
        centroids = centroid_tracks(mask)  # class id -> frame -> (x, y)
        ratios += slowdown_ratios(centroids)
        n_moving, n_at_rest = moving_and_started_at_rest(centroids)
        moving_objects, started_at_rest = moving_objects + n_moving, started_at_rest + n_at_rest
        first_seen = {oid: min(track) for oid, track in centroids.items()}
        for t, (img, m) in enumerate(zip(frames, mask, strict=True)):
            floor_px.append(img[m == 0][::7])
            top_px.append(img[:20][m[:20] == 0])
            ids = np.unique(m)[1:]
            visible.append(len(ids))
            if t == 0:
                first_visible.append(len(ids))
            for oid in ids.tolist():
                ys, xs = np.nonzero(m == oid)
                row = ys.mean()
                for a, b in BANDS:
                    if a <= row < b:
                        area[f"{a}-{b}"].append(len(ys))
                if len(ys) > 80:  # whole enough to judge the surface
                    pix_std = float(img[m == oid].mean(axis=1).std())
                    (metal_std if (oid - 1) % 16 < 8 else rubber_std).append(pix_std)
        for oid, track in centroids.items():
            for t in sorted(track):
                if t + 1 in track:
                    v = float(np.hypot(*(track[t + 1] - track[t])))
                    speeds.append(v)
                    if first_seen[oid] > 0 and t - first_seen[oid] in (1, 2):
                        entry_speeds.append(v)  # a frame in: mostly whole, still fast
    floor = np.concatenate(floor_px)
    moving = [s for s in speeds if s > 0.5]
    return {
        "videos": len(videos),
        "floor_mean": np.round(floor.mean(axis=0, dtype=np.float64), 1).tolist(),
        "floor_std": round(float(floor.mean(axis=1, dtype=np.float64).std()), 2),
        "floor_rows_0_20_mean": round(float(np.concatenate(top_px).mean()), 1),
        "visible_per_frame_mean": round(float(np.mean(visible)), 2),
        "visible_per_frame_max": int(np.max(visible)),
        "visible_frame0_median": float(np.median(first_visible)),
        "visible_frame0_range": [int(np.min(first_visible)), int(np.max(first_visible))],
        "distinct_objects_per_video_mean": round(float(np.mean(distinct)), 2),
        **{f"area_rows_{k}": round(float(np.mean(v)), 1) if v else None for k, v in area.items()},
        "moving_fraction": round(len(moving) / max(len(speeds), 1), 3),
        "speed_moving_median": round(float(np.median(moving)), 2) if moving else None,
        "speed_moving_p90": round(float(np.percentile(moving, 90)), 2) if moving else None,
        "speed_entering_median": round(float(np.median(entry_speeds)), 2) if entry_speeds else None,
        "slowdown_ratio_median": round(float(np.median(ratios)), 3) if ratios else None,
        "slowdown_objects": len(ratios),
        "moving_started_at_rest": (
            round(started_at_rest / moving_objects, 3) if moving_objects else None
        ),
        "class_change_11_to_22": round(changed / objects, 3) if objects else None,
        "metal_pixel_std": round(float(np.mean(metal_std)), 1) if metal_std else None,
        "rubber_pixel_std": round(float(np.mean(rubber_std)), 1) if rubber_std else None,
    }


def compare(gen: dict, real: dict) -> list[dict]:
    """Scalars where generated / real is off by more than a third."""
    out = []
    for key, r in real.items():
        g = gen.get(key)
        if key in COUNTS or not isinstance(r, int | float) or not isinstance(g, int | float):
            continue
        if r and abs(g / r - 1) > 1 / 3:
            out.append({"stat": key, "generated": g, "real": r, "ratio": round(g / r, 2)})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generated", type=Path, help="a DATA_ROOT; default: generate one")
    parser.add_argument("--videos", type=int, default=40, help="labelled videos to generate")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--real", type=Path, default=REAL_SAMPLES)
    args = parser.parse_args()
    real_videos = labelled_videos(args.real)
    if not real_videos:
        sys.exit(f"error: no labelled real videos under {args.real} (train/, val/ with mask.npy)")
    with tempfile.TemporaryDirectory() as tmp:
        root = args.generated
        if root is None:
            root = Path(tmp) / "data"
            half = args.videos // 2
            generate(
                SynthConfig(
                    out=root,
                    train=args.videos - half,
                    val=half,
                    unlabeled=0,
                    hidden=0,
                    seed=args.seed,
                    progress=False,
                )
            )
        gen = measure(labelled_videos(root))
    real = measure(real_videos)
    table = {k: {"generated": gen[k], "real": real[k]} for k in real}
    print(json.dumps({"stats": table, "differ_by_over_a_third": compare(gen, real)}, indent=1))


if __name__ == "__main__":
    main()
