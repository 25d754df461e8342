"""The encoder-forecaster's building blocks: the convolution layout this machine prefers, the
stage, upsampling and head layers built from a ModelConfig, the edges between frames and the
recurrent grid (space_to_depth, head_to_frame), and the scheduled-sampling input. Shared by
forecaster.py and the naive reference (reference.py), so both build the same parameters.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .config import ModelConfig


def prefers_channels_last(cpu_capability: str, cuda: bool) -> bool:
    """Do the model's convolutions run faster channels_last than NCHW here? cpu_capability:
    `torch.backends.cpu.get_cpu_capability()`; cuda: whether a GPU will run them.

    Measured (benchmarks/model_step.py --compare-contiguous, benchmarks/defaults.py): on
    AVX-512 CPUs channels_last is the faster layout; on AVX2 CPUs oneDNN's fp32 channels_last
    convolutions are slower (forward + backward of seed's 5x5 gate convolutions 1.4-1.9x) and
    made seed's training step 1.5x slower than NCHW. Classes not measured keep channels_last."""
    return cuda or cpu_capability != "AVX2"


def machine_prefers_channels_last() -> bool:
    """`prefers_channels_last` for this machine (a GPU, if any, being the one that runs)."""
    return prefers_channels_last(torch.backends.cpu.get_cpu_capability(), torch.cuda.is_available())


def upsampler(in_ch: int, out_ch: int, stride: int, kernel: int) -> nn.ConvTranspose2d:
    """A transposed conv that multiplies the grid by `stride` (1: a 3x3 same-size conv)."""
    if stride == 1:
        return nn.ConvTranspose2d(in_ch, out_ch, 3, 1, 1)
    return nn.ConvTranspose2d(in_ch, out_ch, kernel, stride, (kernel - stride) // 2)


def build_stage_convs(cfg: ModelConfig) -> nn.ModuleList:
    """The encoder's stage convolutions: (patched frame | RNN i-1 output) -> stage i input."""
    enc_in = (cfg.in_channels * cfg.patch**2,) + cfg.hidden[:-1]
    return nn.ModuleList(
        nn.Conv2d(
            enc_in[i],
            cfg.stage_channels[i],
            cfg.stage_kernels[i],
            cfg.strides[i],
            cfg.stage_kernels[i] // 2,
        )
        for i in range(cfg.stages)
    )


def build_ups(cfg: ModelConfig) -> nn.ModuleList:
    """ups[i] takes forecaster stage i+1 to the grid of stage i, undoing strides[i+1]."""
    return nn.ModuleList(
        upsampler(cfg.hidden[i + 1], cfg.up_channels[i], cfg.strides[i + 1], cfg.up_kernel)
        for i in range(cfg.stages - 1)
    )


def space_to_depth(frames: Tensor, p: int) -> Tensor:
    """(..., C, H, W) -> (..., C*p*p, H/p, W/p) (identity for p = 1)."""
    if p == 1:
        return frames
    *lead, c, h, w = frames.shape
    # pixel_unshuffle's channel order (c, i, j), laid out channels_last in one copy, the layout
    # the convolutions read (pixel_unshuffle writes NCHW, which the first conv then converts).
    blocks = frames.reshape(-1, c, h // p, p, w // p, p).permute(0, 2, 4, 1, 3, 5)
    out = blocks.reshape(-1, h // p, w // p, c * p * p).permute(0, 3, 1, 2)  # (N, C*p*p, h, w)
    return out.reshape(*lead, *out.shape[-3:])


def head_to_frame(raw: Tensor, base: Tensor, cfg: ModelConfig) -> Tensor:
    """Head output (N, C*p*p, h, w) -> frame (N, C, H, W) in [0, 1]; base: (N, C, H, W), the
    frame a residual prediction adds its change to."""
    if cfg.patch > 1:
        raw = F.pixel_shuffle(raw, cfg.patch)
    if cfg.output == "residual":
        return (base + raw).clamp(0.0, 1.0)
    return torch.sigmoid(raw)


def scheduled_input(pred: Tensor, targets: Tensor | None, k: int, teacher_prob: float) -> Tensor:
    """The frame forecaster step k starts from: the previous prediction (B, C, H, W), or per
    video with probability teacher_prob the true frame k-1 (scheduled sampling). Masks: both
    as the encoder's grid."""
    if targets is None or teacher_prob <= 0:
        return pred
    use_true = torch.rand(pred.shape[0], 1, 1, 1, device=pred.device)
    return torch.where(use_true < teacher_prob, targets[:, k - 1], pred)


def build_head(cfg: ModelConfig, in_ch: int) -> nn.Sequential:
    """3x3 conv + LeakyReLU per `head_channels` entry, then a 1x1 conv to the (patched) frame
    (masks: to the patched logits, channels ordered (i, j, class); see masks.py)."""
    layers: list[nn.Module] = []
    for ch in cfg.head_channels:
        layers += [nn.Conv2d(in_ch, ch, 3, padding=1), nn.LeakyReLU(cfg.leak)]
        in_ch = ch
    layers.append(nn.Conv2d(in_ch, cfg.out_channels * cfg.patch**2, 1))
    return nn.Sequential(*layers)
