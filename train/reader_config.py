"""ReaderConfig: every option of `python cli.py fit-reader`, with defaults, checked once.

Torch-free, so the CLI takes its option defaults from here without importing torch.
"""

from __future__ import annotations

from dataclasses import dataclass

from convrnn_video.train.errors import TrainError


@dataclass(frozen=True)
class ReaderConfig:
    """Every option of `python cli.py fit-reader` (train/reader.py), checked once."""

    model: str  # a track forecaster checkpoint with the floor stage (`fit-contacts`)
    out: str  # the new checkpoint: the forecaster with the fitted reader
    # the generator's scenes drawn: 32,000 hold about 190,000 objects; 4,000 were too few for
    # a reader of every object (docs/benchmarks.md, "The state reader for every object")
    videos: int = 32000
    # the first scene id: far from the ids `synth` numbers a dataset with, so the reader
    # never learns from the videos it is scored on
    first_id: int = 1_000_000
    seed: int = 0  # the generator's seed (as `synth --seed`) and the fit's batches
    hidden: int = 64  # the reader's hidden width (6,018 parameters a member at 64)
    # its MLPs, each fitted on its own batches, whose answers it averages: four fits' mean
    # scored frame 22 above each one alone (docs/benchmarks.md)
    members: int = 4
    steps: int = 6000  # AdamW steps of 512 samples, for each member
    lr: float = 3e-3  # AdamW's learning rate
    weight_decay: float = 1e-3  # AdamW's decoupled weight decay; 0 for none
    workers: int = 2  # processes that draw and read the scenes; 0 or 1: this one

    def __post_init__(self) -> None:
        problems = []
        if self.videos < 1:
            problems.append(f"--videos must be at least 1, got {self.videos}")
        if self.first_id < 0:
            problems.append(f"--first-id must be 0 or more, got {self.first_id}")
        if self.hidden < 1:
            problems.append(f"--hidden must be at least 1, got {self.hidden}")
        if self.members < 1:
            problems.append(f"--members must be at least 1, got {self.members}")
        if self.workers < 0:
            problems.append(f"--workers must be 0 or more, got {self.workers}")
        if self.steps < 1:
            problems.append(f"--steps must be at least 1, got {self.steps}")
        if not self.lr > 0:
            problems.append(f"--lr must be above 0, got {self.lr}")
        if not self.weight_decay >= 0:
            problems.append(f"--weight-decay must be 0 or more, got {self.weight_decay}")
        if problems:
            raise TrainError("; ".join(problems))
