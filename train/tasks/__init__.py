"""The tasks one trainer serves: `get_task("frames" | "segment" | "masks")`."""

from __future__ import annotations

from convrnn_video.train.tasks.base import StepContext, Task
from convrnn_video.train.tasks.frames import FramesTask
from convrnn_video.train.tasks.masks import MasksTask
from convrnn_video.train.tasks.segment import SegmentTask
from convrnn_video.train.tasks.tracks import TracksTask

__all__ = ["StepContext", "Task", "get_task"]

_TASKS: dict[str, type[Task]] = {
    "frames": FramesTask,
    "segment": SegmentTask,
    "masks": MasksTask,
    "tracks": TracksTask,
}


def get_task(name: str) -> Task:
    """A fresh task object by name (ValueError for an unknown one)."""
    if name not in _TASKS:
        raise ValueError(f"unknown task {name!r}; choose one of {', '.join(_TASKS)}")
    return _TASKS[name]()
