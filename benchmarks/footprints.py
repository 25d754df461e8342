"""How much of frame 22 rests on where the floor stage places objects, and how much of it
`whole_centre` and the reader's `placing` read? One track forecaster with the floor stage
forecasts the same generated videos four ways, as JSON:

    python cli.py synth D --seed 3 --train 0 --val 300 --unlabeled 0 --hidden 0
    python cli.py ingest D --out S
    python benchmarks/footprints.py --shards S --seed 3 --ckpt T.pt [--segmenter SEG.pt]

- `seen`: each object starts at its seen pixels' centroid (`whole_footprint` off);
- `read`: an object not seen whole starts where `whole_centre` reads its whole footprint;
- `generator`: an object of which under `--share` of its whole footprint shows starts at the
  centroid of that footprint as the generator drew it (`ingest.synth.render.footprints`): what
  a perfect read would give;
- `centres`: every object starts where the generator's camera sees its centre, the reader's
  `placing` off: what a perfect placing (and whole-footprint read) would give.

Beside them, how far the start of those partly hidden objects is from the generator's
footprint centroid, and how far every object's start is from where its centre is seen, at its
centroid and placed by the reader (`centre_error_px`), in px.
The videos are made again from `--seed` and their ids, and each one's true frame 11 must be the
shards' (else an error: the shards are not that seed's). Without --segmenter the inputs are the
true masks of frames 1-11.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.machine import guarded, machine  # noqa: E402

ROWS = ("seen", "read", "generator", "centres")


def generator_centres(seed: int, ids: list[int], last, frame: int):
    """(B, K, 2) float64 px as (x, y): the centroid of every object's whole footprint in frame
    index `frame` of generated videos `ids`, NaN where the object is not there; (B, K) the
    share of it that shows in `last` (B, H, W) true masks of that frame; (B, K, 2) where the
    generator's camera sees its centre. An error when a video's true mask is not the one the
    generator draws."""
    import numpy as np
    import torch
    from convrnn_video.ingest.synth.render import footprints, render
    from convrnn_video.ingest.synth.scene import RADIUS, project
    from convrnn_video.ingest.synth.sliding import simulate
    from convrnn_video.ingest.synth.writer import video_rng

    from convrnn_video.errors import PipelineError

    b, k = len(ids), 49
    centre = torch.full((b, k, 2), float("nan"), dtype=torch.float64)
    shown = torch.zeros(b, k, dtype=torch.float64)
    seen_at = centre.clone()
    for i, vid in enumerate(ids):
        scene = simulate(video_rng(seed, vid))
        if not np.array_equal(render(scene, frame + 1)[1][frame], last[i].numpy()):
            raise PipelineError(f"video {vid}: its frame {frame + 1} is not what synth "
                                f"--seed {seed} draws: give the shards' seed")  # fmt: skip
        x, z = scene.pos[frame, :, 0], scene.pos[frame, :, 1]
        at = torch.from_numpy(project(np.stack([x, np.full_like(x, RADIUS), z], -1))[0])
        for cls, whole in footprints(scene, frame).items():
            ys, xs = np.nonzero(whole)
            centre[i, cls] = torch.tensor([xs.mean(), ys.mean()], dtype=torch.float64)
            shown[i, cls] = float((last[i].numpy() == cls)[whole].sum()) / len(ys)
            seen_at[i, cls] = at[scene.ids.tolist().index(cls)]
    return centre, shown, seen_at


def forecast(model, stats, last, start=None):
    """Frame 22 (B, H, W) of `model` from the statistics of its input masks (`mask_stats`, read
    once for every row) whose last is `last` (B, H, W), with the objects' starts replaced by
    `start` (B, K, 2) where it is not NaN, and the Tracks it played."""
    from convrnn_video.convrnn.track_reads import both_tracks

    tracks, flipped = both_tracks(stats, *last.shape[-2:], model.cfg)
    if start is not None:
        use = ~start[..., 0].isnan() & tracks.present
        tracks = tracks._replace(centre=start.to(tracks.centre.dtype).where(
            use[..., None], tracks.centre))  # fmt: skip
    shift = model.shifts(tracks, *last.shape[-2:], flipped)
    return model.moved(tracks, last, shift)[:, -1], tracks


def copy_of(model, cfg):
    """The track forecaster `model`'s weights in a new one of config `cfg`, for evaluation."""
    copy = type(model)(cfg)
    copy.load_state_dict(model.state_dict())
    return copy.eval()


def unplaced(model):
    """A copy of the track forecaster `model` whose reader (if it has one) places nothing."""
    copy = copy_of(model, model.cfg)
    if copy.reader is not None:
        copy.reader.placing.zero_()
    return copy


def forecasters(path: Path) -> dict:
    """The track forecaster at `path` with `whole_footprint` off (0.0) and on (1.0), and on
    with the reader's placing off ("bare"); an error without the floor stage."""
    from convrnn_video.convrnn.floor import Floor
    from convrnn_video.runtime.checkpoint import load_model

    from convrnn_video.errors import PipelineError

    model, cfg = load_model(path, "cpu", task="tracks")[:2]
    if not cfg.track_floor:
        raise PipelineError(f"{path} has no floor stage (fit-contacts did not keep it): "
                            "nothing places objects on the floor")  # fmt: skip
    models = {}
    for w in (0.0, 1.0):
        switched = dataclasses.replace(Floor(*cfg.track_floor), whole_footprint=w).as_tuple()
        models[w] = copy_of(model, dataclasses.replace(cfg, track_floor=switched))
    models["bare"] = unplaced(models[1.0])
    return models


def starts(model, tracks, height: int) -> dict:
    """{"unplaced": where `model`'s floor stage would start each object of `tracks` without
    the reader's placing, "placed": with it} (B, K, 2) float64 px."""
    import torch

    centre = tracks.centre.double()
    classes = torch.arange(centre.shape[1]).expand(centre.shape[:2])
    placed = centre if model.reader is None else model.reader.placed(centre, classes, height)
    return {"unplaced": centre, "placed": placed}


def score_batch(models, ids, truth, generated, share: float, scores, errors) -> None:
    """Forecast input masks `ids` (B, T, H, W) the four ways of ROWS, score frame 22 against
    `truth` (B, 1, H, W) into `scores` and add the start errors to `errors`; `generated` is
    `generator_centres` of the videos."""
    from convrnn_video.convrnn.track_features import mask_stats

    whole, shown, seen_at = generated
    hidden = shown < share  # partly hidden in the true frame 11
    oracle = whole.where(hidden[..., None], float("nan"))
    stats = mask_stats(ids, models[1.0].cfg, whole=True)
    for row, w, start in (("seen", 0.0, None), ("read", 1.0, None),
                          ("generator", 0.0, oracle), ("centres", "bare", seen_at)):  # fmt: skip
        pred, tracks = forecast(models[w], stats, ids[:, -1], start)
        scores[row].update(pred[:, None], truth)
        if row in ("seen", "read"):  # the partly hidden objects the forecaster sees
            ok = hidden & ~whole[..., 0].isnan() & tracks.present
            errors[row].append((tracks.centre.double() - whole).norm(dim=-1)[ok])
        if row == "read":  # every object: its start, unplaced and placed
            ok = ~seen_at[..., 0].isnan() & tracks.present
            for name, at in starts(models[1.0], tracks, ids.shape[-2]).items():
                errors[name].append((at - seen_at).norm(dim=-1)[ok])


def run(args) -> dict:
    """The four rows' frame 22 and start errors over the first --videos of val."""
    import torch
    from convrnn_video.runtime.checkpoint import load_model
    from convrnn_video.runtime.jaccard import FrameJaccard
    from convrnn_video.segment.apply import segment_for_tracks
    from convrnn_video.shards.loader import make_loader

    from convrnn_video.errors import PipelineError

    models = forecasters(args.ckpt)
    seg = None if args.segmenter is None else load_model(args.segmenter, "cpu", task="segment")[0]
    if seg is not None:
        seg.eval()
    fi, fo = models[1.0].cfg.frames_in, models[1.0].cfg.frames_out
    loader = make_loader(str(args.shards), ["val"], mode="eval", batch_size=8, frames_in=fi,
                         frames_out=fo, masks=True)  # fmt: skip
    scores = {row: FrameJaccard() for row in ROWS}
    errors: dict[str, list] = {"seen": [], "read": [], "unplaced": [], "placed": []}
    videos = 0
    with torch.inference_mode():
        for batch in loader:
            masks = batch["masks"].long()[: args.videos - videos]
            n = len(masks)
            truth, ids = masks[:, fi + fo - 1 : fi + fo], masks[:, :fi]
            generated = generator_centres(args.seed, batch["ids"][:n], masks[:, fi - 1], fi - 1)
            if seg is not None:
                ids = segment_for_tracks(seg, batch["inputs"][:n], None).cpu()
            score_batch(models, ids, truth, generated, args.share, scores, errors)
            videos += n
            if videos >= args.videos:
                break
    if videos == 0:
        raise PipelineError(f"{args.shards}: split 'val' holds no video")
    gap = {row: torch.cat(e) for row, e in errors.items()}
    px = {row: {"mean": round(float(g.mean()), 2), "median": round(float(g.median()), 2)}
          for row, g in gap.items() if len(g)}  # fmt: skip
    return {
        "videos": videos,
        "partly_hidden_objects": len(gap["seen"]),
        "frame22": {row: round(s.compute()["last"], 4) for row, s in scores.items()},
        "start_error_px": {row: px[row] for row in ("seen", "read") if row in px},
        "objects": len(gap["placed"]),
        "centre_error_px": {row: px[row] for row in ("unplaced", "placed") if row in px},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shards", type=Path, required=True, help="shards of generated val videos")
    ap.add_argument("--seed", type=int, required=True, help="the synth seed they were made with")
    ap.add_argument("--ckpt", type=Path, required=True, help="track forecaster with the floor")
    ap.add_argument("--segmenter", type=Path, help="segmenter (default: the true input masks)")
    ap.add_argument("--videos", type=int, default=300, help="the first N videos of val")
    ap.add_argument("--share", type=float, default=0.95,
                    help="partly hidden: under this share of its footprint shows")  # fmt: skip
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's choice)")
    args = ap.parse_args()
    bad = [f"--videos must be at least 1, got {args.videos}"] * (args.videos < 1)
    bad += [f"--share must be in (0, 1], got {args.share}"] * (not 0 < args.share <= 1)
    if bad:
        sys.exit("error: " + "; ".join(bad))

    report, seconds = guarded(lambda: run(args), args.threads)
    print(json.dumps({"benchmark": "footprints", "machine": machine(), "shards": str(args.shards),
                      "seed": args.seed, "ckpt": str(args.ckpt),
                      "inputs": "true masks" if args.segmenter is None else str(args.segmenter),
                      "share": args.share, **report,
                      "seconds": seconds}, indent=1))  # fmt: skip


if __name__ == "__main__":
    main()
