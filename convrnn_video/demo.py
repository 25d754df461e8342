"""`demo`: the whole pipeline, small, on the built-in generator, in one command.

DIR/data/                 generated videos (train, val, hidden)
DIR/shards/               their WebDataset shards + manifest.json
DIR/runs/<timestamp>/     the frame model's training run (best.pt, last.pt, metrics.jsonl, ...)
DIR/runs/<timestamp>/     the segmenter's training run (`train --task segment`, preset small)
DIR/runs/<timestamp>/     the track forecaster's run (`train --task tracks`, train's true masks)
DIR/preds-hidden.zarr     predicted frames of the hidden videos, and the segmenter's masks of them
DIR/preds-val.zarr        the same for the val videos
DIR/masks-hidden.zarr     the track forecaster's masks of frames 12-22 of the hidden videos
DIR/masks-val.zarr        the same for the val videos
DIR/predictions/          video_<id>/image_21.png and mask_21.png of every hidden video (frames
                          path)
DIR/submission.pt, .json  the forecast masks of frame 22 of the hidden videos, as handed in
DIR/report.json, .png     val metrics beside copy-last-frame; the Jaccard of the masks beside
                          copying the last input's mask and the segmenter on the true frames
DIR/report-masks.json, .png  the same Jaccard of the track forecaster's val masks
DIR/montage.png           input, true and predicted frames and masks of a few val videos
DIR/montage-masks.png     the same videos' input frames, true masks and the track forecaster's
                          masks: what the submission is made of
DIR/.convrnn-demo         the marker, written first: this folder's outputs are a demo's

`data/`, `shards/`, `runs/`... are the real pipeline's default names, so the demo writes into,
and `--overwrite` removes from, only a folder that holds none of them or holds the marker: a
working folder with the user's own dataset and runs is refused, and nothing in it is touched.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from convrnn_video.infer.config import (
    DemoConfig,
    EvaluateConfig,
    ExportConfig,
    PredictConfig,
    ShowConfig,
    SubmitConfig,
)
from convrnn_video.infer.errors import InferError

log = logging.getLogger(__name__)
MARKER = ".convrnn-demo"  # written first into a demo folder: proof that its OUTPUTS are ours
MARKED_BY = "convrnn-video demo"
# what a demo writes, and all that --overwrite removes (from a folder with the marker only)
OUTPUTS = (
    "data",
    "shards",
    "runs",
    "preds-hidden.zarr",
    "preds-val.zarr",
    "masks-hidden.zarr",
    "masks-val.zarr",
    "predictions",
    "submission.pt",
    "submission.json",
    "report.json",
    "report.png",
    "report-masks.json",
    "report-masks.png",
    "montage.png",
    "montage-masks.png",
)
SHOW_VIDEOS = 3  # val videos drawn in the montage
VAL_EVERY = 10**9  # steps: a demo run validates once, when its budget ends
STAGES = 10  # the numbered log lines


def _is_demo_folder(root: Path) -> bool:
    """Whether `root` holds the marker a demo writes when it starts."""
    try:
        marker = json.loads((root / MARKER).read_text())
    except (OSError, ValueError):  # absent or not JSON: not a marker of ours
        return False
    return isinstance(marker, dict) and marker.get("written_by") == MARKED_BY


def _claim(root: Path, cfg: DemoConfig) -> None:
    """Make `root` a demo folder: refuse one holding files of the demo's names that no demo
    wrote (no marker) and, unless `cfg.overwrite`, an earlier demo; remove that demo's outputs
    (only those), then write the marker."""
    if root.exists() and not root.is_dir():
        raise InferError(f"{root} is a file, not a folder; choose another --out")
    present = [name for name in OUTPUTS if (root / name).exists() or (root / name).is_symlink()]
    if present and not _is_demo_folder(root):
        raise InferError(
            f"{root} holds {', '.join(present)}, which no demo wrote there (no {MARKER} "
            "marker): they may be your own dataset, shards or runs, so the demo neither "
            "writes into this folder nor removes anything, with or without --overwrite; "
            "choose a new or empty --out"
        )
    if present and not cfg.overwrite:
        raise InferError(
            f"{root} already holds a demo ({', '.join(present)}); pass --overwrite to start "
            "over, or choose another --out"
        )
    for name in present:
        path = root / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()  # a file, or a link (never what it points to)
    root.mkdir(parents=True, exist_ok=True)
    marker = {
        "written_by": MARKED_BY,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "outputs": list(OUTPUTS),
        "config": vars(cfg),
    }
    tmp = root / (MARKER + ".tmp")
    tmp.write_text(json.dumps(marker, indent=2) + "\n")
    os.replace(tmp, root / MARKER)


class _Clock:
    """Seconds per stage, in the order the stages ran."""

    def __init__(self) -> None:
        self.marks, self.seconds = [time.perf_counter()], {}

    def stage(self, name: str) -> None:  # record how long the stage that just ended took
        self.marks.append(time.perf_counter())
        self.seconds[name] = round(self.marks[-1] - self.marks[-2], 1)

    def total(self) -> dict[str, float]:
        return {**self.seconds, "total": round(self.marks[-1] - self.marks[0], 1)}


def _steps(run: Path) -> int:
    """The optimizer steps a training run made (its metrics' end record)."""
    import json

    ends = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()
            if '"end"' in line]  # fmt: skip
    return int(ends[-1]["step"]) if ends else 0


def _budget(minutes: float, steps: int | None) -> str:
    """'4 minutes', or '4 minutes or 250 steps'."""
    return f"{minutes:g} minutes" + (f" or {steps} steps" if steps else "")


def _make_data(cfg: DemoConfig, root: Path, clock: _Clock) -> str:
    """Generate the videos and ingest them; -> the shard folder."""
    from convrnn_video.ingest.pack import IngestConfig, run_ingest
    from convrnn_video.ingest.synth import SynthConfig, generate

    log.info(
        "[1/%d] generating %d train, %d val, %d hidden videos",
        STAGES,
        cfg.train,
        cfg.val,
        cfg.hidden,
    )
    synth = SynthConfig(
        out=root / "data",
        train=cfg.train,
        val=cfg.val,
        unlabeled=0,
        hidden=cfg.hidden,
        seed=cfg.seed,
        workers=2,
        progress=True,
    )
    generate(synth)
    clock.stage("generate")
    log.info("[2/%d] ingesting into shards", STAGES)
    run_ingest(IngestConfig(data_root=root / "data", out=root / "shards", workers=2, progress=True))
    clock.stage("ingest")
    return str(root / "shards")


def _train_models(cfg: DemoConfig, root: Path, shards: str, clock: _Clock) -> dict[str, Path]:
    """Train the frame model, the segmenter, then the track forecaster (validated on the
    segmenter's masks); -> their run folders and checkpoints."""
    from convrnn_video.runtime.runs import find_checkpoint
    from convrnn_video.train.config import TrainConfig
    from convrnn_video.train.loop import run_training

    common = {
        "shards": shards,
        "runs_root": str(root / "runs"),
        "val_split": "val",
        "seed": cfg.seed,
        "progress": True,
    }
    log.info("[3/%d] training %s for %s", STAGES, cfg.preset, _budget(cfg.minutes, cfg.steps))
    run = run_training(
        TrainConfig(
            preset=cfg.preset,
            time_limit=cfg.minutes,
            max_steps=cfg.steps,
            epochs=10_000,  # the time (or the steps) ends the run
            batch_size=cfg.batch_size,
            lr=cfg.lr,
            val_every=VAL_EVERY,  # and once at the end: the run is short
            ckpt_every=VAL_EVERY,
            **common,  # the rest: the frames recipe (cosine, no teacher forcing), as `train`
        )
    )
    clock.stage("train")
    log.info(
        "[4/%d] training the %s segmenter for %s",
        STAGES, cfg.seg_preset, _budget(cfg.seg_minutes, cfg.seg_steps),
    )  # fmt: skip
    seg_run = run_training(
        TrainConfig(
            task="segment",
            preset=cfg.seg_preset,
            time_limit=cfg.seg_minutes,
            max_steps=cfg.seg_steps,
            epochs=10_000,
            batch_size=min(cfg.seg_batch_size, cfg.train),  # lr: the segment task's (2e-3)
            val_every=VAL_EVERY,
            ckpt_every=VAL_EVERY,
            **common,
        )
    )  # validated once, at the end: scoring val costs as much as a few dozen steps
    clock.stage("train_segmenter")
    segmenter = find_checkpoint(seg_run)
    tracks_run = _train_tracks(cfg, segmenter, common)
    clock.stage("train_tracks")
    return {
        "run": run,
        "ckpt": find_checkpoint(run),
        "segmenter_run": seg_run,
        "segmenter": segmenter,
        "tracks_run": tracks_run,
        "tracks": find_checkpoint(tracks_run),
    }


def _train_tracks(cfg: DemoConfig, segmenter: Path, common: dict[str, Any]) -> Path:
    """Train the track forecaster on train's true masks, validated on the segmenter's masks
    of the val inputs; -> its run folder."""
    from convrnn_video.train.config import TASK_DEFAULTS, TrainConfig
    from convrnn_video.train.loop import run_training

    log.info(
        "[5/%d] training the track forecaster on train's masks for %d epochs or %s",
        STAGES, TASK_DEFAULTS["tracks"]["epochs"], _budget(cfg.tracks_minutes, cfg.tracks_steps),
    )  # fmt: skip
    return run_training(
        TrainConfig(
            task="tracks",
            time_limit=cfg.tracks_minutes,
            max_steps=cfg.tracks_steps,
            # the task's epochs (20), capped by the budget: on the demo's 96 videos more
            # overfits them (val frame 22 0.142 after 20 epochs, 0.128 after 73; copying 0.131)
            batch_size=min(256, cfg.train * 4),  # the tracks recipe's, or what a tiny set holds
            segmenter=str(segmenter),
            val_every=VAL_EVERY,
            ckpt_every=VAL_EVERY,
            **common,
        )
    )


def _predict_and_hand_in(
    cfg: DemoConfig, root: Path, shards: str, runs: dict[str, Path], clock: _Clock
) -> dict[str, Any]:
    """Predict hidden and val (frames and their masks; the track forecaster's masks), export
    the hidden PNGs and write the submission from the forecast masks; -> the stores, the
    export and the submission summaries."""
    from convrnn_video.infer.export import run_export
    from convrnn_video.infer.predict import run_predict
    from convrnn_video.infer.submit import run_submit

    log.info(
        "[6/%d] predicting hidden and val videos with %s, %s and %s",
        STAGES, runs["ckpt"], runs["tracks"], runs["segmenter"],
    )  # fmt: skip
    preds, masks = {}, {}
    for split in ("hidden", "val"):
        preds[split] = str(root / f"preds-{split}.zarr")
        masks[split] = str(root / f"masks-{split}.zarr")
        for ckpt, out in ((runs["ckpt"], preds[split]), (runs["tracks"], masks[split])):
            run_predict(
                PredictConfig(
                    shards=shards,
                    ckpt=str(ckpt),
                    out=out,
                    split=split,
                    segmenter=str(runs["segmenter"]),
                    batch_size=cfg.batch_size,
                )
            )
    clock.stage("predict")
    log.info("[7/%d] exporting PNGs of frames and masks", STAGES)
    export = run_export(
        ExportConfig(preds=preds["hidden"], out=str(root / "predictions"), masks=True)
    )
    clock.stage("export")
    log.info("[8/%d] writing the submission of the forecast hidden masks", STAGES)
    submission = run_submit(SubmitConfig(preds=masks["hidden"], out=str(root / "submission.pt")))
    clock.stage("submit")
    return {"preds": preds, "masks": masks, "export": export, "submission": submission}


def run_demo(cfg: DemoConfig) -> dict[str, Any]:
    """Generate, ingest, train a frame model, a segmenter and the track forecaster, predict,
    export, submit, evaluate and draw; returns where things are and the val scores."""
    from convrnn_video.infer.evaluate import run_evaluate
    from convrnn_video.infer.show import run_show
    from convrnn_video.stores.predictions import PredStore

    cfg.validate()
    root = Path(cfg.out)
    _claim(root, cfg)
    clock = _Clock()
    shards = _make_data(cfg, root, clock)
    runs = _train_models(cfg, root, shards, clock)
    done = _predict_and_hand_in(cfg, root, shards, runs, clock)
    preds = done["preds"]
    log.info("[9/%d] evaluating the val predictions", STAGES)
    reports = [
        run_evaluate(EvaluateConfig(preds=store, shards=shards, out=str(root / name)))
        for store, name in ((preds["val"], "report.json"),
                            (done["masks"]["val"], "report-masks.json"))
    ]  # fmt: skip
    clock.stage("evaluate")
    log.info("[10/%d] drawing montages of the frames and of the submitted masks", STAGES)
    ids = [str(i) for i in PredStore.open(preds["val"]).ids()[:SHOW_VIDEOS]]
    montages = [
        run_show(ShowConfig(videos=ids, preds=store, shards=shards, out=str(root / name)))["out"]
        for store, name in ((preds["val"], "montage.png"),
                            (done["masks"]["val"], "montage-masks.png"))
    ]  # fmt: skip
    clock.stage("show")
    return _summary(cfg, root, shards, runs, done, reports, montages, clock)


def _summary(
    cfg: DemoConfig,
    root: Path,
    shards: str,
    runs: dict[str, Path],
    done: dict[str, Any],
    reports: list[dict],
    montages: list[str],
    clock: _Clock,
) -> dict:
    """What `run_demo` returns: where everything is, the val scores, the steps and times."""
    (report, masks_report), preds, export = reports, done["preds"], done["export"]
    jaccard = report.get("jaccard", {})
    tracks = masks_report["jaccard"]["model"]
    return {
        "out": str(root),
        "data": str(root / "data"),
        "shards": shards,
        "run": str(runs["run"]),
        "ckpt": str(runs["ckpt"]),
        "segmenter_run": str(runs["segmenter_run"]),
        "segmenter": str(runs["segmenter"]),
        "tracks_run": str(runs["tracks_run"]),
        "tracks": str(runs["tracks"]),
        "preds": {**preds, **{f"{k} masks": v for k, v in done["masks"].items()}},
        "predictions": export["out"],
        "png_files": export["files"],
        "submission": done["submission"]["out"],
        "report": str(root / "report.json"),
        "plot": report["plot"],
        "masks_report": str(root / "report-masks.json"),
        "montage": montages[0],
        "masks_montage": montages[1],
        "videos": report["videos"],
        "train_videos": cfg.train,
        "model": {k: v["mean"] for k, v in report["model"].items()},
        "copy_last_frame": {k: v["mean"] for k, v in report["copy_last_frame"].items()},
        # the course's score of the val masks: frame 22 ("last") and all predicted frames
        "jaccard": {
            "tracks": {"last": tracks["last"], "mean": tracks["mean"]},
            **{
                key: {"last": jaccard[key]["last"], "mean": jaccard[key]["mean"]}
                for key in ("model", "copy_last_input", "extrapolate_objects", "segmenter_on_true")
                if key in jaccard
            },
        },
        "steps": {
            "frames": _steps(runs["run"]),
            "segmenter": _steps(runs["segmenter_run"]),
            "tracks": _steps(runs["tracks_run"]),
        },
        "seconds": clock.total(),
    }
