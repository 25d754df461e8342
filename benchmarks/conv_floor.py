"""The convolutions of a model alone, timed: the floor under any speed-up of the same math
(`benchmarks/model_step.py --conv-floor`), and the training step both time.
"""

from __future__ import annotations

import contextlib

import torch

from benchmarks.timing import median_seconds


def train_step(
    model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, context=contextlib.nullcontext()
) -> None:
    model.zero_grad(set_to_none=True)
    with context:
        pred = model(x, y, 0.0)
    ((pred.float() - y) ** 2).mean().backward()


def time_conv(
    conv: torch.nn.Module, shape: tuple, needs_grad: bool, repeats: int, context, layout
) -> tuple:
    """(forward s, forward+backward s) of one convolution on an input of `shape` in the memory
    `layout` and the autocast `context` the model runs in; the backward computes the input's
    gradient only when the network's input needed one."""
    inp = torch.rand(shape).contiguous(memory_format=layout)

    def fwd() -> None:
        with torch.inference_mode(), context:
            conv(inp)

    def fwd_bwd() -> None:
        conv.zero_grad(set_to_none=True)
        with context:
            out = conv(inp.detach().requires_grad_(needs_grad))
        out.float().sum().backward()

    return median_seconds(fwd, repeats, 1), median_seconds(fwd_bwd, repeats, 1)


def conv_floor(
    model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, repeats: int, context
) -> dict:
    """Seconds the network's convolutions alone take: every convolution call of one training
    step, recorded with its shapes, timed standalone (in the model's layout),
    forward and forward+backward. No implementation of this math on this convolution library
    can take less time than its convolutions, so `naive time / floor` bounds any speed-up."""
    kinds = (torch.nn.Conv2d, torch.nn.ConvTranspose2d)
    convs = {id(m): m for m in model.modules() if isinstance(m, kinds)}
    calls: dict[tuple, int] = {}

    def record(module: torch.nn.Module, inputs: tuple) -> None:
        key = (id(module), tuple(inputs[0].shape), inputs[0].requires_grad)
        calls[key] = calls.get(key, 0) + 1

    hooks = [m.register_forward_pre_hook(record) for m in convs.values()]
    try:
        model.train()
        train_step(model, x, y)
    finally:
        for h in hooks:
            h.remove()
    infer_s = train_s = 0.0
    layout = torch.channels_last if model.channels_last else torch.contiguous_format
    for (mid, shape, needs_grad), count in calls.items():
        fwd, fwd_bwd = time_conv(convs[mid], shape, needs_grad, repeats, context, layout)
        infer_s += count * fwd
        train_s += count * fwd_bwd
    model.zero_grad(set_to_none=True)
    n_calls = sum(calls.values())
    return {"train_s": round(train_s, 4), "infer_s": round(infer_s, 4), "calls": n_calls}
