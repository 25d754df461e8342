"""The one error type of the ingest stage."""


class IngestError(Exception):
    """Bad input or a refused output: the message says what, where, and what to do."""
