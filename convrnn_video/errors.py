"""The error base, re-exported for the Python API: `convrnn_video.PipelineError` is the class
every stage's error derives from (it lives on the bottom floor, in `pipeline_errors`)."""

from pipeline_errors import PipelineError

__all__ = ["PipelineError"]
