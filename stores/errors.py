"""The stores' one exception type."""

from convrnn_video.errors import PipelineError


class StoreError(PipelineError):
    """A store that cannot be read or written as asked: not one of ours, of another run,
    incomplete, or without the video or array asked for.

    The CLI prints it as one `error: ...` line and exits 1.
    """
