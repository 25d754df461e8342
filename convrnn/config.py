"""`ModelConfig` and its validation (the named presets: presets.py). Imports no torch (the CLI
reads it)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

CELLS = ("gru", "lstm")
FORECASTS = ("frames", "masks", "tracks")
MASK_BASES = ("last", "extrapolate")
CONTACT_CONSTANTS = 7  # the fields of convrnn/contacts.py `Contacts`
FLOOR_CONSTANTS = 16  # the fields of convrnn/floor.py `Floor`
# its last three, off: checkpoints fitted before those switches (the aim of new objects and
# every object on the floor, 2026-12-05; objects placed by their whole footprint, 2026-12-06)
# hold fewer and keep playing as they did (`fit-contacts` searches them for a new checkpoint)
FLOOR_SWITCHES_OFF = (0.0, 0.0, 0.0)
# The outputs each forecast allows: frames are in [0, 1], masks are unbounded class logits.
# tracks (convrnn/tracks.py): the last mask's objects moved, as one-hot scores.
OUTPUTS = {"frames": ("sigmoid", "residual"), "masks": ("logits", "residual"), "tracks": ("moved",)}


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild an encoder-forecaster; a checkpoint stores `to_dict()`.

    Stage i of the encoder is conv(stage_kernels[i], strides[i]) -> LeakyReLU -> RNN(hidden[i]);
    the forecaster mirrors it from the top: RNN(hidden[i]) -> upsample, down to stage 0, then the
    output head. Forecaster RNN i starts from the final state of encoder RNN i.
    """

    cell: str = "gru"  # recurrent cell: "gru" (ConvGRU) or "lstm" (ConvLSTM)
    frames_in: int = 11  # observed frames the encoder reads
    frames_out: int = 11  # frames the forecaster predicts
    forecast: str = "frames"  # "frames": RGB in [0, 1] -> RGB; "masks": class ids -> logits
    image_channels: int = 3  # frames: channels of one frame (RGB); unused for masks
    num_classes: int = 49  # masks: class ids are 0..num_classes-1, one logit each per pixel
    embed_channels: int = 8  # masks: channels of the learned class embedding the encoder reads
    height: int = 160  # nominal frame height, for summaries (the net is fully convolutional)
    width: int = 240  # nominal frame width, for summaries
    patch: int = 1  # space-to-depth patch p: a (C, H, W) frame is seen as (C*p*p, H/p, W/p)
    stage_channels: tuple[int, ...] = (64, 64, 96)  # output channels of each encoder stage conv
    stage_kernels: tuple[int, ...] = (3, 3, 3)  # kernel size of each encoder stage conv
    strides: tuple[int, ...] = (1, 2, 2)  # stride of each stage conv; the forecaster undoes it
    hidden: tuple[int, ...] = (64, 96, 96)  # RNN features of each stage (encoder = forecaster)
    rnn_kernels: tuple[int, ...] = (5, 5, 5)  # kernel size of each stage's gate convolutions
    up_channels: tuple[int, ...] = (96, 96)  # forecaster upsampling i+1 -> i output channels
    up_kernel: int = 4  # transposed-conv kernel of a stride-2 upsampling (stride 1: 3x3)
    head_channels: tuple[int, ...] = (16,)  # head: 3x3 conv + LeakyReLU per entry, then 1x1
    # frames: full-resolution refinement after the pixel shuffle, 3x3 conv + LeakyReLU per
    # entry on [predicted frame, last frame], then a zero-initialised 3x3 conv to a correction
    # of the frame; () for none. Smooths the patch grid a shuffled head can leave.
    refine: tuple[int, ...] = ()
    # frames, in eval mode (validation, prediction): a predicted change from the frame a step
    # starts from smaller than this many grey levels (of 255) is snapped to no change, so what
    # the model sees as still stays exactly still (a residual head otherwise leaves sub-level
    # noise on every static pixel); training runs unsnapped. 0: off.
    still_levels: float = 0.0
    norm: bool = True  # GroupNorm on the gate convolutions (the original had it)
    norm_group_size: int = 32  # channels per GroupNorm group (the original: C // 32 groups)
    leak: float = 0.2  # LeakyReLU slope after stage, upsampling and head convolutions
    # frames: "sigmoid" (sigmoid(head)) or "residual" (last frame + head, clamped); masks:
    # "logits" (the head) or "residual" (head + a learned bonus on the last mask's class)
    output: str = "sigmoid"
    autoregressive: bool = False  # feed each prediction back through the encoder (else zeros)
    # residual output: a zero-initialised head also gives a displacement per grid cell and
    # step; each predicted frame is the last observed frame sampled once along the accumulated
    # displacement, plus the residual (masks: the copy bonus follows the moved last mask);
    # convrnn/motion.py. False: the residual builds on the last frame (mask) where it was.
    motion: bool = False
    # masks, residual output: what the copy bonus favours at each predicted step: "last" (the
    # last observed mask, copied) or "extrapolate" (its objects moved along their velocity,
    # slowing by 0.92 a frame: convrnn/extrapolate.py), so a new model starts as that baseline
    mask_base: str = "last"
    zero_init_head: bool = False  # zero the last head conv: a residual net starts as copy-last
    # tracks (convrnn/tracks.py): the MLP's width and the neighbours each object reads
    track_hidden: int = 256
    track_neighbours: int = 4
    # tracks: also read each input step's speed (False in checkpoints made before the field;
    # the preset reads them)
    track_speeds: bool = False
    # tracks: read the steps of objects touching the border or another object by matching
    # their shape, not their centroid (convrnn/shape_steps.py; False in checkpoints made
    # before the field; the preset reads them)
    track_shapes: bool = False
    # tracks: the contact stage's seven constants (convrnn/contacts.py `Contacts`, fitted by
    # `fit-contacts`): forecast objects that meet hit each other; () plays no hits
    track_contacts: tuple[float, ...] = ()
    # tracks: the floor stage's constants (convrnn/floor.py `Floor`; `fit-contacts` sets them
    # where the floor stage scores higher): hits played on the floor plane instead; () none
    track_floor: tuple[float, ...] = ()
    # tracks: the hidden width of the learned state reader that corrects the floor stage's
    # velocities (convrnn/state_reader.py, fitted by `fit-reader`); 0: none
    track_reader: int = 0
    # tracks: the reader's MLPs, whose answers it averages (`fit-reader --members`)
    track_reader_members: int = 1
    # tracks: the reader corrects every object, not only the short tracks (what `fit-reader`
    # writes since 2026-12-06; a reader fitted before corrects the short tracks alone)
    track_reader_every: bool = False
    # tracks: the forecast frames an object first seen in the last input frame is drawn in;
    # after them it is left out (still played: it hits others). Its heading and speed are
    # guesses, and an object drawn where it is not costs the Jaccard more than it gains
    # (docs/benchmarks.md, "Objects first seen in frame 11"); 0: drawn in every frame
    track_new_frames: int = 6

    def __post_init__(self) -> None:
        for name in (
            "stage_channels",
            "stage_kernels",
            "strides",
            "hidden",
            "rnn_kernels",
            "up_channels",
            "head_channels",
            "refine",
        ):
            object.__setattr__(self, name, tuple(int(v) for v in getattr(self, name)))
        for name in ("track_contacts", "track_floor"):
            object.__setattr__(self, name, tuple(float(v) for v in getattr(self, name)))
        missing = FLOOR_CONSTANTS - len(self.track_floor)
        if self.track_floor and 0 < missing <= len(FLOOR_SWITCHES_OFF):  # fitted before
            off = FLOOR_SWITCHES_OFF[len(FLOOR_SWITCHES_OFF) - missing :]
            object.__setattr__(self, "track_floor", self.track_floor + off)
        problems = self.problems()
        if problems:
            raise ValueError("invalid ModelConfig: " + "; ".join(problems))

    @property
    def stages(self) -> int:
        return len(self.hidden)

    def problems(self) -> list[str]:
        """Every inconsistency at once (empty when the config is valid)."""
        out = [*self._layout_problems(), *self._size_problems(), *self._option_problems()]
        if not out and self.forecast != "tracks":  # tracks have no convolutions
            step = self.patch * self.downsampling
            if self.height % step or self.width % step:
                out.append(
                    f"frame {self.height}x{self.width} must divide by patch x strides = {step}"
                )
        return out

    def _layout_problems(self) -> list[str]:
        """The cell and what is forecast; one entry per stage in every per-stage list."""
        out = []
        n = len(self.hidden)
        if self.cell not in CELLS:
            out.append(f"cell must be one of {CELLS}, got {self.cell!r}")
        if self.forecast not in FORECASTS:
            out.append(f"forecast must be one of {FORECASTS}, got {self.forecast!r}")
        elif self.output not in OUTPUTS[self.forecast]:
            out.append(
                f"output must be one of {OUTPUTS[self.forecast]} when forecasting "
                f"{self.forecast}, got {self.output!r}"
            )
        if n < 1:
            out.append("hidden must name at least one stage")
        for name in ("stage_channels", "stage_kernels", "strides", "rnn_kernels"):
            if len(getattr(self, name)) != n:
                out.append(f"{name} has {len(getattr(self, name))} entries, hidden has {n}")
        if len(self.up_channels) != max(n - 1, 0):
            out.append(
                f"up_channels needs {max(n - 1, 0)} entries (one per upsampling), "
                f"got {len(self.up_channels)}"
            )
        return out

    def _size_problems(self) -> list[str]:
        """Sizes, channels and kernels of at least 1."""
        out = []
        for name in (
            "frames_in",
            "frames_out",
            "image_channels",
            "embed_channels",
            "patch",
            "height",
            "width",
            "up_kernel",
            "norm_group_size",
            "track_hidden",
        ):
            if getattr(self, name) < 1:
                out.append(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in (
            "stage_channels",
            "stage_kernels",
            "strides",
            "hidden",
            "rnn_kernels",
            "up_channels",
            "head_channels",
            "refine",
        ):
            if any(v < 1 for v in getattr(self, name)):
                out.append(f"{name} must be positive, got {getattr(self, name)}")
        return out

    def _option_problems(self) -> list[str]:
        """Options that go only with others: refine, still levels, the mask base, motion,
        odd kernels, strides."""
        out = []
        if self.refine and self.forecast != "frames":
            out.append("refine applies to frames only (masks are class logits)")
        if not 0 <= self.still_levels < 255:
            out.append(f"still_levels must be in [0, 255), got {self.still_levels}")
        elif self.still_levels and self.forecast != "frames":
            out.append("still_levels applies to frames only (masks are class logits)")
        if self.mask_base not in MASK_BASES:
            out.append(f"mask_base must be one of {MASK_BASES}, got {self.mask_base!r}")
        elif self.mask_base != "last" and not (self.masks and self.output == "residual"):
            out.append("mask_base 'extrapolate' needs a residual mask model")
        elif self.mask_base != "last" and self.motion:
            out.append("mask_base 'extrapolate' and motion are two ways to move the base: pick one")
        if self.motion and self.output != "residual":
            out.append("motion needs output 'residual' (it moves what the residual builds on)")
        if self.num_classes < 2:
            out.append(f"num_classes must be >= 2, got {self.num_classes}")
        if self.forecast == "tracks" and self.frames_in < 2:
            out.append(f"tracks need frames_in >= 2 (a velocity), got {self.frames_in}")
        if len(self.track_contacts) not in (0, CONTACT_CONSTANTS):
            out.append(f"track_contacts holds {CONTACT_CONSTANTS} constants or none, got "
                       f"{len(self.track_contacts)}")  # fmt: skip
        if len(self.track_floor) not in (0, FLOOR_CONSTANTS):
            out.append(f"track_floor holds {FLOOR_CONSTANTS} constants or none, got "
                       f"{len(self.track_floor)}")  # fmt: skip
        if self.track_reader < 0:
            out.append(f"track_reader must be >= 0, got {self.track_reader}")
        if self.track_reader and not self.track_floor:
            out.append("track_reader corrects the floor stage's state: it needs track_floor")
        if self.track_reader_members < 1:
            out.append(f"track_reader_members must be >= 1, got {self.track_reader_members}")
        if self.track_neighbours < 0:
            out.append(f"track_neighbours must be >= 0, got {self.track_neighbours}")
        if self.track_new_frames < 0:
            out.append(f"track_new_frames must be >= 0, got {self.track_new_frames}")
        if any(k % 2 == 0 for k in self.stage_kernels + self.rnn_kernels):
            out.append("stage_kernels and rnn_kernels must be odd (same padding)")
        if any(s > 1 for s in self.strides) and (self.up_kernel - 2) % 2:
            out.append(f"up_kernel must be even for a stride-2 upsampling, got {self.up_kernel}")
        if any(s not in (1, 2) for s in self.strides):
            out.append(f"strides must be 1 or 2, got {self.strides}")
        if self.strides and self.strides[0] != 1:
            out.append(
                "strides[0] must be 1 (stage 0 runs on the frame grid; use patch to shrink it)"
            )
        return out

    @property
    def masks(self) -> bool:
        """Does the network forecast class masks (else RGB frames)? Both mask forecasters
        (pixels, tracks) read and write class ids."""
        return self.forecast != "frames"

    @property
    def in_channels(self) -> int:
        """Channels of one input frame as the encoder reads it, before patching."""
        return self.embed_channels if self.masks else self.image_channels

    @property
    def out_channels(self) -> int:
        """Channels of one predicted frame: RGB, or one logit per class."""
        return self.num_classes if self.masks else self.image_channels

    @property
    def downsampling(self) -> int:
        """Total stride of the encoder (patching excluded)."""
        total = 1
        for s in self.strides:
            total *= s
        return total

    def grids(self, height: int | None = None, width: int | None = None) -> list[tuple[int, int]]:
        """The recurrent grid (h, w) of every stage for a frame of this size."""
        h = (height or self.height) // self.patch
        w = (width or self.width) // self.patch
        out = []
        for s in self.strides:
            h, w = h // s, w // s
            out.append((h, w))
        return out

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict (tuples become lists)."""
        d = dataclasses.asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelConfig:
        """Inverse of `to_dict`; unknown keys are an error (a newer or foreign checkpoint)."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown ModelConfig fields {unknown}; known: {sorted(known)}")
        return cls(**d)
