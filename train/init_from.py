"""Fine-tuning (`train --init-from CKPT`): what a new run takes from the checkpoint it starts
from (`settle_init_from`, before the config is validated) and the model config it builds,
checked against the run (`init_model_config`, before the run folder is written)."""

from __future__ import annotations

import logging
from typing import Any

from convrnn_video.runtime.checkpoint import checkpoint_task, load_checkpoint
from convrnn_video.train.config import TrainConfig
from convrnn_video.train.errors import TrainError

log = logging.getLogger(__name__)


def settle_init_from(cfg: TrainConfig) -> TrainConfig:
    """A new run --init-from a checkpoint takes what the user left out from it: the task
    (None: the checkpoint's), and for a mask forecaster the --segmenter and --labels its run
    recorded. -> cfg, changed in place."""
    if not cfg.init_from or cfg.resume:
        return cfg
    init = load_checkpoint(cfg.init_from)
    source = init.get("train_config") or {}
    if cfg.task is None:
        cfg.task = checkpoint_task(init)
    model = init.get("model_config") or {}
    for name in ("frames_in", "frames_out"):  # the model's, unless given
        if getattr(cfg, name) is None and model.get(name):
            setattr(cfg, name, int(model[name]))
    if cfg.task in ("masks", "tracks") and source.get("task") == cfg.task:
        for name in ("segmenter", "labels"):
            if getattr(cfg, name) is None and source.get(name):
                setattr(cfg, name, source[name])
                log.info("--%s %s (from the run of %s)", name, source[name], cfg.init_from)
    return cfg


def init_model_config(task: Any, cfg: TrainConfig, init: dict[str, Any]) -> Any:
    """The model config of a checkpoint `init` a new run starts from (--init-from): a
    TrainError, before the run folder is written, for another task or a model that reads or
    predicts other frame counts than the run's."""
    found = checkpoint_task(init)
    if found != cfg.task:
        raise TrainError(
            f"--init-from {cfg.init_from} is a {found} checkpoint; this run trains "
            f"--task {cfg.task}"
        )
    try:
        model_cfg = task.config_from_dict(init["model_config"])
    except (ValueError, TypeError) as exc:
        raise TrainError(f"--init-from {cfg.init_from}: {exc}") from None
    frames = (getattr(model_cfg, "frames_in", None), getattr(model_cfg, "frames_out", None))
    if None not in frames and frames != (cfg.frames_in, cfg.frames_out):
        raise TrainError(
            f"--init-from {cfg.init_from}: its model reads {frames[0]} frames and predicts "
            f"{frames[1]}, this run asks for --frames-in {cfg.frames_in} --frames-out "
            f"{cfg.frames_out} (leave both out to take the checkpoint's)"
        )
    return model_cfg
