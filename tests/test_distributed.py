"""runtime/distributed.py alone (one process): the collectives, the device choice, rank 0's work
shared with every rank."""

from __future__ import annotations

import pytest
import torch
from convrnn_video.runtime.distributed import DistEnv, rank_and_device, run_on_rank0
from convrnn_video.stores.errors import StoreError


def test_the_collectives_alone() -> None:
    env = DistEnv()
    assert env.max(1.0, 2.0) == [1.0, 2.0] and env.sum(3.0) == [3.0]
    assert env.broadcast("x") == "x" and env.gather(4) == [4] and env.host_group is None


def test_one_process_is_rank_0_of_1_on_the_device_asked_for() -> None:
    assert rank_and_device("cpu") == (0, 1, torch.device("cpu"))


def test_rank_0_shares_its_result_and_its_error_as_it_is() -> None:
    assert run_on_rank0(lambda: 7, world=1, rank=0) == 7

    def refuse() -> None:
        raise StoreError("out.zarr is not a store")

    with pytest.raises(StoreError, match="out.zarr is not a store"):  # the type it raised
        run_on_rank0(refuse, world=1, rank=0)
