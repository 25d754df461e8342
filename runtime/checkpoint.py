"""Checkpoints: one dict per file, written atomically, loaded with `weights_only=True`.

A checkpoint rebuilds its own model: it holds the model config beside the weights, so
inference never asks for architecture flags. Payload keys written by the trainer:
    "format": 1, "task": "frames" | "segment" (absent in older files: frames),
    "model_config": dict (the task's model config), "model": state_dict, "train_config": dict,
    "optimizer", "scheduler": state dicts, "early_stopping": {"best": float, "bad": int},
    "step", "epoch", "batch_in_epoch": ints, "best_val": float | None,
    "rng": list (one entry per rank) of {"torch": ByteTensor, "cuda": ByteTensor | None
           (the rank's own GPU; older files: a list, one per visible GPU), "numpy": {...},
           "python": tuple}
Everything is tensors or plain Python types, so the safe loader accepts it.
"""

from __future__ import annotations

import os
import random
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch
from convrnn_video.convrnn import ModelConfig, build_model
from convrnn_video.runtime.errors import RunError
from convrnn_video.segment import SegConfig, build_segmenter

FORMAT = 1
# The model config and the builder of each task's model: how a checkpoint rebuilds its model.
MODELS: dict[str, tuple[Any, Any]] = {
    "frames": (ModelConfig, build_model),
    "masks": (ModelConfig, build_model),
    "tracks": (ModelConfig, build_model),
    "segment": (SegConfig, build_segmenter),
}


def save_checkpoint(path: Path | str, payload: dict[str, Any]) -> Path:
    """Write `payload` to `path` atomically (`path.tmp`, fsync, then os.replace)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        torch.save({"format": FORMAT, **payload}, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path


def save_untrained(path: Path | str, cfg: Any, seed: int = 0) -> Path:
    """Save a freshly initialised model of `cfg` (a ModelConfig, of frames or masks, or a
    SegConfig) as a step-0
    checkpoint (what tests and benchmarks predict with when the weights do not matter)."""
    # frames | masks | tracks | segment
    task = "segment" if isinstance(cfg, SegConfig) else getattr(cfg, "forecast", "frames")
    torch.manual_seed(seed)
    model = build_task_model(task, cfg)
    payload = {"task": task, "model_config": cfg.to_dict(), "model": model.state_dict(),
               "train_config": {}, "step": 0, "epoch": 0, "best_val": None}  # fmt: skip
    return save_checkpoint(path, payload)


def model_config_from_dict(task: str, d: dict[str, Any]) -> Any:
    """The model config of a `task` checkpoint from its dict (inverse of the config's
    `to_dict`); ValueError for an unknown task."""
    return _models_of(task)[0].from_dict(d)


def build_task_model(task: str, cfg: Any) -> torch.nn.Module:
    """The model of a `task` that `cfg` describes (float32 parameters on the CPU)."""
    return _models_of(task)[1](cfg)


def _models_of(task: str) -> tuple[Any, Any]:
    if task not in MODELS:
        raise ValueError(f"unknown task {task!r}; choose one of {', '.join(MODELS)}")
    return MODELS[task]


def checkpoint_task(payload: dict[str, Any]) -> str:
    """The task a checkpoint was trained for ("frames" for files older than tasks)."""
    return str(payload.get("task", "frames"))


def _short_reason(text: str, limit: int = 160) -> str:
    """The first line of a library's error without terminal colour codes, cut to `limit`
    characters at a sentence end, else at a word (then "..."): never mid-word."""
    line = re.sub(r"\x1b\[[0-9;]*m", "", (text.splitlines() or [""])[0]).strip()
    if not line:
        return "no detail"
    if len(line) <= limit:
        return line
    head = line[: limit + 1]
    end = head.rfind(". ")
    if end >= limit // 3:
        return head[: end + 1]
    return head.rsplit(" ", 1)[0].rstrip(",;:") + " ..."


def load_checkpoint(path: Path | str) -> dict[str, Any]:
    """Load a checkpoint onto the CPU with `weights_only=True`; a clear RunError if the
    file is missing, truncated, or not one of our checkpoints."""
    path = Path(path)
    if not path.is_file():
        raise RunError(f"checkpoint not found: {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a damaged file can fail anywhere in the unpickler
        detail = _short_reason(str(exc))
        raise RunError(
            f"checkpoint {path} is corrupt or not a checkpoint ({type(exc).__name__}: {detail}); "
            "delete it or resume from another file (best.pt / last.pt)"
        ) from exc
    if not isinstance(payload, dict) or "model" not in payload or "model_config" not in payload:
        raise RunError(
            f"{path} is a torch file but not a training checkpoint "
            "(expected a dict with 'model' and 'model_config')"
        )
    return payload


def load_model(path: Path | str, device: torch.device | str = "cpu", task: str | None = None):
    """Rebuild the model a checkpoint describes: -> (model in eval mode on `device`, its
    config, payload). With `task`, a checkpoint of another task is a RunError."""
    payload = load_checkpoint(path)
    found = checkpoint_task(payload)
    if task is not None and found != task:
        raise RunError(
            f"{path} is a {found} checkpoint; expected a {task} checkpoint "
            f"(made by `python cli.py train --task {task}`)"
        )
    try:
        cfg = model_config_from_dict(found, payload["model_config"])
        model = build_task_model(found, cfg)
        model.load_state_dict(payload["model"])
    except (ValueError, RuntimeError, KeyError, TypeError) as exc:
        raise RunError(f"checkpoint {path} does not rebuild its model: {exc}") from exc
    return model.to(device).eval(), cfg, payload


def rng_state() -> dict[str, Any]:
    """This process's RNG states as tensors and plain types (safe for weights_only)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, py_state, gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        # this process's GPU only: a resume that sees fewer GPUs still restores it
        "cuda": torch.cuda.get_rng_state() if torch.cuda.is_available() else None,
        "numpy": {
            "kind": kind,
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached": float(cached),
        },
        "python": [version, list(py_state), gauss],
    }


def cuda_state_for_device(saved: Any, index: int) -> torch.Tensor | None:
    """The CUDA RNG state to restore on GPU `index` from a saved "cuda" entry: the one state
    (this format), entry `index` of an older file's list of every visible GPU, or None when
    nothing was saved or the list has no such GPU."""
    if isinstance(saved, torch.Tensor):
        return saved
    if isinstance(saved, (list, tuple)) and 0 <= index < len(saved):
        return saved[index]
    return None


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what `rng_state` captured (the CUDA state onto this process's GPU)."""
    torch.set_rng_state(state["torch"])
    if torch.cuda.is_available():
        cuda = cuda_state_for_device(state.get("cuda"), torch.cuda.current_device())
        if cuda is not None:
            torch.cuda.set_rng_state(cuda)
    n = state["numpy"]
    np.random.set_state(
        (n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"])
    )
    version, py_state, gauss = state["python"]
    random.setstate((version, tuple(py_state), gauss))
