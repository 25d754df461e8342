"""The named presets (nanoGPT's `gpt2-medium` dict): `tiny` for tests, `compact` for a CPU,
`seed` the original network, and their mask, motion and track variants. Imports no torch (the
CLI reads it)."""

from __future__ import annotations

import dataclasses
from typing import Any

from .config import ModelConfig

# The original network, exactly (7,112,355 parameters): ConvGRU, zeros fed to the forecaster.
_SEED = ModelConfig()

PRESETS: dict[str, ModelConfig] = {
    "seed": _SEED,
    # The same with ConvLSTM cells (the original's LSTM variant had channel mismatches).
    "seed-lstm": dataclasses.replace(_SEED, cell="lstm"),
    # Trains on a 2-core CPU: 4x4 patches (40x60 grid of 48 channels), two small stages, 3x3
    # gate kernels, residual output starting as copy-last-frame, predictions fed back,
    # changes under 3 grey levels snapped to none (measured: docs/benchmarks.md).
    "compact": ModelConfig(
        cell="gru",
        patch=4,
        stage_channels=(32, 48),
        stage_kernels=(3, 3),
        strides=(1, 2),
        hidden=(32, 48),
        rnn_kernels=(3, 3),
        up_channels=(32,),
        head_channels=(),
        norm=True,
        norm_group_size=16,
        output="residual",
        autoregressive=True,
        zero_init_head=True,
        still_levels=3.0,
    ),
    # For tests: a forward+backward pass on 2 videos of 11 -> 11 frames in a fraction of a second.
    "tiny": ModelConfig(
        cell="gru",
        patch=8,
        stage_channels=(8, 8),
        stage_kernels=(3, 3),
        strides=(1, 2),
        hidden=(8, 8),
        rnn_kernels=(3, 3),
        up_channels=(8,),
        head_channels=(),
        norm=True,
        norm_group_size=4,
        output="sigmoid",
        autoregressive=False,
    ),
}


# Mask forecasting (class ids in, one logit per class out), the three shapes above:
# for tests; compact's net starting as "copy the last observed mask" (residual, zero head);
# the original network's shape (zeros fed to the forecaster) with a plain logit head.
PRESETS["tiny-masks"] = dataclasses.replace(PRESETS["tiny"], forecast="masks", output="logits")
# compact with the motion output (convrnn/motion.py): what moves is moved, not redrawn.
PRESETS["compact-motion"] = dataclasses.replace(PRESETS["compact"], motion=True)
# For tests: tiny with the motion output (a residual head, zeroed: a new one copies the last frame).
PRESETS["tiny-motion"] = dataclasses.replace(
    PRESETS["tiny"], output="residual", motion=True, zero_init_head=True
)
PRESETS["compact-masks"] = dataclasses.replace(
    PRESETS["compact"], forecast="masks", still_levels=0.0
)
PRESETS["seed-masks"] = dataclasses.replace(_SEED, forecast="masks", output="logits")
# compact-masks whose copy bonus follows a learned displacement of the last mask.
PRESETS["compact-masks-motion"] = dataclasses.replace(PRESETS["compact-masks"], motion=True)
# compact-masks starting from the extrapolation baseline instead of copying.
PRESETS["compact-masks-extrapolate"] = dataclasses.replace(
    PRESETS["compact-masks"], mask_base="extrapolate"
)
# The object-track forecaster (convrnn/tracks.py; `train --task tracks`): no convolutions.
PRESETS["tracks"] = dataclasses.replace(
    PRESETS["tiny"], forecast="tracks", output="moved", track_speeds=True, track_shapes=True
)


def get_preset(name: str, **overrides: Any) -> ModelConfig:
    """A named preset with some fields replaced, e.g. `get_preset("tiny", frames_out=5)`."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}")
    return dataclasses.replace(PRESETS[name], **overrides)
