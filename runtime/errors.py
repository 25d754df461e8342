"""The runtime's one exception type for user mistakes and bad input."""

from convrnn_video.errors import PipelineError


class RunError(PipelineError):
    """A problem the user can fix with a run's checkpoint, run folder or device (a missing or
    corrupt checkpoint, one of another task, a run folder that holds a run, CUDA asked for where
    there is none).

    The CLI prints it as one `error: ...` line and exits 1.
    """
