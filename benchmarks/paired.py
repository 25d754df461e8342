"""Is one track forecaster better than another on frame 22, or is the difference noise? Both
read the same input masks of the same videos; a paired bootstrap over the videos says how far
the difference moves when the set of videos does, as JSON:

    python benchmarks/paired.py --shards S --segmenter SEG.pt --ckpt A.pt --against B.pt [C.pt]
        [--videos 700] [--resamples 2000]

Without --segmenter the inputs are the true masks of frames 1-11. With --against-segmenter
SEG_B the --against forecasters read SEG_B's masks instead (a forecaster named in both is
judged on each), so two whole paths, or two segmenters under one forecaster, are compared:

    python benchmarks/paired.py --shards S --segmenter SEG_A.pt --ckpt T.pt --against T.pt \
        --against-segmenter SEG_B.pt

The score is the course's: frame 22's macro Jaccard over all the videos at once
(`FrameJaccard`), so the bootstrap resamples videos and sums their confusion matrices, never
averages per-video scores. A 300-video set of generated val moved frame 22 by 0.004-0.008
between changes that each looked sound, and most of the gains first seen on one set shrank to a
third on fresh ones (docs/benchmarks.md, "The state
reader for every object"): judge a change on 700 or more videos no rule was chosen on, and by
`interval95`, not by the point difference.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.machine import guarded, machine  # noqa: E402


def paired_bootstrap(ours, theirs, resamples: int, seed: int = 0) -> dict:
    """Per-video confusion matrices (N, K, K) of two forecasters on the same videos -> frame
    22's difference (ours - theirs) on all N, and over `resamples` draws of N videos with
    replacement (the same draw for both): its mean, standard deviation, 95% interval and the
    share of draws where ours is higher."""
    import torch
    from convrnn_video.runtime.jaccard import macro_jaccard

    n, k = ours.shape[0], ours.shape[-1]
    draws = torch.randint(0, n, (resamples, n), generator=torch.Generator().manual_seed(seed))
    counts = torch.zeros(resamples, n, dtype=torch.long)
    counts.scatter_add_(1, draws, torch.ones(resamples, n, dtype=torch.long))  # (R, N)

    def scores(cm):  # (N, K, K) -> (R,) each draw's frame 22, its matrices summed
        summed = (counts @ cm.reshape(n, k * k).long()).view(-1, k, k)  # (R, K, K)
        return torch.tensor([macro_jaccard(m) for m in summed], dtype=torch.float64)

    diff = scores(ours) - scores(theirs)  # (R,)
    low, high = torch.quantile(diff, torch.tensor([0.025, 0.975], dtype=torch.float64))
    full = macro_jaccard(ours.sum(0)) - macro_jaccard(theirs.sum(0))

    def r4(x) -> float:  # 4 decimals; a value that rounds to zero prints 0.0, never -0.0
        return round(float(x), 4) + 0.0

    return {"difference": r4(full), "resamples": resamples,
            "mean": r4(diff.mean()), "sd": r4(diff.std()), "interval95": [r4(low), r4(high)],
            "share_higher": round(float((diff > 0).double().mean()), 3)}  # fmt: skip


def judged(args) -> list[tuple[str, Path, Path | None]]:
    """(name, forecaster, segmenter or None for the true masks) of each path judged, --ckpt's
    first. With --against-segmenter the others read that segmenter's masks and are named
    `FORECASTER + SEGMENTER`, so one forecaster can be judged on two segmenters' masks."""
    other = args.segmenter if args.against_segmenter is None else args.against_segmenter
    rows = [(str(args.ckpt), args.ckpt, args.segmenter)]
    for p in args.against:
        name = str(p) if args.against_segmenter is None else f"{p} + {args.against_segmenter}"
        rows.append((name, p, other))
    return rows


def load(rows: list[tuple[str, Path, Path | None]]) -> tuple[dict, dict, tuple[int, int], int]:
    """The forecasters and segmenters the rows name, each loaded once, in eval mode ->
    ({path: forecaster}, {path or None: segmenter or None}, (frames_in, frames_out), classes)."""
    from convrnn_video.runtime.checkpoint import load_model

    from convrnn_video.errors import PipelineError

    models = {p: load_model(p, "cpu", task="tracks")[:2] for _, p, _ in rows}
    segs = {s: None if s is None else load_model(s, "cpu", task="segment")[0] for *_, s in rows}
    for net in [m for m, _ in models.values()] + [s for s in segs.values() if s is not None]:
        net.eval()
    frames = {(cfg.frames_in, cfg.frames_out) for _, cfg in models.values()}
    if len(frames) > 1:
        raise PipelineError(f"the forecasters predict different frames {sorted(frames)}: "
                            "compare forecasters of one frame count")  # fmt: skip
    first = next(iter(models.values()))[1]
    return {p: m for p, (m, _) in models.items()}, segs, frames.pop(), first.num_classes


def confmats(args) -> tuple[dict, int]:
    """({name: (N, K, K) frame-22 confusion matrices, one per video}, N) over the first
    --videos of --split, for each (forecaster, segmenter) of `judged`: every forecaster fed
    the same segmenter reads the same input masks."""
    import torch
    from convrnn_video.segment.apply import segment_for_tracks
    from convrnn_video.shards.loader import make_loader

    from convrnn_video.errors import PipelineError

    rows = list(dict.fromkeys(judged(args)))  # one path named twice: judged once
    models, segs, (fi, fo), k = load(rows)
    loader = make_loader(str(args.shards), [args.split], mode="eval", batch_size=8,
                         frames_in=fi, frames_out=fo, masks=True)  # fmt: skip
    out: dict[str, list] = {name: [] for name, _, _ in rows}
    videos = 0
    with torch.inference_mode():
        for batch in loader:
            masks = batch["masks"].long()[: args.videos - videos]  # (B, T, H, W)
            truth = masks[:, fi + fo - 1]  # (B, H, W) frame 22
            inputs = batch["inputs"][: len(masks)]
            ids = {s: masks[:, :fi] if net is None else segment_for_tracks(net, inputs, None).cpu()
                   for s, net in segs.items()}  # (B, 11, H, W) each segmenter's, once  # fmt: skip
            for name, p, s in rows:
                pred = models[p].forecast(ids[s])[0][:, -1]  # (B, H, W)
                pair = truth * k + pred  # row truth, column prediction
                out[name] += [torch.bincount(v.flatten(), minlength=k * k).view(k, k)
                              for v in pair]  # fmt: skip
            videos += len(masks)
            if videos >= args.videos:
                break
    if videos == 0:
        raise PipelineError(f"{args.shards}: split {args.split!r} holds no video")
    return {name: torch.stack(cms) for name, cms in out.items()}, videos


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shards", type=Path, required=True, help="shards with a labelled split")
    ap.add_argument("--ckpt", type=Path, required=True, help="the track forecaster judged")
    ap.add_argument("--against", type=Path, nargs="+", required=True,
                    help="track forecasters it is compared with")  # fmt: skip
    ap.add_argument("--segmenter", type=Path, help="segmenter (default: the true input masks)")
    ap.add_argument("--against-segmenter", type=Path,
                    help="the --against forecasters read this segmenter's masks")  # fmt: skip
    ap.add_argument("--split", default="val", help="a split with masks")
    ap.add_argument("--videos", type=int, default=700, help="the first N videos of the split")
    ap.add_argument("--resamples", type=int, default=2000, help="bootstrap draws")
    ap.add_argument("--seed", type=int, default=0, help="the bootstrap's random draws")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's choice)")
    args = ap.parse_args()
    bad = [f"--videos must be at least 1, got {args.videos}"] * (args.videos < 1)
    bad += [f"--resamples must be at least 100, got {args.resamples}"] * (args.resamples < 100)
    if bad:
        sys.exit("error: " + "; ".join(bad))

    from convrnn_video.runtime.jaccard import macro_jaccard

    (cms, videos), seconds = guarded(lambda: confmats(args), args.threads)
    ours = cms[str(args.ckpt)]
    report = {"benchmark": "paired", "machine": machine(), "shards": str(args.shards),
              "split": args.split, "videos": videos,
              "inputs": "true masks" if args.segmenter is None else str(args.segmenter),
              "against_inputs": str(args.against_segmenter) if args.against_segmenter else None,
              "frame22": {p: round(macro_jaccard(cm.sum(0)), 4) for p, cm in cms.items()},
              "ckpt": str(args.ckpt),
              "against": {name: paired_bootstrap(ours, cms[name], args.resamples, args.seed)
                          for name, _, _ in judged(args)[1:]},
              "seconds": seconds}  # fmt: skip
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
