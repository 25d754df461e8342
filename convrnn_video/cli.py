"""Command line of the video-prediction pipeline: `python cli.py --help`.

Each command only parses its arguments and calls one function of its stage. Stage modules are
imported inside the commands so that `--help` stays fast and does not import torch.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import typer
from typer.core import TyperGroup

# The stages' config dataclasses are torch-free: the options take their defaults from them.
from convrnn_video.convrnn.config import ModelConfig
from convrnn_video.errors import PipelineError
from convrnn_video.infer.config import (
    DemoConfig,
    EvaluateConfig,
    ExportConfig,
    LabelConfig,
    PredictConfig,
    ShowConfig,
    SubmitConfig,
)
from convrnn_video.ingest.config import LAYOUT_HELP, IngestConfig
from convrnn_video.ingest.synth.config import SynthConfig
from convrnn_video.train.config import TASK_DEFAULTS
from convrnn_video.train.config import TrainConfig as _TC


def _no_type_shown(params: list) -> list:
    """Give the flags among `params` (options that take no value) an empty metavar, so help
    shows no type after them; returns `params`."""
    for param in params:
        if param is not None and getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""
    return params


class _Group(TyperGroup):
    """Typer's group, but flags show no `<bool>` in help: typer 0.29 prints a type after every
    option, values or not (`--verbose -v <bool>`, `--help <bool>`)."""

    def get_params(self, ctx: typer.Context) -> list:
        return _no_type_shown(super().get_params(ctx))

    def get_command(self, ctx: typer.Context, cmd_name: str):  # -> the command, or None
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            _no_type_shown([*command.params, command.get_help_option(ctx)])
        return command


app = typer.Typer(
    cls=_Group,
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="ConvLSTM/ConvGRU video prediction. Frames: ingest -> train -> predict -> export-png. "
    "The course's masks: ingest -> train --task segment -> label -> train --task tracks -> "
    "predict + evaluate (val) -> predict (hidden) -> submit. README.md, 'From data/ to "
    "submission.pt'.",
)


SHARDS = str(IngestConfig().shards_dir)  # where `ingest` writes by default: every reader looks
LOGGER = "convrnn_video"  # our loggers' root: every stage is a subpackage (convrnn_video.train)


class _LogHandler(logging.Handler):
    """Messages to the current stderr, one line each, written above any progress bar."""

    def emit(self, record: logging.LogRecord) -> None:
        from tqdm import tqdm

        try:
            tqdm.write(self.format(record), file=sys.stderr)
        except Exception:  # logging must never break a command
            self.handleError(record)


def setup_logging(level: int) -> None:
    """Every command logs the same way: our packages at `level`, other libraries' warnings."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, _LogHandler)]:
        root.removeHandler(handler)  # a second app() call in one process (tests)
    handler = _LogHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    if int(os.environ.get("RANK", "0") or 0) > 0 and level > logging.DEBUG:
        level = logging.WARNING  # torchrun's other processes: rank 0 alone tells the story
    logging.getLogger(LOGGER).setLevel(level)


@app.callback()
def options(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Also print debug messages."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print only warnings and errors."),
) -> None:
    """Options of every command (give them before the command: `--quiet ingest ...`)."""
    if verbose and quiet:
        typer.echo("error: --verbose and --quiet exclude each other", err=True)
        raise typer.Exit(2)
    setup_logging(logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO)


def say(message: str) -> None:
    """A command's result or table on stdout, unless --quiet (which prints only warnings,
    errors and what --json asks for)."""
    if logging.getLogger(LOGGER).isEnabledFor(logging.INFO):
        typer.echo(message)


@contextlib.contextmanager
def user_errors(
    *error_types: type[BaseException], rerun: str = "rerun the same command to resume"
) -> Iterator[None]:
    """Turn a stage's own error types (user mistakes, bad input) into one line and exit 1;
    Ctrl-C into one line that says what a rerun does (`rerun`)."""
    try:
        yield
    except (PipelineError, *error_types) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    except OSError as exc:  # an unreadable or unwritable path the user gave
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        typer.echo(f"interrupted: nothing half-written was published; {rerun}", err=True)
        raise typer.Exit(130) from None


# --- synth ---------------------------------------------------------------------------------


@app.command()
def synth(
    out: Path = typer.Argument(..., help="DATA_ROOT to create: train/ val/ unlabeled/ hidden/."),
    train: int = typer.Option(SynthConfig.train, help="Videos in train/ (ids from 0)."),
    val: int = typer.Option(SynthConfig.val, help="Videos in val/ (ids from 1000)."),
    unlabeled: int = typer.Option(SynthConfig.unlabeled, help="Videos in unlabeled/ (from 2000)."),
    hidden: int = typer.Option(SynthConfig.hidden, help="Videos in hidden/ (from 15000)."),
    full: bool = typer.Option(False, "--full", help="The real sizes: 1000/1000/13000/2000."),
    seed: int = typer.Option(SynthConfig.seed, help="Each video's RNG is (seed, video id)."),
    workers: int = typer.Option(SynthConfig.workers, help="Processes (files do not depend on it)."),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace the splits of a non-empty OUT."
    ),
) -> None:
    """Generate CLEVRER-like videos in the real dataset layout (resumable: rerun to complete)."""
    from convrnn_video.ingest.synth import SynthError, generate
    from convrnn_video.ingest.synth.config import FULL_COUNTS

    counts = (
        dict(FULL_COUNTS)
        if full
        else dict(train=train, val=val, unlabeled=unlabeled, hidden=hidden)
    )
    cfg = SynthConfig(out=out, seed=seed, workers=workers, overwrite=overwrite, **counts)
    with user_errors(SynthError):
        result = generate(cfg)
    say(
        f"{out}: "
        + ", ".join(f"{k} {result[k]}" for k in counts)
        + f" videos ({result['written']} written, {result['skipped']} already there)"
    )


# --- ingest --------------------------------------------------------------------------------


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


@app.command()
def ingest(
    data_root: Path = typer.Argument(
        IngestConfig.data_root, help="DATA_ROOT holding train/ val/ unlabeled/ hidden/."
    ),
    out: Path | None = typer.Option(
        None, "--out", help="Folder for the tars + manifest.", show_default="DATA_ROOT/shards"
    ),
    workers: int = typer.Option(IngestConfig.workers, help="Processes reading and checking PNGs."),
    videos_per_shard: int = typer.Option(
        IngestConfig.videos_per_shard, help="Videos per tar (several shards per split)."
    ),
    skip_bad: bool = typer.Option(
        IngestConfig.skip_bad, "--skip-bad", help="Leave bad videos out (listed), don't fail."
    ),
    overwrite: bool = typer.Option(
        IngestConfig.overwrite, "--overwrite", help="Replace an output that has a manifest."
    ),
    layout: str = typer.Option(IngestConfig.layout, help=LAYOUT_HELP),
) -> None:
    """Check every PNG video and pack them into WebDataset shards + manifest.json (resumable)."""
    from convrnn_video.ingest.errors import IngestError
    from convrnn_video.ingest.pack import run_ingest

    cfg = IngestConfig(
        data_root=data_root,
        out=out,
        workers=workers,
        videos_per_shard=videos_per_shard,
        skip_bad=skip_bad,
        overwrite=overwrite,
        layout=layout,
    )
    with user_errors(IngestError):
        manifest = run_ingest(cfg)
    for split, entry in manifest["splits"].items():
        size = _size(sum(s["bytes"] for s in entry["shards"]))
        shards = len(entry["shards"])
        frame = f"{entry['frames']} frames {entry['height']}x{entry['width']}x{entry['channels']}"
        say(f"{split:<10} {entry['videos']:>6} videos  {frame:<20} {shards:>4} shards  {size}")
    if manifest["ignored"]:
        ignored = manifest["ignored"]
        shown = ", ".join(ignored[:8]) + (" ..." if len(ignored) > 8 else "")
        say(f"ignored {len(ignored)} stray file(s): {shown}")
    for entry in manifest["skipped"]:
        typer.echo(f"skipped {entry['split']}/{entry['video']}: {entry['reason']}", err=True)
    say(f"wrote {cfg.shards_dir / 'manifest.json'}")


# --- shards-info ---------------------------------------------------------------------------


@app.command("shards-info")
def shards_info(
    shards: str = typer.Argument(
        SHARDS, help="Shard folder or fsspec URL (s3://..., memory://...)."
    ),
    verify: bool = typer.Option(
        False, "--verify", help="Recompute every checksum and decode every sample."
    ),
    labels: list[str] = typer.Option(
        [], "--labels", help="With --verify: also check these label stores (from `label`)."
    ),
) -> None:
    """Per-split counts and sizes from the manifest; --verify checks every shard and sample."""
    from convrnn_video.infer.errors import InferError
    from convrnn_video.shards.errors import ShardError
    from convrnn_video.shards.info import summarize
    from convrnn_video.shards.info import verify as verify_shards

    with user_errors(ShardError, InferError):
        info = summarize(shards)
        say(f"shards: {shards}  (ingested from {info['source']})")
        head = ("split", "videos", "frames", "HxWxC", "masks", "shards", "size")
        say("{:<10} {:>7} {:>6} {:>11} {:>5} {:>6} {:>9}".format(*head))
        for split, e in info["splits"].items():
            masks = "yes" if e["masks"] else "no"
            frame = f"{e['height']}x{e['width']}x{e['channels']}"
            say(
                f"{split:<10} {e['videos']:>7} {e['frames']:>6} {frame:>11} {masks:>5} "
                f"{e['shards']:>6} {_size(e['bytes']):>9}"
            )
        say(
            f"skipped at ingest: {len(info['skipped'])} video(s); "
            f"ignored: {len(info['ignored'])} stray file(s)"
        )
        if verify:
            report = verify_shards(shards, progress=True)
            for problem in report["problems"]:
                typer.echo(f"FAILED: {problem}", err=True)
            if not report["ok"]:
                typer.echo(
                    f"error: {len(report['problems'])} problem(s) in {report['shards']} "
                    "shards; re-ingest (`python cli.py ingest ... --overwrite`)",
                    err=True,
                )
                raise typer.Exit(1)
            say(f"verified {report['shards']} shards, {report['samples']} samples: ok")
            if labels:
                from convrnn_video.infer.labels import verify_labels

                problems = [p for store in labels for p in verify_labels(store, shards)]
                for problem in problems:
                    typer.echo(f"FAILED: {problem}", err=True)
                if problems:
                    typer.echo(f"error: {len(problems)} problem(s) in the label stores; rerun "
                               "`python cli.py label` (with --overwrite if it was made by "
                               "another segmenter)", err=True)  # fmt: skip
                    raise typer.Exit(1)
                say(f"verified {len(labels)} label store(s): ok")


# --- presets -------------------------------------------------------------------------------


@app.command()
def presets(
    as_json: bool = typer.Option(False, "--json", help="Print a JSON list of objects."),
    frames_in: int = typer.Option(
        ModelConfig.frames_in, help="Observed frames per video for the FLOP count."
    ),
    frames_out: int = typer.Option(
        ModelConfig.frames_out, help="Predicted frames per video for the FLOP count."
    ),
    segmenter: bool = typer.Option(
        False, "--segmenter", help="Only the segmenter presets (with --json: their rows)."
    ),
) -> None:
    """List the model presets (forecasters, then segmenters) with parameters and GFLOP.

    Forecasters: cell, recurrent grid, GFLOP per video; segmenters: GFLOP per frame, stride, head.
    """
    import json

    with user_errors(ValueError):
        from convrnn_video.convrnn.summary import format_table, preset_table
        from convrnn_video.segment.summary import format_table as seg_format_table
        from convrnn_video.segment.summary import preset_table as seg_preset_table

        if segmenter:
            rows = seg_preset_table()
            typer.echo(json.dumps(rows, indent=2)) if as_json else say(seg_format_table(rows))
            return
        rows = preset_table(frames_in=frames_in, frames_out=frames_out)
        typer.echo(json.dumps(rows, indent=2)) if as_json else say(format_table(rows))
        if not as_json:
            say("\n" + seg_format_table(seg_preset_table()))


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


# --- predict -------------------------------------------------------------------------------


@app.command()
def predict(
    shards: str = typer.Option(SHARDS, help="Shard folder or URL (manifest.json)."),
    ckpt: str | None = typer.Option(
        None,
        help="Frames or masks checkpoint .pt, or run folder.",
        show_default="the newest run's best.pt under --runs",
    ),
    segmenter: str | None = typer.Option(
        None,
        help="Segment checkpoint: also store the masks of the predicted frames; a masks "
        "checkpoint needs it (it segments the input frames, the store then has masks only).",
    ),
    relabel_unseen: bool = typer.Option(
        False,
        "--relabel-unseen",
        help="Replace predicted classes never seen in the segmented input frames by the best "
        "seen class or background.",
    ),
    motion: bool = typer.Option(
        False,
        "--motion",
        help="Also store each predicted frame's displacement (a model with a motion output); "
        "show draws it.",
    ),
    tracks: str | None = typer.Option(
        None,
        help="Track forecaster checkpoint (train --task tracks), with a frames --ckpt and "
        "--segmenter: the last input frame's objects move as wholes in the predicted frames "
        "(sharp, not faded), and the stored masks are the track forecaster's.",
    ),
    out: str = typer.Option(
        PredictConfig.out, help="Zarr store: a new or empty folder or fsspec URL, or our store."
    ),
    split: str = typer.Option(
        PredictConfig.split,
        help="Split to predict: hidden, val, train or unlabeled (all but hidden: the frames "
        "after a hidden video's, which `evaluate` scores on val and train).",
    ),
    batch_size: int | None = typer.Option(
        PredictConfig.batch_size,
        help="Videos per forward pass.",
        show_default="8; on a CPU 1 for full-resolution models",
    ),
    device: str = typer.Option(PredictConfig.device, help="auto (CUDA when present), cpu, cuda."),
    runs: str = typer.Option(PredictConfig.runs, help="Run folders searched without --ckpt."),
    workers: int = typer.Option(PredictConfig.workers, help="Loader worker processes."),
    precision: str = typer.Option(
        PredictConfig.precision,
        help="auto (bf16 where the device computes it natively, else fp32), fp32 or bf16.",
    ),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace a store made from another checkpoint or split."
    ),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Progress bar."),
) -> None:
    """Predict every video of a split into a chunked Zarr store; rerun to resume.

    The model reads the last frames_in observed frames (a hidden video's) and predicts the next.

    An --out holding anything but a prediction store is refused, with or without --overwrite.
    """
    from convrnn_video.infer.errors import InferError
    from convrnn_video.shards.errors import ShardError

    with user_errors(InferError, ShardError):
        from convrnn_video.infer.predict import run_predict
        from convrnn_video.runtime.device import tune_process

        tune_process()  # threads per process, allocator: the command's, not the library's

        s = run_predict(
            PredictConfig(
                shards=shards,
                out=out,
                ckpt=ckpt,
                runs=runs,
                segmenter=segmenter,
                relabel_unseen=relabel_unseen,
                motion=motion,
                tracks=tracks,
                split=split,
                batch_size=batch_size,
                device=device,
                workers=workers,
                precision=precision,
                overwrite=overwrite,
                progress=progress,
            )
        )
    if s["rank"] == 0:
        say(f"checkpoint {s['ckpt']} ({s['ckpt_chosen']})")
        if s["task"] in ("masks", "tracks"):
            say(f"segmenter {s['segmenter']} (masks of the input frames)")
        elif s["tracks"]:
            say(f"segmenter {s['segmenter']} (objects of the input frames)")
            say(f"track forecaster {s['tracks']} (objects moved as wholes; its masks)")
        elif s["segmenter"]:
            say(f"segmenter {s['segmenter']} (masks of every predicted frame)")
        relabel = ", unseen classes relabelled" if s["relabel_unseen"] else ""
        say(
            f"{'frame model' if s['task'] == 'frames' else 'mask forecaster'} in {s['precision']}"
            f"{relabel}; the store holds {' and '.join(s['holds'])}"
        )
        say(
            f"predicted {s['predicted']} of {s['videos']} {s['split']} videos "
            f"({s['already_done']} already done) in {s['seconds']:.1f} s -> {s['store']}"
        )


# --- export-png ----------------------------------------------------------------------------


@app.command("export-png")
def export_png(
    preds: str = typer.Option(ExportConfig.preds, help="Prediction store written by predict."),
    out: str = typer.Option(ExportConfig.out, help="Output folder: OUT/video_<id>/image_<t>.png."),
    frames: str = typer.Option(
        ExportConfig.frames, help="last: image_21.png only; all: image_11 ... image_21."
    ),
    workers: int = typer.Option(ExportConfig.workers, help="Threads encoding PNGs."),
    masks: bool = typer.Option(
        False, "--masks", help="Also write mask_<t>.png: predicted class ids, colour-coded."
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing PNG files."),
    partial: bool = typer.Option(False, "--partial", help="Export an unfinished store's videos."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Progress bar."),
) -> None:
    """Write the predicted frames of a finished store as PNG files, one folder per video."""
    from convrnn_video.infer.errors import InferError
    from convrnn_video.shards.errors import ShardError

    with user_errors(
        InferError, ShardError,
        rerun="the PNGs written so far are whole; rerun with --overwrite to export them all",
    ):  # fmt: skip
        from convrnn_video.infer.export import run_export

        s = run_export(
            ExportConfig(
                preds=preds,
                out=out,
                frames=frames,
                workers=workers,
                masks=masks,
                overwrite=overwrite,
                partial=partial,
                progress=progress,
            )
        )
    kept = f"; {s['kept']} already there from this store, kept" if s["kept"] else ""
    say(
        f"wrote {s['files']} PNG files for {s['videos']} videos under {s['out']}/ "
        f"({', '.join(s['frames'][:2])}{' ...' if len(s['frames']) > 2 else ''}){kept}"
    )


# --- submit --------------------------------------------------------------------------------


@app.command()
def submit(
    preds: str = typer.Option(SubmitConfig.preds, help="Finished store with masks (hidden)."),
    out: str = typer.Option(SubmitConfig.out, help="Tensor file; <stem>.json goes beside it."),
    dtype: str = typer.Option(
        SubmitConfig.dtype, help="Class-id dtype: uint8 (what the graders read) or int64."
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing submission."),
    allow_split: bool = typer.Option(
        False, "--allow-split", help="Submit a store of another split than hidden (a val check)."
    ),
) -> None:
    """Save the masks of frame 22 of every hidden video as one tensor, in id order.

    The graders read uint8 class ids 0-48, shape (N, 160, 240), rows in video-id order.

    Refused: a store not ending on the videos' last frame (image_21), or not of hidden videos.
    """
    from convrnn_video.infer.errors import InferError

    with user_errors(InferError):
        from convrnn_video.infer.submit import run_submit

        cfg = SubmitConfig(
            preds=preds, out=out, dtype=dtype, overwrite=overwrite, allow_split=allow_split
        )
        s = run_submit(cfg)
    shape = "x".join(str(n) for n in s["shape"])
    say(
        f"wrote {s['out']} ({s['dtype']} {shape}, {s['frame']} of {s['videos']} {s['split']} "
        f"videos) and {s['json']}"
    )


# --- evaluate ------------------------------------------------------------------------------


FRAME_METRICS = ("mse", "mae", "psnr", "psnr_mse", "ssim", "grid", "energy")


def _metric_line(name: str, report: dict) -> str:
    m, c = report["model"][name]["mean"], report["copy_last_frame"][name]["mean"]
    return f"  {name:<8} model {m:10.5f}   copy-last-frame {c:10.5f}"


@app.command()
def evaluate(
    preds: str = typer.Option(EvaluateConfig.preds, help="Store predicted from the val split."),
    shards: str = typer.Option(SHARDS, help="Shards with the true future frames."),
    out: str = typer.Option(EvaluateConfig.out, help="JSON report; the plot goes beside it."),
    segmenter: str | None = typer.Option(
        None,
        help="The store's segmenter, for the mask baselines.",
        show_default="the path it records",
    ),
    batch_size: int = typer.Option(EvaluateConfig.batch_size, help="Videos per batch."),
    device: str = typer.Option(EvaluateConfig.device, help="Segmenter device: auto, cpu, cuda."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Progress bar."),
) -> None:
    """Score a val store: MSE, MAE, PSNR, SSIM per frame, beside copying the last input frame;
    with masks, the Jaccard score beside copying frame 11's mask, extrapolating its objects and
    segmenting true frames."""
    from convrnn_video.infer.errors import InferError
    from convrnn_video.shards.errors import ShardError

    with user_errors(InferError, ShardError):
        from convrnn_video.infer.evaluate import run_evaluate

        r = run_evaluate(
            EvaluateConfig(
                preds=preds,
                shards=shards,
                out=out,
                segmenter=segmenter,
                batch_size=batch_size,
                device=device,
                progress=progress,
            )
        )
    first, last = r["frames"][0], r["frames"][-1]  # image numbers; the course counts from 1
    say(f"{r['videos']} {r['split']} videos, frames {first + 1}-{last + 1} (image_{first}-{last}):")
    # psnr: per video and frame, then averaged; psnr_mse: of the mean MSE (finite when copying
    # is exact); grid: patch-grid energy (copy-last shows the true frames' level); energy:
    # the frames' spectral energy over the true frames' (below 1: faded or blurred)
    for name in FRAME_METRICS if "model" in r else ():  # none: masks only
        say(_metric_line(name, r))
    if "jaccard" in r:
        last = f"image_{r['frames'][-1]}"
        say(f"  jaccard (49 classes)   {'mean':>7} {last:>9}")
        for key in ("model", "copy_last_input", "extrapolate_objects", "segmenter_on_true"):
            j = r["jaccard"][key]
            say(f"  {key:<20} {j['mean']:8.4f} {j['last']:9.4f}")
    say(f"report {out}, plot {r['plot']}")


# --- show ----------------------------------------------------------------------------------


@app.command()
def show(
    videos: str = typer.Option(..., help="Comma-separated videos: video_1000,video_1001."),
    preds: str = typer.Option(ShowConfig.preds, help="Prediction store."),
    shards: str = typer.Option(SHARDS, help="Shards with the input (and true) frames."),
    out: str = typer.Option(ShowConfig.out, help="Output picture (.png, or .gif with --gif)."),
    gif: bool = typer.Option(False, "--gif", help="An animation instead of a montage."),
    scale: float = typer.Option(ShowConfig.scale, help="Tile size relative to the frames' size."),
) -> None:
    """Draw input, true and predicted frames of a few videos so a person can look at them."""
    from convrnn_video.infer.errors import InferError
    from convrnn_video.shards.errors import ShardError

    with user_errors(InferError, ShardError):
        from convrnn_video.infer.show import run_show

        s = run_show(
            ShowConfig(
                videos=[v for v in videos.split(",") if v.strip()],
                preds=preds,
                shards=shards,
                out=out,
                gif=gif,
                scale=scale,
            )
        )
    say(f"wrote {s['out']} ({len(s['videos'])} {s['split']} videos)")


# --- demo ----------------------------------------------------------------------------------


@app.command()
def demo(
    out: str = typer.Option(DemoConfig.out, help="Folder for everything the demo writes."),
    preset: str = typer.Option(
        DemoConfig.preset, help="Frame model preset (a frames preset: `presets`)."
    ),
    minutes: float = typer.Option(
        DemoConfig.minutes, help="Frame model training budget, minutes (the lr decays over it)."
    ),
    steps: int | None = typer.Option(
        DemoConfig.steps, help="Also stop the frame model after these steps (default: time only)."
    ),
    seg_preset: str = typer.Option(
        DemoConfig.seg_preset, help="Segmenter preset to train (tiny, small)."
    ),
    seg_minutes: float = typer.Option(
        DemoConfig.seg_minutes, help="Segmenter training budget, minutes."
    ),
    seg_steps: int | None = typer.Option(
        DemoConfig.seg_steps, help="Also stop the segmenter after these steps (default: time only)."
    ),
    seg_batch_size: int = typer.Option(
        DemoConfig.seg_batch_size, help="Videos per segmenter step (one window of each)."
    ),
    tracks_minutes: float = typer.Option(
        DemoConfig.tracks_minutes, help="Track forecaster training budget, minutes."
    ),
    tracks_steps: int | None = typer.Option(
        DemoConfig.tracks_steps, help="Also stop the track forecaster after these steps."
    ),
    train: int = typer.Option(DemoConfig.train, help="Generated training videos."),
    val: int = typer.Option(DemoConfig.val, help="Generated validation videos (evaluated)."),
    hidden: int = typer.Option(DemoConfig.hidden, help="Generated hidden videos (exported)."),
    batch_size: int = typer.Option(
        DemoConfig.batch_size, help="Frame model: videos per step; prediction: per batch."
    ),
    lr: float = typer.Option(DemoConfig.lr, help="Frame model's Adam learning rate."),
    seed: int = typer.Option(DemoConfig.seed, help="Seed of the generator and the training."),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace an earlier demo in OUT (a folder with its marker)."
    ),
) -> None:
    """Run the whole pipeline on a small generated example, masks and submission included:
    under 10 minutes on 2 CPU cores (training runs on time budgets)."""
    from convrnn_video.infer.errors import InferError
    from convrnn_video.ingest.errors import IngestError
    from convrnn_video.ingest.synth.config import SynthError
    from convrnn_video.shards.errors import ShardError
    from convrnn_video.train.errors import TrainError

    with user_errors(
        InferError, IngestError, SynthError, ShardError, TrainError,
        rerun="rerun with --overwrite to start the demo over",
    ):  # fmt: skip
        from convrnn_video.demo import run_demo
        from convrnn_video.runtime.device import tune_process

        tune_process()  # threads, allocator: the command's settings, not the library's
        s = run_demo(
            DemoConfig(
                out=out,
                preset=preset,
                minutes=minutes,
                steps=steps,
                seg_preset=seg_preset,
                seg_minutes=seg_minutes,
                seg_steps=seg_steps,
                seg_batch_size=seg_batch_size,
                tracks_minutes=tracks_minutes,
                tracks_steps=tracks_steps,
                train=train,
                val=val,
                hidden=hidden,
                batch_size=batch_size,
                lr=lr,
                seed=seed,
                overwrite=overwrite,
            )
        )
    _print_demo(s)


def _print_demo(s: dict) -> None:
    """What the demo wrote and how its models scored (`run_demo`'s summary `s`)."""
    say(
        f"\ndemo finished in {s['seconds']['total']:.0f} s "
        f"({', '.join(f'{k} {v:.0f} s' for k, v in s['seconds'].items() if k != 'total')}); "
        f"the frame model trained {s['steps']['frames']} steps, the segmenter "
        f"{s['steps']['segmenter']}, the track forecaster {s['steps']['tracks']}"
    )
    for label, key in (
        ("generated videos", "data"),
        ("shards", "shards"),
        ("training run", "run"),
        ("checkpoint", "ckpt"),
        ("segmenter run", "segmenter_run"),
        ("segmenter", "segmenter"),
        ("tracks run", "tracks_run"),
        ("track forecaster", "tracks"),
        ("PNG predictions", "predictions"),
        ("submission", "submission"),
        ("val report", "report"),
        ("val tracks report", "tracks_report"),
        ("val plot", "plot"),
        ("montage", "montage"),
        ("frames montage", "frames_montage"),
    ):
        say(f"  {label:<19} {s[key]}")
    for split, path in s["preds"].items():
        say(f"  {split + ' store':<19} {path}")
    say(
        "the submission and the PNGs come from the track forecaster (its masks; the objects of "
        "the last input frame moved as wholes where it says, the frame model's frames "
        "elsewhere), the README's course path (README.md, 'From data/ to submission.pt'), "
        f"trained here on the masks of {s['train_videos']} videos, not 14,000"
    )
    say(f"val metrics on {s['videos']} videos (frames 12-22):")
    say(f"  {'':<8} {'objects moved':>13}   {'frame model':>11}   {'copy-last-frame':>15}")
    for name in FRAME_METRICS:
        say(
            f"  {name:<8} {s['tracks_frames'][name]:13.5f}   {s['model'][name]:11.5f}   "
            f"{s['copy_last_frame'][name]:15.5f}"
        )
    if s["jaccard"]:
        j = s["jaccard"]
        say("val masks, Jaccard (49 classes) of frame 22 / of frames 12-22:")
        for label, key in (
            ("track forecaster (submitted)", "tracks"),
            ("segmenter on predicted frames", "model"),
            ("copying the last input's mask", "copy_last_input"),
            ("extrapolating its objects", "extrapolate_objects"),
            ("segmenter on true frames", "segmenter_on_true"),
        ):
            if key in j:
                say(f"  {label:<30} {j[key]['last']:.4f} / {j[key]['mean']:.4f}")


def main() -> None:
    app()


if __name__ == "__main__":
    sys.exit(main())
