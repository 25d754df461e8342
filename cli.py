"""Command line of the video-prediction pipeline: `python cli.py --help`.

Each command only parses its arguments and calls one function of its stage. Stage modules are
imported inside the commands so that `--help` stays fast and does not import torch.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path

import typer

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="ConvLSTM/ConvGRU video prediction: synth -> ingest -> train -> predict -> export-png.",
)


@contextlib.contextmanager
def user_errors(*error_types: type[BaseException]) -> Iterator[None]:
    """Turn a stage's own error types (user mistakes, bad input) into one line and exit 1."""
    try:
        yield
    except error_types as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None


# --- synth ---------------------------------------------------------------------------------

# --- ingest --------------------------------------------------------------------------------

# --- shards-info ---------------------------------------------------------------------------

# --- presets -------------------------------------------------------------------------------

# --- train ---------------------------------------------------------------------------------

# --- predict -------------------------------------------------------------------------------

# --- export-png ----------------------------------------------------------------------------

# --- evaluate ------------------------------------------------------------------------------

# --- show ----------------------------------------------------------------------------------

# --- demo ----------------------------------------------------------------------------------


def main() -> None:
    app()


if __name__ == "__main__":
    sys.exit(main())
