"""The plan of a prediction store: which frames of a split's videos a model reads and predicts
(`frame_plan`), every way a checkpoint cannot run on the split (`fit_problems`), and the
attributes the store records and a resume must match (`store_attrs`). `infer.predict` uses them;
they read configs and the manifest only, no weights."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from convrnn_video.infer.config import PredictConfig
from convrnn_video.ingest.writer import sha256_file
from convrnn_video.runtime.checkpoint import checkpoint_task
from convrnn_video.runtime.version import project_version
from convrnn_video.shards.errors import ShardError
from convrnn_video.shards.manifest import observed_frames, split_geometry, video_frames


def frame_plan(
    manifest: dict[str, Any], split: str, frames_in: int, frames_out: int
) -> dict[str, Any]:
    """The store attributes that say which frames of the videos of `split` the model reads and
    predicts, as image numbers (frame k of a video is image_{k-1}):

    observed_frames   the frames known of a video: as many as a hidden video has (the manifest's
                      hidden split), the same first ones of a labelled video; without a hidden
                      split, all of a labelled video but its last `frames_out` (at least
                      `frames_in`)
    input_frames      the last `frames_in` of them: what the model reads
    first_frame, predicted_frames   the `frames_out` frames after them: what the store holds
    video_frames      frames of a whole video (a labelled split's; None when there is none)
    """
    frames = split_geometry(manifest, split)[0]
    observed = observed_frames(manifest)  # a hidden video's frames
    if observed is None:
        observed = max(frames_in, frames - frames_out)
    if split != "hidden":
        whole = frames
    else:
        try:
            whole = video_frames(manifest)
        except ShardError:  # hidden videos only: how long a whole one is, nobody knows
            whole = None
    return {
        "observed_frames": observed,
        "input_frames": list(range(observed - frames_in, observed)),
        "first_frame": observed,
        "predicted_frames": list(range(observed, observed + frames_out)),
        "video_frames": whole,
    }


def fit_problems(
    ckpt: Path, model_cfg: Any, cfg: PredictConfig, seg_cfg: Any, manifest: dict[str, Any]
) -> list[str]:
    """Every way the checkpoint (and segmenter) cannot run on the split's videos."""
    frames, height, width, channels = split_geometry(manifest, cfg.split)
    frames_in, frames_out = int(model_cfg.frames_in), int(model_cfg.frames_out)
    observed = frame_plan(manifest, cfg.split, frames_in, frames_out)["observed_frames"]
    where = f"split {cfg.split!r} in {cfg.shards}"
    kind = "grayscale" if channels == 1 else "RGB" if channels == 3 else f"{channels}-channel"
    out = []
    if min(observed, frames) < frames_in:
        known = f"{min(observed, frames)} observed" if observed < frames else f"{frames}"
        out.append(
            f"checkpoint {ckpt} expects {frames_in} input frames, but {where} has {known} "
            "frames per video; use the shards the model was trained for, or another checkpoint"
        )
    elif observed > frames:
        out.append(
            f"the videos of {where} have {frames} frames, fewer than the {observed} observed "
            "frames of its hidden videos"
        )
    if not model_cfg.masks and int(model_cfg.image_channels) != channels:
        out.append(
            f"checkpoint {ckpt} takes {model_cfg.image_channels}-channel frames, but {where} "
            f"is {kind} ({channels} channel(s)); use a model trained on videos like these"
        )
    if seg_cfg is not None and int(seg_cfg.in_channels) != channels:
        out.append(
            f"--segmenter {cfg.segmenter} takes {seg_cfg.in_channels}-channel frames, but "
            f"{where} is {kind} ({channels} channel(s))"
        )
    step = int(model_cfg.patch) * int(model_cfg.downsampling)
    if height % step or width % step:
        out.append(
            f"checkpoint {ckpt} needs frame sides divisible by {step} (patch x strides), but "
            f"{where} has {height}x{width} frames"
        )
    if seg_cfg is not None and (height % seg_cfg.stride or width % seg_cfg.stride):
        out.append(
            f"--segmenter {cfg.segmenter} needs frame sides divisible by {seg_cfg.stride}, but "
            f"{where} has {height}x{width} frames"
        )
    return out


def store_attrs(
    cfg: PredictConfig, ckpt: Path, model_cfg: Any, payload: dict, precision: str, plan: dict
) -> dict:
    """The attributes that describe (and, on resume, must match) the store of this run; `plan`
    is the run's `frame_plan`."""
    frames_in, frames_out = int(model_cfg.frames_in), int(model_cfg.frames_out)
    task = checkpoint_task(payload)
    if task in ("masks", "tracks"):
        holds = ["masks"]
    else:
        holds = ["frames", "masks"] if cfg.segmenter is not None else ["frames"]
    if cfg.motion:
        holds = [*holds, "motion"]
    return {
        "holds": holds,
        "task": task,
        "ckpt_sha256": sha256_file(ckpt),
        "ckpt": str(ckpt),
        "split": cfg.split,
        "model_config": model_cfg.to_dict(),
        "frames_in": frames_in,
        "frames_out": frames_out,
        **plan,
        "train_step": int(payload.get("step", 0) or 0),
        "shards": str(cfg.shards),
        "version": project_version(),
        "precision": precision,
        "precision_asked": cfg.precision,
        "relabel_unseen": cfg.relabel_unseen,
        "tracks": cfg.tracks,
        "tracks_sha256": sha256_file(Path(cfg.tracks)) if cfg.tracks is not None else None,
    }
