"""Objects placed by their whole footprint (convrnn/track_features.py `whole_centre`): a partly
hidden object's seen centroid drifts away from what hides it; the floor stage starts it where
its whole footprint is, walked on from the last frame it was seen whole."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from convrnn_video.convrnn import get_preset
from convrnn_video.convrnn.extrapolate import class_centroids
from convrnn_video.convrnn.floor import Floor
from convrnn_video.convrnn.shape_steps import behind, touching
from convrnn_video.convrnn.track_features import mask_stats, mirrored, whole_centre
from convrnn_video.convrnn.track_reads import object_tracks

H, W = 48, 64
HIDDEN, FRONT = 5, 2


def disc(frame: torch.Tensor, cls: int, x: float, y: float, r: float) -> None:
    """Paint a disc of class `cls` centred at (x, y) px into frame (H, W), clipped."""
    ys, xs = torch.meshgrid(torch.arange(H), torch.arange(W), indexing="ij")
    frame[(xs - x) ** 2 + (ys - y) ** 2 <= r * r] = cls


def sliding_behind(xs: tuple[float, ...]) -> torch.Tensor:
    """(1, T, H, W): a disc of radius 8 at the given x, row 24, sliding behind a still
    rectangle (columns 20-33) drawn over it."""
    out = torch.zeros(1, len(xs), H, W, dtype=torch.long)
    for t, x in enumerate(xs):
        disc(out[0, t], HIDDEN, x, 24.0, 8.0)
        out[0, t, 10:40, 20:34] = FRONT
    return out


def test_touching_marks_objects_beside_another_never_the_floor() -> None:
    ids = torch.zeros(2, H, W, dtype=torch.long)
    ids[0, 5:10, 5:10] = 3
    ids[0, 5:10, 10:15] = 4  # beside 3
    ids[0, 20:25, 30:35] = 7  # on its own
    ids[1, 20:25, 30:35] = 3
    ids[1, 25:30, 30:35] = 6  # below 3
    got = touching(ids, 49)
    assert got[0].nonzero().flatten().tolist() == [3, 4]
    assert got[1].nonzero().flatten().tolist() == [3, 6]


def test_behind_marks_only_the_farther_of_two_touching_objects() -> None:
    ids = torch.zeros(1, H, W, dtype=torch.long)
    ids[0, 5:10, 5:10] = 3  # farther up the picture
    ids[0, 10:20, 5:10] = 4  # beside it and nearer the camera: drawn over it
    ids[0, 30:35, 40:45] = 7  # on its own
    rows = class_centroids(ids, 49)[0][..., 1]
    assert behind(ids, rows, 49)[0].nonzero().flatten().tolist() == [3]
    assert touching(ids, 49)[0].nonzero().flatten().tolist() == [3, 4]
    # the one in front is seen whole; the one behind and the lone one as before
    cfg = get_preset("tracks", frames_in=2, frames_out=1, height=H, width=W)
    whole = mask_stats(ids[:, None].expand(1, 2, H, W), cfg, whole=True).whole[0, 1]
    assert whole[[3, 4, 7]].tolist() == [False, True, True]


def test_a_partly_hidden_object_is_placed_by_its_whole_footprint() -> None:
    cfg = get_preset("tracks", frames_in=3, frames_out=2, height=H, width=W)
    masks = sliding_behind((46.0, 40.0, 34.0))  # whole in frame 0, then half behind
    stats = mask_stats(masks, cfg, whole=True)
    assert stats.whole[0, :, HIDDEN].tolist() == [True, False, False]
    seen = stats.centre[0, 2, HIDDEN]
    assert float(seen[0]) > 36.0  # the seen part's centroid lags behind the disc
    got = whole_centre(stats, 2)[0, HIDDEN]
    assert abs(float(got[0]) - 34.0) < 1.0 and abs(float(got[1]) - 24.0) < 0.5
    # the still rectangle walks back to frame 0 by still steps: its own centroid
    assert torch.allclose(whole_centre(stats, 2)[0, FRONT], stats.centre[0, 2, FRONT])
    # the mirror image's whole footprint is the mirror of this one
    flip = whole_centre(mirrored(stats, W), 2)[0, HIDDEN]
    assert abs(float(flip[0]) - (W - 1 - float(got[0]))) < 1e-4


def test_an_object_never_seen_whole_keeps_its_seen_centroid() -> None:
    cfg = get_preset("tracks", frames_in=3, frames_out=2, height=H, width=W)
    masks = sliding_behind((42.0, 40.0, 38.0))  # behind the rectangle in every frame
    stats = mask_stats(masks, cfg, whole=True)
    assert not stats.whole[0, :, HIDDEN].any()
    assert torch.equal(whole_centre(stats, 2)[0, HIDDEN], stats.centre[0, 2, HIDDEN])


@pytest.mark.parametrize("on", [0.0, 1.0])
def test_the_floor_stage_starts_objects_where_the_switch_says(on: float) -> None:
    base = get_preset("tracks", frames_in=3, frames_out=2, height=H, width=W)
    cfg = dataclasses.replace(base, track_floor=Floor(whole_footprint=on).as_tuple())
    masks = sliding_behind((46.0, 40.0, 34.0))
    tracks, plain = object_tracks(masks, cfg), object_tracks(masks, base)
    assert torch.equal(tracks.features, plain.features)  # the net reads the same either way
    seen = class_centroids(masks[:, -1], 49)[0][0, HIDDEN]
    if on:
        assert abs(float(tracks.centre[0, HIDDEN, 0]) - 34.0) < 1.0
    else:
        assert torch.equal(tracks.centre[0, HIDDEN], seen.to(tracks.centre.dtype))
