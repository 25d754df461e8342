"""The command line's shared pieces: the Typer app, logging, `say` and `user_errors`.

The commands live in `cli_data.py`, `cli_train.py`, `cli_contacts.py`, `cli_label.py`,
`cli_infer.py`, `cli_evaluate.py` and `cli_demo.py`, each registering on `app`; `cli.py`
gathers them. Stage modules are imported inside the commands so that `--help` stays fast and
does not import torch.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator

import typer
from typer.core import TyperGroup

# The stages' config dataclasses are torch-free: the options take their defaults from them.
from convrnn_video.errors import PipelineError
from convrnn_video.ingest.config import IngestConfig


def _no_type_shown(params: list) -> list:
    """Give the flags among `params` (options that take no value) an empty metavar, so help
    shows no type after them; returns `params`."""
    for param in params:
        if param is not None and getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""
    return params


# `--help` lists the commands in this order: the data, training, prediction, the demo
ORDER = ("synth", "ingest", "shards-info", "presets", "train", "label", "fit-contacts", "predict",
         "export-png", "submit", "evaluate", "show", "demo")  # fmt: skip


class _Group(TyperGroup):
    """Typer's group, but flags show no `<bool>` in help: typer 0.29 prints a type after every
    option, values or not (`--verbose -v <bool>`, `--help <bool>`)."""

    def get_params(self, ctx: typer.Context) -> list:
        return _no_type_shown(super().get_params(ctx))

    def list_commands(self, ctx: typer.Context) -> list[str]:
        """The commands in the order data flows (`ORDER`), not the order their modules load."""
        names = super().list_commands(ctx)
        return sorted(names, key=lambda n: ORDER.index(n) if n in ORDER else len(ORDER))

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


# the frame metrics `evaluate` and `demo` print, in this order
FRAME_METRICS = ("mse", "mae", "psnr", "psnr_mse", "ssim", "grid", "energy")
