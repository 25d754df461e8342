"""The one exception type of the inference stage, and the refusal of outputs that exist."""

from __future__ import annotations

from pathlib import Path

from convrnn_video.errors import PipelineError


class InferError(PipelineError):
    """A user-facing inference problem: bad checkpoint, wrong shards, refused store or folder.

    The CLI prints it as `error: <message>` and exits 1, without a traceback.
    """


def refuse_existing(*paths: Path, overwrite: bool) -> None:
    """An InferError naming those of `paths` (a command's outputs) that exist, unless
    `overwrite`: called before any work, so nothing is spent and nothing written over."""
    existing = [str(p) for p in paths if p.exists()]
    if existing and not overwrite:
        verb = "exists" if len(existing) == 1 else "exist"
        raise InferError(f"{' and '.join(existing)} already {verb}; pass --overwrite to replace, "
                         "or choose another --out")  # fmt: skip
