"""How far does moving frame 11's objects along their velocity get on the course's score?
The Jaccard (49 classes, runtime.jaccard as the project computes it) of frames 12-22, on TRUE
input masks (frames 1-11 from mask.npy: no segmenter), for copying frame 11's mask and for
`convrnn.extrapolate.extrapolate_masks` at several decays, and for the ceiling of any method
that moves frame 11's objects as wholes (each moved by its true displacement), on generated val
and on the labelled real samples:

    python cli.py synth /tmp/h4 --train 0 --val 300 --unlabeled 0 --hidden 0
    nice -n 5 python benchmarks/extrapolate.py --data /tmp/h4 --real ../shared/real-samples

--data is a DATA_ROOT whose val/ videos have mask.npy; --real a folder whose train/ and val/
videos do (those without are skipped). With --segmenter SEG.pt, the same rows again from the
segmenter's masks of frames 1-11 (what `predict` reads), beside the segmenter on the true frame
22 (the ceiling then); on the real samples that is a segmenter trained on generated frames, so
the gap to the true-mask rows is the generator's gap to the real data. With --tracks, the
forecaster's row as its checkpoint plays it, and beside it the same paths without hits, with
the disc stage and with the floor stage (`tracks_*_hits`); with both, those rows read the
masks a track forecaster reads in `predict` (`segment_for_tracks`), the others the plain ones.
Prints JSON with the CPU model.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from convrnn_video.convrnn.extrapolate import (  # noqa: E402
    DECAY,
    FIT_FRAMES,
    class_centroids,
    extrapolate_masks,
    paint_shifted,
)
from convrnn_video.convrnn.floor import Floor  # noqa: E402
from convrnn_video.convrnn.track_reads import tracks_and_mirror  # noqa: E402
from convrnn_video.ingest.synth.motion import MOVING_PX  # noqa: E402
from convrnn_video.runtime.jaccard import FrameJaccard  # noqa: E402
from convrnn_video.shards.format import NUM_CLASSES  # noqa: E402

FRAMES_IN = 11


def cpu_model() -> str:
    """The CPU's model name, from lscpu."""
    out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    names = [ln.split(":", 1)[1].strip() for ln in out.splitlines() if ln.startswith("Model name")]
    return names[0] if names else "unknown"


def labelled_videos(root: Path, splits: tuple[str, ...]) -> list[Path]:
    """Folders video_<id> with a mask.npy under root/<split>, in id order."""
    folders = []
    for split in splits:
        found = [p for p in (root / split).glob("video_*") if (p / "mask.npy").is_file()]
        folders += sorted(found, key=lambda p: int(p.name.split("_")[1]))
    return folders


def rows(decays: list[float], fit_frames: list[int], fitted: int) -> dict:
    """Row name -> (decay, fit frames) of every extrapolation row: constant velocity and each
    decay per velocity window, and a decay fitted per object over `fitted` masks."""
    out = {}
    for f in fit_frames:
        suffix = "" if f == FIT_FRAMES else f"_fit{f}"
        out[f"constant_velocity{suffix}"] = (1.0, f)
        out.update({f"decay_{d}{suffix}": (d, f) for d in decays})
    out[f"decay_fitted_per_object_fit{fitted}"] = (None, fitted)
    return out


def true_shifts(masks: torch.Tensor, sizes: bool = False) -> torch.Tensor:
    """The ceiling of moving frame 11's objects as wholes: (B, T_out, H, W) uint8, each object
    of frame 11's mask moved by its TRUE centroid displacement to every later frame (an object
    absent from a later mask is left out of it); what no velocity model can beat. With
    `sizes`, each is also drawn scaled about its centroid by its true change of size (the
    square root of its pixel count's ratio, which occlusion also moves; within the painter's
    [1/2, 2)): the room a forecaster of sizes would add."""
    b, t, h, w = masks.shape
    centre, count = class_centroids(masks.flatten(0, 1).long(), NUM_CLASSES, torch.float64)
    centre, count = centre.view(b, t, -1, 2), count.view(b, t, -1)
    out = torch.zeros(b, t - FRAMES_IN, h, w, dtype=torch.uint8)
    for i in range(b):
        ids = (count[i, FRAMES_IN - 1, 1:] > 0).nonzero().flatten() + 1  # (N,) frame 11's objects
        if not len(ids):
            continue
        scale = None
        if sizes:  # (N, T_out); an absent object's scale is dropped with it below
            ratio = count[i, FRAMES_IN:, ids] / count[i, FRAMES_IN - 1, ids]  # (T_out, N)
            scale = ratio.sqrt().T.clamp(0.5, 1.99)
        moved = paint_shifted(masks[i, FRAMES_IN - 1], ids, _true_steps(centre[i], ids), scale)
        absent = count[i, FRAMES_IN:] == 0  # (T_out, K): not in that true mask
        drop = absent.gather(1, moved.long().flatten(1)).view_as(moved)  # (T_out, H, W)
        out[i] = moved * ~drop
    return out


def _true_steps(centre: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """(N, T_out, 2) whole pixels as (row, column): the true centroid displacement of the
    objects `ids` from frame 11 to every later frame, from one video's centroids (T, K, 2)."""
    shift = (centre[FRAMES_IN:, ids] - centre[FRAMES_IN - 1, ids]).transpose(0, 1)
    return shift.flip(-1).round().long()


def tracks_given_truth(tracks, masks: torch.Tensor) -> dict[str, torch.Tensor]:
    """Where the room above the track forecaster is: {"moving", "still"} -> its masks
    (B, T_out, H, W) uint8 with the TRUE displacement given to the objects moving at frame 11
    (over MOVING_PX px from frame 10), or to the others, wherever the object is seen in the
    target frame."""
    b, t, h, w = masks.shape
    centre, count = class_centroids(masks.flatten(0, 1).long(), NUM_CLASSES, torch.float64)
    centre, count = centre.view(b, t, -1, 2), count.view(b, t, -1)
    found, flipped = tracks_and_mirror(masks[:, :FRAMES_IN].long(), tracks.cfg)
    pred = tracks.shifts(found, h, w, flipped)  # as `forecast` reads them
    out = {k: torch.zeros(b, t - FRAMES_IN, h, w, dtype=torch.uint8) for k in ("moving", "still")}
    for i in range(b):
        ids = found.present[i].nonzero().flatten()
        if not len(ids):
            continue
        step = centre[i, FRAMES_IN - 1, ids] - centre[i, FRAMES_IN - 2, ids]  # (N, 2)
        moves = (step.norm(dim=-1) > MOVING_PX) & (count[i, FRAMES_IN - 2, ids] > 0)  # (N,)
        seen_later = (count[i, FRAMES_IN:, ids] > 0).T  # (N, T_out)
        truth = _true_steps(centre[i], ids)
        for name, group in (("moving", moves), ("still", ~moves)):
            pick = (group[:, None] & seen_later)[..., None]
            shift = torch.where(pick, truth, pred[i, ids])
            out[name][i] = paint_shifted(masks[i, FRAMES_IN - 1], ids, shift)
    return out


def segmented(segmenter, folders: list[Path], for_tracks: bool = False) -> tuple[torch.Tensor, ...]:
    """The segmenter's class ids (B, 22, H, W) uint8 of the videos' PNG frames; with
    `for_tracks`, also those of frames 1-11 as a track forecaster reads them (B, 11, H, W)
    (`segment_for_tracks`: mirror-averaged, the last frame steadied), as `predict` makes them."""
    from convrnn_video.segment.apply import segment_for_tracks, segment_frames

    from convrnn_video import read_video

    frames = torch.from_numpy(np.stack([read_video(f) for f in folders]))  # (B, T, H, W, C)
    frames = frames.permute(0, 1, 4, 2, 3).float() / 255  # (B, T, C, H, W)
    with torch.no_grad():
        out = (segment_frames(segmenter, frames).to(torch.uint8),)
        if for_tracks:
            out += (segment_for_tracks(segmenter, frames[:, :FRAMES_IN]).to(torch.uint8),)
    return out


def hit_stages(tracks) -> dict:
    """{row: the track forecaster's config} for its forecast without hits, with the disc
    stage's (its fitted constants, if any) and with the floor stage's (its own, else the
    defaults): the hit stages side by side on the same paths."""
    cfg = tracks.cfg  # a state reader corrects the floor stage's state: not without it
    stages = {"tracks_no_hits": dataclasses.replace(cfg, track_contacts=(), track_floor=(),
                                                    track_reader=0)}  # fmt: skip
    if cfg.track_contacts:
        stages["tracks_disc_hits"] = dataclasses.replace(cfg, track_floor=(), track_reader=0)
    floor = cfg.track_floor or Floor().as_tuple()
    stages["tracks_floor_hits"] = dataclasses.replace(cfg, track_floor=floor)
    return stages


def measure(folders: list[Path], table: dict, batch: int, tracks=None, segmenter=None) -> dict:
    """{row: {"frame22", "frames12_22"}} over the videos, read `batch` at a time; with
    `tracks` (a trained track forecaster), its row too, and its forecast with each hit stage
    (`hit_stages`); with `segmenter`, every row reads the segmenter's masks of frames 1-11 (the
    tracks rows as `segment_for_tracks` makes them) and
    the ceiling is the segmenter on the true frames."""
    ceiling = "segmenter_on_true_frames" if segmenter is not None else "ceiling_true_object_shifts"
    acc = {"copy_frame11": FrameJaccard(), **{name: FrameJaccard() for name in table},
           ceiling: FrameJaccard()}  # fmt: skip
    if segmenter is None:
        acc["ceiling_true_shifts_and_sizes"] = FrameJaccard()
    stages = hit_stages(tracks) if tracks is not None else {}
    acc.update({name: FrameJaccard() for name in stages})
    if tracks is not None:
        acc["tracks_model"] = FrameJaccard()
        if segmenter is None:
            acc["tracks_true_moving_objects"] = FrameJaccard()
            acc["tracks_true_still_objects"] = FrameJaccard()
    for i in range(0, len(folders), batch):
        videos = folders[i : i + batch]
        masks = torch.from_numpy(
            np.stack([np.load(f / "mask.npy") for f in videos])
        )  # (B, 22, H, W)
        seen, true = masks[:, :FRAMES_IN], masks[:, FRAMES_IN:]  # (B, 11, H, W), (B, 11, H, W)
        read = seen  # the track forecaster's input masks
        if segmenter is not None:
            ours = segmented(segmenter, videos, for_tracks=tracks is not None)
            seen, read = ours[0][:, :FRAMES_IN], ours[-1][:, :FRAMES_IN]  # (B, 11, H, W)
            acc[ceiling].update(ours[0][:, FRAMES_IN:], true)
        else:
            acc[ceiling].update(true_shifts(masks), true)
            acc["ceiling_true_shifts_and_sizes"].update(true_shifts(masks, sizes=True), true)
        acc["copy_frame11"].update(seen[:, -1:].expand_as(true), true)
        for name, (decay, fit) in table.items():
            acc[name].update(extrapolate_masks(seen, true.shape[1], decay, fit), true)
        if tracks is not None:
            with torch.no_grad():
                acc["tracks_model"].update(tracks(read.long()).argmax(2), true)
            # the objects' tracks read once (the stages differ only in how hits are played)
            found, flipped = tracks_and_mirror(read.long(), tracks.cfg)
            own, (h, w) = tracks.cfg, read.shape[-2:]
            for name, cfg in stages.items():
                tracks.cfg = cfg
                shift = tracks.shifts(found, h, w, flipped)
                acc[name].update(tracks.moved(found, read[:, -1], shift), true)
            tracks.cfg = own
            if segmenter is None:
                for name, given in tracks_given_truth(tracks, masks).items():
                    acc[f"tracks_true_{name}_objects"].update(given, true)
    out = {}
    for name, a in acc.items():
        r = a.compute()
        out[name] = {"frame22": round(r["last"], 4), "frames12_22": round(r["mean"], 4)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True, help="DATA_ROOT with val/ + mask.npy")
    ap.add_argument("--real", type=Path, default=None, help="the real samples' folder")
    ap.add_argument("--videos", type=int, default=300, help="at most this many val videos")
    ap.add_argument("--decays", type=float, nargs="+", default=[0.95, DECAY, 0.9, 0.85])
    ap.add_argument(
        "--fit-frames", type=int, nargs="+", default=[FIT_FRAMES], help="velocity window(s)"
    )
    ap.add_argument("--fitted-frames", type=int, default=4, help="the fitted decay's window")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--tracks", type=Path, default=None,
                    help="a `train --task tracks` checkpoint: its row too")  # fmt: skip
    ap.add_argument("--segmenter", type=Path, default=None,
                    help="a segmenter: every row again from its input masks")  # fmt: skip
    args = ap.parse_args()
    from convrnn_video.runtime.checkpoint import load_model

    from convrnn_video import PipelineError

    tracks = segmenter = None
    try:
        if args.tracks is not None:
            tracks = load_model(args.tracks, task="tracks")[0]
        if args.segmenter is not None:
            segmenter = load_model(args.segmenter, task="segment")[0].eval()
    except PipelineError as e:  # a missing or broken checkpoint: one line, no traceback
        sys.exit(f"error: {e}")
    torch.set_num_threads(1)  # small ops: threads only add overhead on a shared machine
    generated = labelled_videos(args.data, ("val",))[: args.videos]
    if not generated:
        sys.exit(f"error: no val/video_*/mask.npy under {args.data}; see this file's docstring")
    table = rows(args.decays, args.fit_frames, args.fitted_frames)
    start, cpu = time.perf_counter(), time.process_time()
    report = {
        "benchmark": "extrapolate",
        "cpu": cpu_model(),
        "inputs": "true masks of frames 1-11 (mask.npy), no segmenter",
        "defaults": {"decay": DECAY, "fit_frames": FIT_FRAMES},
        "tracks": str(args.tracks) if args.tracks else None,
        "generated_val": {
            "videos": len(generated),
            **measure(generated, table, args.batch, tracks),
        },
    }
    if args.real is not None:
        real = labelled_videos(args.real, ("train", "val"))
        report["real_samples"] = {"videos": len(real), **measure(real, table, args.batch, tracks)}
    if segmenter is not None:
        report["segmenter"] = str(args.segmenter)
        sets = {"generated_val": generated}
        if args.real is not None:
            sets["real_samples"] = real
        for name, folders in sets.items():
            report[f"{name}_segmenter_inputs"] = {
                "videos": len(folders),
                **measure(folders, table, args.batch, tracks, segmenter),
            }
    report["seconds"] = round(time.perf_counter() - start, 1)
    report["cpu_seconds"] = round(time.process_time() - cpu, 1)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
