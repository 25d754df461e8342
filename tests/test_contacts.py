"""convrnn/contacts.py and train/contacts.py: hits between the track forecaster's objects, from
two discs by hand to `fit-contacts` on the conftest shards and a prediction with its output."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch
from convrnn_video.convrnn import get_preset
from convrnn_video.convrnn.contacts import Contacts, radius_line, with_contacts
from convrnn_video.convrnn.floor import Floor
from convrnn_video.convrnn.track_reads import object_tracks
from convrnn_video.convrnn.track_windows import window_shifts
from convrnn_video.convrnn.tracks import TrackForecaster
from convrnn_video.runtime.checkpoint import load_checkpoint, load_model, save_untrained
from convrnn_video.runtime.jaccard import FrameJaccard
from convrnn_video.train.contacts import forecast_inputs, frame22
from convrnn_video.train.contacts_config import ContactsConfig
from convrnn_video.train.contacts_tune import compact, video_windows
from convrnn_video.train.errors import TrainError

from tests.infer_helpers import run_cli, tiny_segmenter

# discs of radius 5 px everywhere, distances as in the image, no loss in a hit
ELASTIC = Contacts(reach=1.0, restitution=1.0, keep=1.0, decay=1.0, squash=1.0,
                   radius_slope=0.0, radius_top=5.0)  # fmt: skip


def play(shift: torch.Tensor, centre: torch.Tensor, c: Contacts) -> torch.Tensor:
    """One video's objects (N, T, 2) played out (`with_contacts` takes videos in a batch)."""
    every = torch.ones(1, len(shift), dtype=torch.bool)
    return with_contacts(shift[None], centre[None], every, c)[0]


def head_on(speed: float, steps: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Object 0 at x=10 sliding right at `speed` px/frame towards object 1, still at x=40."""
    centre = torch.tensor([[10.0, 20.0], [40.0, 20.0]])
    shift = torch.zeros(2, steps, 2)
    shift[0, :, 0] = speed * torch.arange(1, steps + 1)
    return shift, centre


def test_an_elastic_head_on_hit_passes_the_motion_on() -> None:
    shift, centre = head_on(4.0, 10)
    out = play(shift, centre, ELASTIC)
    # the discs touch when 10 px apart: object 0 stops near x=30 and object 1 takes its speed
    assert abs(float(out[0, -1, 0]) - 20.0) <= 1.0, out[0, :, 0]
    assert abs(float(out[1, -1, 0] - out[1, -2, 0]) - 4.0) < 1e-6, out[1, :, 0]
    assert float(out[1, -1, 0]) > 15.0
    assert torch.equal(out[:, :, 1], torch.zeros(2, 10))  # nothing moves sideways
    # losses in the hit: the struck object leaves slower and slows down afterwards
    lossy = play(shift, centre, dataclasses.replace(ELASTIC, keep=0.5, decay=0.9))
    assert 0 < float(lossy[1, -1, 0]) < float(out[1, -1, 0])


def test_objects_that_never_meet_keep_their_paths() -> None:
    shift, centre = head_on(1.0, 10)  # object 0 ends at x=20, 20 px short of object 1
    assert torch.equal(play(shift, centre, ELASTIC), shift)
    alone = shift[:1]
    assert torch.equal(play(alone, centre[:1], ELASTIC), alone)  # one object: nothing to hit


def test_a_pair_that_starts_overlapping_only_hits_after_parting() -> None:
    # one in front of the other in the image (3 px apart): they drift apart without a hit
    centre = torch.tensor([[30.0, 20.0], [33.0, 20.0]])
    shift = torch.zeros(2, 6, 2)
    shift[1, :, 0] = 2.0 * torch.arange(1, 7)
    assert torch.equal(play(shift, centre, ELASTIC), shift)


def test_videos_of_a_batch_and_absent_slots_do_not_hit() -> None:
    shift, centre = head_on(4.0, 10)
    # the striker in video 0, the still object in video 1 (same place): nothing is hit
    apart = torch.zeros(2, 2, 10, 2)
    apart[0, 0], apart[1, 1] = shift[0], shift[1]
    one = torch.tensor([[True, False], [False, True]])
    assert torch.equal(with_contacts(apart, centre.expand(2, 2, 2), one, ELASTIC), apart)
    # the same pair in one video, the striker's slot absent: nothing is hit either
    assert torch.equal(with_contacts(shift[None], centre[None], one[1:], ELASTIC), shift[None])


def test_the_hit_passes_gradients_back_to_the_striker() -> None:
    shift, centre = head_on(4.0, 10)
    shift.requires_grad_(True)
    out = play(shift, centre, ELASTIC)
    out[1, -1, 0].backward()  # where the struck object ends, by the striker's path
    assert shift.grad is not None and float(shift.grad[0, :, 0].abs().sum()) > 0.5


def test_the_vertical_squash_makes_rows_count_more() -> None:
    # object 0 slides down to 6 rows above object 1: a hit in the plain image (discs of 5 px),
    # a near miss when rows count double (the floor seen at a slant)
    centre = torch.tensor([[30.0, 10.0], [30.0, 26.0]])
    shift = torch.zeros(2, 4, 2)
    shift[0, :, 1] = 2.5 * torch.arange(1, 5)
    flat = play(shift, centre, ELASTIC)
    slanted = play(shift, centre, dataclasses.replace(ELASTIC, squash=2.0))
    assert float(flat[1, -1, 1]) > 0.5  # struck: object 1 moves down
    assert torch.equal(slanted, shift)


def test_the_radius_line_is_a_least_squares_fit() -> None:
    rows = torch.tensor([0.0, 50.0, 100.0, 150.0])
    slope, top = radius_line(rows, 6.0 + 0.1 * rows)
    assert abs(slope - 0.1) < 1e-9 and abs(top - 6.0) < 1e-9


def test_model_config_holds_seven_constants_or_none() -> None:
    cfg = get_preset("tracks", track_contacts=ELASTIC.as_tuple())
    assert cfg.track_contacts == ELASTIC.as_tuple()
    assert type(cfg).from_dict(cfg.to_dict()) == cfg  # a checkpoint round trip
    with pytest.raises(ValueError, match="track_contacts holds 7 constants"):
        get_preset("tracks", track_contacts=(1.0, 2.0))


def test_the_forecaster_plays_the_hits_out() -> None:
    # a 4x4 square sliding right at 3 px/frame towards a still one, 20 px away
    masks = torch.zeros(1, 4, 40, 60, dtype=torch.long)
    for t in range(4):
        masks[0, t, 10:14, 5 + 3 * t : 9 + 3 * t] = 1
        masks[0, t, 10:14, 34:38] = 2
    cfg = get_preset("tracks", frames_in=4, frames_out=8, height=40, width=60)
    torch.manual_seed(0)
    plain = TrackForecaster(cfg).eval()  # zero-initialised: the extrapolation guess
    hits = TrackForecaster(dataclasses.replace(cfg, track_contacts=dataclasses.replace(
        ELASTIC, radius_top=2.0).as_tuple())).eval()  # fmt: skip
    hits.load_state_dict(plain.state_dict())
    tracks = object_tracks(masks, cfg)
    free, played = plain.shifts(tracks, 40, 60), hits.shifts(tracks, 40, 60)
    assert torch.equal(free[0, 2], torch.zeros(8, 2, dtype=torch.long))  # unplayed: 2 stays
    assert int(played[0, 2, -1, 1]) > 0  # played: 2 is struck and moves right
    assert int(played[0, 1, -1, 1]) < int(free[0, 1, -1, 1])  # and 1 stops short


def test_the_fit_scores_frame_22_as_the_forecaster_draws_it() -> None:
    # an object first seen in the last input frame, still there at frame 22: the forecaster
    # leaves it out after track_new_frames, and the fit's score must too
    h, w = 40, 60
    masks = torch.zeros(2, 7, h, w, dtype=torch.uint8)
    masks[:, :, 10:14, 4:8] = 7  # still throughout
    masks[:, 2:, 30:34, 40:44] = 9  # first seen in the last input frame, and stays
    for new_frames, drawn in ((2, False), (0, True)):
        cfg = get_preset("tracks", frames_in=3, frames_out=4, height=h, width=w,
                         track_new_frames=new_frames)  # fmt: skip
        model = TrackForecaster(cfg).eval()
        moved, _ = model.forecast(masks.long())
        assert bool((moved[:, -1] == 9).any()) == drawn
        acc = FrameJaccard()
        acc.update(moved[:, -1:], masks[:, -1:].long())
        score = frame22(forecast_inputs(model, masks.numpy())[0], None)
        assert score == pytest.approx(acc.compute()["last"])


def test_the_tune_reads_every_window_of_every_video_with_its_objects_first() -> None:
    masks = torch.zeros(2, 12, 40, 60, dtype=torch.uint8)  # 2 videos, 4 input + 8 output frames
    masks[0, :, 10:14, 5:9] = 7  # video 0: one object, of class 7
    masks[1, :, 20:24, 30:34] = 3  # video 1: two objects
    masks[1, :, 5:9, 40:44] = 40
    cfg = get_preset("tracks", frames_in=4, frames_out=8, height=40, width=60)
    table = video_windows(masks.numpy(), cfg)
    assert table.present.shape[1] == 2  # two slots: the most any video has
    assert len(table.present) == 2 * 2 * len(window_shifts(cfg))  # mirrored, every moment
    assert bool(table.present[:, 0].all())  # an object in the first slot of every window
    assert int(table.present.sum()) == 3 * 2 * len(window_shifts(cfg))
    first = compact(table, slots=1)
    assert first.features.shape[:2] == (len(table.present), 1)


def test_contacts_config_reports_bad_options() -> None:
    with pytest.raises(TrainError, match="--videos must be at least 1"):
        ContactsConfig(model="m.pt", shards="s", out="o.pt", videos=0)
    with pytest.raises(TrainError, match="is the fit split"):
        ContactsConfig(model="m.pt", shards="s", out="o.pt", check_split="train")
    with pytest.raises(TrainError, match="--tune-steps must be 0 or more.*--tune-lr must be"):
        ContactsConfig(model="m.pt", shards="s", out="o.pt", tune_steps=-1, tune_lr=0.0)


@pytest.mark.slow
def test_fit_contacts_writes_a_forecaster_that_plays_hits(shard_root: Path, tmp_path: Path) -> None:
    manifest = json.loads((shard_root / "manifest.json").read_text())
    h, w = manifest["splits"]["train"]["height"], manifest["splits"]["train"]["width"]
    model = save_untrained(tmp_path / "tracks.pt", get_preset("tracks", height=h, width=w))
    out = tmp_path / "contacts.pt"
    args = ("fit-contacts", "--model", str(model), "--shards", str(shard_root), "--out", str(out))
    proc = run_cli(*args, "--json", "--tune-steps", "30")
    report = json.loads(proc.stdout)
    assert report["fit"]["videos"] == 6 and report["check"]["videos"] == 4
    assert report["check"]["split"] == "val"
    for part in ("fit", "check"):
        for score in ("frame22_without", "frame22_with", "frame22_tuned"):
            assert 0.0 <= report[part][score] <= 1.0, (part, score)
    assert report["tune"]["steps"] == 30 and report["tune"]["windows"] > 6  # every moment
    forecaster, cfg, payload = load_model(out, task="tracks")
    assert cfg.track_contacts == Contacts(**report["contacts"]).as_tuple()
    floor = report["floor"]  # the floor stage scored beside the disc stage, kept if better
    assert 0.0 <= floor["fit_frame22"] <= 1.0 and 0.0 <= floor["check_frame22"] <= 1.0
    disc = report["fit"]["frame22_tuned"]
    assert floor["kept"] == (floor["fit_frame22"] > disc)
    assert cfg.track_floor == (Floor(**floor["constants"]).as_tuple() if floor["kept"] else ())
    assert payload["contacts_fit"]["fit"]["split"] == "train"
    old = load_checkpoint(model)["model"]
    assert not all(torch.equal(old[k], v) for k, v in payload["model"].items())  # tuned
    # without the fine-tune: the same weights, and the constants only
    kept = tmp_path / "kept.pt"
    proc = run_cli(*args[:-1], str(kept), "--check-split", "", "--tune-steps", "0")
    assert "tuned" not in proc.stdout and "without contacts" in proc.stdout, proc.stdout
    assert "hits on the floor: fit" in proc.stdout, proc.stdout
    assert ("on the floor: new objects" in proc.stdout) == ("(kept:" in proc.stdout), proc.stdout
    kept_weights = load_checkpoint(kept)["model"]
    assert all(torch.equal(old[k], v) for k, v in kept_weights.items())
    # the new checkpoint predicts: its masks go into a store
    segmenter = tiny_segmenter(tmp_path / "seg.pt")
    proc = run_cli("predict", "--shards", str(shard_root), "--ckpt", str(out), "--segmenter",
                   str(segmenter), "--split", "val", "--out", str(tmp_path / "p.zarr"),
                   "--no-progress")  # fmt: skip
    assert "predicted 4 of 4 val videos" in proc.stdout + proc.stderr, proc.stdout
    # never over an existing file; a split without masks is refused; one error line each
    again = run_cli(*args, check=False)
    assert again.returncode == 1 and again.stderr.strip().startswith("error:"), again.stderr
    assert "exists" in again.stderr and "Traceback" not in again.stderr
    unlabelled = run_cli(*args[:-1], str(tmp_path / "u.pt"), "--split", "unlabeled", check=False)
    assert unlabelled.returncode == 1 and "has no masks" in unlabelled.stderr
    missing = run_cli(*args[:-1], str(tmp_path / "u.pt"), "--check-split", "test", check=False)
    assert missing.returncode == 1 and "--check-split ''" in missing.stderr, missing.stderr
    assert not (tmp_path / "u.pt").exists()
