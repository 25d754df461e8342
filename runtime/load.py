"""How much of the machine other processes took while a run trained.

A time-limited run (`train --time-limit`, and every benchmark row with a budget in minutes)
trains as many steps as the cores give it: beside another job it silently ends as a smaller
run, and its figure is not comparable with a quiet one's. `OtherLoad` measures that over a
`with` block: the machine's busy CPU time (Linux `/proc/stat`, including time a hypervisor
stole for other guests) less this process's own, its children's (loader workers, mask
readers; running or ended) and theirs, in cores. Elsewhere than Linux it measures nothing
(None).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

STAT = Path("/proc/stat")
BUSY_FIELDS = (0, 1, 2, 5, 6, 7)  # user, nice, system, irq, softirq, steal (not idle, iowait)
NOTICEABLE = 0.2  # share of the machine's cores: above it, say so


def machine_busy_seconds() -> float | None:
    """CPU seconds the whole machine has spent busy since boot (None without /proc/stat)."""
    try:
        fields = STAT.read_text().split("\n", 1)[0].split()[1:]  # the "cpu" line: every core
    except OSError:
        return None
    ticks = sum(int(fields[i]) for i in BUSY_FIELDS if i < len(fields))
    return ticks / os.sysconf("SC_CLK_TCK")


def own_seconds() -> float:
    """CPU seconds of this process (every thread), of its children (those waited for, and
    those still running with what they waited for) and so of their children."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system + _running_children()


def _running_children() -> float:
    """CPU seconds of this process's children still running (/proc; 0 without it)."""
    me, total = os.getpid(), 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()  # after "pid (name)"
        except (OSError, IndexError):
            continue  # ended while we looked
        if int(fields[1]) == me:  # ppid; then utime, stime, cutime, cstime in ticks
            total += sum(int(v) for v in fields[11:15])
    return total / os.sysconf("SC_CLK_TCK")


class OtherLoad:
    """`with OtherLoad() as load: ...`; then `load.cores` is how many cores' worth other
    processes kept busy on average over the block, `load.share` that over the machine's cores
    (both None where it cannot be measured)."""

    def __init__(self) -> None:
        self.cores: float | None = None
        self.share: float | None = None

    def __enter__(self) -> OtherLoad:
        self._start = (machine_busy_seconds(), own_seconds(), time.monotonic())
        return self

    def __exit__(self, *exc: object) -> None:
        busy, own, wall = machine_busy_seconds(), own_seconds(), time.monotonic()
        busy0, own0, wall0 = self._start
        if busy is None or busy0 is None or wall - wall0 <= 0:
            return
        others = max(0.0, (busy - busy0) - (own - own0))  # ticks round: never below zero
        self.cores = others / (wall - wall0)
        self.share = self.cores / (os.cpu_count() or 1)

    def noticeable(self) -> bool:
        """Whether others took enough of the machine to change a time-limited result."""
        return self.share is not None and self.share > NOTICEABLE
