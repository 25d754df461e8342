"""Command line of the video-prediction pipeline: `python cli.py --help`.

Each command only parses its arguments and calls one function of its stage. The app and what
every command shares are in `cli_app.py`; the commands, by stage, in `cli_data.py`,
`cli_train.py`, `cli_contacts.py`, `cli_label.py`, `cli_infer.py`, `cli_evaluate.py` and
`cli_demo.py`: importing them registers them; `--help` lists them in `cli_app.ORDER`.
"""

from __future__ import annotations

import sys

from convrnn_video import (  # noqa: F401  (registers)
    cli_contacts,
    cli_data,
    cli_demo,
    cli_evaluate,
    cli_infer,
    cli_label,
    cli_train,
)
from convrnn_video.cli_app import app


def main() -> None:
    app()


if __name__ == "__main__":
    sys.exit(main())
