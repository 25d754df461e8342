"""`SegConfig`, the named segmenter presets, and their validation. Imports no torch (the CLI
reads it)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

NORMS = ("batch", "group", "none")
HEADS = ("flat", "factored")
# The factored head's class layout (../shared/dataset-spec.md, "Classes"):
# id = shape * 16 + material * 8 + colour + 1, background 0.
SHAPES, MATERIALS, COLOURS = 3, 2, 8
FACTORED_CLASSES = 1 + SHAPES * MATERIALS * COLOURS  # 49


@dataclass(frozen=True)
class SegConfig:
    """Everything needed to rebuild a segmenter; a checkpoint stores `to_dict()`.

    A UNet: level i (0 = full resolution) runs two 3x3 conv -> norm -> ReLU blocks with
    `base_channels * 2**i` channels; levels are joined by 2x2 max-pooling going down and 2x2
    transposed convolutions (then concatenation with the skip) coming up. A 1x1 head gives the
    class scores: `flat` predicts the classes directly, `factored` predicts object/background,
    shape, material and colour separately and combines them into 49 log-probabilities.

    The factored head (num_classes must be 49) uses the dataset's class layout,
    id = shape * 16 + material * 8 + colour + 1 (3 shapes, 2 materials, 8 colours, 0 =
    background): log p(0) = log(1 - p(object)), log p(id) = log p(object) + log p(shape) +
    log p(material) + log p(colour). The 49 outputs are normalised log-probabilities, so
    cross-entropy on them is the factored likelihood and their argmax is the class; the
    factors share what is learnt across the 48 kinds (every red pixel teaches "red").
    """

    in_channels: int = 3  # channels of one frame (RGB)
    num_classes: int = 49  # classes per pixel (background + 48 object kinds)
    base_channels: int = 16  # width of level 0; level i has base_channels * 2**i
    levels: int = 4  # UNet depth (1 = no downsampling); the stride is 2**(levels-1)
    norm: str = "batch"  # after every 3x3 conv: "batch", "group" (GroupNorm) or "none"
    norm_group_size: int = 8  # channels per GroupNorm group (norm="group" only)
    head: str = "factored"  # "flat": 49 logits; "factored": object/shape/material/colour
    # (factored learns faster: Jaccard 0.13 against 0.07 for flat after 3 minutes of `small`)
    height: int = 160  # nominal frame height, for summaries (the net is fully convolutional)
    width: int = 240  # nominal frame width, for summaries

    def __post_init__(self) -> None:
        problems = self.problems()
        if problems:
            raise ValueError("invalid SegConfig: " + "; ".join(problems))

    @property
    def stride(self) -> int:
        """Total downsampling: frame height and width must be multiples of it."""
        return 2 ** (self.levels - 1) if self.levels >= 1 else 1

    @property
    def channels(self) -> tuple[int, ...]:
        """Channels of every level, from full resolution down."""
        return tuple(self.base_channels * 2**i for i in range(self.levels))

    @property
    def head_channels(self) -> int:
        """Outputs of the 1x1 head: the classes, or the factors' logits (1 + 3 + 2 + 8)."""
        if self.head == "factored":
            return 1 + SHAPES + MATERIALS + COLOURS
        return self.num_classes

    def problems(self) -> list[str]:
        """Every inconsistency at once (empty when the config is valid)."""
        out = []
        for name in (
            "in_channels",
            "base_channels",
            "levels",
            "norm_group_size",
            "height",
            "width",
        ):
            if getattr(self, name) < 1:
                out.append(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.num_classes < 2:
            out.append(f"num_classes must be >= 2, got {self.num_classes}")
        if self.levels > 8:
            out.append(f"levels must be <= 8, got {self.levels}")
        if self.norm not in NORMS:
            out.append(f"norm must be one of {NORMS}, got {self.norm!r}")
        if self.head not in HEADS:
            out.append(f"head must be one of {HEADS}, got {self.head!r}")
        if self.head == "factored" and self.num_classes != FACTORED_CLASSES:
            out.append(
                f"head='factored' needs num_classes={FACTORED_CLASSES} "
                f"(shape*16 + material*8 + colour + 1), got {self.num_classes}"
            )
        if (
            self.norm == "group"
            and self.norm_group_size >= 1
            and self.base_channels % self.norm_group_size
        ):
            out.append(
                f"norm='group': base_channels {self.base_channels} must be a multiple of "
                f"norm_group_size {self.norm_group_size}"
            )
        if 1 <= self.levels <= 8 and (self.height % self.stride or self.width % self.stride):
            out.append(
                f"frame {self.height}x{self.width} must divide by the stride {self.stride} "
                f"(2**(levels-1))"
            )
        return out

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SegConfig:
        """Inverse of `to_dict`; unknown keys are an error (a newer or foreign checkpoint)."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown SegConfig fields {unknown}; known: {sorted(known)}")
        return cls(**d)


PRESETS: dict[str, SegConfig] = {
    # For tests: forward+backward of one 160x240 frame in about 25 ms of CPU (1 thread, fp32).
    "tiny": SegConfig(base_channels=4, levels=3, norm="batch"),
    # Trains on 2 CPU cores in minutes: forward+backward about 42 CPU-ms per 160x240 frame in
    # bf16 autocast, 61 in fp32 (benchmarks/segment_speed.py, batch 8, 1 thread). Width 8 runs
    # 1.6x more steps but reached a lower Jaccard in the same CPU time (0.11 against 0.18
    # after 2.5 CPU-minutes on generated frames).
    "small": SegConfig(base_channels=16, levels=4, norm="batch"),
    # The wide 4-level UNet of the public course reports (64 -> 512 channels), for a GPU.
    "unet": SegConfig(base_channels=64, levels=4, norm="batch"),
}


def get_preset(name: str, **overrides: Any) -> SegConfig:
    """A named preset with some fields replaced, e.g. `get_preset("small", head="flat")`."""
    if name not in PRESETS:
        raise ValueError(f"unknown segmenter preset {name!r}; choose one of {sorted(PRESETS)}")
    return dataclasses.replace(PRESETS[name], **overrides)
