"""ContactsConfig: every option of `python cli.py fit-contacts`, with defaults, checked once.

Torch-free, so the CLI takes its option defaults from here without importing torch.
"""

from __future__ import annotations

from dataclasses import dataclass

from convrnn_video.train.errors import TrainError


@dataclass(frozen=True)
class ContactsConfig:
    """Every option of `python cli.py fit-contacts` (train/contacts.py), checked once."""

    model: str  # the track forecaster checkpoint (`train --task tracks`)
    shards: str  # shard folder or URL made by `ingest`
    out: str  # the new checkpoint: the forecaster with the fitted contacts
    split: str = "train"  # the labelled split the constants are fitted on
    check_split: str | None = "val"  # a labelled split scored with and without them (None: none)
    # the first N videos of each split (None: all); 1,000 fitted better than 400 on generated
    # videos (course path 0.5363 against 0.5315: docs/benchmarks.md)
    videos: int | None = 1000
    # steps of the fine-tune through the contact stage (train/contacts_tune.py; 0: none, the
    # forecaster's weights are kept): course path 0.5597 after 10,000, 0.5497 after 5,000,
    # 0.5363 untuned (docs/benchmarks.md, "Fine-tuned through the hits")
    tune_steps: int = 10000
    tune_lr: float = 1e-4  # its Adam learning rate (3e-4 scored lower: docs/benchmarks.md)
    seed: int = 0  # the fine-tune's batches and dropout

    def __post_init__(self) -> None:
        problems = []
        if self.videos is not None and self.videos < 1:
            problems.append(f"--videos must be at least 1, got {self.videos}")
        if self.check_split == self.split:
            problems.append(f"--check-split {self.check_split!r} is the fit split: the check "
                            "needs videos the fit has not seen")  # fmt: skip
        if self.tune_steps < 0:
            problems.append(f"--tune-steps must be 0 or more, got {self.tune_steps}")
        if not self.tune_lr > 0:
            problems.append(f"--tune-lr must be above 0, got {self.tune_lr}")
        if problems:
            raise TrainError("; ".join(problems))
