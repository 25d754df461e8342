"""runtime/load.py: the cores other processes keep busy during a block (the training loop's
warning about them: tests/test_train.py)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from convrnn_video.runtime.load import OtherLoad

pytestmark = pytest.mark.skipif(not Path("/proc/stat").exists(), reason="needs Linux /proc/stat")
SPIN = "import time\nend = time.time() + {s}\nwhile time.time() < end:\n    pass\n"


def neighbour(seconds: float) -> int:
    """The pid of another process (not this one's child: its parent, a shell, has ended) that
    keeps one core busy for `seconds`."""
    spin = f"{sys.executable} -c '{SPIN.format(s=seconds)}' >/dev/null 2>&1 & echo $!"
    return int(subprocess.run(["sh", "-c", spin], capture_output=True, text=True).stdout)


def stop(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def quiet_or_skip() -> None:
    """Skip when other processes already keep a quarter of a core busy: what the test counts
    would be theirs (a benchmark beside the suite), not its own neighbour's."""
    with OtherLoad() as before:
        time.sleep(0.5)
    if before.cores is not None and before.cores > 0.25:
        pytest.skip(f"other processes keep {before.cores:.2f} cores busy: needs a quiet machine")


def test_a_busy_neighbour_counts_and_own_work_does_not() -> None:
    quiet_or_skip()
    busy = neighbour(1.5)
    try:
        with OtherLoad() as load:
            time.sleep(1.2)
    finally:
        stop(busy)
    assert load.cores is not None and load.cores > 0.6  # about one core
    assert load.share == pytest.approx(load.cores / os.cpu_count())
    assert load.noticeable() == (load.share > 0.2)

    with OtherLoad() as own:
        end = time.time() + 1.0
        while time.time() < end:  # this process busy: not other load
            pass
    assert own.cores is not None and own.cores < 0.5
    # nor is a child's work, running or ended (a loader's workers, the mask readers)
    with OtherLoad() as child:
        ended = subprocess.Popen([sys.executable, "-c", SPIN.format(s=0.8)])
        running = subprocess.Popen([sys.executable, "-c", SPIN.format(s=2.0)])
        ended.wait()
        time.sleep(0.5)
    running.kill()
    running.wait()
    assert child.cores is not None and child.cores < 0.5
