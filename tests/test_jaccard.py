"""runtime/jaccard.py: the streamed score equals torchmetrics on the stacked masks."""

from __future__ import annotations

import pytest
import torch
from convrnn_video.runtime.jaccard import FrameJaccard
from torchmetrics.classification import MulticlassJaccardIndex


def _masks(seed: int, shape: tuple[int, ...], classes: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, classes, shape, generator=g)


@pytest.mark.parametrize("classes_used", [49, 7])  # 7: most classes absent from both
def test_streamed_equals_torchmetrics(classes_used: int) -> None:
    true = _masks(0, (10, 3, 16, 24), classes_used)
    pred = torch.where(_masks(1, true.shape, 4) == 0, _masks(2, true.shape, classes_used), true)
    pred[0, :, 0, 0] = 48  # one class only predicted: it counts, with IoU 0
    acc = FrameJaccard()
    for lo in range(0, 10, 3):  # uneven batches
        acc.update(pred[lo : lo + 3], true[lo : lo + 3])
    report = acc.compute()
    metric = MulticlassJaccardIndex(num_classes=49)
    expected_last = float(metric(pred[:, -1], true[:, -1]))
    expected_all = float(MulticlassJaccardIndex(num_classes=49)(pred, true))
    assert report["last"] == pytest.approx(expected_last, abs=1e-6)
    assert report["mean"] == pytest.approx(expected_all, abs=1e-6)
    for t in range(3):
        want = float(MulticlassJaccardIndex(num_classes=49)(pred[:, t], true[:, t]))
        assert report["per_frame"][t] == pytest.approx(want, abs=1e-6)
    per_class = MulticlassJaccardIndex(num_classes=49, average="none")(pred[:, -1], true[:, -1])
    for k, value in enumerate(report["per_class_last"]):
        assert value is None or value == pytest.approx(float(per_class[k]), abs=1e-6)
    assert report["videos"] == 10
    if classes_used == 7:
        assert report["per_class_last"][48] == 0.0 and report["per_class_last"][20] is None


def test_absent_classes_and_errors() -> None:
    acc = FrameJaccard()
    acc.update(torch.tensor([0, 1, 1]).view(1, 1, 1, 3), torch.tensor([0, 1, 0]).view(1, 1, 1, 3))
    report = acc.compute()
    per_class = report["per_class_last"]
    assert per_class[0] == 0.5 and per_class[1] == 0.5 and per_class[2] is None
    assert report["last"] == 0.5 and report["per_frame"] == [0.5]
    with pytest.raises(ValueError, match="class ids"):
        acc.update(torch.full((1, 1, 1, 1), 49), torch.zeros(1, 1, 1, 1, dtype=torch.long))
    acc = FrameJaccard()
    with pytest.raises(ValueError, match="before any update"):
        acc.compute()
    with pytest.raises(ValueError, match=r"\(B, T, H, W\)"):
        acc.update(torch.zeros(2, 3, 4), torch.zeros(2, 3, 4))


def _ddp_rank(rank: int, port: int, out: str) -> None:
    """Rank 0 scores every video, rank 1 none (as when there are fewer videos than ranks)."""
    import torch.distributed as dist
    from convrnn_video.runtime.jaccard import finish_scores

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    try:
        true = _masks(0, (4, 3, 8, 8), 7)
        pred = torch.where(_masks(1, true.shape, 3) == 0, _masks(2, true.shape, 7), true)
        ours, base = FrameJaccard(), FrameJaccard()
        if rank == 0:
            ours.update(pred[:2], true[:2])
            base.update(true[:2], true[:2])
        else:
            ours.update(pred[2:], true[2:])  # rank 1: half the videos, and no baseline batch
        scores, baseline = finish_scores(ours, base, "cpu")
        torch.save((scores, baseline), f"{out}.{rank}")
    finally:
        dist.destroy_process_group()


@pytest.mark.slow  # two processes start torch
def test_ranks_sum_their_states(tmp_path) -> None:
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    mp.spawn(_ddp_rank, args=(port, str(tmp_path / "scores")), nprocs=2, join=True)
    true = _masks(0, (4, 3, 8, 8), 7)
    pred = torch.where(_masks(1, true.shape, 3) == 0, _masks(2, true.shape, 7), true)
    alone = FrameJaccard()
    alone.update(pred, true)
    want = alone.compute()
    for rank in range(2):
        scores, baseline = torch.load(tmp_path / f"scores.{rank}", weights_only=False)
        assert scores["jaccard"] == want  # the same summed counts: the same floats
        assert baseline["jaccard"]["last"] == 1.0 and baseline["jaccard"]["videos"] == 2
