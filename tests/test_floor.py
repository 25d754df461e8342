"""convrnn/floor.py and floor_play.py: hits played on the floor plane, from two objects by
hand to the forecaster playing them on hand-made masks."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
from convrnn_video.convrnn import get_preset
from convrnn_video.convrnn.extrapolate import paint_shifted
from convrnn_video.convrnn.floor import Camera, Floor, depth_scale, shape_of
from convrnn_video.convrnn.floor_play import play_on_floor
from convrnn_video.convrnn.track_reads import object_tracks
from convrnn_video.convrnn.tracks import TrackForecaster

SIZE = (160, 240)
CUBE, SPHERE = 1, 17  # class ids: shape * 16 + material * 8 + colour + 1


def head_on(
    struck: int, speed: float = 6.0, gap: float = 40.0, steps: int = 11, f: Floor = Floor()
):
    """A cube at x=60 (row 120) sliding right at `speed` px/frame towards a still object of
    class `struck`, `gap` px to its right; the forecaster's paths: the cube goes on, the other
    stays. -> (played displacements (2, steps, 2), the forecaster's)."""
    centre = torch.tensor([[[60.0, 120.0], [60.0 + gap, 120.0]]])
    velocity = torch.tensor([[[speed, 0.0], [0.0, 0.0]]])
    shift = torch.zeros(1, 2, steps, 2)
    shift[0, 0, :, 0] = speed * torch.arange(1, steps + 1)
    classes = torch.tensor([[CUBE, struck]])
    every = torch.ones(1, 2, dtype=torch.bool)
    return play_on_floor(shift, velocity, centre, every, classes, SIZE, f)[0], shift[0]


def test_the_camera_maps_image_to_floor_and_back() -> None:
    cam = Camera(Floor(), *SIZE)
    xy = torch.tensor([[5.0, 3.0], [120.0, 80.0], [230.0, 155.0]], dtype=torch.float64)
    assert torch.allclose(cam.to_image(cam.to_floor(xy)), xy, atol=1e-9)
    # one footprint wide on the floor looks wider nearer the camera (lower in the picture)
    wide = torch.tensor([2 * Floor().radius, 0.0], dtype=torch.float64)
    far, near = cam.to_floor(xy[1] - torch.tensor([0.0, 60.0])), cam.to_floor(xy[1] + 60.0)
    far_px = float((cam.to_image(far + wide) - cam.to_image(far))[0])
    near_px = float((cam.to_image(near + wide) - cam.to_image(near))[0])
    assert 0 < far_px < near_px


def test_a_hit_sets_a_still_object_moving_and_stops_the_striker() -> None:
    played, free = head_on(CUBE)
    assert float(played[1, -1, 0]) > 5.0  # struck: it slides right, off the forecaster's path
    assert float(played[0, -1, 0]) < float(free[0, -1, 0]) / 2  # the striker stops short
    assert float(played[1, -1, 0] - played[1, -2, 0]) < float(played[1, 5, 0] - played[1, 4, 0])
    assert torch.allclose(played[:, :, 1], torch.zeros(2, 11), atol=1e-4)  # on its line


def test_a_struck_sphere_rolls_farther_than_a_struck_cube() -> None:
    cube, _ = head_on(CUBE)
    sphere, _ = head_on(SPHERE)
    assert float(sphere[1, -1, 0]) > 1.5 * float(cube[1, -1, 0])
    assert shape_of(torch.tensor([1, 16, 17, 33, 48])).tolist() == [0, 0, 1, 2, 2]


def test_objects_that_never_meet_keep_the_forecasters_paths_unless_all_are_on_the_floor() -> None:
    only_hits = Floor(all_on_floor=0.0)
    played, free = head_on(CUBE, speed=1.0, gap=60.0, f=only_hits)  # slows to a stop far short
    assert torch.equal(played, free)
    # every object on the floor: the slow cube's path is the floor's (friction stops it at once,
    # where the net's path went on), the still one's stays still
    played, free = head_on(CUBE, speed=1.0, gap=60.0)
    assert float(played[0, -1, 0]) < float(free[0, -1, 0]) and not played[1].any()
    played, free = head_on(CUBE, speed=3.0, gap=200.0)  # faster, it slides and slows
    assert 3.0 < float(played[0, -1, 0]) < float(free[0, -1, 0])
    # a slot without an object and a second video are nothing to hit
    centre = torch.tensor([[[60.0, 120.0], [70.0, 120.0]], [[60.0, 120.0], [200.0, 40.0]]])
    velocity = torch.tensor([[[6.0, 0.0], [0.0, 0.0]], [[6.0, 0.0], [0.0, 0.0]]])
    shift = torch.zeros(2, 2, 11, 2)
    present = torch.tensor([[True, False], [True, True]])
    classes = torch.full((2, 2), CUBE)
    out = play_on_floor(shift, velocity, centre, present, classes, SIZE, only_hits)
    assert torch.equal(out, shift)


def test_an_object_moving_into_one_it_touches_hits_it_at_once() -> None:
    played, _ = head_on(CUBE, speed=4.0, gap=12.0)  # closer than two footprints: touching
    assert float(played[1, 0, 0]) > 0.5  # the struck one moves in the first frame
    # pushed apart: by the end the two are at least a footprint's width apart in the image
    assert float(played[1, -1, 0] + 12.0 - played[0, -1, 0]) > 12.0


def test_model_config_holds_sixteen_floor_constants_or_none() -> None:
    cfg = get_preset("tracks", track_floor=Floor().as_tuple())
    assert cfg.track_floor == Floor().as_tuple() and len(cfg.track_floor) == 16
    assert type(cfg).from_dict(cfg.to_dict()) == cfg  # a checkpoint round trip
    with pytest.raises(ValueError, match="track_floor holds 16 constants"):
        get_preset("tracks", track_floor=(1.0, 2.0))
    # checkpoints fitted before the switches hold 13 or 15: they play as they did, those off
    old = get_preset("tracks", track_floor=Floor().as_tuple()[:13])
    assert Floor(*old.track_floor) == Floor(aim_cone=0.0, all_on_floor=0.0, whole_footprint=0.0)
    assert type(old).from_dict(old.to_dict()) == old
    later = get_preset("tracks", track_floor=Floor().as_tuple()[:15])
    assert Floor(*later.track_floor) == Floor(whole_footprint=0.0)


def test_the_forecaster_plays_the_hits_on_the_floor() -> None:
    # a cube sliding right at 6 px/frame towards a still sphere 36 px away, at row 120
    masks = torch.zeros(1, 4, *SIZE, dtype=torch.long)
    for t in range(4):
        masks[0, t, 116:124, 40 + 6 * t : 48 + 6 * t] = CUBE
        masks[0, t, 116:124, 94:102] = SPHERE
    cfg = get_preset("tracks", frames_in=4, frames_out=8, height=SIZE[0], width=SIZE[1])
    torch.manual_seed(0)
    plain = TrackForecaster(cfg).eval()  # zero-initialised: the extrapolation guess
    floor = TrackForecaster(dataclasses.replace(cfg, track_floor=Floor().as_tuple())).eval()
    floor.load_state_dict(plain.state_dict())
    tracks = object_tracks(masks, cfg)
    free, played = plain.shifts(tracks, *SIZE), floor.shifts(tracks, *SIZE)
    assert torch.equal(free[0, SPHERE], torch.zeros(8, 2, dtype=torch.long))  # unplayed: stays
    assert int(played[0, SPHERE, -1, 1]) > 0  # played: the sphere is struck and rolls right
    assert int(played[0, CUBE, -1, 1]) < int(free[0, CUBE, -1, 1])  # the cube stops short


def test_an_object_looks_larger_by_its_depths_ratio() -> None:
    cam = Camera(Floor(), *SIZE)
    xy = torch.tensor([[120.0, 60.0], [120.0, 140.0]], dtype=torch.float64)
    # the depth is the camera-axis distance of the point where the ray meets the object's centre
    # height: one footprint across spans focal * width / depth px there
    wide = torch.tensor([2 * Floor().radius, 0.0], dtype=torch.float64)
    span = cam.to_image(cam.to_floor(xy) + wide)[:, 0] - xy[:, 0]
    assert torch.allclose(span, cam.focal * wide[0] / cam.depth(xy), rtol=1e-6)
    down = torch.tensor([[[0.0, 80.0], [0.0, 0.0], [0.0, -300.0]]])  # (1, 3, 2): near, same, far
    scale = depth_scale(xy[:1], down, Floor(), SIZE)[0]
    assert float(scale[0]) == pytest.approx(float(span[1] / span[0]), rel=1e-6)
    assert float(scale[1]) == 1.0 and float(scale[2]) == 0.5  # far past the horizon: clamped


def test_the_painter_draws_a_moved_square_at_its_scale() -> None:
    last = torch.zeros(*SIZE, dtype=torch.long)
    last[50:60, 100:110] = CUBE  # 10 x 10 px, centroid (54.5, 104.5)
    last[120:124, 20:24] = SPHERE
    ids, shift = torch.tensor([CUBE, SPHERE]), torch.tensor([[[30, 5]] * 3, [[0, 0]] * 3])
    scale = torch.tensor([[1.0, 1.5, 0.5], [1.0, 1.0, 1.0]])
    plain = paint_shifted(last, ids, shift)
    drawn = paint_shifted(last, ids, shift, scale)
    assert torch.equal(drawn[0], plain[0])  # scale 1: exactly the shifted square
    assert int((drawn[1] == CUBE).sum()) == 15 * 15 and int((drawn[2] == CUBE).sum()) == 5 * 5
    rows, cols = (drawn[1] == CUBE).nonzero(as_tuple=True)  # grown about its moved centroid
    assert abs(float(rows.double().mean()) - 84.5) <= 0.5
    assert abs(float(cols.double().mean()) - 109.5) <= 0.5
    assert torch.equal(drawn[:, 120:124, 20:24], plain[:, 120:124, 20:24])  # the other as it was


def test_the_forecaster_draws_an_object_coming_nearer_larger() -> None:
    # a cube sliding down the picture (towards the camera) at 5 px/frame
    masks = torch.zeros(1, 4, *SIZE, dtype=torch.long)
    for t in range(4):
        masks[0, t, 60 + 5 * t : 70 + 5 * t, 100:110] = CUBE
    cfg = get_preset("tracks", frames_in=4, frames_out=8, height=SIZE[0], width=SIZE[1])
    plain = TrackForecaster(cfg).eval()
    floor = TrackForecaster(dataclasses.replace(cfg, track_floor=Floor().as_tuple())).eval()
    floor.load_state_dict(plain.state_dict())
    (near, _), (same, _) = floor.forecast(masks), plain.forecast(masks)
    assert int((same[0, -1] == CUBE).sum()) == 100  # without the camera: its own size
    assert int((near[0, -1] == CUBE).sum()) > 120  # with it: larger, nearer the camera


def hit_near_frame_11(gap: float):
    """A cube sliding right at 8 px/frame at a still cube `gap` px away, a third still cube
    45 px beyond (footprints touch 35 px apart on this row), played from frame 8 by the stage
    itself: (image positions (3, 4, 2) at frames 8-11, the played displacements (3, 11, 2) of
    frames 12-22 from frame 11)."""
    centre = torch.tensor([[[60.0, 120.0], [60.0 + gap, 120.0], [105.0 + gap, 120.0]]])
    velocity = torch.tensor([[[8.0, 0.0], [0.0, 0.0], [0.0, 0.0]]])
    every = torch.ones(1, 3, dtype=torch.bool)
    played = play_on_floor(torch.zeros(1, 3, 14, 2), velocity, centre, every,
                           torch.full((1, 3), CUBE), SIZE, Floor())[0].double()  # fmt: skip
    at = centre[0, :, None].double() + torch.cat([torch.zeros(3, 1, 2), played[:, :3]], 1)
    return at, played[:, 3:] - played[:, 2:3]


def read_at_frame_11(at: torch.Tensor, earliest_seen: bool = True):
    """What the forecaster reads at frame 11 of `hit_near_frame_11`'s positions `at`: the
    arguments of `play_on_floor` (its own paths keep everything still) and its `before`, the
    steps into frames 10 and 9 (the second read as unseen without `earliest_seen`)."""
    step, centre = (at[:, 3] - at[:, 2])[None].float(), at[None, :, 3].float()
    every = torch.ones(1, 3, dtype=torch.bool)
    args = (torch.zeros(1, 3, 11, 2), step, centre, every, torch.full((1, 3), CUBE), SIZE,
            Floor())  # fmt: skip
    steps = torch.stack([at[:, 2] - at[:, 1], at[:, 1] - at[:, 0]], 1)[None].float()
    seen = torch.ones(1, 3, 2, dtype=torch.bool)
    seen[..., 1] = earliest_seen
    return args, (steps, seen)


def test_a_hit_inside_the_last_step_is_replayed_from_the_frame_before() -> None:
    at, truth = hit_near_frame_11(51.0)  # a hit early in frame 10 -> 11
    assert float(at[1, 2, 0] - at[1, 0, 0]) == 0.0  # the struck cube still at frame 10
    assert float(at[1, 3, 0] - at[1, 2, 0]) > 2.0  # struck during the last step
    assert float(truth[2, -1, 0]) > 1.0  # and it sets the third moving after frame 11
    args, before = read_at_frame_11(at)
    replayed = play_on_floor(*args, before)[0, 1:].double()
    read = play_on_floor(*args)[0, 1:].double()
    # from the frame before, the struck cube leaves at the speed the hit gave it: its hit on
    # the third plays as the frames were made
    assert (replayed - truth[1:]).norm(dim=-1).max() < 0.5
    # from the step into frame 11 (a part of a step for the struck cube, so too slow) the
    # struck cube falls short and the third leaves late
    assert (read - truth[1:]).norm(dim=-1).max() > 1.5
    # objects not seen in the last three frames are not replayed
    unseen = (before[0], torch.zeros(1, 3, 2, dtype=torch.bool))
    assert torch.equal(play_on_floor(*args, unseen), play_on_floor(*args))


@pytest.mark.parametrize("gap", [46.0, 47.0])
def test_a_hit_inside_the_step_before_is_not_replayed(gap: float) -> None:
    at, truth = hit_near_frame_11(gap)  # a hit late in frame 9 -> 10
    assert float(at[1, 1, 0] - at[1, 0, 0]) == 0.0  # the struck cube still at frame 9
    assert float(at[1, 2, 0] - at[1, 1, 0]) > 0.5  # struck during the step into frame 10
    args, before = read_at_frame_11(at)
    # the step into frame 11 is the motion after the hit: read as it is, the frames play as
    # they were made
    kept = play_on_floor(*args, before)[0, 1:].double()
    assert (kept - truth[1:]).norm(dim=-1).max() < 0.5
    assert torch.equal(kept, play_on_floor(*args)[0, 1:].double())
    # replayed from the step into frame 10 (part before the hit, part after) the pair meets a
    # second time and the struck cube falls short
    again = play_on_floor(*args, read_at_frame_11(at, earliest_seen=False)[1])[0, 1:].double()
    assert (again - truth[1:]).norm(dim=-1).max() > 1.5


def rolled_in(
    turn: float, f: Floor = Floor(), fresh: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """A cube first seen at the left border (x=8, row 120) that the net steps 6 px/frame
    `turn` degrees below the line to a cube at rest 60 px to its right (no step read for
    either: the first is new, the second still) -> (played displacements (2, 11, 2), the net's)."""
    centre = torch.tensor([[[8.0, 120.0], [68.0, 120.0]]])
    way = torch.tensor([math.cos(math.radians(turn)), math.sin(math.radians(turn))])
    shift = torch.zeros(1, 2, 11, 2)
    shift[0, 0] = 6.0 * torch.arange(1, 12)[:, None] * way
    every = torch.ones(1, 2, dtype=torch.bool)
    new = torch.tensor([[fresh, False]])
    played = play_on_floor(shift, torch.zeros(1, 2, 2), centre, every, torch.full((1, 2), CUBE),
                           SIZE, f, None, new)  # fmt: skip
    return played[0], shift[0]


def test_a_new_object_the_net_heads_near_one_at_rest_is_aimed_at_it() -> None:
    played, net = rolled_in(25.0)
    # aimed straight along its row at the cube at rest, at the net's speed, and hits it
    assert float(played[0, :3, 1].abs().max()) < 0.5 < float(net[0, 2, 1].abs())
    cam, start = Camera(Floor(), *SIZE), torch.tensor([8.0, 120.0], dtype=torch.float64)
    aimed, headed = ((cam.to_floor(start + s[0, 0].double()) - cam.to_floor(start)).norm()
                     for s in (played, net))  # fmt: skip
    assert abs(float(aimed / headed) - 1.0) < 1e-3  # at the net's floor speed
    assert float(played[1, -1, 0]) > 2.0  # the struck cube slides off to the right
    # headed 80 degrees off the line (outside the 60 degree cone), not aimed: the net's path,
    # and the cube at rest stays
    played, net = rolled_in(80.0)
    assert torch.equal(played, net)
    # nor with the aim off
    assert torch.equal(*rolled_in(25.0, Floor(aim_cone=0.0)))
    # seen in the frame before the last, it has its step read (here none): at rest on the
    # floor, or the net's path with only the hit objects on the floor
    played, net = rolled_in(25.0, fresh=False)
    assert not played.any()
    assert torch.equal(*rolled_in(25.0, Floor(all_on_floor=0.0), fresh=False))
