"""What a task is: everything that differs between the models one trainer trains.

The loop in train/loop.py and the Session in train/session.py know nothing of frames, masks or
segmenters; they ask the task. A task says
- which model config and model it builds (from a preset, or from a checkpoint's dict),
- what the loaders read (frames in/out, masks),
- one training step: batch -> (loss, named scalar tensors to log),
- one validation: model + loader -> (model metrics, baseline metrics), and the validation
  loss that picks best.pt (lower is better), and the log line that reports it,
- what curves.png plots.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import torch
from convrnn_video.runtime.checkpoint import build_task_model, model_config_from_dict
from convrnn_video.runtime.distributed import DistEnv
from convrnn_video.train.config import TrainConfig


@dataclass
class StepContext:
    """What a training step needs besides the batch."""

    device: torch.device  # where the batch goes
    step: int  # optimizer steps done before this one
    autocast: contextlib.AbstractContextManager  # bf16 autocast or a null context
    cfg: TrainConfig  # the run's options
    model_cfg: Any  # the model's config (ModelConfig, SegConfig)


class Task:
    """The interface; see train/tasks/frames.py and train/tasks/segment.py."""

    name: str = ""
    baseline_key: str = "baseline"  # the val record's key for the baseline's metrics
    curve_panels: tuple[tuple[str, str], ...] = ()  # (metric, title) plotted against steps
    train_scalars: tuple[str, ...] = ()  # what train_step returns beside the loss
    samples: str = "videos"  # what a training batch counts (the rate's unit in the log)

    def setup(self, cfg: TrainConfig) -> None:
        """Bind the run's final options (called once the config is settled)."""
        self.cfg = cfg

    def preflight(self, cfg: TrainConfig, env: DistEnv, with_val: bool) -> None:
        """Open and check what the task reads besides the shards (before the run folder is
        written; `with_val`: the run validates); a TrainError names the problem."""

    def model_config(self, cfg: TrainConfig) -> Any:
        """The model config of a new run (from `cfg.preset`)."""
        raise NotImplementedError

    def fit_geometry(self, model_cfg: Any, geometry: tuple[int, int, int, int], fresh: bool):
        """The model config for frames of `geometry` (frames, height, width, channels): a new
        model (`fresh`) takes the shards' size and channels; a trained one must already read
        them. A TrainError names a mismatch or a size the model's strides do not divide."""
        return model_cfg

    def config_from_dict(self, d: dict[str, Any]) -> Any:
        """Inverse of the config's `to_dict` (what a checkpoint holds)."""
        return model_config_from_dict(self.name, d)

    def build(self, model_cfg: Any) -> torch.nn.Module:
        """The task's model (runtime.checkpoint.MODELS: how a checkpoint rebuilds it too)."""
        return build_task_model(self.name, model_cfg)

    def train_batches(self, cfg: TrainConfig, env: DistEnv, epoch: int, start: int):
        """This rank's training batches of an epoch when the task makes its own (sized, the
        first `start` skipped); None: the shard loader's videos (`loader_kwargs`)."""
        return None

    def val_batch_size(self, cfg: TrainConfig) -> int:
        """Videos per validation batch when --val-batch-size is not given."""
        return int(cfg.val_batch_size or cfg.batch_size)

    def samples_in(self, batch: Any) -> int:
        """The samples of a training batch (videos of a shard loader's batch)."""
        return int(batch["inputs"].shape[0])

    def loader_kwargs(self, cfg: TrainConfig, mode: str) -> dict[str, Any]:
        """`frames_in`, `frames_out` and `masks` for shards.loader.make_loader."""
        raise NotImplementedError

    def check_split(self, cfg: TrainConfig, split: str, entry: dict[str, Any]) -> str | None:
        """A problem with using manifest `entry` of `split` for this task, or None."""
        return None

    def train_step(self, net: torch.nn.Module, batch: dict, ctx: StepContext):
        """-> (loss tensor, {name: detached 0-dim tensor} for `train_scalars`); nothing here
        reads a value back to the host (on a GPU that would wait for the step's kernels)."""
        raise NotImplementedError

    def dummy_loss(self, model: torch.nn.Module) -> torch.Tensor:
        """A loss from a small random batch (which parameters get no gradient, for DDP)."""
        raise NotImplementedError

    def evaluate(
        self, model: torch.nn.Module, loader, env: DistEnv, autocast, with_baseline: bool
    ) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """Score a whole split (sums over ranks) -> (model metrics, baseline or None); ({},
        None) when the split gave no video."""
        raise NotImplementedError

    def val_loss(self, metrics: dict[str, Any], cfg: TrainConfig) -> float:
        """The number best.pt, the plateau scheduler and early stopping follow (lower wins)."""
        raise NotImplementedError

    def summary(self, metrics: dict[str, Any], baseline: dict[str, Any]) -> str:
        """One log fragment comparing the model with the baseline."""
        raise NotImplementedError
