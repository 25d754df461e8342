"""Device arithmetic and process settings: bf16 support, the precision policy, the one autocast
context, thread counts and the allocator."""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os

import torch

log = logging.getLogger(__name__)


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def keep_freed_memory() -> None:
    """Make glibc keep freed memory for reuse instead of handing it back to the OS.

    The recurrent nets allocate and free tensors of tens of MB at every step. By default glibc
    serves such blocks with fresh mmaps, so every step page-faults them in again (a 20-minute
    `compact` run took 119 M minor faults). Measured on 2 cores: a `seed` forward pass 4.4 ->
    3.9 s per video, a `compact` training step 5-10 % faster. Memory stays at its peak instead
    of shrinking between steps. A no-op where the C library is not glibc.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    m_trim_threshold, m_mmap_threshold = -1, -3  # from glibc's malloc.h
    libc.mallopt(m_mmap_threshold, 1 << 30)  # blocks up to 1 GB come from the reusable heap
    libc.mallopt(m_trim_threshold, (1 << 31) - 1)  # and freed memory is not trimmed back


def cuda_bf16_native(capability: tuple[int, int], bf16_supported: bool) -> bool:
    """Does a GPU of compute `capability` (major, minor) compute in bfloat16 natively?
    `torch.cuda.is_bf16_supported()` (`bf16_supported`) is also true where bf16 is only
    emulated (V100 7.0, T4 7.5: slower than float32); the bf16 tensor cores start at Ampere
    (8.0)."""
    return bf16_supported and capability[0] >= 8


def bf16_supported(device: torch.device) -> bool:
    """Does `device` compute in bfloat16 natively (a CUDA GPU of compute capability 8 or more,
    a CPU with AVX-512 BF16 or AMX)? Elsewhere bf16 autocast is emulated and slower than
    float32."""
    if device.type == "cuda":
        capability = torch.cuda.get_device_capability(device)
        return cuda_bf16_native(capability, torch.cuda.is_bf16_supported())
    check = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
    return bool(check is not None and check())


def resolve_precision(precision: str, device: torch.device) -> str:
    """The precision policy, the one place it is stated: "auto" is bf16 autocast where the
    device computes in bf16 natively (measured 1.4x faster training at equal quality on such a
    CPU), float32 elsewhere; "fp32" and "bf16" are taken as given. -> "fp32" | "bf16"."""
    if precision == "auto":
        return "bf16" if bf16_supported(device) else "fp32"
    if precision not in ("fp32", "bf16"):
        raise ValueError(f"precision must be auto, fp32 or bf16, got {precision!r}")
    return precision


def autocast(precision: str, device: torch.device, warn: bool = True):
    """The one autocast context of training, validation and prediction: bf16 autocast for a
    resolved precision "bf16" (convolutions in bfloat16; norms, the loss and the weights stay
    float32), nothing for "fp32". Warns (when `warn`) where bf16 is emulated."""
    if precision == "fp32":
        return contextlib.nullcontext()
    if warn and not bf16_supported(device):
        log.warning("bf16: this device has no bf16 arithmetic, so bf16 autocast will be slower")
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def bf16_autocast(
    enabled: bool, device: torch.device, warn: bool = True
) -> contextlib.AbstractContextManager:
    """`autocast("bf16" if enabled else "fp32", ...)` (the form predict uses)."""
    return autocast("bf16" if enabled else "fp32", device, warn)


def tune_process(threads: int | None = None) -> int:
    """The process-wide settings of a command, made by the command (the CLI), never by a
    library call: glibc keeps freed memory (`keep_freed_memory`) and torch uses `threads` CPU
    threads, by default this process's share of the cores (all of them alone, half each for 2
    torchrun processes on one machine). -> the thread count."""
    keep_freed_memory()
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", os.environ.get("WORLD_SIZE", "1")))
    n_threads = threads or max(1, available_cores() // max(1, local_world))
    torch.set_num_threads(n_threads)
    return n_threads
