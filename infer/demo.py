"""`demo`: the whole pipeline, small, on the built-in generator, in one command.

DIR/data/                 generated videos (train, val, hidden)
DIR/shards/               their WebDataset shards + manifest.json
DIR/runs/<timestamp>/     the training run (best.pt, last.pt, metrics.jsonl, curves.png)
DIR/preds-hidden.zarr     predictions of the hidden videos
DIR/preds-val.zarr        predictions of the val videos
DIR/predictions/          video_<id>/image_21.png of every hidden video
DIR/report.json, .png     val metrics beside copy-last-frame, and their plot
DIR/montage.png           input, true and predicted frames of a few val videos
"""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path
from typing import Any

from infer.config import DemoConfig, EvaluateConfig, ExportConfig, PredictConfig, ShowConfig
from infer.errors import InferError

log = logging.getLogger(__name__)
# what a demo writes, and all that --overwrite removes
OUTPUTS = (
    "data",
    "shards",
    "runs",
    "preds-hidden.zarr",
    "preds-val.zarr",
    "predictions",
    "report.json",
    "report.png",
    "montage.png",
)
SHOW_VIDEOS = 3  # val videos drawn in the montage


def _clear(root: Path, overwrite: bool) -> None:
    """Refuse to mix with an earlier demo's files unless `overwrite`, then remove only ours."""
    present = [root / name for name in OUTPUTS if (root / name).exists()]
    if present and not overwrite:
        raise InferError(
            f"{root} already holds a demo ({', '.join(p.name for p in present)}); "
            "pass --overwrite to start over, or choose another --out"
        )
    for path in present:
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()


def run_demo(cfg: DemoConfig) -> dict[str, Any]:
    """Generate, ingest, train, predict, export, evaluate and draw; returns where things are."""
    from infer.evaluate import run_evaluate
    from infer.export import run_export
    from infer.predict import run_predict
    from infer.show import run_show
    from ingest.pack import IngestConfig, run_ingest
    from ingest.synth import SynthConfig, generate
    from train.config import TrainConfig
    from train.loop import run_training
    from train.runs import find_checkpoint

    cfg.validate()
    root = Path(cfg.out)
    _clear(root, cfg.overwrite)
    root.mkdir(parents=True, exist_ok=True)
    seconds: dict[str, float] = {}
    marks = [time.perf_counter()]

    def stage(name: str) -> None:  # record how long the stage that just ended took
        marks.append(time.perf_counter())
        seconds[name] = round(marks[-1] - marks[-2], 1)

    log.info("[1/7] generating %d train, %d val, %d hidden videos", cfg.train, cfg.val, cfg.hidden)
    generate(
        SynthConfig(
            out=root / "data",
            train=cfg.train,
            val=cfg.val,
            unlabeled=0,
            hidden=cfg.hidden,
            seed=cfg.seed,
            workers=2,
            progress=True,
        )
    )
    stage("generate")
    log.info("[2/7] ingesting into shards")
    run_ingest(IngestConfig(data_root=root / "data", out=root / "shards", workers=2, progress=True))
    stage("ingest")
    shards = str(root / "shards")
    log.info("[3/7] training %s for %d steps", cfg.preset, cfg.steps)
    run = run_training(
        TrainConfig(
            shards=shards,
            runs_root=str(root / "runs"),
            preset=cfg.preset,
            max_steps=cfg.steps,
            batch_size=cfg.batch_size,
            lr=cfg.lr,
            train_splits=("train",),
            val_split="val",
            val_every=max(1, cfg.steps // 5),
            ckpt_every=cfg.steps,
            seed=cfg.seed,
            progress=True,
            ss_steps=0,
        )
    )  # a short run: free-running from the start, as the model is evaluated
    ckpt = find_checkpoint(run)
    stage("train")
    log.info("[4/7] predicting hidden and val videos with %s", ckpt)
    preds = {}
    for split in ("hidden", "val"):
        preds[split] = str(root / f"preds-{split}.zarr")
        run_predict(
            PredictConfig(
                shards=shards,
                ckpt=str(ckpt),
                out=preds[split],
                split=split,
                batch_size=cfg.batch_size,
            )
        )
    stage("predict")
    log.info("[5/7] exporting PNGs")
    export = run_export(ExportConfig(preds=preds["hidden"], out=str(root / "predictions")))
    stage("export")
    log.info("[6/7] evaluating the val predictions")
    report = run_evaluate(
        EvaluateConfig(preds=preds["val"], shards=shards, out=str(root / "report.json"))
    )
    stage("evaluate")
    log.info("[7/7] drawing a montage")
    from infer.store import PredStore

    ids = PredStore.open(preds["val"]).ids()[:SHOW_VIDEOS]
    show = run_show(
        ShowConfig(
            videos=[str(i) for i in ids],
            preds=preds["val"],
            shards=shards,
            out=str(root / "montage.png"),
        )
    )
    stage("show")
    return {
        "out": str(root),
        "data": str(root / "data"),
        "shards": shards,
        "run": str(run),
        "ckpt": str(ckpt),
        "preds": preds,
        "predictions": export["out"],
        "png_files": export["files"],
        "report": str(root / "report.json"),
        "plot": report["plot"],
        "montage": show["out"],
        "videos": report["videos"],
        "model": {k: v["mean"] for k, v in report["model"].items()},
        "copy_last_frame": {k: v["mean"] for k, v in report["copy_last_frame"].items()},
        "seconds": {**seconds, "total": round(marks[-1] - marks[0], 1)},
    }
