"""runtime/load.py: the cores other processes keep busy during a block (the training loop's
warning about them: tests/test_train.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from convrnn_video.runtime.load import OtherLoad

pytestmark = pytest.mark.skipif(not Path("/proc/stat").exists(), reason="needs Linux /proc/stat")
SPIN = "import time\nend = time.time() + {s}\nwhile time.time() < end:\n    pass\n"


def neighbour(seconds: float) -> subprocess.Popen:
    """A process that keeps one core busy for `seconds` (not waited for: other load)."""
    return subprocess.Popen([sys.executable, "-c", SPIN.format(s=seconds)])


def test_a_busy_neighbour_counts_and_own_work_does_not() -> None:
    busy = neighbour(1.5)
    with OtherLoad() as load:
        time.sleep(1.2)
    busy.wait()
    assert load.cores is not None and load.cores > 0.6  # about one core
    assert load.share == pytest.approx(load.cores / os.cpu_count())
    assert load.noticeable() == (load.share > 0.2)

    with OtherLoad() as own:
        end = time.time() + 1.0
        while time.time() < end:  # this process busy: not other load
            pass
    assert own.cores is not None and own.cores < 0.5
