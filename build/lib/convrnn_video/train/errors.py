"""The training stage's one exception type for user mistakes and bad input."""

from convrnn_video.errors import PipelineError


class TrainError(PipelineError):
    """A problem the user can fix (bad option, missing split, existing run, corrupt checkpoint).

    The CLI prints it as one `error: ...` line and exits 1.
    """
