"""One process or many: device choice, thread counts and the few collectives the trainer uses.

Launched by `torchrun` (RANK / WORLD_SIZE / LOCAL_RANK set) with WORLD_SIZE > 1, `setup` joins
the process group: gloo on CPU, nccl on CUDA, one GPU per local rank. Otherwise every helper
here degrades to the single-process case, so the loop has no `if distributed` branches.

The small collectives of the loop (stop flags and the clock every step, the log sums) run on
host tensors, over a gloo group beside nccl on GPUs: a step's agreement then never waits for
the GPU to finish the work queued before it.
"""

from __future__ import annotations

import contextlib
import ctypes
import datetime
import logging
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from convrnn_video.train.errors import TrainError

log = logging.getLogger(__name__)


@dataclass
class DistEnv:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1
    device: torch.device = torch.device("cpu")
    threads: int = 1
    host_group: Any = None  # the group of the host-side collectives (None: the default, gloo)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def any(self, *flags: bool) -> list[bool]:
        """For each flag, whether it is set on ANY rank (one all-reduce; no-op alone)."""
        return [bool(v) for v in self.max(*(float(f) for f in flags))]

    def max(self, *values: float) -> list[float]:
        """Element-wise maxima over ranks, in float64 (one all-reduce; no-op alone)."""
        if not self.distributed:
            return [float(v) for v in values]
        t = torch.tensor(values, dtype=torch.float64)
        dist.all_reduce(t, op=dist.ReduceOp.MAX, group=self.host_group)
        return t.tolist()

    def sum(self, *values: float) -> list[float]:
        """Element-wise sums over ranks."""
        if not self.distributed:
            return list(values)
        t = torch.tensor(values, dtype=torch.float64)
        dist.all_reduce(t, group=self.host_group)
        return t.tolist()

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's `obj` on every rank."""
        if not self.distributed:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0, group=self.host_group)
        return box[0]

    def gather(self, obj: Any) -> list[Any]:
        """Every rank's `obj`, in rank order, on every rank."""
        if not self.distributed:
            return [obj]
        out: list[Any] = [None] * self.world_size
        dist.all_gather_object(out, obj, group=self.host_group)
        return out


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


def setup(device: str = "auto", threads: int | None = None, tune: bool = True) -> DistEnv:
    """Pick the device and join the process group when under torchrun; with `tune` also make
    the process settings of `tune_process`, else set only a thread count the caller gives."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", str(world)))
    use_cuda = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
    if use_cuda and not torch.cuda.is_available():
        raise TrainError(f"--device {device} was asked for but CUDA is not available here")
    if use_cuda:
        # "cuda:N" picks a GPU; plain "cuda" (or auto) gives each local rank its own
        index = int(device.split(":")[1]) if ":" in device else local_rank
        dev = torch.device("cuda", index % max(1, torch.cuda.device_count()))
        torch.cuda.set_device(dev)
        # Training and prediction run fixed shapes (batch, frame size, crop): let cuDNN time
        # its algorithms once per shape and keep the fastest.
        torch.backends.cudnn.benchmark = True
    else:
        dev = torch.device("cpu")
    # Under DDP each process gets its share of the cores unless the user says otherwise.
    if tune:
        n_threads = tune_process(threads)
    elif threads:  # asked for by the caller's config: that, and nothing else
        torch.set_num_threads(threads)
        n_threads = threads
    else:
        n_threads = torch.get_num_threads()
    host_group = None
    timeout = datetime.timedelta(minutes=30)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(
            backend="nccl" if use_cuda else "gloo",
            timeout=timeout,
            **({"device_id": dev} if use_cuda else {}),
        )
    if world > 1 and dist.get_backend() == "nccl":  # host tensors for the loop's collectives
        host_group = dist.new_group(backend="gloo", timeout=timeout)
    return DistEnv(rank, world, local_rank, local_world, dev, n_threads, host_group)


def teardown(barrier: bool = True) -> None:
    """Leave the process group; after a normal finish, together (a rank that tears gloo down
    while another still writes files can abort it with `terminate called ...`)."""
    if dist.is_available() and dist.is_initialized():
        if barrier:
            dist.barrier()
        dist.destroy_process_group()


def max_diff_from_rank0(env: DistEnv, values: torch.Tensor) -> list[float]:
    """Per rank, the largest |values - rank 0's values| (all zeros when ranks agree)."""
    if not env.distributed:
        return [0.0]
    ref = values.detach().clone().to(env.device)
    dist.broadcast(ref, src=0)
    return env.gather(float((values.to(env.device) - ref).abs().max()))


def unused_parameters(model: torch.nn.Module, dummy_loss) -> list[str]:
    """Names of parameters a backward of `dummy_loss(model)` (a small random batch) leaves
    without gradient (DDP must then be told `find_unused_parameters=True`).

    The probe leaves no trace: the forward runs in train mode (the graph training builds), so
    the buffers it moves (BatchNorm's running statistics and batch count) are put back, and
    the random streams it draws from are forked, so a start or a resume stays exact."""
    buffers = {name: b.detach().clone() for name, b in model.named_buffers()}
    devices = [p.device for p in model.parameters() if p.device.type == "cuda"][:1]
    with torch.random.fork_rng(devices=devices):
        model.zero_grad(set_to_none=True)
        dummy_loss(model).backward()
    names = [n for n, q in model.named_parameters() if q.requires_grad and q.grad is None]
    model.zero_grad(set_to_none=True)
    with torch.no_grad():
        for name, b in model.named_buffers():
            b.copy_(buffers[name])
    return names
