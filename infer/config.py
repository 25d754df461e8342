"""Typed, torch-free configs of the inference commands; the CLI takes its defaults from here."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

from convrnn_video.infer.errors import InferError
from convrnn_video.shards.format import SPLITS  # every split `predict` writes a store for

# predict: auto (runtime.device.resolve_precision: bf16 where the device computes it natively, else
# fp32), float32, or bfloat16 autocast
PRECISIONS = ("auto", "fp32", "bf16")
FRAME_CHOICES = ("last", "all")  # export-png: image_21 only, or every predicted frame
SUBMIT_DTYPES = ("uint8", "int64")  # submit: dtype of the class-id tensor


def _check(problems: list[str], what: str) -> None:
    """Raise one InferError listing every problem found, or nothing."""
    if problems:
        raise InferError(f"bad {what} settings: " + "; ".join(problems))


@dataclass
class PredictConfig:
    """`predict`: a frame model or mask forecaster checkpoint + one split of shards -> a Zarr
    store of predicted frames and/or masks."""

    shards: str = "data/shards"  # shard folder or URL holding manifest.json (`ingest data`)
    out: str = "preds.zarr"  # Zarr store: a folder or an fsspec URL (memory://, file://, s3://)
    ckpt: str | None = None  # frames or masks checkpoint; None: newest run's best.pt under `runs`
    runs: str = "runs"  # where training runs live (used when ckpt is None)
    # segment checkpoint: with a frame model, also store the predicted frames' masks; a mask
    # forecaster needs it (it segments the input frames)
    segmenter: str | None = None
    relabel_unseen: bool = False  # predicted classes absent from the segmented inputs -> best seen
    # track forecaster checkpoint (`train --task tracks`), with a frame model and a segmenter:
    # the last input frame's objects move as wholes in the predicted frames (sharp, not faded),
    # and the stored masks are the track forecaster's (the ones to submit)
    tracks: str | None = None
    motion: bool = False  # also store each predicted frame's displacement (a motion model's)
    # a track forecaster's input masks from the mean of the segmenter's answers for each frame
    # and for its mirror image (segment.apply.segment_for_tracks): +0.005-0.008 on generated
    # val frame 22, -0.024 on the 6 real samples with a generated-trained segmenter
    mirror: bool = True
    # which split to predict: hidden, or a whole-video one (val, train, unlabeled) whose later
    # frames `evaluate` scores the store against
    split: str = "hidden"
    batch_size: int | None = None  # videos per forward pass; None: auto (predict.auto_batch_size)
    device: str = "auto"  # auto (CUDA when present), cpu, cuda
    workers: int = 0  # loader worker processes
    precision: str = "auto"  # auto (bf16 where the device computes it natively), fp32, bf16
    overwrite: bool = False  # replace a store made from another checkpoint or split
    progress: bool = True  # show a progress bar

    def validate(self) -> PredictConfig:
        problems = []
        if self.split not in SPLITS:
            problems.append(f"split must be one of {', '.join(SPLITS)}, got {self.split!r}")
        if self.batch_size is not None and self.batch_size < 1:
            problems.append(f"batch_size must be >= 1, got {self.batch_size}")
        if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", self.device):
            problems.append(f"device must be auto, cpu, cuda or cuda:N, got {self.device!r}")
        if self.workers < 0:
            problems.append(f"workers must be >= 0, got {self.workers}")
        if self.precision not in PRECISIONS:
            problems.append(
                f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}"
            )
        if self.relabel_unseen and self.segmenter is None:
            problems.append("relabel_unseen needs a segmenter (--segmenter SEG.pt)")
        if self.tracks is not None and self.segmenter is None:
            problems.append("tracks needs a segmenter (--segmenter SEG.pt): it moves the objects "
                            "of the segmented last input frame")  # fmt: skip
        if self.tracks is not None and self.relabel_unseen:
            problems.append("relabel_unseen does nothing with tracks: the track forecaster "
                            "only moves classes found in the input frames")  # fmt: skip
        _check(problems, "predict")
        return self

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ExportConfig:
    """`export-png`: a finished store -> DIR/video_<id>/image_<t>.png."""

    preds: str = "preds.zarr"  # the store written by predict
    out: str = "predictions"  # output folder
    frames: str = "last"  # last: image_21.png only (the course task); all: image_11 ... image_21
    workers: int = 4  # threads encoding PNGs
    masks: bool = False  # also write mask_<t>.png, the predicted masks in the 49-colour palette
    overwrite: bool = False  # replace existing PNG files
    partial: bool = False  # export the done videos of an unfinished store
    progress: bool = True

    def validate(self) -> ExportConfig:
        problems = []
        if self.frames not in FRAME_CHOICES:
            choices = ", ".join(FRAME_CHOICES)
            problems.append(f"frames must be one of {choices}, got {self.frames!r}")
        if self.workers < 1:
            problems.append(f"workers must be >= 1, got {self.workers}")
        _check(problems, "export-png")
        return self


@dataclass
class SubmitConfig:
    """`submit`: a finished store with masks -> the masks of the last predicted frame (frame 22)
    of every video as one tensor (N, H, W), plus <stem>.json describing it."""

    preds: str = "preds.zarr"  # the store written by predict --segmenter
    out: str = "submission.pt"  # torch file; the description goes beside it as <stem>.json
    dtype: str = "uint8"  # uint8 (what the graders read) or int64 class ids
    overwrite: bool = False  # replace an existing submission
    allow_split: bool = False  # submit a store of another split than hidden (a check on val)

    def validate(self) -> SubmitConfig:
        problems = []
        if self.dtype not in SUBMIT_DTYPES:
            choices = ", ".join(SUBMIT_DTYPES)
            problems.append(f"dtype must be one of {choices}, got {self.dtype!r}")
        if self.out.lower().endswith(".json"):
            problems.append(f"out is the tensor file (.pt); its .json goes beside it: {self.out!r}")
        _check(problems, "submit")
        return self


@dataclass
class EvaluateConfig:
    """`evaluate`: a val store + the val shards -> per-frame metrics beside copy-last-frame."""

    preds: str = "preds.zarr"  # a store predicted from the val split
    shards: str = "data/shards"  # the shards holding the ground truth
    out: str = "report.json"  # JSON report (.json); the plot goes beside it as <stem>.png
    segmenter: str | None = None  # for the mask baselines; None: the one the store names
    batch_size: int = 8
    device: str = "auto"  # where the segmenter runs: auto (CUDA when present), cpu, cuda
    progress: bool = True
    overwrite: bool = False  # replace an existing report and plot (else they are refused)

    def validate(self) -> EvaluateConfig:
        problems = []
        if self.batch_size < 1:
            problems.append(f"batch_size must be >= 1, got {self.batch_size}")
        if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", self.device):
            problems.append(f"device must be auto, cpu, cuda or cuda:N, got {self.device!r}")
        if not self.out.lower().endswith(".json"):
            problems.append(
                f"out is the JSON report and must end in .json (the plot goes beside it as "
                f"<stem>.png), got {self.out!r}"
            )
        _check(problems, "evaluate")
        return self


@dataclass
class ShowConfig:
    """`show`: input, true and predicted frames of a few videos as one picture (or a GIF)."""

    videos: list[str] = field(default_factory=list)  # video_<id> names or bare ids
    preds: str = "preds.zarr"
    shards: str = "data/shards"
    out: str = "montage.png"  # a .gif with gif=True
    gif: bool = False  # an animation instead of a still montage
    scale: float = 0.5  # tile size relative to the stored frames' size
    overwrite: bool = False  # replace an existing picture (else it is refused)

    def validate(self) -> ShowConfig:
        problems = []
        if not self.videos:
            problems.append("give at least one video, e.g. --videos video_1000,video_1001")
        if not 0.1 <= self.scale <= 4:
            problems.append(f"scale must be in [0.1, 4], got {self.scale}")
        _check(problems, "show")
        return self


@dataclass
class DemoConfig:
    """`demo`: generate -> ingest -> train a frame model, a segmenter and the track forecaster
    -> predict (frames, their masks, forecast masks) -> export, submit -> evaluate -> show,
    small."""

    out: str = "demo"  # everything goes under this folder
    preset: str = "compact-motion"  # frame model preset to train (the frames task's default)
    train: int = 96  # generated training videos
    val: int = 16  # generated validation videos (evaluated)
    hidden: int = 8  # generated hidden videos (predicted, exported and submitted)
    # Training is budgeted by time, not steps, so the demo takes about as long on any CPU
    # (a compact step costs 0.7 s on 2 AVX-512 BF16 cores and about 3 s on 2 AVX2 ones)
    minutes: float = 3.0  # frame model training budget (the cosine lr decays over it)
    steps: int | None = None  # also stop the frame model after these steps (None: time only)
    batch_size: int = 4  # videos per training step and per prediction batch
    lr: float = 1e-3  # Adam learning rate (the frames task's)
    seg_preset: str = "small"  # segmenter preset (`train --task segment`)
    seg_minutes: float = 2.5  # segmenter training budget (64x96 object-centred windows)
    seg_steps: int | None = None  # also stop the segmenter after these steps
    seg_batch_size: int = 8  # videos per segmenter step (one window from each)
    # the object-track mask forecaster (`train --task tracks`) on train's true masks: what
    # the submission comes from, as in the README's course path
    tracks_minutes: float = 0.5  # at most; its 20 epochs take about 10 s on 96 videos
    tracks_steps: int | None = None  # also stop it after these steps
    seed: int = 0
    overwrite: bool = False  # reuse or replace an existing demo folder

    def validate(self) -> DemoConfig:
        problems = []
        for name in ("train", "val", "hidden", "steps", "batch_size", "seg_steps",
                     "seg_batch_size", "tracks_steps"):  # fmt: skip
            if getattr(self, name) is not None and getattr(self, name) < 1:
                problems.append(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("minutes", "seg_minutes", "tracks_minutes"):
            if getattr(self, name) <= 0:
                problems.append(f"{name} must be > 0, got {getattr(self, name)}")
        if self.lr <= 0:
            problems.append(f"lr must be > 0, got {self.lr}")
        _check(problems, "demo")
        return self


@dataclass
class LabelConfig:
    """`label`: a segmenter + one split of shards -> a label store of pseudo-masks."""

    shards: str = "data/shards"  # shard folder or URL holding manifest.json
    segmenter: str = ""  # segmenter checkpoint (from `train --task segment`)
    split: str = "unlabeled"  # the split to label
    out: str = "labels/unlabeled.zarr"  # the label store (a folder or an fsspec URL)
    batch_size: int = 4  # videos per loader batch (the segmenter runs on their frames)
    device: str = "auto"  # auto (CUDA when present), cpu, cuda
    precision: str = "auto"  # auto (bf16 where the device computes it natively), fp32, bf16
    overwrite: bool = False  # replace a store made by another segmenter or split
    progress: bool = True  # show a progress bar

    def validate(self) -> LabelConfig:
        problems = []
        if not self.segmenter:
            problems.append("--segmenter is required (a checkpoint of `train --task segment`)")
        if self.batch_size < 1:
            problems.append(f"batch_size must be >= 1, got {self.batch_size}")
        if self.precision not in ("auto", "fp32", "bf16"):
            problems.append(f"precision must be auto, fp32 or bf16, got {self.precision!r}")
        if problems:
            raise InferError("bad label settings: " + "; ".join(problems))
        return self
