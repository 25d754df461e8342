"""The training loop: `run_training(TrainConfig) -> run folder`.

One process, one GPU or many processes under torchrun run the same code. Each optimizer step
every rank agrees (one tiny all-reduce) on whether to go on, so a rank that runs out of data
or receives SIGTERM never leaves the others waiting, and on the run's clock, which the time
limit and the cosine lr both read. The step, the epoch and the position in
the epoch are saved with the RNG states, so `--resume` replays exactly what an uninterrupted
run would have done: the loader's order is a function of (seed, epoch, rank).
"""

from __future__ import annotations

import contextlib
import gc
import logging
import math
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from convrnn_video.runtime import distributed
from convrnn_video.runtime.device import autocast as device_autocast
from convrnn_video.runtime.load import OtherLoad
from convrnn_video.runtime.runs import discard_unstarted, resolve_run_dir
from convrnn_video.train.config import TrainConfig
from convrnn_video.train.data import settle_from_shards
from convrnn_video.train.errors import TrainError
from convrnn_video.train.init_from import settle_init_from
from convrnn_video.train.session import Session
from convrnn_video.train.tasks import StepContext

log = logging.getLogger(__name__)


class StopRequest:
    """SIGINT / SIGTERM set a flag the loop checks after each step; a second Ctrl-C aborts."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict[int, Any] = {}
        self._pid = os.getpid()  # forked loader workers inherit the handler: they ignore it

    def __enter__(self) -> StopRequest:
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(ValueError):  # not the main thread: no handlers
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if os.getpid() != self._pid:
            return
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True
        log.warning("%s received: saving last.pt after this step", signal.Signals(signum).name)

    def fetch(self, batches: Iterator[dict]) -> dict | None:
        """The next batch; None at the end of the epoch or once a stop was requested."""
        if self.requested:
            return None
        try:
            return next(batches, None)
        except Exception:
            if self.requested:  # loader workers got the same Ctrl-C and quit
                return None
            raise

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def _quiet_other_ranks(is_main: bool) -> None:
    """Ranks other than 0 log warnings only (the command line configures the handlers)."""
    if not is_main:
        log.setLevel(logging.WARNING)


def run_training(cfg: TrainConfig, explicit: set[str] | None = None) -> Path:
    """Train as `cfg` says and return the run folder. `explicit` names the options given on
    the command line (used by --resume to tell them from defaults)."""
    settle_from_shards(settle_init_from(cfg)).validate()
    env = distributed.setup(cfg.device, cfg.threads, tune=False)  # process settings: the CLI's
    _quiet_other_ranks(env.is_main)
    choice: Any = None
    try:
        # Rank 0 picks (and checks) the folder; the others follow, or raise the same error.
        try:
            choice: Any = str(resolve_run_dir(cfg.out, cfg.resume, Path(cfg.runs_root)))
        except TrainError as exc:
            choice = exc
        choice = env.broadcast(choice)
        if isinstance(choice, TrainError):
            raise TrainError(str(choice))
        session = Session(cfg, Path(choice), env, explicit)
        run = _train(session)
        # free the DDP model before leaving the process group: its reducer holds the group,
        # and freed only at exit, after the teardown, it may be what aborted a rank once
        # ("terminate called without an active exception" after "done", 2026-12-05)
        del session
        gc.collect()
    except BaseException:
        if env.is_main and not cfg.resume and isinstance(choice, str):
            discard_unstarted(Path(choice))  # no checkpoint yet: the retry starts clean
        distributed.teardown(barrier=False)  # the other ranks fail alike or are stopped by torchrun
        raise
    distributed.teardown()
    return run


class _Meter:
    """The sums behind each train line (loss, the task's scalars, steps) and the samples/s
    clock, which leaves validation time out. The sums stay where the loss is (on a GPU: no
    host sync per step) and are read only when a line is logged."""

    def __init__(self, s: Session) -> None:
        self.s = s
        self.sums: torch.Tensor | None = None  # (1 + len(train_scalars),) float64
        self.steps = 0
        self.t0, self.samples = time.perf_counter(), 0

    def add(self, loss: torch.Tensor, scalars: dict, videos: int, bar) -> None:
        names = self.s.task.train_scalars
        values = torch.stack([loss.detach(), *(scalars[k] for k in names)]).double()
        self.sums = values if self.sums is None else self.sums + values
        self.steps += 1
        self.samples += videos * self.s.env.world_size
        if self.s.state.step % self.s.cfg.log_every == 0:
            rate = self.samples / max(time.perf_counter() - self.t0, 1e-9)
            counted = torch.tensor([float(self.steps)], dtype=torch.float64)
            self.s.log_train(torch.cat([self.sums.cpu(), counted]), rate, bar)
            self.sums, self.steps = None, 0
            self.t0, self.samples = time.perf_counter(), 0

    def validate(self, **kwargs) -> bool:
        """Validate (see Session.validate) without counting its time as training."""
        t = time.perf_counter()
        early = self.s.validate(**kwargs)
        self.t0 += time.perf_counter() - t
        return early


def _step(s: Session, batch: dict, autocast) -> tuple[torch.Tensor, dict]:
    """One optimizer step on `batch` -> (loss, the task's scalars)."""
    cfg, st = s.cfg, s.state
    s.restore_rng_once()
    ctx = StepContext(s.env.device, st.step, autocast, cfg, s.model_cfg)
    loss, scalars = s.task.train_step(s.net, batch, ctx)
    s.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if cfg.grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(s.model.parameters(), cfg.grad_clip)
    s.schedule_lr()
    s.optimizer.step()
    st.step += 1
    st.batch_in_epoch += 1
    return loss, scalars


class _Clock:
    """The run's clock: wall-clock seconds since training started, continued across resumes
    (`TrainState.clock_seconds`). The time limit stops on it and the cosine lr reads it, so the
    schedule ends where the run ends; validation and checkpoints count, setup does not."""

    def __init__(self, start: float, limit_minutes: float | None) -> None:
        self.origin = time.perf_counter() - start
        self.deadline = start + 60 * limit_minutes if limit_minutes else math.inf
        self.checked = start

    def since_last_check(self, now: float) -> tuple[float, float]:
        """(the clock at the previous call, now): the seconds a step's snapshots cover."""
        before, self.checked = self.checked, now
        return before, now

    def read(self) -> float:
        return time.perf_counter() - self.origin


def _epoch(s: Session, stop: StopRequest, clock: _Clock, autocast, meter: _Meter, bar):
    """Train through the rest of the current epoch -> (stopped, exhausted, timed_out,
    finished): interrupted, ran out of data (the epoch is over), over the time limit, or
    done for any reason (max steps, time, early stopping)."""
    cfg, env, st = s.cfg, s.env, s.state
    batches = s.epoch_batches()  # skips the part of the epoch already trained
    while True:
        t_step = time.perf_counter()
        batch = stop.fetch(batches)
        # One all-reduce a step: every rank learns whether any rank was told to stop or ran
        # out of data, and takes the furthest rank's clock, so the time limit and the cosine
        # lr see the same seconds on every rank.
        flags = (stop.requested, batch is None and not stop.requested)
        *flags, st.clock_seconds = env.max(*map(float, flags), clock.read())
        stop_now, exhausted = map(bool, flags)
        timed_out = st.clock_seconds >= clock.deadline
        if stop_now:
            return True, False, timed_out, True
        if exhausted:
            if batch is not None:
                log.warning("rank %d had a batch left at epoch end", env.rank)
            return False, True, timed_out, False
        # max steps is checked after the fetch, so a full epoch still ends as one
        if s.reached_max_steps() or timed_out:
            return False, False, timed_out, True
        loss, scalars = _step(s, batch, autocast)
        st.train_seconds += time.perf_counter() - t_step
        if bar is not None:
            bar.update(1)
        meter.add(loss, scalars, s.task.samples_in(batch), bar)
        if cfg.val_every and st.step % cfg.val_every == 0 and meter.validate():
            return False, False, timed_out, True  # early stopping
        if st.step % cfg.ckpt_every == 0:
            s.save_last()
        s.save_snapshots(clock.since_last_check(st.clock_seconds))


def _train(s: Session) -> Path:
    cfg, env, st = s.cfg, s.env, s.state
    autocast = device_autocast(s.precision, env.device, env.rank == 0)
    s.net.train()
    finished = stopped = timed_out = False
    meter, bar = _Meter(s), s.progress_bar()
    clock = _Clock(st.clock_seconds, cfg.time_limit)  # the limit counts per invocation
    with StopRequest() as stop, OtherLoad() as load:
        while st.epoch < cfg.epochs and not finished and not s.reached_max_steps():
            stopped, exhausted, timed_out, finished = _epoch(s, stop, clock, autocast, meter, bar)
            if exhausted:
                if st.batch_in_epoch == 0:
                    raise TrainError(
                        f"an epoch of {cfg.train_splits} gave no batch: --samples-per-epoch "
                        f"{cfg.samples_per_epoch} is below --batch-size {cfg.batch_size}?"
                    )
                st.epoch += 1
                st.batch_in_epoch = 0
                if cfg.val_every is None:
                    finished = meter.validate()  # True: early stopping
            s.save_last()  # at each epoch end, and when stopping for any reason
    if bar is not None:
        bar.close()
    _end(s, stopped, timed_out, load)
    return s.run


def _end(s: Session, stopped: bool, timed_out: bool, load: OtherLoad) -> None:
    """Say how to go on, give the final weights a score, write the end line (with the cores
    other processes kept busy while this one trained: `load`)."""
    st = s.state
    if stopped:
        log.warning(
            "interrupted at step %d (epoch %d); %s saved. Resume with:\n  %s",
            st.step, st.epoch, s.run / "last.pt", s.resume_command(),
        )  # fmt: skip
    elif st.last_val_step != st.step and s.has_val:
        s.validate(final=True)  # a score for the weights we stop with
        s.save_last()  # last.pt records whether best.pt now holds these weights
    if timed_out and not stopped and s.env.is_main:  # every rank stops at the same step
        log.warning(
            "time limit of %s min reached at step %d; continue with:\n  %s",
            s.cfg.time_limit, st.step, s.resume_command(),
        )  # fmt: skip
    # Only a run that stopped on its clock ended at fewer steps (one that ran out of epochs
    # first did every step); under torchrun the other ranks are other processes: single runs only
    if timed_out and load.noticeable() and not s.env.distributed:
        log.warning(
            "warning: other processes kept %.1f of the %d cores busy while this time-limited "
            "run trained, so it ended at fewer steps than a quiet machine gives; for a result "
            "to compare with others, train alone", load.cores, os.cpu_count() or 1,
        )  # fmt: skip
    s.finish(load.cores)
