"""The base of every error the project raises for a user mistake or bad input (the bottom floor:
it imports nothing, every stage imports it).

Each stage has its own subclass (IngestError, ShardError, TrainError, InferError); catching
`PipelineError` catches them all. The command line prints them as one `error: ...` line.
"""


class PipelineError(Exception):
    """A problem the user can fix: the message names the file or option and what to do."""
