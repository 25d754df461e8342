"""How much of the generator's gap do a few real labels close? Leave one out over the labelled
real samples: the segmenter trained on generated frames, and the same fine-tuned for
--minutes on the frames and masks of the other labelled samples (`train --task segment
--init-from`), each scored on the video left out, as JSON:

    python benchmarks/real_segmenter.py --segmenter SEG.pt --tracks T.pt --cache /tmp/rs \\
        [--frames F.pt]

- `segmenter_frame22`: the course's Jaccard of each segmenter on the true frame 22;
- `tracks_frame22`: the track forecaster's frame-22 mask from each segmenter's masks of frames
  1-11, and from the true ones (what a segmenter that knows the objects would give);
- with --frames, `frames`: `predict --tracks`'s frames (`convrnn/objects.py`) from each
  segmenter's masks and from the true ones, beside the frame model alone and copy-last,
  per-frame means of frames 12-22 and the frames won against copy-last.

Every score pools the held-out videos (one confusion matrix, one metric state). A fold's
fine-tuned segmenter is kept in --cache (CACHE/<video>/seg/last.pt) and reused when there;
delete the folder to train it again.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.machine import machine  # noqa: E402
from benchmarks.train_quality import REAL_SAMPLES, beats  # noqa: E402

SOURCES = ("generated", "fine_tuned", "true_masks")  # where the input masks come from


def labelled(root: Path) -> list[Path]:
    """The real samples with masks (train and val), in a fixed order."""
    return sorted(p for split in ("train", "val") for p in (root / split).glob("video_*")
                  if (p / "mask.npy").is_file())  # fmt: skip


def fine_tune(held: Path, videos: list[Path], args) -> Path:
    """The segmenter fine-tuned on every video but `held` -> its last.pt (reused if there)."""
    from convrnn_video.ingest.pack import IngestConfig, run_ingest
    from convrnn_video.train.config import TrainConfig
    from convrnn_video.train.loop import run_training

    fold = args.cache / held.name
    ckpt = fold / "seg" / "last.pt"
    if ckpt.is_file():
        return ckpt
    data = fold / "data" / "train"
    data.mkdir(parents=True, exist_ok=True)
    for video in videos:
        if video != held and not (data / video.name).exists():
            (data / video.name).symlink_to(video.resolve())
    shards = fold / "shards"
    if not (shards / "manifest.json").is_file():
        run_ingest(IngestConfig(data_root=fold / "data", out=shards, workers=1, progress=False))
    others = len(videos) - 1
    run_training(TrainConfig(
        task="segment", shards=str(shards), out=str(fold / "seg"), init_from=str(args.segmenter),
        time_limit=args.minutes, val_split="", lr=args.lr, batch_size=others,
        frames_per_video=4, epochs=1_000_000, progress=False, seed=0,
    ))  # fmt: skip
    return ckpt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--segmenter", type=Path, required=True, help="trained on generated frames")
    ap.add_argument("--tracks", type=Path, required=True, help="track forecaster checkpoint")
    ap.add_argument("--frames", type=Path, default=None, help="a frame model: score frames too")
    ap.add_argument("--cache", type=Path, required=True, help="folder for the folds' runs")
    ap.add_argument("--real", type=Path, default=REAL_SAMPLES, help="the real samples' folder")
    ap.add_argument("--minutes", type=float, default=2.0, help="fine-tuning budget per fold")
    ap.add_argument("--lr", type=float, default=5e-4, help="fine-tuning learning rate")
    args = ap.parse_args()

    from convrnn_video.errors import PipelineError

    videos = labelled(args.real)
    if len(videos) < 2:
        sys.exit(f"error: {args.real} holds {len(videos)} labelled videos; need 2 or more")
    try:
        report = measure(videos, args)
    except PipelineError as exc:
        sys.exit(f"error: {exc}")
    print(json.dumps({"benchmark": "real_segmenter", "machine": machine(), "videos": len(videos),
                      "minutes": args.minutes, "lr": args.lr, **report}, indent=1))  # fmt: skip


def measure(videos: list[Path], args) -> dict:
    """Every fold trained and scored -> the report's scores."""
    import numpy as np
    import torch
    from convrnn_video.runtime.jaccard import FrameJaccard
    from convrnn_video.runtime.metrics import MetricAccumulator, copy_last_frame

    from convrnn_video import load_checkpoint, read_video

    def load(path):
        return load_checkpoint(path, device="cpu", precision="fp32")

    generated, tracks = load(args.segmenter), load(args.tracks).module
    frame_model = load(args.frames) if args.frames else None
    fi = tracks.cfg.frames_in
    seg_acc = {s: FrameJaccard() for s in SOURCES[:2]}
    tracks_acc = {s: FrameJaccard() for s in SOURCES}
    frames_acc = {s: MetricAccumulator() for s in ("copy_last", "frame_model", *SOURCES)}
    for held in videos:
        segmenters = {"generated": generated, "fine_tuned": load(fine_tune(held, videos, args))}
        video = read_video(held)  # (T, H, W, C) uint8
        true = torch.from_numpy(np.load(held / "mask.npy")).long()[None]  # (1, T, H, W)
        frames = torch.from_numpy(video).permute(0, 3, 1, 2)[None].float() / 255
        inputs, targets = frames[:, :fi], frames[:, fi:]
        base = None
        if frame_model is not None:
            base = torch.from_numpy(frame_model.predict(video[:fi])).permute(0, 3, 1, 2)[None]
            base = base.float() / 255
            frames_acc["copy_last"].update(copy_last_frame(inputs, targets.shape[1]), targets)
            frames_acc["frame_model"].update(base, targets)
        for source in SOURCES:
            if source == "true_masks":
                ids = true
            else:
                ids = torch.from_numpy(segmenters[source].predict(video)).long()[None]
                seg_acc[source].update(ids[:, fi:].to(torch.uint8), true[:, fi:].to(torch.uint8))
            moved, shift = tracks.forecast(ids[:, :fi])
            tracks_acc[source].update(moved.to(torch.uint8), true[:, fi:].to(torch.uint8))
            if base is not None:
                frames_acc[source].update(
                    tracks.frames_moved(inputs, ids[:, :fi], moved, shift, base), targets
                )
    out = {
        "segmenter_frame22": {s: round(a.compute()["last"], 4) for s, a in seg_acc.items()},
        "tracks_frame22": {s: round(a.compute()["last"], 4) for s, a in tracks_acc.items()},
    }
    if frame_model is not None:
        res = {k: a.compute() for k, a in frames_acc.items()}
        out["frames"] = {k: {"mean": {m: r[m]["mean"] for m in ("mse", "mae", "ssim", "energy")},
                             "energy_min": round(min(r["energy"]["per_frame"]), 4),
                             "energy_max": round(max(r["energy"]["per_frame"]), 4),
                             "won": {m: v["frames_won"] for m, v in
                                     beats(r, res["copy_last"]).items()}}
                         for k, r in res.items()}  # fmt: skip
    return out


if __name__ == "__main__":
    main()
