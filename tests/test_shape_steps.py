"""Steps read by shape (convrnn/shape_steps.py): objects cut by the border or hidden in part
move by their true step, where their centroid lags; whole objects keep the centroid's step."""

from __future__ import annotations

import torch
from convrnn_video.convrnn import get_preset
from convrnn_video.convrnn.extrapolate import class_centroids
from convrnn_video.convrnn.shape_steps import at_border, object_steps, shape_step
from convrnn_video.convrnn.track_features import mask_stats, relative
from convrnn_video.convrnn.track_reads import object_tracks

H, W = 48, 64


def disc(frame: torch.Tensor, cls: int, x: float, y: float, r: float) -> None:
    """Paint a disc of class `cls` centred at (x, y) px into frame (H, W), clipped."""
    ys, xs = torch.meshgrid(torch.arange(H), torch.arange(W), indexing="ij")
    frame[(xs - x) ** 2 + (ys - y) ** 2 <= r * r] = cls


def leaving(frames: int, step: float) -> torch.Tensor:
    """(1, frames, H, W): class 5 a disc of radius 8 moving right by `step` px a frame, out
    through the right border; class 9 a still disc in the middle, free of it."""
    out = torch.zeros(1, frames, H, W, dtype=torch.long)
    for t in range(frames):
        disc(out[0, t], 9, 14.0, 12.0, 5.0)
        disc(out[0, t], 5, 44.0 + step * t, 32.0, 8.0)
    return out


def test_at_border_marks_objects_on_the_border_never_the_floor() -> None:
    ids = torch.zeros(2, H, W, dtype=torch.long)
    ids[0, 0:4, 10:14] = 3  # on the top border
    ids[0, 20:24, W - 4 :] = 4  # on the right one
    ids[0, 30:34, 40:44] = 7  # inside
    ids[1, 30:34, 40:44] = 3  # inside, in the other frame
    got = at_border(ids, 49)
    assert got[0].nonzero().flatten().tolist() == [3, 4]
    assert not got[1].any()


def test_an_object_leaving_the_picture_moves_by_its_shape_not_its_centroid() -> None:
    masks = leaving(5, 4.0)  # cut by the border in frames 3 and 4
    centre, _ = class_centroids(masks[0], 49)
    lag = float(centre[4, 5, 0] - centre[3, 5, 0])
    assert lag < 3.0  # the seen part's centroid falls behind the disc
    got = shape_step(masks[0, 3], masks[0, 4], 5, centre[4, 5] - centre[3, 5])
    assert abs(float(got[0]) - 4.0) < 0.5 and abs(float(got[1])) < 0.5


def test_an_object_sliding_behind_another_moves_by_its_seen_shape() -> None:
    # class 5 slides left behind class 2, drawn over it: its seen part shrinks from the left
    frames = torch.zeros(2, H, W, dtype=torch.long)
    for t, x in enumerate((40.0, 37.0)):
        disc(frames[t], 5, x, 24.0, 8.0)
        frames[t, 10:40, 20:34] = 2
    centre, _ = class_centroids(frames, 49)
    guess = centre[1, 5] - centre[0, 5]
    assert float(guess[0]) > -2.0  # the centroid hardly moves
    got = shape_step(frames[0], frames[1], 5, guess)
    assert abs(float(got[0]) + 3.0) < 0.5 and abs(float(got[1])) < 0.5
    # object_steps reads it so too: its pixel count changes (the occluder's stays)
    centre, count = class_centroids(frames, 49)
    steps = object_steps(frames[None], centre[None], count[None])[0, 1]
    assert torch.allclose(steps[5], got) and torch.equal(steps[2], torch.zeros(2))


def test_whole_objects_keep_their_centroid_steps() -> None:
    masks = leaving(6, 4.0)
    centre, count = class_centroids(masks.flatten(0, 1), 49)
    centre, count = centre.view(1, 6, 49, 2), count.view(1, 6, 49)
    steps = object_steps(masks, centre, count)
    still = steps[0, :, 9]  # free of the border and of the other disc
    assert torch.equal(still, torch.zeros_like(still))
    moving = steps[0, 1:, 5, 0]
    assert torch.allclose(moving, torch.full_like(moving, 4.0), atol=0.5)
    assert torch.equal(steps[0, 0], torch.zeros_like(steps[0, 0]))  # no frame before the first


def test_tracks_and_targets_follow_the_object_out_of_the_picture() -> None:
    # frames_in 3, frames_out 3: from frame 3 on the disc leaves; with shapes the target
    # displacements are the true 4, 8, 12 px, the centroid's fall behind
    masks = leaving(6, 4.0)
    by_shape = get_preset("tracks", frames_in=3, frames_out=3, height=H, width=W)
    by_centroid = get_preset("tracks", frames_in=3, frames_out=3, height=H, width=W,
                             track_shapes=False)  # fmt: skip
    shaped = object_tracks(masks, by_shape)
    plain = object_tracks(masks, by_centroid)
    want = torch.tensor([4.0, 8.0, 12.0])
    assert torch.allclose(shaped.target[0, 5, :, 0], want, atol=1.0)
    assert float((plain.target[0, 5, :, 0] - want).abs().max()) > 2.0
    # the still disc reads the same either way
    assert torch.equal(shaped.target[0, 9], plain.target[0, 9])
    assert torch.equal(shaped.features[0, 9], plain.features[0, 9])


def test_relative_positions_skip_a_gap_by_centroid() -> None:
    # an object hidden in frame 2 of 5: the frames before the gap fall back to centroids
    masks = leaving(5, 1.0)
    masks[0, 2][masks[0, 2] == 9] = 0
    cfg = get_preset("tracks", frames_in=4, frames_out=1, height=H, width=W)
    stats = mask_stats(masks, cfg)
    rel = relative(stats, 3)
    plain = stats.centre - stats.centre[:, 3:4]
    assert torch.equal(rel[0, :2, 9], plain[0, :2, 9])
