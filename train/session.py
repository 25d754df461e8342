"""Session: everything one training run holds (model, optimizer, state, files) and its chores:
checking the shards, resuming, validating and checkpointing. The loop drives it; what the run
writes and says besides checkpoints goes through its RunLog (train/runlog.py), its checkpoints
and their resume through its Checkpoints (train/checkpoints.py)."""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path
from typing import Any

import torch
from convrnn_video.runtime import runs
from convrnn_video.runtime.checkpoint import load_checkpoint
from convrnn_video.runtime.device import autocast as device_autocast
from convrnn_video.runtime.device import resolve_precision
from convrnn_video.runtime.distributed import DistEnv, max_diff_from_rank0, unused_parameters
from convrnn_video.shards.errors import ShardError
from convrnn_video.train.checkpoints import Checkpoints, TrainState, resumed_config
from convrnn_video.train.config import TrainConfig
from convrnn_video.train.data import check_shards, make_batches
from convrnn_video.train.errors import TrainError
from convrnn_video.train.identity import check_same_data, data_identity
from convrnn_video.train.init_from import init_model_config
from convrnn_video.train.runlog import RunLog
from convrnn_video.train.schedule import budget_progress, cosine_lr, epoch_budget
from convrnn_video.train.tasks import get_task

log = logging.getLogger(__name__)


class Session:
    def __init__(
        self, cfg: TrainConfig, run: Path, env: DistEnv, explicit: set[str] | None = None
    ) -> None:
        """The run in folder `run`: a new one, fine-tuned (--init-from) or resumed from
        RUN/last.pt (--resume, the saved options under the `explicit` ones); everything is
        checked before the run folder is written."""
        payload = load_checkpoint(run / runs.LAST) if cfg.resume else None
        if payload is not None:
            cfg = resumed_config(payload, cfg, run / runs.LAST, explicit)
        cfg.out = str(run)
        self.task = get_task(cfg.task)
        init = None  # the --init-from checkpoint of a new run
        if payload is not None:
            try:
                self.model_cfg = self.task.config_from_dict(payload["model_config"])
            except (ValueError, TypeError) as exc:
                raise TrainError(f"{run / runs.LAST}: bad model config: {exc}") from None
        else:
            self.model_cfg = self.task.model_config(cfg)
            if cfg.init_from:  # fine-tuning: that checkpoint's model and weights
                init = load_checkpoint(cfg.init_from)
                self.model_cfg = init_model_config(self.task, cfg, init)
                # the run's config names the preset the model really comes from
                cfg.preset = (init.get("train_config") or {}).get("preset") or "init-from"
        self.cfg, self.run, self.env = cfg, run, env
        self._check_inputs(payload)
        self._build(payload, init)
        self.net: torch.nn.Module = self._wrap()
        self.baseline: dict[str, Any] | None = None
        self.started = time.time()
        self.runlog = RunLog(cfg, run, env, self.task, self.budget())
        if env.is_main:
            self.runlog.start(
                self.settings(), self.steps_per_epoch, self.state.step, payload is not None
            )

    # --- setup ---------------------------------------------------------------------------

    def _check_inputs(self, payload: dict[str, Any] | None) -> None:
        """The precision, the shards (the same data as the resumed run's `payload`), the
        model's geometry and the batches per epoch: settled before anything is written."""
        cfg, run = self.cfg, self.run
        self.precision = resolve_precision(cfg.precision, self.env.device)  # "fp32" | "bf16"
        self.task.setup(cfg)
        self.has_val, geometry = check_shards(cfg, self.task)
        if payload is not None:  # before anything is written: a resume needs the same data
            check_same_data(payload.get("data"), payload["train_config"], cfg, run / runs.LAST)
        self.data = data_identity(cfg)
        fresh = payload is None and not cfg.init_from
        self.model_cfg = self.task.fit_geometry(self.model_cfg, geometry, fresh)
        self.steps_per_epoch = self._preflight()

    def _build(self, payload: dict[str, Any] | None, init: dict[str, Any] | None) -> None:
        """Model, optimizer, scheduler and state: new, from the weights of `init`
        (--init-from) or restored from `payload` (--resume)."""
        cfg, env = self.cfg, self.env
        torch.manual_seed(cfg.seed)  # the same initial weights on every rank
        self.model = self.task.build(self.model_cfg).to(env.device)
        self.optimizer = torch.optim.Adam(
            self.model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay
        )
        self.scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            self.optimizer, mode="min", factor=cfg.lr_factor, patience=cfg.lr_patience
        )
        self.state = TrainState(
            budget_seconds=60 * cfg.time_limit if cfg.time_limit else None,
            budget_steps=cfg.epochs * self.steps_per_epoch,
        )
        self.checkpoints = Checkpoints(
            cfg, self.run, env, self.task, self.model_cfg, self.data, self.has_val,
            self.model, self.optimizer, self.scheduler,
        )  # fmt: skip
        if init is not None:
            try:
                self.model.load_state_dict(init["model"])
            except (RuntimeError, KeyError, TypeError) as exc:
                detail = (str(exc).splitlines() or ["no detail"])[0][:160]
                raise TrainError(
                    f"--init-from {cfg.init_from}: its weights do not fit the model its config "
                    f"describes ({detail})"
                ) from None
            log.info("starting from the weights of %s (step %s)", cfg.init_from, init.get("step"))
        if payload is not None:
            self.state = self.checkpoints.restore(payload)
            if self.state.budget_steps is None:  # saved before the epoch budget was kept
                self.state.budget_steps = cfg.epochs * self.steps_per_epoch
        else:
            torch.manual_seed(cfg.seed + 1 + env.rank)  # scheduled sampling differs per rank

    def _wrap(self) -> torch.nn.Module:
        """The module the loop steps: the model, in DDP across processes, compiled on
        --compile."""
        env, net = self.env, self.model
        if env.distributed:
            ids = [env.device.index] if env.device.type == "cuda" else None
            unused = unused_parameters(self.model, self.task.dummy_loss)
            if unused:
                log.info("parameters without gradient (DDP told so): %s", ", ".join(unused))
            net = torch.nn.parallel.DistributedDataParallel(
                self.model, device_ids=ids, find_unused_parameters=bool(unused)
            )
        if self.cfg.compile:
            net = torch.compile(net)
        return net

    def _preflight(self) -> int:
        """What would otherwise fail once the run folder exists: an epoch of at least one
        batch, the task's own inputs (the masks task's segmenter and label store).
        -> batches per epoch on this rank."""
        cfg = self.cfg
        self.task.preflight(cfg, self.env, with_val=self.has_val)
        try:
            return len(self._loader("train", list(cfg.train_splits), 0, cfg.batch_size))
        except ShardError as exc:
            raise TrainError(f"--batch-size {cfg.batch_size}: {exc}") from None

    def budget(self) -> int:
        """The optimizer steps the run takes at most (its epochs, capped by --max-steps)."""
        return epoch_budget(self.cfg.epochs, self.steps_per_epoch, self.cfg.max_steps)

    def settings(self) -> dict[str, Any]:
        """The run as resolved, for RUN/config.json: options, model, where and how it runs."""
        return {
            "train": self.cfg.to_dict(),
            "model": self.model_cfg.to_dict(),
            "parameters": sum(p.numel() for p in self.model.parameters()),
            "world_size": self.env.world_size,
            "device": str(self.env.device),
            "precision": self.precision,
            "threads_per_process": self.env.threads,
            "torch": torch.__version__,
            "command": sys.argv,
        }

    # --- data ----------------------------------------------------------------------------

    def _loader(self, mode: str, splits: list[str], epoch: int, batch_size: int, start: int = 0):
        return make_batches(self.cfg, self.task, self.env, mode, splits, epoch, batch_size, start)

    def epoch_batches(self):
        """An iterator over the current epoch's batches, past the ones already trained on (the
        loader's order is fixed by seed and epoch; the skipped ones are not decoded)."""
        st, cfg = self.state, self.cfg
        splits = list(cfg.train_splits)
        return iter(self._loader("train", splits, st.epoch, cfg.batch_size, st.batch_in_epoch))

    def reached_max_steps(self) -> bool:
        return self.cfg.max_steps is not None and self.state.step >= self.cfg.max_steps

    def restore_rng_once(self) -> None:
        """Put back the saved RNG states just before the first resumed step."""
        self.checkpoints.restore_rng_once()

    # --- logging -------------------------------------------------------------------------

    def progress_bar(self):
        """The run's progress bar, or None (see RunLog.progress_bar)."""
        return self.runlog.progress_bar(self.state.step)

    def lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    def schedule_lr(self) -> None:
        """--lr-schedule cosine: set the lr of the coming optimizer step."""
        cfg, st = self.cfg, self.state
        if cfg.lr_schedule != "cosine":
            return
        progress = budget_progress(
            st.step, cfg.max_steps, st.clock_seconds, st.budget_seconds, st.budget_steps
        )
        lr = cosine_lr(cfg.lr, st.step, progress, cfg.warmup_steps, cfg.lr_floor)
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    def log_train(self, interval: torch.Tensor, rate: float, bar) -> None:
        """Append a train line: `interval` holds the sums of the loss and of the task's train
        scalars since the last line, then the step count."""
        st = self.state
        *sums, n = self.env.sum(*interval.tolist())
        names = ("loss", *self.task.train_scalars)
        record = {"kind": "train", "step": st.step, "epoch": st.epoch}
        record.update({name: value / n for name, value in zip(names, sums, strict=True)})
        record.update({"lr": self.lr(), "samples_per_s": rate, "time": time.time() - self.started})
        self.runlog.train(record, bar)

    # --- validation and checkpoints --------------------------------------------------------

    def validate(self, final: bool = False) -> bool:
        """Score the val split (and copy-last-frame, once); step the plateau scheduler and
        early stopping unless `final`; save best.pt on a new best. -> stop early?"""
        if not self.has_val:
            return False
        cfg, st = self.cfg, self.state
        t_start = time.time()
        loader = self._loader("eval", [cfg.val_split], 0, self.task.val_batch_size(cfg))
        was_training = self.model.training
        self.model.eval()
        autocast = device_autocast(self.precision, self.env.device, warn=False)
        metrics, base = self.task.evaluate(
            self.model, loader, self.env, autocast, with_baseline=self.baseline is None
        )
        self.model.train(was_training)
        if not metrics:
            log.warning("warning: split %r yielded no videos; no validation", cfg.val_split)
            return False
        self.baseline = self.baseline or base
        loss = self.task.val_loss(metrics, cfg)
        copy_loss = self.task.val_loss(self.baseline, cfg)
        improved = st.best_val is None or loss < st.best_val  # for the scheduler, early stop
        # best.pt is compared with what it holds, also after report-only final validations
        better = st.best_saved is None or loss < st.best_saved
        if not final:
            if cfg.lr_schedule == "plateau":
                self.scheduler.step(loss)
            st.best_val, st.bad = (loss, 0) if improved else (st.best_val, st.bad + 1)
            st.last_val_step = st.step
        key = self.task.baseline_key
        beats = loss < copy_loss
        self.runlog.val({
            "kind": "val", "step": st.step, "epoch": st.epoch, "loss": loss, "lr": self.lr(),
            f"{key}_loss": copy_loss, f"beats_{key}": beats, "best": better,
            "final": final, "model": metrics, key: self.baseline,
            "time": time.time() - self.started, "val_seconds": time.time() - t_start,
            "train_seconds": st.train_seconds,
        })  # fmt: skip
        if better:
            st.best_saved = loss
            self.checkpoints.save(runs.BEST, st)
        if not final:  # a final validation: finish() draws them next
            self.runlog.curves()
        if not final and cfg.early_stop and st.bad >= cfg.early_stop:
            log.info("early stopping: no better val loss in %d validations", st.bad)
            return True
        return False

    def save_last(self) -> None:
        """RUN/last.pt; without a val split best.pt follows it."""
        self.checkpoints.save_last(self.state)

    def save_snapshots(self, span: tuple[float, float]) -> None:
        """RUN/at-<m>min.pt for each --snapshot-at minute the run's clock passed in `span`
        (seconds every rank agrees on: saving is collective)."""
        self.checkpoints.save_snapshots(span, self.state)

    def resume_command(self) -> str:
        """The command that continues the run from RUN/last.pt."""
        return self.checkpoints.resume_command()

    def finish(self, others_cores: float | None) -> None:
        """Check that ranks agree, write the end line (with `others_cores`: the cores other
        processes kept busy meanwhile, `runtime.load`) and the curves."""
        flat = torch.cat([p.detach().flatten().double() for p in self.model.parameters()])
        diffs = max_diff_from_rank0(self.env, flat)
        steps = self.env.gather(self.state.step)
        lrs = self.env.gather(self.lr())
        self.runlog.end({
            "kind": "end", "step": self.state.step, "epoch": self.state.epoch,
            "rank_steps": steps, "rank_weight_diff": diffs, "rank_lr": lrs,
            "best_val": self.state.best_val, "clock_seconds": self.state.clock_seconds,
            "time": time.time() - self.started,
            "others_cores": None if others_cores is None else round(others_cores, 3),
        }, self.state.best_saved)  # fmt: skip
