"""A fault injected at a known point of a `cli.py` command, for the kill-and-resume tests.

As test_export injects its fault into PIL's save, the child process wraps one library callable
(`os.replace`, the call every stage publishes a file with; an optimizer's step; a progress bar's
update) and sends itself a signal right after the n-th call on an argument that matches a
pattern: SIGKILL for a power cut, SIGTERM for a scheduler, SIGINT for Ctrl-C. The kill lands
after exactly n units of work, with no polling for files and no race. The stages themselves are
not changed: the wrapped callable is not the project's code, and it runs unchanged.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]

# The child: `python cli.py ARGS` (the repo first on sys.path, as for a script), with TARGET
# wrapped. Formatted with repr()s of the values below.
_CHILD = """
import fnmatch, importlib, os, runpy, sys, threading
sys.path[0] = {repo!r}
module, _, name = {target!r}.partition(":")
owner = importlib.import_module(module)
*parents, attr = name.split(".")
for parent in parents:
    owner = getattr(owner, parent)
original, lock, calls = getattr(owner, attr), threading.Lock(), [0]

def matches(args):
    if {match!r} is None:
        return True
    paths = [os.fspath(a) for a in args if isinstance(a, (str, os.PathLike))]
    return any(fnmatch.fnmatch(p, {match!r}) for p in paths)

def then_signal(*args, **kwargs):
    result = original(*args, **kwargs)
    if matches(args):
        with lock:
            calls[0] += 1
            if calls[0] == {n}:
                os.kill(os.getpid(), {signum})
    return result

setattr(owner, attr, then_signal)
sys.argv = [{cli!r}, *{args!r}]
runpy.run_path({cli!r}, run_name="__main__")
"""


def run_faulted(
    args: list[str | Path],
    target: str,
    n: int,
    sig: signal.Signals = signal.SIGKILL,
    match: str | None = None,
    **run: Any,
) -> subprocess.CompletedProcess:
    """Run `python cli.py *args` until it ends, its process sent `sig` right after the `n`-th
    call of `target` ("module:attribute", e.g. "os:replace", "torch.optim:Adam.step") that has
    an argument matching the glob `match` (None: every call). `run`: subprocess.run's options
    (cwd, env, capture_output, ...; a timeout of 300 s unless given)."""
    code = _CHILD.format(
        repo=str(REPO), target=target, match=match, n=int(n), signum=int(sig),
        cli=str(REPO / "cli.py"), args=[str(a) for a in args],
    )  # fmt: skip
    run.setdefault("timeout", 300)
    return subprocess.run([sys.executable, "-c", code], **run)
