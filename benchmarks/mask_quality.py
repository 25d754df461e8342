"""Which path forecasts the frame-22 mask best for the same CPU? One generated set, a trained
segmenter, fixed training budgets per model; the course's Jaccard on val frame 22, side by side:

    1. copy the segmenter's mask of frame 11
    1b. extrapolate it: its objects moved along their velocity (convrnn/extrapolate.py, from the
       segmenter's masks of the input frames)
    2. RGB path: frame model (compact) -> the segmenter on its predicted frame 22
    3. mask ConvRNN (compact-masks) on train's true masks
    4. the same plus unlabeled pseudo-masks (`label`)
    5. 4 after a scheduled-sampling fine-tune (free-running soon), without and with relabelling
       classes never seen in frames 1-11
    6. the ceiling: the segmenter on the true frame 22
    7. the object-track forecaster (`train --task tracks`, its recipe) on train's true masks
       and the unlabeled pseudo-masks: frame 11's objects moved along learned displacements
    7b. 7 with the hits between its objects played out, the forecaster fine-tuned through them
       (`fit-contacts` on train's true masks, up to 1,000 videos: convrnn/contacts.py,
       train/contacts_tune.py), on the floor plane where that fitted better (convrnn/floor.py)
    7c. 7b with the state reader of its velocities (`fit-reader` on `--reader-videos`
       generated scenes: convrnn/state_reader.py; 7b unchanged where the floor was not kept)
    Rows 7, 7b and 7c read the input masks as `predict` makes them for a track forecaster
    (`segment_for_tracks`: mirror-averaged, the last frame steadied; their time counts it),
    the other rows the plain ones; copying (1) and the ceiling (6) stay on the plain masks.

    python benchmarks/mask_quality.py --cache /tmp/mq --segmenter /tmp/sq/runs/small/best.pt
    python benchmarks/mask_quality.py --cache /tmp/mq-s --segmenter SEG.pt --train 8 --val 4 \\
        --unlabeled 8 --minutes 0.3 --finetune-minutes 0.2 --reader-videos 40    # a smoke run
    python benchmarks/mask_quality.py --cache /tmp/mq --segmenter SEG.pt --rows tracks  # 1,1b,6,7

The videos are generated per (seed, id), so with the default seed the train and val videos
are those of benchmarks/segment_quality.py, whose segmenter this expects. Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from convrnn_video.train.config import TrainConfig  # noqa: E402
from convrnn_video.train.task_defaults import TASK_DEFAULTS  # noqa: E402

from benchmarks.data import prepare_shards, run_records  # noqa: E402
from benchmarks.track_fits import fit_contacts_run, fit_reader_run  # noqa: E402

RECIPE = TASK_DEFAULTS["masks"]  # `train --task masks`'s defaults: what this script measured
ROWS = ("rgb", "train", "pseudo", "finetuned", "tracks")  # the trained rows (--rows)


def train_run(name: str, args, shards: Path, minutes: float, **options) -> dict:
    """Train one model for `minutes` (no validation: the benchmark scores it) -> its summary.
    The mask rows' batch, lr and schedule come from the options (the tracks row: its own
    task's recipe, the TrainConfig defaults)."""
    import shutil

    from convrnn_video.train.loop import run_training

    run = args.cache / "runs" / name
    shutil.rmtree(run, ignore_errors=True)
    settings = {"batch_size": args.batch_size, "lr": args.lr, "lr_schedule": args.lr_schedule,
                "warmup_steps": args.warmup_steps}  # fmt: skip
    if options.get("task") == "tracks":
        settings = {}
    cfg = TrainConfig(
        shards=str(shards), out=str(run), time_limit=minutes, val_split="", progress=False,
        log_every=5, seed=args.seed, **{**settings, **options},
    )  # fmt: skip
    run_training(cfg)
    records = run_records(run)
    train = records["train"]
    return {
        "ckpt": run / "last.pt",
        "steps": train[-1]["step"] if train else 0,
        # cores other processes kept busy meanwhile: a busy machine trains fewer steps
        "others_cores": records["end"][-1].get("others_cores"),
        "train_samples_per_s": round(statistics.median(r["samples_per_s"] for r in train), 2)
        if train else None,
        "minutes": minutes,
    }  # fmt: skip


def score(rows: dict, shards: Path, segmenter, precision: str, device) -> dict:
    """One pass over val: each row's frame-22 masks against the truth -> {row: Jaccard, ...},
    and each row's prediction videos/s."""
    import torch
    from convrnn_video.runtime.device import autocast
    from convrnn_video.runtime.jaccard import FrameJaccard
    from convrnn_video.segment.apply import segment_frames
    from convrnn_video.shards.loader import make_loader

    context = autocast(precision, device, warn=False)
    acc = {name: FrameJaccard() for name in rows}
    seconds = dict.fromkeys(rows, 0.0)
    loader = make_loader(shards, "val", mode="eval", batch_size=4, masks=True)
    with torch.inference_mode():
        for batch in loader:
            t = time.perf_counter()
            seen = segment_frames(segmenter, batch["inputs"], context)
            segment_time = time.perf_counter() - t  # (B, 11, H, W): every mask row needs it
            true = batch["masks"][:, -1:].long()  # (B, 1, H, W): frame 22
            for name, fn in rows.items():
                t = time.perf_counter()
                pred = fn(batch, seen, context)  # (B, H, W) class ids
                seconds[name] += time.perf_counter() - t + segment_time
                acc[name].update(pred.unsqueeze(1).cpu(), true)
    videos = next(iter(acc.values())).videos
    return {name: {"jaccard_frame22": round(a.compute()["last"], 4),
                   "predict_videos_per_s": round(videos / seconds[name], 2)}
            for name, a in acc.items()}  # fmt: skip


def mask_rows(models: dict, segmenter) -> dict:
    """The prediction function of every row, from the trained models."""
    from convrnn_video.convrnn.extrapolate import extrapolate_masks
    from convrnn_video.convrnn.masks import restrict_to_seen
    from convrnn_video.segment.apply import segment_for_tracks, segment_frames

    def copy(batch, seen, context):
        return seen[:, -1]

    def extrapolate(batch, seen, context):
        return extrapolate_masks(seen, batch["targets"].shape[1])[:, -1]

    def truth(batch, seen, context):
        return segment_frames(segmenter, batch["targets"][:, -1:], context)[:, 0]

    def rgb(batch, seen, context):
        with context:
            frames = models["rgb"](batch["inputs"]).float()  # (B, 11, 3, H, W)
        return segment_frames(segmenter, frames[:, -1:], context)[:, 0]

    def track_row(name):
        def fn(batch, seen, context):  # its own input masks, as `predict` makes them
            ids = segment_for_tracks(segmenter, batch["inputs"], context)
            return models[name](ids).argmax(2)[:, -1]

        return fn

    def masks(name, relabel=False):
        def fn(batch, seen, context):
            with context:
                logits = models[name](seen).float()  # (B, 11, K, H, W)
            ids = restrict_to_seen(logits, seen) if relabel else logits.argmax(2)
            return ids[:, -1]

        return fn

    rows = {
        "1_copy_frame11_mask": copy,
        "1b_extrapolate_frame11_objects": extrapolate,
        "2_rgb_then_segment": rgb,
        "3_masks_train_only": masks("train"),
        "4_masks_plus_pseudo": masks("pseudo"),
        "5_finetuned": masks("finetuned"),
        "5_finetuned_relabel": masks("finetuned", relabel=True),
        "6_segmenter_on_true_frame22": truth,
        "7_tracks_plus_pseudo": track_row("tracks"),
        "7b_tracks_with_contacts": track_row("contacts"),
        "7c_tracks_with_reader": track_row("reader"),
    }
    # the rows of the models trained (--rows), beside the untrained 1, 1b and 6
    need = {"2": "rgb", "3": "train", "4": "pseudo", "5": "finetuned", "7": "tracks",
            "7b": "contacts", "7c": "reader"}  # fmt: skip
    return {k: fn for k, fn in rows.items()
            if k.split("_")[0] not in need or need[k.split("_")[0]] in models}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", type=Path, required=True, help="folder for data, shards, runs")
    ap.add_argument("--segmenter", type=Path, required=True, help="trained segmenter (.pt)")
    ap.add_argument("--train", type=int, default=1000)
    ap.add_argument("--val", type=int, default=200)
    ap.add_argument("--unlabeled", type=int, default=1000)
    ap.add_argument("--minutes", type=float, default=8.0, help="budget of rows 2, 3 and 4")
    ap.add_argument("--finetune-minutes", type=float, default=4.0, help="row 5's extra budget")
    ap.add_argument("--tracks-minutes", type=float, default=5.0, help="row 7's budget")
    ap.add_argument("--reader-videos", type=int, default=32000, help="row 7c: fit-reader's scenes")
    ap.add_argument("--rows", default=",".join(ROWS),
                    help="trained rows to run, of " + ",".join(ROWS))  # fmt: skip
    ap.add_argument("--ss-steps", type=int, default=100, help="fine-tune: teacher prob 1 -> 0")
    ap.add_argument("--batch-size", type=int, default=RECIPE["batch_size"])
    ap.add_argument("--lr", type=float, default=RECIPE["lr"])
    ap.add_argument("--precision", default=TrainConfig.precision)
    ap.add_argument("--lr-schedule", default=RECIPE["lr_schedule"],
                    help="every row's: cosine | plateau")  # fmt: skip
    ap.add_argument("--warmup-steps", type=int, default=RECIPE["warmup_steps"],
                    help="cosine: warm-up steps")  # fmt: skip
    ap.add_argument(
        "--crop",
        type=int,
        nargs=2,
        default=RECIPE["crop"],
        metavar=("H", "W"),
        help="mask rows: train on H x W windows (0 0: whole frames)",
    )
    ap.add_argument(
        "--relabel",
        action="store_true",
        help="label unlabeled again even when a complete store of this segmenter is in --cache",
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--workers", type=int, default=2, help="generation / ingest processes; tracks' readers"
    )
    args = ap.parse_args()
    if args.reader_videos < 1:  # fit-reader would refuse it only after the training rows
        ap.error(f"--reader-videos must be at least 1, got {args.reader_videos}")

    import torch
    from convrnn_video.infer.config import LabelConfig
    from convrnn_video.infer.labels import run_label
    from convrnn_video.runtime.checkpoint import load_model
    from convrnn_video.runtime.device import resolve_precision

    wall = time.time()
    device = torch.device("cpu")
    precision = resolve_precision(args.precision, device)
    shards = prepare_shards(args.cache, args.train, args.val, args.seed, args.workers,
                            unlabeled=args.unlabeled)  # fmt: skip
    seg = str(args.segmenter)
    t = time.perf_counter()
    labels = args.cache / "labels" / "unlabeled.zarr"
    # a complete store of the same segmenter is reused (label resumes; a new segmenter is
    # refused, so --relabel then)
    label = run_label(LabelConfig(shards=str(shards), segmenter=seg, out=str(labels),
                                  overwrite=args.relabel, progress=False))  # fmt: skip
    label_minutes = (time.perf_counter() - t) / 60
    wanted = set(args.rows.split(","))
    preset, crop = RECIPE["preset"], tuple(args.crop)
    plans = {
        "rgb": lambda: train_run("rgb", args, shards, args.minutes, task="frames",
                                 preset="compact", train_splits=("train", "unlabeled")),
        "train": lambda: train_run("masks-train", args, shards, args.minutes, task="masks",
                                   preset=preset, crop=crop),
        "pseudo": lambda: train_run("masks-pseudo", args, shards, args.minutes, task="masks",
                                    preset=preset, labels=str(labels), crop=crop),
        "finetuned": lambda: train_run(
            "masks-finetuned", args, shards, args.finetune_minutes, task="masks",
            preset=preset, labels=str(labels), init_from=str(runs["pseudo"]["ckpt"]),
            ss_steps=args.ss_steps, crop=crop),
        "tracks": lambda: train_run("tracks", args, shards, args.tracks_minutes, task="tracks",
                                    preset="tracks", labels=str(labels), workers=args.workers,
                                    train_splits=("train", "unlabeled")),
    }  # fmt: skip
    runs = {}
    for name in ROWS:  # in this order: the fine-tune starts from the pseudo row
        if name in wanted:
            runs[name] = plans[name]()
    if "tracks" in runs:
        runs["contacts"] = fit_contacts_run(args, shards, runs["tracks"]["ckpt"])
        runs["reader"] = fit_reader_run(args, runs["contacts"]["ckpt"])
    models = {name: load_model(r["ckpt"], device)[0] for name, r in runs.items()}
    segmenter = load_model(seg, device, task="segment")[0]
    rows = score(mask_rows(models, segmenter), shards, segmenter, precision, device)
    copy, ceiling = rows["1_copy_frame11_mask"], rows["6_segmenter_on_true_frame22"]
    learned = [r for r in rows if r[0] in "3457"]
    best = max(learned, key=lambda r: rows[r]["jaccard_frame22"]) if learned else None
    best_score = rows[best]["jaccard_frame22"] if best else float("nan")
    halfway = (copy["jaccard_frame22"] + ceiling["jaccard_frame22"]) / 2
    rgb = rows.get("2_rgb_then_segment", copy)
    report = {
        "benchmark": "mask_quality",
        "data": {"train": args.train, "val": args.val, "unlabeled": args.unlabeled,
                 "seed": args.seed},
        "segmenter": seg,
        "precision": precision,
        "lr_schedule": args.lr_schedule,
        "mask_training_windows": list(args.crop) if min(args.crop) > 0 else "whole frames",
        "mask_preset": preset,
        "budgets_minutes": {"rgb": args.minutes, "masks_train": args.minutes,
                            "masks_pseudo": args.minutes, "finetune": args.finetune_minutes,
                            "tracks": args.tracks_minutes,
                            "label_unlabeled": round(label_minutes, 2)},
        "training": {name: {k: v for k, v in r.items() if k != "ckpt"} for name, r in runs.items()},
        "label": label,
        "rows": rows,
        "best_mask_row": best,
        "targets": {
            "learned_rows_above_1_and_2": all(
                rows[r]["jaccard_frame22"] > max(copy["jaccard_frame22"], rgb["jaccard_frame22"])
                for r in learned),
            "best_at_least_0.15_above_1": best_score >= copy["jaccard_frame22"] + 0.15,
            "best_above_1b": best_score > rows["1b_extrapolate_frame11_objects"]["jaccard_frame22"],
            "best_at_least_halfway_1_to_6": best_score >= halfway,
            "halfway": round(halfway, 4),
        },
        "wall_minutes": round((time.time() - wall) / 60, 2),
    }  # fmt: skip
    print(json.dumps(report, indent=2, default=str))


if __name__ == "__main__":
    main()
