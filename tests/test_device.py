"""runtime/device.py: the precision policy's decision for GPUs and on this CPU."""

from __future__ import annotations

import pytest
import torch
from convrnn_video.runtime.device import cuda_bf16_native, resolve_precision


@pytest.mark.parametrize(
    "capability,supported,native",
    [
        ((7, 0), True, False),  # V100: torch says bf16 is supported, but only emulated
        ((7, 5), True, False),  # T4
        ((8, 0), True, True),  # A100
        ((8, 6), True, True),  # RTX 30xx, A10
        ((9, 0), True, True),  # H100
        ((8, 0), False, False),  # a build without bf16
    ],
)
def test_auto_precision_takes_bf16_only_where_a_gpu_computes_it(
    capability: tuple[int, int], supported: bool, native: bool
) -> None:
    assert cuda_bf16_native(capability, supported) is native


def test_precision_on_this_cpu() -> None:
    assert resolve_precision("fp32", torch.device("cpu")) == "fp32"
    assert resolve_precision("auto", torch.device("cpu")) in ("fp32", "bf16")
    with pytest.raises(ValueError, match="precision must be"):
        resolve_precision("fp16", torch.device("cpu"))
