"""convrnn/track_reads.py: what the track forecaster reads of each object of hand-made masks,
and what the floor stage reads back of it."""

from __future__ import annotations

import pytest
import torch
from convrnn_video.convrnn import get_preset
from convrnn_video.convrnn.track_features import (
    SPEED_SCALE,
    feature_count,
    mask_stats,
    mirrored,
    relative,
    unit_px,
)
from convrnn_video.convrnn.track_reads import object_tracks, read_before, read_fresh, tracks_of

from tests.track_masks import H, W, moving_squares, objects


def test_objects_first_seen_in_the_last_input_frame_are_fresh() -> None:
    cfg = get_preset("tracks", frames_in=3, frames_out=1, height=H, width=W)
    masks = torch.zeros(2, 3, H, W, dtype=torch.long)
    masks[:, :, 10:14, 4:8] = 7  # seen throughout
    masks[0, 2, 30:34, 40:44] = 9  # video 0: class 9 only in the last frame
    masks[1, 0, 30:34, 40:44] = 9  # video 1: in the first and the last, not between
    masks[1, 2, 30:34, 40:44] = 9
    fresh = read_fresh(object_tracks(masks, cfg), cfg)
    assert fresh.nonzero().tolist() == [[0, 9], [1, 9]]


def test_features_and_targets_follow_the_objects() -> None:
    cfg = get_preset("tracks", frames_in=3, frames_out=2, height=H, width=W)
    masks = torch.zeros(1, 5, H, W, dtype=torch.long)
    for t in range(5):  # class 7 moves 2 px right a frame; class 9 stands still
        masks[0, t, 10:14, 4 + 2 * t : 8 + 2 * t] = 7
        masks[0, t, 30:34, 40:44] = 9
    tracks = object_tracks(masks, cfg)
    assert tracks.present[0].nonzero().flatten().tolist() == [7, 9]
    assert torch.allclose(tracks.target[0, 7], torch.tensor([[2.0, 0.0], [4.0, 0.0]]))
    assert torch.equal(tracks.target[0, 9], torch.zeros(2, 2))
    assert torch.allclose(tracks.guess[0, 7, 0], torch.tensor([2 * 0.92, 0.0]))
    assert tracks.weight[0, 7].tolist() == [1.0, 1.0] and tracks.weight[0, 0].sum() == 0
    # class 9's nearest neighbour is 7: its offset, in units of a fifth of the longer side
    start = 3 * 3 + 3 + 49  # after the track, position, size and the class one-hot
    offset = tracks.features[0, 9, start : start + 2]
    assert torch.allclose(offset * unit_px(H, W), torch.tensor([-32.0, -20.0]), atol=1e-4)


def test_speed_features_read_how_fast_an_object_brakes() -> None:
    cfg = get_preset("tracks", frames_in=5, frames_out=2, height=H, width=W)
    assert cfg.track_speeds and not get_preset("tracks", track_speeds=False).track_speeds
    masks = torch.zeros(1, 7, H, W, dtype=torch.long)
    x = 2
    for t, step in enumerate([0, 16, 8, 4, 2, 1, 1]):  # class 7 halves its speed each frame
        x += step
        masks[0, t, 10:14, x : x + 4] = 7
    masks[0, 0] = 0  # not seen in the first frame
    f = object_tracks(masks, cfg).features[0, 7]
    assert len(object_tracks(masks, cfg).features[0, 7]) == feature_count(cfg)
    px = f[-4:] / SPEED_SCALE * unit_px(H, W)  # the speeds of the 4 input steps
    assert torch.allclose(px, torch.tensor([0.0, 8.0, 4.0, 2.0]), atol=1e-4)  # step 1 unseen
    # a checkpoint made before the field reads no speeds: the features of then
    old = get_preset("tracks", frames_in=5, frames_out=2, height=H, width=W, track_speeds=False)
    assert feature_count(cfg) - feature_count(old) == 4


def test_mirrored_centroids_give_the_tracks_of_mirrored_masks() -> None:
    # the trainer mirrors each video's centroids instead of measuring it flipped (the objects'
    # slots: what it keeps)
    cfg = get_preset("tracks", frames_in=4, frames_out=3, height=H, width=W)
    masks = moving_squares(5, 7, seed=4, keep=0.95).long()
    ours = objects(tracks_of(mirrored(mask_stats(masks, cfg), W), H, W, cfg))
    flipped = objects(object_tracks(masks.flip(-1), cfg))
    assert len(ours.features) >= 5
    for a, b_ in zip(ours, flipped, strict=True):
        assert torch.allclose(a.float(), b_.float(), atol=1e-5)


@pytest.mark.parametrize("shapes", [False, True])
def test_the_steps_before_the_last_are_read_back_from_the_track(shapes: bool) -> None:
    masks = moving_squares(6, 11, seed=3, keep=0.9)
    masks[0, 8] = 0  # video 0's objects are not seen in frame 9: no step into frame 10 or 9
    masks[1, 7] = 0  # video 1's not in frame 8: a step into frame 10, none into frame 9
    cfg = get_preset("tracks", frames_in=11, frames_out=1, track_shapes=shapes)
    tracks = object_tracks(masks.long(), cfg)
    steps, whole = read_before(tracks, cfg, H, W)  # (B, K, 2, 2), (B, K, 2)
    stats = mask_stats(masks.long(), cfg)
    rel = relative(stats, 10)  # (B, T, K, 2) px from frame 11
    seen = stats.count > 0  # (B, T, K)
    for j, first in enumerate((8, 7)):  # the step into frame 10 needs 9-11, into 9 needs 8-11
        expect = seen[:, first:].all(1) & tracks.present
        assert torch.equal(whole[..., j], expect) and whole[..., j].any()
        step = rel[:, 9 - j] - rel[:, 8 - j]
        assert torch.allclose(steps[..., j, :][expect], step[expect].double(), atol=1e-4)
    assert not whole[0].any() and whole[1, :, 0].any() and not whole[1, :, 1].any()
    # a model of three input frames reads only the first; of fewer than three, none
    for n, reads in ((3, 1), (2, 0)):
        short = get_preset("tracks", frames_in=n, frames_out=1)
        flags = read_before(object_tracks(masks[:, :n].long(), short), short, H, W)[1]
        assert [bool(flags[..., j].any()) for j in range(2)] == [j < reads for j in range(2)]
