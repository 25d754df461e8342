"""The training tasks, torch-free: their names, the model presets each offers, and the measured
recipe (TASK_DEFAULTS) that `TrainConfig.validate` gives the fields left None.

Torch-free, so the CLI shows the task defaults in --help without importing torch.
"""

from __future__ import annotations

from typing import Any

TASKS = ("frames", "segment", "masks", "tracks")
MASK_TASKS = ("masks", "tracks")  # forecast class masks: validated on the segmenter's masks
# The measured recipe of each task: what a field left None gets in `validate` (docs/benchmarks.md).
# frames: the 20-minute run of benchmarks/train_quality.py (batch 8 and teacher forcing kept
#   the model at copy-last; 300 unlabeled videos did not help at that budget). The preset has
#   the motion output (compact plus a zero-initialised displacement head: it starts as compact
#   does): on AVX2 at 69-150 steps it beat copy-last on MSE at every frame where compact stayed
#   exactly at copy-last, and kept the frames' energy (docs/benchmarks.md, 2026-12-03).
#   Validated on the first 100 val videos at each epoch end: 20.4 s for 100 on 2 Xeon cores
#   (bf16, 2026-12-07), so about 3.4 minutes for the course's 1,000 beside epochs of 250 steps.
# segment: benchmarks/segment_quality.py (Jaccard 0.955 after 24 minutes): many small steps on
#   object-centred windows; the lr stays put while val improves. Validated every 2,000 steps on
#   the first 100 val videos: a validation scores all 22 frames of each, 195 s for 400 videos
#   on 2 Xeon cores (bf16, 2026-12-07), so about 8 minutes for the course's 1,000; an epoch of
#   its 1,000 train videos trains in 24 s; at each epoch end on all of them, a 45-minute budget
#   would train about 5 epochs (660 steps: a Jaccard near 0.3).
# masks: the mask rows of benchmarks/mask_quality.py (0.302, 0.306 after the fine-tune
#   `--init-from RUN/best.pt --ss-steps 100`): 96x144 windows through all frames, teacher
#   forcing decaying over 2000 steps. --labels adds the unlabeled split. The preset starts
#   from the extrapolation baseline (benchmarks/motion.py, 2026-12-03: at 200 steps on true
#   masks 0.536 on frame 22 where compact-masks stayed at copying, 0.422).
# tracks: screened 2026-12-03 on AVX2 with true masks of generated videos (a prototype of
#   convrnn/tracks.py): batch 256 objects, lr 2e-3 warmed up and decayed; 1,000 training
#   videos reached 0.446 on val frame 22 at 3,000 steps, 4,000 videos 0.470 (extrapolation
#   0.428, copying 0.309). Steps cost milliseconds and a validation segments every val video,
#   hence the rare validations. With training windows (every moment of a video: 145,000
#   objects per 1,000 videos with the mirror images), 1,000 videos gave 0.465 after 14 epochs
#   and 0.475 after 28 (12 windows, 110,000 objects): 20 epochs by default, about 160,000
#   steps for the course's 14,000 videos, 20-40 minutes on 2 AVX2 cores (140 steps/s alone).
TASK_DEFAULTS: dict[str, dict[str, Any]] = {
    "frames": {
        "preset": "compact-motion", "train_splits": ("train",), "batch_size": 4, "lr": 1e-3,
        "lr_schedule": "cosine", "warmup_steps": 30, "ss_steps": 0, "early_stop": 0,
        "crop": (0, 0), "epochs": 100, "val_videos": 100,
    },
    "segment": {
        "preset": "small", "train_splits": ("train",), "batch_size": 8, "lr": 2e-3,
        "lr_schedule": "plateau", "warmup_steps": 0, "ss_steps": 0, "early_stop": 15,
        "crop": (64, 96), "epochs": 100, "val_every": 2000, "val_videos": 100,
    },
    "masks": {
        "preset": "compact-masks-extrapolate", "train_splits": ("train",), "batch_size": 4,
        "lr": 1e-3, "lr_schedule": "cosine", "warmup_steps": 20, "ss_steps": 2000, "early_stop": 0,
        "crop": (96, 144), "epochs": 100,
    },
    "tracks": {
        "preset": "tracks", "train_splits": ("train",), "batch_size": 256, "lr": 2e-3,
        "lr_schedule": "cosine", "warmup_steps": 100, "ss_steps": 0, "early_stop": 0,
        "crop": (0, 0), "val_every": 10_000, "epochs": 20,
    },
}  # fmt: skip


def preset_names(task: str) -> tuple[str, ...]:
    """The model presets a task offers (torch-free: read from the config and preset modules)."""
    if task == "segment":
        from convrnn_video.segment.config import PRESETS as SEGMENT_PRESETS

        return tuple(SEGMENT_PRESETS)
    from convrnn_video.convrnn.presets import PRESETS as MODEL_PRESETS

    want = task if task in ("masks", "tracks") else "frames"
    return tuple(
        name for name, c in MODEL_PRESETS.items() if getattr(c, "forecast", "frames") == want
    )
