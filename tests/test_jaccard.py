"""runtime/jaccard.py: the streamed score equals torchmetrics on the stacked masks."""

from __future__ import annotations

import pytest
import torch
from convrnn_video.runtime.jaccard import FrameJaccard, confusion, jaccard_scores
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
    cm = confusion(torch.tensor([0, 1, 1]), torch.tensor([0, 1, 0]), 49)
    macro, per_class = jaccard_scores(cm)
    assert per_class[0] == 0.5 and per_class[1] == 0.5 and per_class[2] is None
    assert macro == 0.5
    with pytest.raises(ValueError, match="class ids"):
        confusion(torch.tensor([49]), torch.tensor([0]), 49)
    acc = FrameJaccard()
    with pytest.raises(ValueError, match="before any update"):
        acc.compute()
    with pytest.raises(ValueError, match=r"\(B, T, H, W\)"):
        acc.update(torch.zeros(2, 3, 4), torch.zeros(2, 3, 4))
