"""One process or many: the device of each process, its process group, and the few collectives
the trainer and inference use.

Launched by `torchrun` (RANK / WORLD_SIZE / LOCAL_RANK set) with WORLD_SIZE > 1, `setup` joins
the process group: gloo on CPU, nccl on CUDA, one GPU per local rank. Otherwise every helper
here degrades to the single-process case, so the loop has no `if distributed` branches.

The small collectives of the loop (stop flags and the clock every step, the log sums) run on
host tensors, over a gloo group beside nccl on GPUs: a step's agreement then never waits for
the GPU to finish the work queued before it.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from convrnn_video.runtime.device import tune_process
from convrnn_video.runtime.errors import RunError

from convrnn_video.errors import PipelineError

T = TypeVar("T")


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


def setup(device: str = "auto", threads: int | None = None, tune: bool = True) -> DistEnv:
    """Pick the device and join the process group when under torchrun; with `tune` also make
    the process settings of `tune_process`, else set only a thread count the caller gives."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", str(world)))
    use_cuda = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
    if use_cuda and not torch.cuda.is_available():
        raise RunError(f"--device {device} was asked for but CUDA is not available here")
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


def rank_and_device(device: str) -> tuple[int, int, torch.device]:
    """(rank, world size, device): the trainer's device choice and, under torchrun, its process
    group; no process-wide setting is changed (the CLI makes those)."""
    env = setup(device, tune=False)
    return env.rank, env.world_size, env.device


def run_on_rank0(fn: Callable[[], T], world: int, rank: int) -> T:
    """Run fn on rank 0 and share its result, or its PipelineError, with every rank."""
    box: list[Any] = [None]
    if rank == 0:
        try:
            box[0] = ("ok", fn())
        except PipelineError as exc:
            box[0] = ("error", exc)
    if world > 1:
        dist.broadcast_object_list(box, src=0)
    status, value = box[0]
    if status == "error":
        raise value
    return value
