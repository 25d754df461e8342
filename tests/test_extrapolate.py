"""convrnn.extrapolate: the objects of the last mask moved along their fitted velocity, on
hand-made masks."""

from __future__ import annotations

import pytest
import torch
from convrnn_video.convrnn.extrapolate import extrapolate_masks

H, W = 20, 30


def video(*objects: tuple[int, list[tuple[int, int] | None], int]) -> torch.Tensor:
    """(1, T, H, W) uint8 masks: each object (class id, [top-left (row, col) per frame or None
    when absent], side) a square drawn in the given order."""
    frames = len(objects[0][1])
    masks = torch.zeros(1, frames, H, W, dtype=torch.uint8)
    for cls, corners, side in objects:
        for t, corner in enumerate(corners):
            if corner is not None:
                masks[0, t, corner[0] : corner[0] + side, corner[1] : corner[1] + side] = cls
    return masks


def test_an_object_moving_right_is_found_where_it_goes() -> None:
    masks = video((5, [(8, 4), (8, 6), (8, 8)], 3))  # 2 px/frame to the right
    out = extrapolate_masks(masks, steps=3, decay=1.0)
    assert out.shape == (1, 3, H, W) and out.dtype == torch.uint8
    for step, col in enumerate((10, 12, 14)):
        assert torch.equal(out[0, step], video((5, [(8, col)], 3))[0, 0]), step  # hole: 0
    # slowing: 2 * 0.5 = 1 px, then 2 * (0.5 + 0.25) = 1.5 -> 2 px past frame 11
    slowed = extrapolate_masks(masks, steps=2, decay=0.5)
    assert torch.equal(slowed[0, 0], video((5, [(8, 9)], 3))[0, 0])
    assert torch.equal(slowed[0, 1], video((5, [(8, 10)], 3))[0, 0])


def test_a_still_object_stays_and_one_leaving_is_cut_at_the_border() -> None:
    masks = video((7, [(2, 2), (2, 2), (2, 2)], 4), (9, [(12, 20), (12, 23), (12, 26)], 3))
    out = extrapolate_masks(masks, steps=3, decay=1.0)
    for step in range(3):
        assert torch.equal(out[0, step] == 7, masks[0, -1] == 7)  # did not move
    assert int((out[0, 0] == 9).sum()) == 3  # 26 + 3 = 29: one column left in the frame
    assert int((out[0, 1] == 9).sum()) == 0  # gone past the right border
    assert int((out[0, 1] > 0).sum()) == 16  # only the still object is left


def test_objects_not_in_the_last_mask_are_not_predicted() -> None:
    # 3 left the view before frame 11; 4 enters in the last frame: no velocity, it stays
    masks = video((3, [(5, 5), (5, 8), None], 3), (4, [None, None, (0, 0)], 2))
    out = extrapolate_masks(masks, steps=2)
    assert not (out == 3).any()
    assert torch.equal(out[0, 1], masks[0, -1])


def test_the_nearer_object_is_drawn_on_top() -> None:
    # 1 moves right into 2, which stands at columns 16-19; the lower one (nearer) is on top
    still = (2, [(8, 16)] * 3, 4)  # rows 8-11
    out = extrapolate_masks(video((1, [(6, 0), (6, 4), (6, 8)], 4), still), 2, 1.0)[0, 1]
    assert (out[6:8, 16:20] == 1).all() and (out[8:12, 16:20] == 2).all()  # 1 behind
    out = extrapolate_masks(video((1, [(10, 0), (10, 4), (10, 8)], 4), still), 2, 1.0)[0, 1]
    assert (out[8:10, 16:20] == 2).all() and (out[10:14, 16:20] == 1).all()  # 1 in front


def test_a_decay_fitted_per_object() -> None:
    # steps of 8 then 4 px: the slope is 6 px/frame, the fitted decay 0.5 -> 3 px, then 4.5
    masks = video((6, [(4, 0), (4, 8), (4, 12)], 3))
    out = extrapolate_masks(masks, steps=2, decay=None, fit_frames=3)
    assert torch.equal(out[0, 0], video((6, [(4, 15)], 3))[0, 0])
    assert torch.equal(out[0, 1], video((6, [(4, 16)], 3))[0, 0])  # 4.5 rounds to even
    with pytest.raises(ValueError, match="fit_frames >= 3"):
        extrapolate_masks(masks, steps=2, decay=None, fit_frames=2)
    with pytest.raises(ValueError, match="decay must be in"):
        extrapolate_masks(masks, steps=2, decay=1.5)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_class_centroids_one_function_in_either_dtype(dtype: torch.dtype) -> None:
    from convrnn_video.convrnn.extrapolate import class_centroids

    masks = video((5, [(8, 4), (2, 20)], 3), (9, [(0, 0), None], 2))[0]  # (2, H, W)
    centre, count = class_centroids(masks, 49, dtype)
    assert centre.shape == (2, 49, 2) and count.shape == (2, 49)
    assert centre.dtype == count.dtype == dtype
    # (x, y) of a 3x3 square at top-left (row 8, column 4): (5, 9); a 2x2 at (0, 0): (0.5, 0.5)
    assert centre[0, 5].tolist() == [5.0, 9.0] and centre[1, 5].tolist() == [21.0, 3.0]
    assert centre[0, 9].tolist() == [0.5, 0.5] and count[0, 9] == 4
    assert count[1, 9] == 0 and centre[1, 9].tolist() == [0.0, 0.0]  # absent
    assert count[0].sum() == H * W  # the background is counted too
