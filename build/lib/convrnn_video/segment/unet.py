"""The per-frame segmenter: a UNet from one frame (B, C, H, W) in [0, 1] to class scores
(B, num_classes, H, W), built from a SegConfig.

Level i (0 = full resolution) has base_channels * 2**i channels and two 3x3 conv -> norm ->
ReLU blocks. Going down: 2x2 max-pool; coming up: 2x2 stride-2 transposed conv, concatenated
with the level's skip features, then the two blocks again. The head is heads.Head.
Weights and activations are channels_last (the fast layout of CPU convolutions).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .config import SegConfig
from .heads import Head


def norm_layer(cfg: SegConfig, channels: int) -> nn.Module:
    """The normalisation after a 3x3 conv."""
    if cfg.norm == "batch":
        return nn.BatchNorm2d(channels)
    if cfg.norm == "group":
        return nn.GroupNorm(max(channels // cfg.norm_group_size, 1), channels)
    return nn.Identity()


def double_conv(cfg: SegConfig, in_ch: int, out_ch: int) -> nn.Sequential:
    """Two 3x3 conv -> norm -> ReLU blocks (convs have no bias when a norm follows)."""
    bias = cfg.norm == "none"
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch, 3, padding=1, bias=bias),
        norm_layer(cfg, out_ch),
        nn.ReLU(inplace=True),
        nn.Conv2d(out_ch, out_ch, 3, padding=1, bias=bias),
        norm_layer(cfg, out_ch),
        nn.ReLU(inplace=True),
    )


class UNet(nn.Module):
    """Frame (B, C, H, W) in [0, 1] -> scores (B, num_classes, H, W) float32; H and W must be
    multiples of cfg.stride. Flat head: logits; factored head: log-probabilities."""

    def __init__(self, cfg: SegConfig) -> None:
        super().__init__()
        self.cfg = cfg
        ch = cfg.channels
        self.down = nn.ModuleList(
            double_conv(cfg, cfg.in_channels if i == 0 else ch[i - 1], ch[i])
            for i in range(cfg.levels)
        )
        self.pool = nn.MaxPool2d(2)
        # up[i] takes level i+1 to level i; dec[i] merges it with level i's skip.
        self.up = nn.ModuleList(
            nn.ConvTranspose2d(ch[i + 1], ch[i], 2, stride=2) for i in range(cfg.levels - 1)
        )
        self.dec = nn.ModuleList(double_conv(cfg, 2 * ch[i], ch[i]) for i in range(cfg.levels - 1))
        self.head = Head(cfg, ch[0])
        # channels_last weights and activations: forward + backward about 1.7x faster on CPU
        # (benchmarks/segment_speed.py); a layout, not a device.
        self.to(memory_format=torch.channels_last)

    def check_input(self, x: Tensor) -> None:
        """ValueError unless x is (B, in_channels, H, W) with H, W multiples of the stride."""
        cfg = self.cfg
        if x.dim() != 4 or x.shape[1] != cfg.in_channels:
            raise ValueError(
                f"segmenter input must be (B, {cfg.in_channels}, H, W), got {tuple(x.shape)}"
            )
        h, w = x.shape[-2:]
        if h % cfg.stride or w % cfg.stride:
            raise ValueError(
                f"frame size {h}x{w} is not divisible by the segmenter's stride {cfg.stride} "
                f"(levels={cfg.levels}); crop or pad it to a multiple of {cfg.stride}"
            )

    def features(self, x: Tensor) -> Tensor:
        """The last level-0 features (B, base_channels, H, W), before the head."""
        self.check_input(x)
        x = x.contiguous(memory_format=torch.channels_last)
        h = x * 2 - 1  # [0, 1] -> [-1, 1]
        skips = []
        for i, block in enumerate(self.down):
            if i > 0:
                h = self.pool(h)  # (B, ch[i-1], H / 2**i, W / 2**i)
            h = block(h)  # (B, ch[i], H / 2**i, W / 2**i)
            skips.append(h)
        for i in reversed(range(self.cfg.levels - 1)):
            h = self.up[i](h)  # (B, ch[i], H / 2**i, W / 2**i)
            h = self.dec[i](torch.cat([h, skips[i]], dim=1))  # (B, 2 ch[i], ...) -> (B, ch[i], ...)
        return h

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))  # (B, num_classes, H, W) float32


def build_segmenter(cfg: SegConfig) -> UNet:
    """The network a config describes (float32 parameters on the CPU)."""
    return UNet(cfg)
