"""TrainConfig: every option of `python cli.py train`, with defaults, checked in one place.

Torch-free, so the CLI takes its option defaults from here without importing torch.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from convrnn_video.train.errors import TrainError
from convrnn_video.train.schedule import SCHEDULES
from convrnn_video.train.task_defaults import MASK_TASKS, TASK_DEFAULTS, TASKS, preset_names

LOSSES = ("mse", "mse+l1", "mse+ssim", "mse+l1+ssim")
DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("auto", "fp32", "bf16")


@dataclass
class TrainConfig:
    shards: str = ""  # shard folder or URL holding manifest.json (from `ingest`)
    out: str | None = None  # run folder; None: a new runs/<timestamp>/
    runs_root: str = "runs"  # where new timestamped runs go
    # frames (RGB forecaster) | segment (segmenter) | masks (mask forecaster) | tracks (object
    # track forecaster); None: frames, or
    # the task of the --init-from checkpoint (`train.init_from.settle_init_from`)
    task: str | None = None
    preset: str | None = None  # model preset of the task (`presets`); None: the task's default
    # the budget without --max-steps / --time-limit (cosine decays over it); None: the task's
    epochs: int | None = None
    max_steps: int | None = None  # stop after this many optimizer steps in total
    time_limit: float | None = None  # minutes; then stop like SIGTERM (save last.pt, resumable)
    samples_per_epoch: int | None = None  # videos per epoch PER PROCESS; None: all / processes
    # Fields below that default to None take the task's value (TASK_DEFAULTS) in `validate`.
    batch_size: int | None = None  # videos per optimizer step per process
    lr: float | None = None  # Adam learning rate
    weight_decay: float = 0.0  # Adam weight decay
    # None: from the shards (a hidden video's frames are the input, the rest of a whole video
    # the output: 11 -> 11 for the course), else the --init-from model's, else 11
    frames_in: int | None = None  # context frames given to the model
    frames_out: int | None = None  # frames the model predicts
    train_splits: tuple[str, ...] | None = None  # splits read for training; None: task's
    val_split: str = "val"  # split scored at each validation; "" for none (warned if absent)
    init_from: str | None = None  # start from this checkpoint's model and weights (fine-tuning)
    resume: bool = False  # continue RUN/last.pt exactly (step, lr, best score, data order)
    seed: int = 0  # seeds the model init, the data order and scheduled sampling
    # loader worker processes per training process (tracks: also the processes that read the
    # training videos' masks before the first step, train/tasks/track_table.py)
    workers: int = 0
    device: str = "auto"  # auto (cuda when present) | cpu | cuda
    precision: str = "auto"  # auto (bf16 where the device computes bf16 natively) | fp32 | bf16
    compile: bool = False  # torch.compile the model
    threads: int | None = None  # torch CPU threads per process; None: cores / local processes
    # frames: mse | mse+l1 | mse+ssim | mse+l1+ssim; the default measured best (train_quality):
    # the SSIM term keeps moving objects sharp where MSE alone blurs them into ghosts
    loss: str = "mse+l1+ssim"
    l1_weight: float = 2.0  # weight of the L1 term when the loss has one (2: the measured run)
    ssim_weight: float = 1.0  # weight of the (1 - SSIM) term when the loss has one
    # frames: pixels that change weigh more in the MSE and L1 terms: 1 + motion_weight x the
    # channel-mean |true frame k - true frame k-1| (frame 0: the last input); 0: plain means
    motion_weight: float = 0.0
    # frames: weight of the gradient-difference term (`edge_difference`: faded or blurred edges
    # pay); 0: off
    edge_weight: float = 0.0
    # frames: weight of the frame-level sharpness term (`sharpness_difference`: a frame that
    # lost edge strength as a whole pays, wherever its objects went); 0: off
    sharpness_weight: float = 0.0
    # masks, a model with a motion head: weight of the L1 (grid cells) between its displacement
    # and the objects' tracked displacement (centroid of each class in the last input mask
    # minus in the target mask) on object pixels; 0: the head learns from the loss alone
    flow_weight: float = 0.1
    grad_clip: float = 1.0  # max gradient norm (0 disables clipping)
    # plateau (lower on val plateaus) | cosine (over --max-steps, --time-limit, else the epochs)
    lr_schedule: str | None = None
    warmup_steps: int | None = None  # cosine: steps of linear lr warm-up
    lr_floor: float = 0.05  # cosine: the final lr, as a fraction of --lr
    lr_factor: float = 0.5  # ReduceLROnPlateau factor on val loss
    lr_patience: int = 4  # validations without improvement before the lr drops
    early_stop: int | None = None  # validations without improvement before stopping (0: never)
    # segment: the defaults below are the recipe of benchmarks/segment_quality.py (Jaccard
    # 0.95 after 24 training minutes of `small` on 2 cores): many small steps on
    # object-centred windows beat few steps on whole frames, which are mostly floor.
    frames_per_video: int = 1  # segment: frames sampled from each video per step
    flip: bool = True  # segment: flip sampled frames left-right with probability 1/2
    dice_weight: float = 0.0  # segment: weight of a soft Dice term beside cross-entropy
    # segment, masks: train on random (h, w) windows; (0, 0): whole frames. The task's default
    # becomes whole frames on frames it does not fit (a --crop given is checked strictly).
    crop: tuple[int, int] | None = None
    crop_object_bias: float = 0.7  # segment: share of windows centred on an object pixel
    object_weight: float = 3.0  # segment: cross-entropy weight of object pixels (floor: 1)
    segmenter: str | None = None  # masks: the segmenter checkpoint that makes the val inputs
    labels: str | None = None  # masks: label store (`label`) of the splits without masks
    ss_steps: int | None = None  # scheduled sampling: teacher prob 1 -> 0 over these steps
    log_every: int = 20  # steps between train lines in metrics.jsonl (and the log off a terminal)
    val_every: int | None = None  # validate every N steps; None: the task's, else each epoch end
    # validate on the first N videos of --val-split (the last batch whole); 0: all; None: the
    # task's (frames, segment: 100; task_defaults.py says why), else all
    val_videos: int | None = None
    val_batch_size: int | None = None  # None: batch_size
    ckpt_every: int = 200  # steps between last.pt saves (also saved at each epoch end)
    # also keep RUN/at-<m>min.pt when the run's clock passes each of these minutes: one run
    # scored along the way (what more training buys) without a run per budget
    snapshot_minutes: tuple[float, ...] = ()
    progress: bool = True  # tqdm progress bar on rank 0
    extra: dict[str, Any] = field(default_factory=dict)  # free-form notes saved with the run

    def validate(self) -> TrainConfig:
        """Fill the defaults left None (the task's recipe), check every field at once; raise
        one TrainError listing all problems."""
        if self.task is None:
            self.task = "frames"
        if self.frames_in is None:
            self.frames_in = 11
        if self.frames_out is None:
            self.frames_out = 11
        if self.task in TASKS:
            self._fill_task_defaults()
        problems = [
            *self._task_problems(),
            *self._choice_problems(),
            *self._number_problems(),
            *self._window_problems(),
        ]
        if problems:
            raise TrainError("invalid training options:\n  - " + "\n  - ".join(problems))
        return self

    def _task_problems(self) -> list[str]:
        """The task, its preset and inputs, the shards."""
        problems = []
        if self.task not in TASKS:
            problems.append(f"--task must be one of {', '.join(TASKS)}, got {self.task!r}")
        else:
            names = preset_names(self.task)
            if self.preset not in names and not self.init_from:  # init: the checkpoint's model
                problems.append(
                    f"--preset must be one of {', '.join(names)} for --task {self.task}, "
                    f"got {self.preset!r}"
                )
        if self.task in MASK_TASKS and self.val_split and not self.segmenter:
            problems.append(
                f"--task {self.task} validates on the segmenter's masks of the input frames: pass "
                "--segmenter SEG.pt (from `train --task segment`), or --val-split ''"
            )
        if not self.shards:
            problems.append("--shards is required (a folder made by `python cli.py ingest`)")
        return problems

    def _choice_problems(self) -> list[str]:
        """Options naming one of a few choices (and the cosine lr floor)."""
        problems = []
        if self.precision not in PRECISIONS:
            problems.append(
                f"--precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}"
            )
        if self.lr_schedule not in SCHEDULES:
            problems.append(
                f"--lr-schedule must be one of {', '.join(SCHEDULES)}, got {self.lr_schedule!r}"
            )
        if not 0 <= self.lr_floor <= 1:
            problems.append(f"--lr-floor must be in [0, 1], got {self.lr_floor}")
        if self.loss not in LOSSES:
            problems.append(f"--loss must be one of {', '.join(LOSSES)}, got {self.loss!r}")
        if self.device not in DEVICES:
            problems.append(f"--device must be one of {', '.join(DEVICES)}, got {self.device!r}")
        return problems

    def _number_problems(self) -> list[str]:
        """Counts, minutes, rates and weights in their ranges."""
        problems = []
        positive = ("epochs", "batch_size", "frames_in", "frames_out", "log_every", "ckpt_every",
                    "frames_per_video")  # fmt: skip
        optional = ("max_steps", "samples_per_epoch", "val_every", "val_batch_size", "threads")
        for name in (*positive, *optional):
            value = getattr(self, name)
            if value is not None and value < 1:
                problems.append(f"--{name.replace('_', '-')} must be >= 1, got {value}")
        if any(not m > 0 for m in self.snapshot_minutes):
            problems.append(f"--snapshot-at minutes must be > 0, got {self.snapshot_minutes}")
        if self.time_limit is not None and self.time_limit <= 0:
            problems.append(f"--time-limit must be > 0 minutes, got {self.time_limit}")
        if self.lr is not None and self.lr <= 0:
            problems.append(f"--lr must be > 0, got {self.lr}")
        if not 0 < self.lr_factor < 1:
            problems.append(f"lr_factor must be in (0, 1), got {self.lr_factor}")
        for name in ("workers", "lr_patience", "early_stop", "ss_steps", "grad_clip", "l1_weight",
                     "val_videos",
                     "warmup_steps", "ssim_weight", "dice_weight", "motion_weight", "flow_weight",
                     "edge_weight", "sharpness_weight"):  # fmt: skip
            if getattr(self, name) is not None and getattr(self, name) < 0:
                problems.append(f"{name} must be >= 0, got {getattr(self, name)}")
        return problems

    def _window_problems(self) -> list[str]:
        """The training windows (--crop) and the splits trained on."""
        problems = []
        if self.crop is not None and (
            len(self.crop) != 2 or (min(self.crop) < 1 and tuple(self.crop) != (0, 0))
        ):
            problems.append(
                f"--crop must be two sizes >= 1 (height width), or 0 0 for whole frames, "
                f"got {self.crop}"
            )
        if not 0 <= self.crop_object_bias <= 1:
            problems.append(f"--crop-object-bias must be in [0, 1], got {self.crop_object_bias}")
        if self.object_weight <= 0:
            problems.append(f"--object-weight must be > 0, got {self.object_weight}")
        if self.train_splits is not None and (
            not self.train_splits or any(not s for s in self.train_splits)
        ):
            problems.append(f"--train-splits must name at least one split, got {self.train_splits}")
        return problems

    def _fill_task_defaults(self) -> None:
        """Give every field left None the task's value (TASK_DEFAULTS); remember which."""
        filled = set()
        for name, value in TASK_DEFAULTS[self.task].items():
            if getattr(self, name) is None:
                setattr(self, name, tuple(value) if isinstance(value, tuple) else value)
                filled.add(name)
        if "train_splits" in filled and self.task in MASK_TASKS and self.labels:
            self.train_splits = ("train", "unlabeled")
        self._from_task = frozenset(filled)

    def from_task_default(self, name: str) -> bool:
        """Did `validate` give field `name` its task's default (it was left None)?"""
        return name in getattr(self, "_from_task", ())

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict (tuples become lists)."""
        d = dataclasses.asdict(self)
        if self.train_splits is not None:
            d["train_splits"] = list(self.train_splits)
        if self.crop is not None:
            d["crop"] = list(self.crop)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        """Inverse of `to_dict`; unknown keys (from other versions) are ignored."""
        names = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: v for k, v in d.items() if k in names}
        kwargs.setdefault("task", "frames")  # runs saved before tasks existed
        if kwargs.get("train_splits") is not None:
            kwargs["train_splits"] = tuple(kwargs["train_splits"])
        if kwargs.get("crop") is not None:
            kwargs["crop"] = tuple(kwargs["crop"])
        return cls(**kwargs)


# Options that may change when a run is resumed; the others must match the saved run. The
# data options may name new paths but not other data (train/identity.py checks the contents).
RESUME_OVERRIDABLE = frozenset(
    {
        "out", "runs_root", "resume", "epochs", "max_steps", "time_limit", "workers", "device",
        "precision", "compile", "threads", "progress", "log_every", "val_every", "val_batch_size",
        "val_videos", "ckpt_every", "snapshot_minutes", "early_stop", "extra", "shards",
        "segmenter", "labels",
    }
)  # fmt: skip


def merge_for_resume(
    saved: dict[str, Any], given: TrainConfig, explicit: set[str] | None = None
) -> TrainConfig:
    """The config of a resumed run: the saved one, with the options the user gave explicitly.

    `explicit` names the options set on the command line (None: every field of `given`).
    Changing an option that would break an exact continuation (preset, frames, batch size,
    lr, seed...) is a TrainError naming it."""
    base = TrainConfig.from_dict(saved)
    if "val_videos" not in saved:  # saved before --val-videos: it validated on every video
        base.val_videos = 0
    if explicit is None:
        explicit = {f.name for f in dataclasses.fields(TrainConfig)}
    changes, refused = {}, []
    for name in sorted(explicit):
        new, old = getattr(given, name), getattr(base, name)
        if new == old:
            continue
        if name in RESUME_OVERRIDABLE:
            changes[name] = new
        else:
            flag = "--" + name.replace("_", "-")
            refused.append(f"{flag} {new!r} (the run was started with {old!r})")
    if refused:
        raise TrainError(
            "cannot resume with different settings: "
            + "; ".join(refused)
            + ". Resume with the original options, or start a new run with another --out."
        )
    changes["resume"] = True
    return dataclasses.replace(base, **changes).validate()
