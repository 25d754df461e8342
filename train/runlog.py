"""RunLog: what a training run writes and says besides its checkpoints. RUN/config.json and
the startup lines; RUN/metrics.jsonl (cut back on a resume to the step it resumes from) with
its train, val and end lines; the progress bar on a terminal, plain progress lines off one;
curves.png, train.csv and val.csv redrawn from metrics.jsonl. Files are written by rank 0."""

from __future__ import annotations

import json
import logging
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

from convrnn_video.runtime import runs
from convrnn_video.runtime.distributed import DistEnv
from convrnn_video.train.config import TrainConfig
from convrnn_video.train.plots import write_curves
from convrnn_video.train.tables import write_tables

log = logging.getLogger(__name__)
PLAIN_SECONDS = 30.0  # least time between plain progress lines (off a terminal)


def format_loss(loss: float | None) -> str:
    """A loss as a person reads it: 5 significant digits; "none" before any validation."""
    return "none" if loss is None else f"{loss:.5g}"


def format_seconds(seconds: float) -> str:
    """A duration as "1 h 05 min", "3 min 20 s" or "42 s"."""
    s = int(round(seconds))
    if s >= 3600:
        return f"{s // 3600} h {s % 3600 // 60:02d} min"
    if s >= 60:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s} s"


class RunLog:
    """The log of the run in folder `run` (task `task`, at most `budget` optimizer steps): the
    Session builds each record, the RunLog writes it, shows it and draws the curves."""

    def __init__(self, cfg: TrainConfig, run: Path, env: DistEnv, task: Any, budget: int) -> None:
        self.cfg, self.run, self.env, self.task, self.budget = cfg, run, env, task, budget
        self.metrics_path = run / runs.METRICS
        self._plain_at: float | None = None  # when the last plain progress line was logged

    def start(
        self, settings: dict[str, Any], steps_per_epoch: int, step: int, resumed: bool
    ) -> None:
        """Write RUN/config.json (`settings`, the run as resolved), on a resume drop the
        metrics.jsonl lines past `step`, and log what the run runs (rank 0 only)."""
        self.run.mkdir(parents=True, exist_ok=True)
        tmp = self.run / (runs.CONFIG + ".tmp")
        tmp.write_text(json.dumps(settings, indent=2) + "\n")
        os.replace(tmp, self.run / runs.CONFIG)
        log.info("run folder %s (settings in %s; -v prints them)", self.run, runs.CONFIG)
        log.debug("%s", json.dumps(settings["train"], indent=None))
        if resumed and self.metrics_path.exists():
            self._cut_metrics(step)
        about = self.describe(settings["parameters"], settings["precision"], steps_per_epoch, step)
        log.info("%s", about)

    def _cut_metrics(self, step: int) -> None:
        """Drop lines written after the checkpoint we resume from (at `step`): they will be
        redone."""
        kept = []
        for line in self.metrics_path.read_text().splitlines():
            try:
                if json.loads(line).get("step", 0) <= step:
                    kept.append(line)
            except json.JSONDecodeError:
                continue
        # a new file renamed over the old one: a kill here keeps the whole history
        tmp = self.metrics_path.with_name(runs.METRICS + ".tmp")
        with open(tmp, "w") as f:
            f.write("".join(k + "\n" for k in kept))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.metrics_path)

    def describe(self, params: int, precision: str, steps_per_epoch: int, step: int) -> str:
        """What the run runs on and for how long, in two lines (logged before it starts)."""
        cfg, env = self.cfg, self.env
        procs = f", {env.world_size} processes" if env.distributed else ""
        capped = cfg.max_steps and cfg.max_steps < cfg.epochs * steps_per_epoch
        span = "--max-steps" if capped else f"{cfg.epochs} epochs"
        limit = f", or {cfg.time_limit:g} min" if cfg.time_limit else ""
        if cfg.lr_schedule == "cosine":
            sched = f"cosine, warm-up {cfg.warmup_steps}"
        else:
            sched = "lowered on val plateaus"
        if cfg.time_limit and not capped:  # the time ends the run, not the steps
            budget = f"budget {cfg.time_limit:g} min (--time-limit; at most {self.budget:,} steps)"
        else:
            budget = f"budget {self.budget:,} steps ({span}{limit})"
        return (
            f"training {cfg.task} ({cfg.preset}, {params:,} parameters) on {env.device}, "
            f"{precision}, {env.threads} thread(s){procs}: batch {cfg.batch_size}, "
            f"{steps_per_epoch} steps per epoch\n"
            f"{budget} from step {step}; "
            f"lr {cfg.lr:g} ({sched}); ETA on the bar, else in the log after the first steps"
            f"{self._validations()}"
        )

    def _validations(self) -> str:
        """When the run validates and on what (a third line), or nothing without --val-split."""
        cfg = self.cfg
        if not cfg.val_split:
            return ""
        when = f"every {cfg.val_every:,} steps" if cfg.val_every else "at each epoch end"
        videos = f"the first {cfg.val_videos:,}" if cfg.val_videos else "all"
        return (
            f"\nvalidating {when} (--val-every) and at the end, on {videos} {cfg.val_split} "
            "videos (--val-videos)"
        )

    def progress_bar(self, step: int):
        """A tqdm bar from `step` on a terminal; None off a terminal (a log file: plain lines
        instead), with --no-progress, under --quiet and on ranks other than 0."""
        shown = self.cfg.progress and sys.stderr.isatty() and log.isEnabledFor(logging.INFO)
        if not (self.env.is_main and shown):
            return None
        from tqdm import tqdm

        return tqdm(total=self.budget, initial=step, unit="step", dynamic_ncols=True)

    def append(self, record: dict[str, Any]) -> None:
        """Add `record` as a line of metrics.jsonl (rank 0 only)."""
        if self.env.is_main:
            with open(self.metrics_path, "a") as f:
                f.write(json.dumps(record) + "\n")

    def train(self, record: dict[str, Any], bar) -> None:
        """Append a train line and show it: on the `bar`, else as a plain line."""
        self.append(record)
        if bar is not None:
            bar.set_postfix(
                loss=f"{record['loss']:.5f}",
                samples_s=f"{record['samples_per_s']:.1f}",
                epoch=record["epoch"],
            )
        else:
            self._plain_line(record)

    def _plain_line(self, record: dict[str, Any]) -> None:
        """Without a bar: a plain log line with the loss and the ETA, at most every
        PLAIN_SECONDS (the first one always)."""
        now = time.time()
        if self._plain_at is not None and now - self._plain_at < PLAIN_SECONDS:
            return
        self._plain_at = now
        step, total = record["step"], self.budget
        rate = record["samples_per_s"] / (self.cfg.batch_size * self.env.world_size)  # steps/s
        left = (total - step) / rate if rate > 0 else math.inf
        if self.cfg.time_limit:  # the time limit may end the run first
            left = min(left, max(0.0, 60 * self.cfg.time_limit - record.get("time", 0.0)))
        eta = format_seconds(left) if math.isfinite(left) else "?"
        log.info(
            "step %d/%d (epoch %d): loss %.5f, lr %.3g, %.1f %s/s, ETA %s",
            step, total, record["epoch"], record["loss"], record["lr"], record["samples_per_s"],
            self.task.samples, eta,
        )  # fmt: skip

    def val(self, record: dict[str, Any]) -> None:
        """Append a val line and log it."""
        self.append(record)
        key = self.task.baseline_key
        log.info(
            "val step %d: loss %.5f (%s %.5f) | %s | lr %.3g%s",
            record["step"], record["loss"], key, record[f"{key}_loss"],
            self.task.summary(record["model"], record[key]), record["lr"],
            " (new best)" if record["best"] else "",
        )  # fmt: skip

    def curves(self) -> None:
        """curves.png, train.csv and val.csv from metrics.jsonl (rank 0 only)."""
        if not self.env.is_main:
            return
        write_curves(
            self.metrics_path, self.run / runs.CURVES, self.task.curve_panels,
            self.task.baseline_key,
        )  # fmt: skip
        write_tables(self.metrics_path, self.run)

    def end(self, record: dict[str, Any], best_saved: float | None) -> None:
        """Append the end line, draw the curves, warn if the ranks disagree, say where the run
        is (`best_saved`: the val loss of best.pt)."""
        self.append(record)
        self.curves()
        steps, diffs, lrs = record["rank_steps"], record["rank_weight_diff"], record["rank_lr"]
        if max(diffs) > 0 or len(set(steps)) > 1 or len(set(lrs)) > 1:
            log.warning(
                "warning: ranks disagree: steps %s, weight diffs %s, lr %s", steps, diffs, lrs
            )
        log.info(
            "done: %d steps, %d epochs, best val loss %s (best.pt); run folder %s",
            record["step"], record["epoch"], format_loss(best_saved), self.run,
        )  # fmt: skip
