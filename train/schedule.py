"""Learning-rate schedules beside the plateau rule: linear warm-up, then a cosine decay over the
run's budget.

`--lr-schedule plateau` (the segment task's default) lowers the lr when the val loss stops improving
(ReduceLROnPlateau, stepped at each validation). `--lr-schedule cosine` sets the lr before every
optimizer step from how far the run is through its budget: --max-steps when given (exact on
resume), else the --time-limit of the run's first invocation, on the run's clock: the wall-clock
seconds since training started, the same clock the time limit stops on (so a run that stops on
its limit ends at the floor), agreed on by every DDP rank (so all ranks set the same lr), and kept
in the checkpoint (so a resumed run continues the same curve; past the budget the lr stays at its
floor), or the epochs (--epochs x the batches of one epoch, `epoch_budget`), whichever is
further through; without a time limit the epochs alone.
"""

from __future__ import annotations

import math

SCHEDULES = ("plateau", "cosine")


def cosine_lr(
    base_lr: float,
    step: int,
    progress: float,
    warmup_steps: int,
    floor: float,
) -> float:
    """The lr of optimizer step `step` (0-based) at `progress` in [0, 1] of the budget: a linear
    ramp over the first `warmup_steps` steps, times a half cosine from 1 down to `floor`."""
    warm = min(1.0, (step + 1) / warmup_steps) if warmup_steps > 0 else 1.0
    p = min(max(progress, 0.0), 1.0)
    return base_lr * warm * (floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * p)))


def budget_progress(
    step: int,
    max_steps: int | None,
    seconds: float,
    budget_seconds: float | None,
    epoch_steps: int | None = None,
) -> float:
    """How far a run is through its budget: by steps when max_steps is set (reproducible when
    a time limit is set too), else by the run's clock (`seconds`) against the time budget or by
    steps against `epoch_steps` (the steps of all its epochs), whichever is further (the run
    ends at the first to run out: a time-limited run of cheap steps ends at its epochs, and its
    lr decays by them), else by `epoch_steps` alone; 0 when there is none."""
    if max_steps:
        return step / max_steps
    by_epochs = step / epoch_steps if epoch_steps else 0.0
    if budget_seconds:
        return max(seconds / budget_seconds, by_epochs)
    return by_epochs


def epoch_budget(epochs: int, batches_per_epoch: int, max_steps: int | None) -> int:
    """The optimizer steps a run takes at most: its epochs' batches, capped by max_steps."""
    steps = epochs * batches_per_epoch
    return min(steps, max_steps) if max_steps else steps
