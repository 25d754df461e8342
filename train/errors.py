"""The training stage's one exception type for user mistakes and bad input."""


class TrainError(Exception):
    """A problem the user can fix (bad option, missing split, existing run, corrupt checkpoint).

    The CLI prints it as one `error: ...` line and exits 1.
    """
