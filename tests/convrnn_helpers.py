"""Inputs and weights for the encoder-forecaster's tests."""

from __future__ import annotations

import torch
from convrnn_video.convrnn.reference import from_model


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


def assert_gradients_reach_every_parameter(model: torch.nn.Module, autoregressive: bool,
                                           stages: int) -> None:  # fmt: skip
    """After a backward pass: every parameter has a non-zero gradient, except, without
    feedback, the top forecaster RNN's input weights (it reads zeros, as in the original:
    they exist for the parameter count and autoregressive use, and get no gradient)."""
    dead = set() if autoregressive else {f"dec_cells.{stages - 1}.x_conv.weight"}
    for name, p in model.named_parameters():
        if name in dead:
            assert p.grad is None
        else:
            assert p.grad is not None and p.grad.abs().sum() > 0, name


def reference_with_the_same_parameters(model: torch.nn.Module) -> torch.nn.Module:
    """The naive reference on `model`'s weights, checked to hold as many parameters."""
    ref = from_model(model)
    assert sum(p.numel() for p in ref.parameters()) == sum(p.numel() for p in model.parameters())
    return ref
