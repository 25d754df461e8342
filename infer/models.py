"""The models a prediction uses, loaded from their checkpoints: the checkpoint predict takes
(`resolve_checkpoint`), the frame model or mask forecaster (`load_predictor`), and beside it the
segmenter (with the store attributes that name it) and the track forecaster, all checked against
each other and the split's geometry (`load`); `log_models` says which ones a run uses."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from convrnn_video.convrnn.floor import Floor
from convrnn_video.convrnn.floor_play import rule
from convrnn_video.infer.batch import reads_tracks
from convrnn_video.infer.config import PredictConfig
from convrnn_video.infer.errors import InferError
from convrnn_video.infer.masks import load_segmenter
from convrnn_video.infer.plan import fit_problems
from convrnn_video.ingest.writer import sha256_file
from convrnn_video.runtime.checkpoint import checkpoint_task, load_checkpoint, load_model
from convrnn_video.runtime.errors import RunError
from convrnn_video.runtime.runs import find_checkpoint
from convrnn_video.segment.apply import track_rule
from convrnn_video.segment.objects import RULE

log = logging.getLogger(__name__)
TASKS = ("frames", "masks", "tracks")  # the checkpoints predict accepts


def resolve_checkpoint(ckpt: str | None, runs: str) -> tuple[Path, str]:
    """(checkpoint path, how it was chosen); without `ckpt`, the newest run's best.pt."""
    try:
        path = find_checkpoint(ckpt, root=Path(runs))
    except RunError as exc:
        raise InferError(str(exc)) from None
    how = "given" if ckpt is not None else f"newest run under {runs}/"
    return path, how


def load_predictor(path: Path, device: torch.device) -> tuple[torch.nn.Module, Any, dict]:
    """(model in eval mode, ModelConfig, payload) from a frame or mask forecaster checkpoint,
    with clear errors (a segmenter given as --ckpt is one)."""
    try:
        task = checkpoint_task(load_checkpoint(path))
        if task not in TASKS:
            raise RunError(
                f"{path} is a {task} checkpoint; expected a frames or masks checkpoint (made by "
                "`python cli.py train --task frames|masks`); a segmenter goes to --segmenter"
            )
        return load_model(path, device, task=task)
    except RunError as exc:
        raise InferError(str(exc)) from None


def hit_rule(
    model_cfg: Any, tracks: torch.nn.Module | None, model: torch.nn.Module | None = None
) -> str | None:
    """How the track forecaster that moves the objects (the `model` itself, or `--tracks`)
    plays their hits and draws them, for the store's "hit_rule": the floor stage's `rule` and
    its reader (and whether it places objects), how long objects first seen in the last input
    frame are drawn; None: neither."""
    cfg = tracks.cfg if tracks is not None else model_cfg
    if cfg.forecast != "tracks":
        return None
    parts = []
    if cfg.track_floor:
        said = ""
        if cfg.track_reader:
            which = "every object" if cfg.track_reader_every else "short tracks"
            said = f"; {which} corrected by a state reader"
            reader = getattr(tracks if tracks is not None else model, "reader", None)
            if reader is not None and bool(reader.placing.any()):
                said += ", objects placed where their centres are seen"
        parts.append(rule(Floor(*cfg.track_floor)) + said)
    if cfg.track_new_frames:
        parts.append(f"objects first seen in the last input frame drawn in the first "
                     f"{cfg.track_new_frames} forecast frames")  # fmt: skip
    return "; ".join(parts) or None


def _segmenter_attrs(path: str | None, device: torch.device, tracks: bool, mirror: bool):
    """(segmenter or None, its SegConfig or None, the store attributes that name it); `tracks`:
    a track forecaster reads its masks (made by `segment_for_tracks`'s rule, with `mirror`)."""
    if path is None:
        none = {
            "segmenter": None,
            "segmenter_sha256": None,
            "segmenter_config": None,
            "mask_rule": None,
        }
        return None, None, none
    seg, seg_cfg, payload = load_segmenter(path, device)
    attrs = {
        "segmenter": str(path),
        "segmenter_sha256": sha256_file(Path(path)),
        "segmenter_config": seg_cfg.to_dict(),
        "segmenter_step": int(payload.get("step", 0) or 0),
        # how its argmax became the masks the store's masks come from (segment_frames)
        "mask_rule": track_rule(mirror) if tracks else RULE,
    }
    return seg, seg_cfg, attrs


def load(
    cfg: PredictConfig, ckpt: Path, device: torch.device, manifest: dict[str, Any]
) -> tuple[torch.nn.Module, Any, dict, torch.nn.Module | None, dict[str, Any], Any]:
    """(model, ModelConfig, payload, segmenter or None, the store attributes that name the
    segmenter and how hits are played (`hit_rule`), track forecaster or None), the checkpoints
    checked against each other and the split's geometry."""
    model, model_cfg, payload = load_predictor(ckpt, device)
    if cfg.motion and not model_cfg.motion:
        raise InferError(
            f"{ckpt} has no motion output, so --motion has nothing to store; use a checkpoint "
            "of a motion preset (compact-motion, compact-masks-motion) or drop --motion"
        )
    if model_cfg.masks and cfg.segmenter is None:
        raise InferError(
            f"{ckpt} is a mask forecaster: it reads the class masks of the input frames, so give "
            "the segmenter that makes them with --segmenter SEG.pt (`train --task segment`)"
        )
    tracks_read = reads_tracks(cfg.tracks is not None, model_cfg)
    segmenter, seg_cfg, seg_attrs = _segmenter_attrs(cfg.segmenter, device, tracks_read, cfg.mirror)
    problems = fit_problems(ckpt, model_cfg, cfg, seg_cfg, manifest)
    if problems:
        raise InferError("; ".join(problems))
    tracks = _load_tracks(cfg, ckpt, model_cfg, seg_cfg, device)
    seg_attrs["hit_rule"] = hit_rule(model_cfg, tracks, model)
    return model, model_cfg, payload, segmenter, seg_attrs, tracks


def _load_tracks(cfg: PredictConfig, ckpt: Path, model_cfg: Any, seg_cfg: Any, device):
    """The track forecaster of `cfg.tracks` in eval mode (None without one), checked to move the
    objects of this frame model's inputs and outputs and of this segmenter's classes."""
    if cfg.tracks is None:
        return None
    if model_cfg.masks:
        raise InferError(
            f"--tracks moves objects in predicted frames, and {ckpt} predicts masks; give a frame "
            "model as --ckpt, or predict with the track forecaster itself (--ckpt TRACKS.pt)"
        )
    try:
        tracks, tracks_cfg, _ = load_model(Path(cfg.tracks), device, task="tracks")
    except RunError as exc:
        raise InferError(f"--tracks: {exc}") from None
    mine = (int(tracks_cfg.frames_in), int(tracks_cfg.frames_out))
    theirs = (int(model_cfg.frames_in), int(model_cfg.frames_out))
    problems = []
    if mine != theirs:
        problems.append(
            f"--tracks {cfg.tracks} reads {mine[0]} frames and forecasts {mine[1]}, the frame "
            f"model {ckpt} {theirs[0]} and {theirs[1]}; train both for the same frames"
        )
    if int(tracks_cfg.num_classes) != int(seg_cfg.num_classes):
        problems.append(
            f"--tracks {cfg.tracks} knows {tracks_cfg.num_classes} classes, the segmenter "
            f"{cfg.segmenter} {seg_cfg.num_classes}"
        )
    if problems:
        raise InferError("; ".join(problems))
    return tracks.eval()


def log_models(cfg: PredictConfig, checkpoint: str, masks: bool) -> None:
    """Say which checkpoints this run predicts with (rank 0)."""
    log.info("predict: %s %s", "mask forecaster" if masks else "frame model", checkpoint)
    if cfg.segmenter is not None:
        log.info("predict: segmenter %s", cfg.segmenter)
    if cfg.tracks is not None:
        log.info("predict: track forecaster %s moves the objects, makes the masks", cfg.tracks)
