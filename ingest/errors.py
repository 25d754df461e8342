"""The one error type of the ingest stage."""

from convrnn_video.errors import PipelineError


class IngestError(PipelineError):
    """Bad input or a refused output: the message says what, where, and what to do."""
