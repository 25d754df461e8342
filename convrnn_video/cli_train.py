"""Commands that train or label: `train`, `fit-contacts`, `label`."""

from __future__ import annotations

from pathlib import Path

import typer

from convrnn_video.cli_app import SHARDS, app, say, user_errors

# The stages' config dataclasses are torch-free: the options take their defaults from them.
from convrnn_video.errors import PipelineError
from convrnn_video.infer.config import (
    LabelConfig,
)
from convrnn_video.train.config import TASK_DEFAULTS, ContactsConfig
from convrnn_video.train.config import TrainConfig as _TC

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
    workers: int = typer.Option(_TC.workers, help="Loader worker processes per process."),
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
        None, help="Validate every N steps (default: at each epoch end; tracks: every 10000)."
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


# --- fit-contacts --------------------------------------------------------------------------


@app.command("fit-contacts")
def fit_contacts(
    model: str = typer.Option(..., "--model", help="Track forecaster checkpoint (.pt)."),
    shards: str = typer.Option(SHARDS, "--shards", help="Shard folder/URL made by `ingest`."),
    out: str = typer.Option(..., "--out", help="The new checkpoint (never overwritten)."),
    split: str = typer.Option(ContactsConfig.split, help="Labelled split to fit on."),
    check_split: str = typer.Option(
        ContactsConfig.check_split, help="Labelled split scored with and without ('' for none)."
    ),
    videos: int = typer.Option(
        ContactsConfig.videos, help="The first N videos of each split (0: all)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the report as one JSON object."),
) -> None:
    """Fit the hits between a track forecaster's objects on labelled videos (about a minute).

    Writes the forecaster with its contact constants as a new checkpoint; predict, submit and
    evaluate with it play the hits. The report scores frame 22 with and without them on the
    check split: use the new checkpoint only where they help.
    """
    import json

    from convrnn_video.runtime.errors import RunError
    from convrnn_video.shards.errors import ShardError
    from convrnn_video.train.errors import TrainError

    with user_errors(TrainError, RunError, ShardError, rerun="rerun the same command"):
        from convrnn_video.train.contacts import run_fit_contacts

        cfg = ContactsConfig(model=model, shards=shards, out=out, split=split,
                             check_split=check_split or None, videos=videos or None)  # fmt: skip
        r = run_fit_contacts(cfg)
    if as_json:
        typer.echo(json.dumps(r))
        return
    for part in ("fit", "check"):
        if part in r:
            p = r[part]
            say(f"{part} ({p['split']}, {p['videos']} videos): frame 22 {p['frame22_without']:.4f} "
                f"without contacts, {p['frame22_with']:.4f} with")  # fmt: skip
    say(f"wrote {r['out']} in {r['seconds']:.0f} s")
    if "check" in r and r["check"]["frame22_with"] <= r["check"]["frame22_without"]:
        say(f"the contacts do not help on {r['check']['split']}: keep predicting with {model}")


# --- label ---------------------------------------------------------------------------------


@app.command()
def label(
    segmenter: str = typer.Option(..., "--segmenter", help="Segmenter checkpoint (.pt)."),
    shards: str = typer.Option(SHARDS, "--shards", help="Shard folder/URL made by `ingest`."),
    split: str = typer.Option(LabelConfig.split, help="The split to label."),
    out: str | None = typer.Option(
        None, "--out", help="Label store (default: labels/<split>.zarr)."
    ),
    batch_size: int = typer.Option(LabelConfig.batch_size, help="Videos per batch."),
    device: str = typer.Option(LabelConfig.device, help="auto | cpu | cuda."),
    precision: str = typer.Option(LabelConfig.precision, help="auto | fp32 | bf16."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace another run's store."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="tqdm bar."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as one JSON object."),
) -> None:
    """Segment every frame of a split into a resumable label store (pseudo-masks for training).

    The store feeds `train --task tracks (or masks) --labels STORE`; a rerun continues an
    interrupted one.
    """
    import json

    from convrnn_video.infer.errors import InferError
    from convrnn_video.shards.errors import ShardError

    with user_errors(InferError, ShardError):
        from convrnn_video.infer.labels import run_label
        from convrnn_video.runtime.device import tune_process

        tune_process()  # threads, allocator: the command's settings (run_label changes none)
        cfg = LabelConfig(
            shards=shards, segmenter=segmenter, split=split, out=out or f"labels/{split}.zarr",
            batch_size=batch_size, device=device, precision=precision, overwrite=overwrite,
            progress=progress,
        )  # fmt: skip
        s = run_label(cfg)
    if as_json:
        typer.echo(json.dumps(s))
        return
    before = f" ({s['already_done']} done before)" if s["already_done"] else ""
    speed = f", {s['frames_per_s']} frames/s in {s['precision']}" if s["labelled"] else ""
    say(
        f"labelled {s['labelled']} of {s['videos']} {s['split']} videos{before} "
        f"in {s['seconds']:.1f} s{speed}"
    )
    if s["complete"]:
        say(f"wrote {s['store']}: train --task tracks (or masks) --labels {s['store']} reads it")
    elif s["complete"] is False:  # None: another process of a distributed run
        say(f"{s['store']} is not complete: rerun the same command to finish it")
