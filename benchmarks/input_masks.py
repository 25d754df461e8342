"""Where do the segmenter's input masks cost the course path? The track forecaster's frame 22
from the masks `predict` gives it (`segment_for_tracks`) and from mixes of those with the true
masks, on a labelled split, as JSON:

    python benchmarks/input_masks.py --shards S --tracks T.pt --segmenter SEG.pt [--videos 100]

Rows (frame 22's Jaccard, fp32):
- `segmenter`: the segmenter's masks of frames 1-11, as `predict` reads them;
- `true`: the true masks of frames 1-11 (what a perfect segmenter would give);
- `true_frame11`: the segmenter's masks with the true frame 11 (what frame 11 costs);
- `frame11_classes_fixed`: frame 11's pixels that the segmenter and the truth both call an
  object take the true class (what class confusions cost: an object called another kind
  starts a new track);
- `frame11_outlines_fixed`: frame 11's pixels that one calls floor and the other an object
  take the true class (what outlines cost);
- `true_before_frame11`: the true frames 1-10 with the segmenter's frame 11;
- `read_true`: every object's track read off the true masks, the segmenter's frame 11 moved
  along them (what reading the segmenter's masks costs: centroids, steps, who is whole);
- `drawn_true`: the tracks read off the segmenter's masks, the true frame 11 moved along them
  (what drawing its pixels costs).

Beside them, frame 11's Jaccard and its wrong pixels by kind. The gap between `segmenter` and
`true` is what a better segmenter could buy; the rows between say where.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.machine import machine  # noqa: E402

ROWS = ("segmenter", "true", "true_frame11", "frame11_classes_fixed", "frame11_outlines_fixed",
        "true_before_frame11", "read_true", "drawn_true")  # fmt: skip


def read_apart(model, read, drawn):
    """Frame 22 (B, 1, H, W) of the track forecaster `model` with each object's track read
    off class ids `read` (B, T_in, H, W) and the objects of `drawn`'s last frame (B, T_in, H,
    W) moved along them: `model.forecast(read)`'s when `drawn` is `read`."""
    from convrnn_video.convrnn.track_features import mask_stats

    from benchmarks.footprints import forecast

    return forecast(model, mask_stats(read, model.cfg), drawn[:, -1])[0][:, None]


def input_variants(seg, true):
    """{row: class ids (B, T_in, H, W)} from the segmenter's masks `seg` and the true `true`."""
    import torch

    s11, t11 = seg[:, -1], true[:, -1]  # (B, H, W)
    both = (s11 > 0) & (t11 > 0)
    outline = (s11 > 0) != (t11 > 0)

    def last(frame11):
        return torch.cat([seg[:, :-1], frame11[:, None]], 1)

    return {
        "segmenter": seg,
        "true": true,
        "true_frame11": last(t11),
        "frame11_classes_fixed": last(torch.where(both, t11, s11)),
        "frame11_outlines_fixed": last(torch.where(outline, t11, s11)),
        "true_before_frame11": torch.cat([true[:, :-1], s11[:, None]], 1),
    }


def score(args) -> dict:
    """The rows, frame 11's Jaccard and wrong pixels, over the first --videos of --split."""
    import torch
    from convrnn_video.runtime.checkpoint import load_model
    from convrnn_video.runtime.jaccard import FrameJaccard
    from convrnn_video.segment.apply import segment_for_tracks
    from convrnn_video.shards.loader import make_loader

    tracks, cfg, _ = load_model(args.tracks, "cpu", task="tracks")
    seg = load_model(args.segmenter, "cpu", task="segment")[0].eval()
    tracks.eval()
    fi, fo = cfg.frames_in, cfg.frames_out
    loader = make_loader(str(args.shards), [args.split], mode="eval", batch_size=8,
                         frames_in=fi, frames_out=fo, masks=True)  # fmt: skip
    jac = {row: FrameJaccard() for row in ROWS}
    frame11 = FrameJaccard()
    wrong = {"object_called_floor": 0, "floor_called_object": 0, "object_called_another": 0}
    videos, started = 0, time.time()
    with torch.inference_mode():
        for batch in loader:
            masks = batch["masks"].long()[: args.videos - videos]  # (B, T, H, W)
            true, future = masks[:, :fi], masks[:, fi + fo - 1 : fi + fo]  # frames 1-11; 22
            inputs = batch["inputs"][: len(masks)]
            seen = segment_for_tracks(seg, inputs, None, mirror=not args.no_mirror).cpu()
            s11, t11 = seen[:, -1], true[:, -1]
            frame11.update(s11[:, None], t11[:, None])
            wrong["object_called_floor"] += int(((s11 == 0) & (t11 > 0)).sum())
            wrong["floor_called_object"] += int(((s11 > 0) & (t11 == 0)).sum())
            wrong["object_called_another"] += int(((s11 > 0) & (t11 > 0) & (s11 != t11)).sum())
            for row, ids in input_variants(seen, true).items():
                jac[row].update(tracks.forecast(ids)[0][:, -1:], future)
            jac["read_true"].update(read_apart(tracks, true, seen), future)
            jac["drawn_true"].update(read_apart(tracks, seen, true), future)
            videos += len(masks)
            if videos >= args.videos:
                break
    return {
        "videos": videos,
        "frame22": {row: round(jac[row].compute()["last"], 4) for row in ROWS},
        "frame11_segmenter_jaccard": round(frame11.compute()["last"], 4),
        "frame11_wrong_pixels": wrong,
        "seconds": round(time.time() - started, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shards", type=Path, required=True, help="shards with a labelled split")
    ap.add_argument("--tracks", type=Path, required=True, help="track forecaster checkpoint")
    ap.add_argument("--segmenter", type=Path, required=True, help="segmenter checkpoint")
    ap.add_argument("--split", default="val", help="a split with masks")
    ap.add_argument("--videos", type=int, default=100, help="the first N videos of the split")
    ap.add_argument("--no-mirror", action="store_true", help="as predict --no-mirror")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's choice)")
    args = ap.parse_args()
    if args.videos < 1:
        sys.exit(f"error: --videos must be at least 1, got {args.videos}")

    import torch

    from convrnn_video.errors import PipelineError

    if args.threads:
        torch.set_num_threads(args.threads)
    report = {"benchmark": "input_masks", "machine": machine(), "shards": str(args.shards),
              "split": args.split, "tracks": str(args.tracks),
              "segmenter": str(args.segmenter)}  # fmt: skip
    try:
        report.update(score(args))
    except PipelineError as exc:  # a bad file or checkpoint: one line, no traceback
        sys.exit(f"error: {exc}")
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
