"""Do objects moved as wholes keep the predicted frames sharp? `predict` of a frame model
alone, and with `--tracks` (the last input frame's objects moved as wholes by the track
forecaster, `convrnn/objects.py`), each scored per predicted frame beside copy-last on MSE,
MAE, PSNR, SSIM and `energy` (1 for the true frames; a fading prediction falls below), on
generated val and on the real samples, as JSON:

    python benchmarks/object_frames.py --shards S --frames F.pt --segmenter SEG.pt \
        --tracks runs/tracks/best.pt --cache /tmp/of

F.pt is a frame model (`benchmarks/train_quality.py` or `train --task frames`), SEG.pt a
segmenter (`train --task segment`), the tracks checkpoint `train --task tracks`. The stores
go to --cache; the real samples (../shared/real-samples, or --real) are ingested there and
all their videos (train, val, unlabeled) scored. Target (issue 18): `energy` >= 0.9 at every
predicted frame while beating copy-last on MSE, MAE and SSIM at every frame.

On the videos with masks (generated val; the real samples' train and val, "real_labelled") a
row more, `objects_moved_true_masks`: the same objects moved, read from the true input masks
instead of the segmenter's. It stands in for a segmenter that knows the videos' objects (one
trained on the course's labelled videos); the gap to `objects_moved` is what the segmenter
costs.
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
from benchmarks.train_quality import REAL_SAMPLES, beats, table  # noqa: E402

SPLITS_REAL = ("train", "val", "unlabeled")  # every real sample: none is trained on
SPLITS_LABELLED = ("train", "val")  # the real samples with masks


def score(
    shards: Path, splits: tuple[str, ...], args, cache: Path, name: str, labelled: bool = False
) -> dict:
    """{"videos", "frames_model", "objects_moved", "copy_last", beats of each} of `splits`;
    `labelled` (every video has masks) adds "objects_moved_true_masks"."""
    import torch
    from convrnn_video.infer.config import PredictConfig
    from convrnn_video.infer.predict import run_predict
    from convrnn_video.runtime.checkpoint import load_model
    from convrnn_video.runtime.metrics import MetricAccumulator, copy_last_frame
    from convrnn_video.shards.buffers import frames_to_float
    from convrnn_video.shards.loader import make_loader
    from convrnn_video.stores.predictions import PredStore

    kinds = ("frames_model", "objects_moved") + (("objects_moved_true_masks",) if labelled else ())
    acc = {k: MetricAccumulator() for k in (*kinds, "copy_last")}
    tracks = load_model(args.tracks, task="tracks")[0] if labelled else None
    seconds = {"frames_model": 0.0, "objects_moved": 0.0}
    for split in splits:
        stores = {}
        for kind, extra in (("frames_model", {}),
                            ("objects_moved", {"segmenter": str(args.segmenter),
                                               "tracks": str(args.tracks)})):  # fmt: skip
            out = cache / f"{name}-{split}-{kind}.zarr"
            t0 = time.perf_counter()
            run_predict(PredictConfig(shards=str(shards), ckpt=str(args.frames), out=str(out),
                                      split=split, progress=False, precision=args.precision,
                                      **extra))  # fmt: skip
            seconds[kind] += time.perf_counter() - t0
            stores[kind] = PredStore.open(str(out))
        frames_out = stores["frames_model"].shape[0]
        loader = make_loader(str(shards), [split], mode="eval", batch_size=4,
                             frames_in=int(stores["frames_model"].attrs["first_frame"]),
                             frames_out=frames_out, masks=labelled)  # fmt: skip
        with torch.inference_mode():
            for batch in loader:
                pred = {}
                for kind, store in stores.items():
                    pos = store.positions(batch["ids"])
                    pred[kind] = frames_to_float(torch.from_numpy(store.frames[pos]))
                    acc[kind].update(pred[kind], batch["targets"])
                if labelled:  # the true input masks in place of the segmenter's
                    seen = batch["masks"][:, : batch["inputs"].shape[1]]
                    moved, shift = tracks.forecast(seen)
                    acc["objects_moved_true_masks"].update(
                        tracks.frames_moved(batch["inputs"], seen, moved, shift,
                                            pred["frames_model"]),
                        batch["targets"],
                    )  # fmt: skip
                acc["copy_last"].update(copy_last_frame(batch["inputs"], frames_out),
                                        batch["targets"])  # fmt: skip
    res = {k: a.compute() for k, a in acc.items()}
    out = {"videos": acc["copy_last"].videos, "predict_seconds": seconds, **res}
    for kind in kinds:
        table(f"{name} ({out['videos']} videos), {kind}/copy-last", res[kind], res["copy_last"])
        out[f"{kind}_beats_copy_last"] = beats(res[kind], res["copy_last"])
        out[f"{kind}_energy_min"] = round(min(res[kind]["energy"]["per_frame"]), 4)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shards", type=Path, required=True, help="generated shards with val")
    ap.add_argument("--frames", type=Path, required=True, help="frame model checkpoint")
    ap.add_argument("--segmenter", type=Path, required=True, help="segmenter checkpoint")
    ap.add_argument("--tracks", type=Path, required=True, help="track forecaster checkpoint")
    ap.add_argument("--cache", type=Path, required=True, help="folder for stores, real shards")
    ap.add_argument("--real", type=Path, default=REAL_SAMPLES, help="real samples to score")
    ap.add_argument("--precision", default="fp32", help="predict --precision")
    args = ap.parse_args()

    from convrnn_video.ingest.pack import IngestConfig, run_ingest

    from convrnn_video.errors import PipelineError

    args.cache.mkdir(parents=True, exist_ok=True)
    report = {"benchmark": "object_frames", "machine": machine(),
              "frames": str(args.frames), "segmenter": str(args.segmenter),
              "tracks": str(args.tracks), "precision": args.precision}  # fmt: skip
    try:
        report["val"] = score(args.shards, ("val",), args, args.cache, "val", labelled=True)
        if args.real.is_dir():
            real = args.cache / "real-shards"
            if not (real / "manifest.json").exists():
                run_ingest(IngestConfig(data_root=args.real, out=real, workers=1, progress=False))
            report["real_samples"] = score(real, SPLITS_REAL, args, args.cache, "real")
            report["real_labelled"] = score(  # stores of the line above: read, not predicted
                real, SPLITS_LABELLED, args, args.cache, "real", labelled=True
            )
    except PipelineError as exc:  # a bad file or checkpoint: one line, no traceback
        sys.exit(f"error: {exc}")
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
