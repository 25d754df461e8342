"""The two output heads: flat class logits, or factored object/shape/material/colour scores
combined into 49 log-probabilities."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .config import COLOURS, MATERIALS, SHAPES, SegConfig


def factored_log_probs(obj: Tensor, shape: Tensor, material: Tensor, colour: Tensor) -> Tensor:
    """Per-pixel log-probabilities of the 49 classes from the factors' logits.

    obj (B, 1, H, W): logit of "an object is here"; shape (B, 3, H, W), material (B, 2, H, W),
    colour (B, 8, H, W): logits of each factor given an object. Returns (B, 49, H, W):
    log p(0) = log(1 - sigmoid(obj)) and, for id = s*16 + m*8 + c + 1,
    log p(id) = log sigmoid(obj) + log p(s) + log p(m) + log p(c).
    The 49 values are a normalised distribution (logsumexp over classes is 0), so
    cross-entropy on them is the factored likelihood, and their argmax is background when
    p(object) < the best kind's factor product, else the factors' own argmaxes.
    """
    ls = F.log_softmax(shape, dim=1)
    lm = F.log_softmax(material, dim=1)
    lc = F.log_softmax(colour, dim=1)
    b, _, h, w = obj.shape
    # (B, 3, 1, 1, H, W) + (B, 1, 2, 1, H, W) + (B, 1, 1, 8, H, W) -> (B, 3, 2, 8, H, W),
    # flattened in (shape, material, colour) order: index s*16 + m*8 + c, as the class ids.
    kinds = ls[:, :, None, None] + lm[:, None, :, None] + lc[:, None, None, :]
    kinds = kinds.reshape(b, SHAPES * MATERIALS * COLOURS, h, w)  # (B, 48, H, W)
    return torch.cat([F.logsigmoid(-obj), F.logsigmoid(obj) + kinds], dim=1)  # (B, 49, H, W)


def split_factors(scores: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The factored head's (B, 14, H, W) output as (obj, shape, material, colour) logits."""
    obj, shape, material, colour = torch.split(scores, [1, SHAPES, MATERIALS, COLOURS], dim=1)
    return obj, shape, material, colour


class Head(nn.Module):
    """1x1 convolution of the last features to class scores, returned in float32: logits
    (flat) or log-probabilities (factored)."""

    def __init__(self, cfg: SegConfig, in_channels: int) -> None:
        super().__init__()
        self.factored = cfg.head == "factored"
        self.conv = nn.Conv2d(in_channels, cfg.head_channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        scores = self.conv(x).float()  # (B, head_channels, H, W); float32 even under autocast
        if not self.factored:
            return scores
        return factored_log_probs(*split_factors(scores))

    def factors(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """The factored head's (obj, shape, material, colour) logits (diagnostics, tests)."""
        if not self.factored:
            raise ValueError("factors() needs head='factored'")
        return split_factors(self.conv(x).float())
