"""The one exception type of the inference stage."""

from __future__ import annotations

from convrnn_video.errors import PipelineError


class InferError(PipelineError):
    """A user-facing inference problem: bad checkpoint, wrong shards, refused store or folder.

    The CLI prints it as `error: <message>` and exits 1, without a traceback.
    """
