"""What a measurement ran on: the CPU class (the `lscpu` flags that change the kernels PyTorch
and oneDNN pick), torch's own view of it, threads, and the GPU if any. Every benchmark puts
`machine()` in its JSON, since a step can differ 5x between an AVX2-only and an AVX-512 BF16 CPU.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

import torch

FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")


def cpu_flags() -> tuple[str, list[str]]:
    """(model name, the flags of FLAGS this CPU has), from /proc/cpuinfo (Linux)."""
    name, flags = platform.processor() or platform.machine(), set()
    info = Path("/proc/cpuinfo")
    if info.exists():
        for line in info.read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                name = value.strip()
            elif key.strip() == "flags":
                flags = set(value.split())
                break
    return name, [f for f in FLAGS if f in flags]


def cpu_class(flags: list[str]) -> str:
    """A short name for the class: 'AVX-512 BF16', 'AVX-512', 'AVX2' or 'older'."""
    if "avx512_bf16" in flags or "amx_bf16" in flags:
        return "AVX-512 BF16"
    if "avx512f" in flags:
        return "AVX-512"
    return "AVX2" if "avx2" in flags else "older"


def machine() -> dict:
    """The CPU class, torch's capability (ATEN_CPU_CAPABILITY lowers it), threads, GPU."""
    name, flags = cpu_flags()
    out = {
        "cpu": name,
        "cpu_class": cpu_class(flags),
        "cpu_flags": flags,
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "onednn_max_isa": os.environ.get("ONEDNN_MAX_CPU_ISA", "default"),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
    }
    if torch.cuda.is_available():
        out["gpu"] = torch.cuda.get_device_name(0)
        out["gpu_capability"] = list(torch.cuda.get_device_capability(0))
    return out


def guarded(job, threads: int = 0) -> tuple[object, float]:
    """(`job()`'s result, seconds it took), torch on `threads` threads (0: torch's choice). A
    PipelineError (a bad file, checkpoint, seed or split) ends the script with one `error:`
    line and no traceback."""
    import sys
    import time

    from convrnn_video.errors import PipelineError

    if threads:
        torch.set_num_threads(threads)
    started = time.time()
    try:
        out = job()
    except PipelineError as exc:
        sys.exit(f"error: {exc}")
    return out, round(time.time() - started, 1)
