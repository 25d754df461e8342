"""Do whole objects (`segment/objects.py`) help? The segmenter's masks of frames 1-11 as its
argmax gives them (`raw`) and with each fragment given its object's main class (`whole`, what
every command uses since 2026-12-04), each scored on generated val and on the labelled real
samples, as JSON:

    python benchmarks/whole_objects.py --shards S --segmenter SEG.pt --tracks T.pt \\
        --frames F.pt --cache /tmp/wo

- `segmenter`: the course's Jaccard of the masks of frames 1-11 against the true ones; and of
  the true masks put through the same rule (what it costs where the masks are right);
- `tracks`: the track forecaster's masks of frames 12-22 from each (frame 22 and all), beside
  copying each one's frame-11 mask;
- `ms_per_frame`: the segmenter's forward pass (fp32) and the rule, per frame;
- `frames`: `predict --tracks`'s frames (`convrnn/objects.py`) from each, beside copy-last:
  per-frame means of frames 12-22, `energy`, and the frames won against copy-last.

S holds generated val with masks; the real samples (../shared/real-samples, or --real) are
ingested into --cache. F.pt is a frame model, SEG.pt a segmenter, T.pt a track forecaster.
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
from benchmarks.train_quality import REAL_SAMPLES, beats  # noqa: E402

SOURCES = ("raw", "whole")


def score(shards: Path, splits: tuple[str, ...], models: dict, args, name: str) -> dict:
    """{"videos", "segmenter", "tracks", "frames"} of the videos of `splits` (all with masks)."""
    import torch
    from convrnn_video.infer.config import PredictConfig
    from convrnn_video.infer.predict import run_predict
    from convrnn_video.runtime.jaccard import FrameJaccard
    from convrnn_video.runtime.metrics import MetricAccumulator, copy_last_frame
    from convrnn_video.segment.apply import segment_frames
    from convrnn_video.segment.objects import whole_objects
    from convrnn_video.shards.buffers import frames_to_float
    from convrnn_video.shards.loader import make_loader
    from convrnn_video.stores.predictions import PredStore

    seg, tracks = models["segmenter"], models["tracks"]
    k = int(seg.cfg.num_classes)
    keys = [f"{s}_{what}" for s in (*SOURCES, "true") for what in ("seg", "tracks", "copy")]
    jac = {key: FrameJaccard() for key in keys}
    acc = {s: MetricAccumulator() for s in (*SOURCES, "copy_last")}
    seconds = {"segmenter": 0.0, "whole_objects": 0.0, "frames": 0}
    for split in splits:
        out = args.cache / f"{name}-{split}-frames.zarr"  # the frame model's, under the objects
        if not out.exists():
            run_predict(PredictConfig(shards=str(shards), ckpt=str(args.frames), out=str(out),
                                      split=split, progress=False, precision="fp32"))  # fmt: skip
        store = PredStore.open(str(out))
        frames_out = store.shape[0]
        loader = make_loader(str(shards), [split], mode="eval", batch_size=4,
                             frames_in=int(store.attrs["first_frame"]), frames_out=frames_out,
                             masks=True)  # fmt: skip
        with torch.inference_mode():
            for batch in loader:
                pos = store.positions(batch["ids"])
                base = frames_to_float(torch.from_numpy(store.frames[pos]))  # (B, T, C, H, W)
                inputs, fi = batch["inputs"], batch["inputs"].shape[1]
                true_in = batch["masks"][:, :fi].long()  # (B, T_in, H, W)
                future = batch["masks"][:, fi : fi + frames_out].long()
                t0 = time.perf_counter()
                raw = segment_frames(seg, inputs, whole=False).cpu()
                t1 = time.perf_counter()
                whole = whole_objects(raw, k)
                seconds["segmenter"] += t1 - t0
                seconds["whole_objects"] += time.perf_counter() - t1
                seconds["frames"] += raw.shape[0] * raw.shape[1]
                seen = {"raw": raw, "whole": whole, "true": whole_objects(true_in, k)}
                for src, ids in seen.items():
                    jac[f"{src}_seg"].update(ids.long(), true_in)
                    moved, shift = tracks.forecast(ids)
                    jac[f"{src}_tracks"].update(moved, future)
                    jac[f"{src}_copy"].update(ids[:, -1:].long().expand_as(future), future)
                    if src in acc:
                        acc[src].update(tracks.frames_moved(inputs, ids, moved, shift, base),
                                        batch["targets"])  # fmt: skip
                acc["copy_last"].update(copy_last_frame(inputs, frames_out), batch["targets"])
    j = {key: m.compute() for key, m in jac.items()}
    res = {key: a.compute() for key, a in acc.items()}
    out = {"videos": acc["copy_last"].videos, "segmenter": {}, "tracks": {}, "frames": {},
           "ms_per_frame": {key: round(1000 * seconds[key] / max(seconds["frames"], 1), 2)
                            for key in ("segmenter", "whole_objects")}}  # fmt: skip
    for src in (*SOURCES, "true"):
        out["segmenter"][src] = round(j[f"{src}_seg"]["mean"], 4)
        out["tracks"][src] = {
            "frame22": round(j[f"{src}_tracks"]["last"], 4),
            "frames12_22": round(j[f"{src}_tracks"]["mean"], 4),
            "copy_frame22": round(j[f"{src}_copy"]["last"], 4),
        }
    for src in (*SOURCES, "copy_last"):
        m = res[src]
        row = {name: round(m[name]["mean"], 5) for name in ("mse", "mae", "ssim", "energy")}
        row["energy_min"] = round(min(m["energy"]["per_frame"]), 4)
        if src != "copy_last":
            won = beats(m, res["copy_last"])
            row["frames_won"] = {name: won[name]["frames_won"] for name in ("mse", "mae", "ssim")}
        out["frames"][src] = row
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shards", type=Path, required=True, help="generated shards with val")
    ap.add_argument("--segmenter", type=Path, required=True, help="segmenter checkpoint")
    ap.add_argument("--tracks", type=Path, required=True, help="track forecaster checkpoint")
    ap.add_argument("--frames", type=Path, required=True, help="frame model checkpoint")
    ap.add_argument("--cache", type=Path, required=True, help="folder for stores, real shards")
    ap.add_argument("--real", type=Path, default=REAL_SAMPLES, help="real samples to score")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's choice)")
    args = ap.parse_args()

    import torch
    from convrnn_video.ingest.pack import IngestConfig, run_ingest
    from convrnn_video.runtime.checkpoint import load_model

    from convrnn_video.errors import PipelineError

    if args.threads:
        torch.set_num_threads(args.threads)
    args.cache.mkdir(parents=True, exist_ok=True)
    report = {"benchmark": "whole_objects", "machine": machine(), "segmenter": str(args.segmenter),
              "tracks": str(args.tracks), "frames": str(args.frames)}  # fmt: skip
    try:
        models = {"segmenter": load_model(args.segmenter, task="segment")[0].eval(),
                  "tracks": load_model(args.tracks, task="tracks")[0].eval()}  # fmt: skip
        report["generated_val"] = score(args.shards, ("val",), models, args, "val")
        if args.real.is_dir():
            real = args.cache / "real-shards"
            if not (real / "manifest.json").exists():
                run_ingest(IngestConfig(data_root=args.real, out=real, workers=1, progress=False))
            report["real_labelled"] = score(real, ("train", "val"), models, args, "real")
    except PipelineError as exc:  # a bad file or checkpoint: one line, no traceback
        sys.exit(f"error: {exc}")
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
