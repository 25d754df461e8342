"""Checkpoints: what a training run saves and a resume puts back. TrainState (what the loop
advances); the options a resumed run takes from RUN/last.pt; the checkpoint dict (model,
optimizer, scheduler, state, data, every rank's RNG states) written as last.pt, best.pt and
the --snapshot-at at-<m>min.pt; the command that resumes the run. Saving is collective (the
ranks' RNG states are gathered); the files are written by rank 0."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from convrnn_video.runtime import runs
from convrnn_video.runtime.checkpoint import rng_state, save_checkpoint, set_rng_state
from convrnn_video.runtime.distributed import DistEnv
from convrnn_video.train.config import TrainConfig, merge_for_resume
from convrnn_video.train.errors import TrainError
from convrnn_video.train.runlog import format_loss

log = logging.getLogger(__name__)


def resumed_config(
    payload: dict[str, Any], cfg: TrainConfig, last: Path, explicit: set[str] | None
) -> TrainConfig:
    """The options of a resumed run: those saved in its checkpoint `payload` (file `last`),
    under the `explicit` ones typed now; a TrainError when they are missing or do not parse."""
    saved = payload.get("train_config")
    if not isinstance(saved, dict) or not saved:
        raise TrainError(
            f"{last} has no training options (train_config) to resume with; "
            "it was not written by `train` (start a new run, or fine-tune from it "
            "with --init-from)"
        )
    try:
        return merge_for_resume(saved, cfg, explicit)
    except (TypeError, ValueError) as exc:
        raise TrainError(f"{last}: its training options do not parse: {exc}") from None


@dataclass
class TrainState:
    """What the loop advances; saved in every checkpoint."""

    step: int = 0  # optimizer steps done
    epoch: int = 0  # current epoch (epochs completed)
    batch_in_epoch: int = 0  # batches of the current epoch already trained on
    best_val: float | None = None  # best validation loss so far
    bad: int = 0  # validations since the best one (early stopping / plateau)
    last_val_step: int = -1  # step of the last scheduled validation
    best_saved: float | None = None  # val loss of the weights in best.pt
    train_seconds: float = 0.0  # time spent fetching batches and stepping, over all resumes
    # the run's wall clock (s) over all invocations, agreed by the ranks: the time limit stops
    # on it and the cosine lr reads it
    clock_seconds: float = 0.0
    budget_seconds: float | None = None  # cosine lr: the first invocation's time limit, in s
    budget_steps: int | None = None  # cosine lr without other budget: the first run's epochs' steps


class Checkpoints:
    """The checkpoints of the run in folder `run`: the `model` of `model_cfg` (task `task`,
    trained on the shards `data`), its `optimizer` and `scheduler` and the run's TrainState.
    The Session hands its state to each save; a resume gets it back from `restore`."""

    def __init__(
        self,
        cfg: TrainConfig,
        run: Path,
        env: DistEnv,
        task: Any,
        model_cfg: Any,
        data: dict[str, Any],
        has_val: bool,
        model: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        scheduler: Any,
    ) -> None:
        self.cfg, self.run, self.env, self.task = cfg, run, env, task
        self.model_cfg, self.data, self.has_val = model_cfg, data, has_val
        self.model, self.optimizer, self.scheduler = model, optimizer, scheduler
        self._pending_rng: dict[str, Any] | None = None  # this rank's saved RNG states

    def restore(self, payload: dict[str, Any]) -> TrainState:
        """Load the weights, optimizer and scheduler of `payload` (RUN/last.pt) and keep this
        rank's RNG states for the first resumed step -> the state the run continues from."""
        try:
            self.model.load_state_dict(payload["model"])
            self.optimizer.load_state_dict(payload["optimizer"])
            self.scheduler.load_state_dict(payload["scheduler"])
            fields = TrainState.__dataclass_fields__
            state = TrainState(**{k: payload[k] for k in fields if k in payload})
            if "best_saved" not in payload:  # saved before best_saved was recorded
                state.best_saved = state.best_val
            if "clock_seconds" not in payload:  # saved before the clock: the nearest measure
                state.clock_seconds = state.train_seconds
        except (KeyError, RuntimeError, ValueError, TypeError) as exc:
            raise TrainError(f"{self.run / runs.LAST} cannot be resumed: {exc}") from exc
        rngs = payload.get("rng") or []
        if len(rngs) == self.env.world_size:
            self._pending_rng = rngs[self.env.rank]
        else:
            log.warning(
                "warning: the run was saved with %d processes, now %d: the data order "
                "continues, the random streams restart", len(rngs), self.env.world_size,
            )  # fmt: skip
            torch.manual_seed(self.cfg.seed + 1 + self.env.rank + state.step)
        log.info(
            "resuming %s at step %d (epoch %d, batch %d), lr %.3g, best val %s",
            self.run, state.step, state.epoch, state.batch_in_epoch,
            self.optimizer.param_groups[0]["lr"], format_loss(state.best_val),
        )  # fmt: skip
        return state

    def restore_rng_once(self) -> None:
        """Put back the saved RNG states just before the first resumed step."""
        if self._pending_rng is not None:
            set_rng_state(self._pending_rng)
            self._pending_rng = None

    def payload(self, state: TrainState) -> dict[str, Any]:
        """The checkpoint dict at `state` (collective: gathers every rank's RNG states)."""
        rngs = self.env.gather(rng_state())
        return {
            "task": self.task.name,
            "model_config": self.model_cfg.to_dict(),
            "model": self.model.state_dict(),
            "train_config": self.cfg.to_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            **asdict(state),
            "data": self.data,
            "world_size": self.env.world_size,
            "rng": rngs,
        }

    def save(self, name: str, state: TrainState) -> dict[str, Any]:
        """RUN/`name` at `state` (collective; rank 0 writes) -> the checkpoint dict."""
        payload = self.payload(state)
        if self.env.is_main:
            save_checkpoint(self.run / name, payload)
        return payload

    def save_last(self, state: TrainState) -> None:
        """RUN/last.pt; without a val split best.pt follows it."""
        payload = self.save(runs.LAST, state)
        if self.env.is_main and not self.has_val:
            save_checkpoint(self.run / runs.BEST, payload)

    def save_snapshots(self, span: tuple[float, float], state: TrainState) -> None:
        """RUN/at-<m>min.pt for each --snapshot-at minute the run's clock passed in `span`
        (seconds every rank agrees on: saving is collective)."""
        before, now = span
        for minutes in self.cfg.snapshot_minutes:
            if before < 60 * minutes <= now:
                self.save(f"at-{minutes:g}min.pt", state)

    def resume_command(self) -> str:
        """The command that continues the run from RUN/last.pt."""
        cfg = self.cfg
        cmd = f"cli.py train --task {cfg.task} --shards {cfg.shards} --out {self.run} --resume"
        if self.env.distributed:
            return f"torchrun --nproc_per_node={self.env.local_world_size} {cmd}"
        return f"python {cmd}"


def free_out(out: Path | str) -> Path:
    """`out` as a Path for a fitting command's new checkpoint; a TrainError when a file is
    there already (a fit never overwrites)."""
    out = Path(out)
    if out.exists():
        raise TrainError(f"{out} exists; give another --out (nothing is overwritten)")
    return out


def weights_without_reader(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A track forecaster's weights on the CPU, its state reader's (`reader.*`) left out: a
    reader learned the stage as it was, so a command that changes the stage drops it."""
    return {k: v.detach().cpu() for k, v in model.state_dict().items()
            if not k.startswith("reader.")}  # fmt: skip
