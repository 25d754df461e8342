"""`demo`: the whole pipeline, small, on the built-in generator, in one command.

DIR/data/                 generated videos (train, val, hidden)
DIR/shards/               their WebDataset shards + manifest.json
DIR/runs/<timestamp>/     the frame model's training run (best.pt, last.pt, metrics.jsonl, ...)
DIR/runs/<timestamp>/     the segmenter's training run (`train --task segment`, preset small)
DIR/runs/<timestamp>/     the track forecaster's run (`train --task tracks`, train's true masks)
DIR/preds-hidden.zarr     the frame model's frames of the hidden videos, and the segmenter's masks
DIR/preds-val.zarr        the same for the val videos
DIR/tracks-hidden.zarr    the track forecaster's path (`predict --tracks`): its masks of frames
                          12-22 of the hidden videos, and frames with every object of the last
                          input moved as a whole where it says (sharp), the frame model's elsewhere
DIR/tracks-val.zarr       the same for the val videos
DIR/predictions/          video_<id>/image_21.png and mask_21.png of every hidden video, from
                          tracks-hidden.zarr: what is handed in
DIR/submission.pt, .json  the forecast masks of frame 22 of the hidden videos, as handed in
DIR/report.json, .png     the frame model's val metrics beside copy-last-frame; the Jaccard of
                          the segmenter's masks of its frames beside copying the last input's
                          mask, extrapolating its objects and the segmenter on the true frames
DIR/report-tracks.json, .png  the same of tracks-val.zarr (the submitted path)
DIR/montage.png           input, true and predicted frames and masks of a few val videos, the
                          submitted path: objects moved as wholes, the track forecaster's masks
DIR/montage-frames.png    the same videos by the frame model alone and the segmenter
DIR/.convrnn-demo         the marker, written first: this folder's outputs are a demo's
                          (`demo_folder.py`)
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from convrnn_video.demo_folder import claim_folder
from convrnn_video.demo_summary import demo_summary
from convrnn_video.infer.config import (
    DemoConfig,
    EvaluateConfig,
    ExportConfig,
    PredictConfig,
    ShowConfig,
    SubmitConfig,
)
from convrnn_video.train.task_defaults import TASK_DEFAULTS

log = logging.getLogger(__name__)
SHOW_VIDEOS = 3  # val videos drawn in the montage
VAL_EVERY = 10**9  # steps: a demo run validates once, when its budget ends
STAGES = 10  # the numbered log lines


class _Clock:
    """Seconds per stage, in the order the stages ran."""

    def __init__(self) -> None:
        self.marks, self.seconds = [time.perf_counter()], {}

    def stage(self, name: str) -> None:  # record how long the stage that just ended took
        self.marks.append(time.perf_counter())
        self.seconds[name] = round(self.marks[-1] - self.marks[-2], 1)

    def total(self) -> dict[str, float]:
        return {**self.seconds, "total": round(self.marks[-1] - self.marks[0], 1)}


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
    from convrnn_video.train.config import TrainConfig
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
    """Predict hidden and val twice: the frame model alone (its frames, the segmenter's masks
    of them) and the track forecaster's path (its masks; frames with the objects moved as
    wholes); export the hidden PNGs and write the submission, both from the track
    forecaster's path; -> the stores, the export and the submission summaries."""
    from convrnn_video.infer.export import run_export
    from convrnn_video.infer.predict import run_predict
    from convrnn_video.infer.submit import run_submit

    log.info(
        "[6/%d] predicting hidden and val videos with %s, %s and %s",
        STAGES, runs["ckpt"], runs["tracks"], runs["segmenter"],
    )  # fmt: skip
    preds, tracks = {}, {}
    for split in ("hidden", "val"):
        preds[split] = str(root / f"preds-{split}.zarr")
        tracks[split] = str(root / f"tracks-{split}.zarr")
        for out, track_ckpt in ((preds[split], None), (tracks[split], str(runs["tracks"]))):
            run_predict(
                PredictConfig(
                    shards=shards,
                    ckpt=str(runs["ckpt"]),
                    out=out,
                    split=split,
                    segmenter=str(runs["segmenter"]),
                    tracks=track_ckpt,
                    batch_size=cfg.batch_size,
                )
            )
    clock.stage("predict")
    log.info("[7/%d] exporting PNGs of the submitted frames and masks", STAGES)
    export = run_export(
        ExportConfig(preds=tracks["hidden"], out=str(root / "predictions"), masks=True)
    )
    clock.stage("export")
    log.info("[8/%d] writing the submission of the forecast hidden masks", STAGES)
    submission = run_submit(SubmitConfig(preds=tracks["hidden"], out=str(root / "submission.pt")))
    clock.stage("submit")
    return {"preds": preds, "tracks": tracks, "export": export, "submission": submission}


def run_demo(cfg: DemoConfig) -> dict[str, Any]:
    """Generate, ingest, train a frame model, a segmenter and the track forecaster, predict,
    export, submit, evaluate and draw; returns where things are and the val scores."""
    from convrnn_video.infer.evaluate import run_evaluate
    from convrnn_video.infer.show import run_show
    from convrnn_video.stores.predictions import PredStore

    cfg.validate()
    root = Path(cfg.out)
    claim_folder(root, cfg)
    clock = _Clock()
    shards = _make_data(cfg, root, clock)
    runs = _train_models(cfg, root, shards, clock)
    done = _predict_and_hand_in(cfg, root, shards, runs, clock)
    preds = done["preds"]
    log.info("[9/%d] evaluating the val predictions", STAGES)
    reports = [
        run_evaluate(EvaluateConfig(preds=store, shards=shards, out=str(root / name),
                                    overwrite=True))  # the demo's own folder, claimed above
        for store, name in ((preds["val"], "report.json"),
                            (done["tracks"]["val"], "report-tracks.json"))
    ]  # fmt: skip
    clock.stage("evaluate")
    log.info("[10/%d] drawing montages of the submitted path and of the frame model", STAGES)
    ids = [str(i) for i in PredStore.open(preds["val"]).ids()[:SHOW_VIDEOS]]
    montages = [
        run_show(ShowConfig(videos=ids, preds=store, shards=shards, out=str(root / name),
                            overwrite=True))["out"]  # the demo's own folder
        for store, name in ((done["tracks"]["val"], "montage.png"),
                            (preds["val"], "montage-frames.png"))
    ]  # fmt: skip
    clock.stage("show")
    return demo_summary(cfg, root, shards, runs, done, reports, montages, clock.total())
