"""Inputs and weights for the encoder-forecaster's tests."""

from __future__ import annotations

import torch


def class_ids(*shape: int, num_classes: int = 49) -> torch.Tensor:
    """Random masks (int64 class ids) of this shape."""
    return torch.randint(0, num_classes, shape)


def perturbed(model: torch.nn.Module, scale: float = 0.05) -> torch.nn.Module:
    """Move every weight (GroupNorm affine, a zero-initialised head) off its initial value."""
    torch.manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(scale * torch.randn_like(p))
    return model
