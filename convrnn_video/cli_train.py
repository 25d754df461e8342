"""The `train` command: a model trained on shards."""

from __future__ import annotations

from pathlib import Path

import typer

from convrnn_video.cli_app import app, user_errors
from convrnn_video.errors import PipelineError

# The stages' config dataclasses are torch-free: the options take their defaults from them.
from convrnn_video.train.config import TrainConfig as _TC
from convrnn_video.train.task_defaults import TASK_DEFAULTS

# --- train ---------------------------------------------------------------------------------


def _per_task(name: str) -> str:
    """A field's task defaults for --help: "frames 4, segment 8, masks 4"."""

    def show(v: object) -> str:
        if isinstance(v, tuple):
            return ",".join(map(str, v))
        return f"{v:g}" if isinstance(v, float) else str(v)

    return ", ".join(f"{task} {show(d[name])}" for task, d in TASK_DEFAULTS.items())


@app.command()
def train(
    ctx: typer.Context,
    shards: str = typer.Option(..., "--shards", help="Shard folder/URL made by `ingest`."),
    out: Path | None = typer.Option(
        None, "--out", help="Run folder (default: a new runs/<timestamp>/)."
    ),
    task: str | None = typer.Option(
        _TC.task,
        help="frames (RGB forecaster) | segment (segmenter) | masks (mask forecaster) | tracks "
        "(object-track mask forecaster) (default: frames, or the --init-from checkpoint's task).",
    ),
    preset: str | None = typer.Option(
        _TC.preset, help=f"Model preset (see `presets`) (task default: {_per_task('preset')})."
    ),
    epochs: int | None = typer.Option(
        _TC.epochs,
        help="Epochs: the run ends after them, or earlier at --max-steps / --time-limit "
        f"(task default: {_per_task('epochs')}).",
    ),
    max_steps: int | None = typer.Option(_TC.max_steps, help="Stop after this many steps."),
    time_limit: float | None = typer.Option(
        _TC.time_limit, help="Minutes for this invocation; then save last.pt and stop (resumable)."
    ),
    samples_per_epoch: int | None = typer.Option(
        _TC.samples_per_epoch,
        help="Videos per epoch per process (default: all train videos / processes).",
    ),
    batch_size: int | None = typer.Option(
        _TC.batch_size,
        help=f"Videos per step per process (task default: {_per_task('batch_size')}).",
    ),
    lr: float | None = typer.Option(
        _TC.lr, help=f"Adam learning rate (task default: {_per_task('lr')})."
    ),
    frames_in: int | None = typer.Option(
        _TC.frames_in,
        help="Context frames (default: the frames of a hidden video in the shards, else 11).",
    ),
    frames_out: int | None = typer.Option(
        _TC.frames_out,
        help="Predicted frames (default: the rest of a whole video in the shards, else 11).",
    ),
    train_splits: str | None = typer.Option(
        None,
        help="Comma-separated splits to train on (task default: "
        f"{_per_task('train_splits')}; masks, tracks with --labels: train,unlabeled).",
    ),
    val_split: str = typer.Option(_TC.val_split, help="Split validated on ('': none)."),
    resume: bool = typer.Option(False, "--resume", help="Continue RUN/last.pt exactly."),
    init_from: str | None = typer.Option(
        None, help="Start from this checkpoint's model and weights (a new run: fine-tuning)."
    ),
    seed: int = typer.Option(_TC.seed, help="Seed of init, data order and sampling."),
    workers: int = typer.Option(
        _TC.workers, help="Loader worker processes per process (tracks: mask readers too)."
    ),
    device: str = typer.Option(_TC.device, help="auto | cpu | cuda."),
    precision: str = typer.Option(
        _TC.precision,
        help="auto: bf16 autocast where the device computes bf16 natively (CUDA, AVX-512 BF16 "
        "CPUs), else fp32 | fp32 | bf16.",
    ),
    compile: bool = typer.Option(False, "--compile", help="torch.compile the model."),
    threads: int | None = typer.Option(
        None, help="CPU threads per process (default: cores / processes on this node)."
    ),
    loss: str = typer.Option(
        _TC.loss, help="frames: mse | mse+l1 | mse+ssim | mse+l1+ssim (terms of the loss)."
    ),
    l1_weight: float = typer.Option(_TC.l1_weight, help="Weight of the loss's L1 term."),
    ssim_weight: float = typer.Option(_TC.ssim_weight, help="Weight of its (1 - SSIM) term."),
    motion_weight: float = typer.Option(
        _TC.motion_weight, help="frames: extra MSE and L1 weight of pixels that change (0: off)."
    ),
    edge_weight: float = typer.Option(
        _TC.edge_weight,
        help="frames: weight of a gradient-difference term (edges lost or moved pay; 0: off).",
    ),
    sharpness_weight: float = typer.Option(
        _TC.sharpness_weight,
        help="frames: weight of a frame-level edge-strength term (fading pays, a wrong place "
        "does not; 0: off).",
    ),
    flow_weight: float = typer.Option(
        _TC.flow_weight,
        help="masks, a preset with motion: weight of the displacement's L1 against the objects' "
        "tracked displacement (0: off).",
    ),
    lr_schedule: str | None = typer.Option(
        _TC.lr_schedule,
        help="plateau (lower the lr when val stalls) | cosine (warm-up, then decay over "
        "--max-steps when given, else over --time-limit or the epochs, whichever runs out "
        f"first) (task default: {_per_task('lr_schedule')}).",
    ),
    warmup_steps: int | None = typer.Option(
        _TC.warmup_steps,
        help=f"cosine: lr warm-up steps (task default: {_per_task('warmup_steps')}).",
    ),
    lr_floor: float = typer.Option(_TC.lr_floor, help="cosine: final lr as a fraction of --lr."),
    grad_clip: float = typer.Option(_TC.grad_clip, help="Max gradient norm (0: off)."),
    early_stop: int | None = typer.Option(
        _TC.early_stop,
        help=f"Patience in validations, 0: off (task default: {_per_task('early_stop')}).",
    ),
    lr_patience: int = typer.Option(_TC.lr_patience, help="ReduceLROnPlateau patience."),
    ss_steps: int | None = typer.Option(
        _TC.ss_steps,
        help="Scheduled sampling: teacher forcing 1 -> 0 over these steps, 0: off (task "
        f"default: {_per_task('ss_steps')}).",
    ),
    frames_per_video: int = typer.Option(
        _TC.frames_per_video, help="segment: frames sampled from each video per step."
    ),
    flip: bool = typer.Option(
        _TC.flip, "--flip/--no-flip", help="segment: random left-right flips."
    ),
    dice_weight: float = typer.Option(
        _TC.dice_weight, help="segment: weight of a soft Dice term beside cross-entropy."
    ),
    crop: tuple[int, int] | None = typer.Option(
        _TC.crop,
        help="segment, masks: random H W training windows (stride multiples); 0 0: whole "
        f"frames (task default: {_per_task('crop')}; whole frames where it does not fit).",
    ),
    crop_object_bias: float = typer.Option(
        _TC.crop_object_bias, help="segment, masks: share of windows centred on an object pixel."
    ),
    object_weight: float = typer.Option(
        _TC.object_weight, help="segment: cross-entropy weight of object pixels (floor 1)."
    ),
    segmenter: str | None = typer.Option(
        _TC.segmenter,
        help="masks, tracks: segmenter checkpoint that makes the validation inputs (default with "
        "--init-from: the one its run used).",
    ),
    labels: str | None = typer.Option(
        _TC.labels,
        help="masks, tracks: label store (`label`) with pseudo-masks of --train-splits without "
        "masks "
        "(default with --init-from: the one its run used).",
    ),
    log_every: int = typer.Option(
        _TC.log_every, help="Steps between metrics.jsonl lines (and log lines off a terminal)."
    ),
    val_every: int | None = typer.Option(
        None,
        help="Validate every N steps (default: at each epoch end; segment: every 2000; tracks: "
        "every 10000).",
    ),
    val_videos: int | None = typer.Option(
        None,
        help="Validate on the first N videos of --val-split, 0 for all (default: all; frames, "
        "segment: 100, as a CPU takes minutes to score the course's 1,000).",
    ),
    val_batch_size: int | None = typer.Option(
        None, help="Videos per validation batch (default: --batch-size; tracks: 16)."
    ),
    ckpt_every: int = typer.Option(_TC.ckpt_every, help="Steps between last.pt saves."),
    snapshot_at: str | None = typer.Option(
        None,
        "--snapshot-at",
        help="Minutes on the run's clock, comma-separated (10,20,40): keep RUN/at-<m>min.pt as "
        "each passes, to score one run along the way.",
    ),
    progress: bool = typer.Option(
        _TC.progress,
        "--progress/--no-progress",
        help="A progress bar on a terminal (off one, or without it: a log line every "
        "--log-every steps, at most every 30 s).",
    ),
) -> None:
    """Train a model on shards; Ctrl-C saves last.pt, `--resume` continues exactly.

    Each task's defaults are its measured recipe (docs/benchmarks.md)."""
    with user_errors():
        from convrnn_video.runtime.device import tune_process
        from convrnn_video.train.loop import run_training

        tune_process(threads)  # threads per process, allocator: the command's, not the library's
        cfg, explicit = _train_config(ctx)
        run_training(cfg, explicit=explicit)


def _train_config(ctx: typer.Context) -> tuple[_TC, set[str]]:
    """The train command's options as a TrainConfig, and the names of those typed on the
    command line (--resume keeps the saved run's values for the rest)."""
    params = dict(ctx.params)
    # compared by name: typer may vendor its own click
    explicit = {
        name
        for name in params
        if getattr(ctx.get_parameter_source(name), "name", "") == "COMMANDLINE"
    }
    train_splits, out = params["train_splits"], params["out"]
    if train_splits is not None:
        params["train_splits"] = tuple(s.strip() for s in train_splits.split(",") if s.strip())
    params["out"] = str(out) if out is not None else None
    params["snapshot_minutes"] = _minutes(params.pop("snapshot_at"))
    if "snapshot_at" in explicit:
        explicit = (explicit - {"snapshot_at"}) | {"snapshot_minutes"}
    return _TC(**params), explicit


def _minutes(text: str | None) -> tuple[float, ...]:
    """--snapshot-at "10,20,40" -> (10.0, 20.0, 40.0)."""
    try:
        return tuple(float(x) for x in (text or "").split(",") if x.strip())
    except ValueError:
        raise PipelineError(f"--snapshot-at takes minutes, comma-separated; got {text!r}") from None
