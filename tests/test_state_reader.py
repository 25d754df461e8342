"""convrnn/state_reader.py and train/reader.py: the learned correction of the floor stage's
short tracks, from a reader by hand to `fit-reader` on generated scenes and a prediction."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from convrnn_video.convrnn import get_preset
from convrnn_video.convrnn.floor import Floor
from convrnn_video.convrnn.floor_play import play_on_floor
from convrnn_video.convrnn.state_reader import FEATURES, StateReader, mirrored
from convrnn_video.ingest.synth.writer import make_video
from convrnn_video.runtime.checkpoint import load_checkpoint, load_model, save_untrained
from convrnn_video.train.errors import TrainError
from convrnn_video.train.reader_config import ReaderConfig

from tests.infer_helpers import run_cli, tiny_segmenter


def floor_forecaster(tmp_path: Path) -> Path:
    """An untrained track forecaster with the floor stage, saved."""
    cfg = dataclasses.replace(get_preset("tracks"), track_floor=Floor().as_tuple())
    return save_untrained(tmp_path / "floor.pt", cfg)


def test_the_reader_is_left_right_symmetric_and_starts_at_zero() -> None:
    torch.manual_seed(0)
    reader = StateReader(16)
    x = torch.randn(5, FEATURES)
    assert torch.equal(reader(x), torch.zeros(5, 2))  # a new reader changes nothing
    torch.nn.init.normal_(reader.nets[0][-1].weight)
    fix, back = reader(x), reader(mirrored(x))
    assert fix.abs().max() > 0
    torch.testing.assert_close(back, fix * torch.tensor([-1.0, 1.0]))


def test_a_reader_of_several_members_answers_their_mean() -> None:
    torch.manual_seed(0)
    reader = StateReader(8, members=3)
    for net in reader.nets:
        torch.nn.init.normal_(net[-1].weight)
    x = torch.randn(4, FEATURES)
    each = torch.stack([reader.one_way(x, m) for m in range(3)])
    torch.testing.assert_close(reader.one_way(x), each.mean(0))
    assert not torch.allclose(each[0], each[1])  # the members are not one net three times


def test_a_reader_saved_before_members_loads_as_member_zero() -> None:
    torch.manual_seed(0)
    old = StateReader(8)
    torch.nn.init.normal_(old.nets[0][-1].weight)
    # the keys a reader was saved under before it had members: `net.0.weight`, ...
    saved = {k.replace("nets.0.", "net."): v for k, v in old.state_dict().items()}
    assert any(k.startswith("net.") for k in saved)
    again = StateReader(8)
    again.load_state_dict(saved)
    x = torch.randn(6, FEATURES)
    torch.testing.assert_close(again(x), old(x))
    assert not again.every  # and it corrects the short tracks alone, as it was fitted to


@pytest.mark.parametrize("every", [True, False])
def test_only_a_reader_of_every_object_corrects_a_long_track(every: bool) -> None:
    # a lone cube sliding right at 4 px/frame, seen in every input frame (a long track), on a
    # floor that plays every object; slot 1 is empty. No hit can carry a correction to it.
    f = dataclasses.replace(Floor(), all_on_floor=1.0)
    shift = torch.zeros(1, 2, 11, 2)
    shift[0, 0, :, 0] = 4.0 * torch.arange(1, 12)
    velocity = torch.tensor([[[4.0, 0.0], [0.0, 0.0]]])
    centre = torch.tensor([[[100.0, 110.0], [0.0, 0.0]]])
    present = torch.tensor([[True, False]])
    classes = torch.tensor([[1, 2]])  # a cube
    before = (
        velocity[:, :, None].expand(1, 2, 2, 2).clone(),
        torch.ones(1, 2, 2, dtype=torch.bool),
    )
    args = (shift, velocity, centre, present, classes, (160, 240), f, before,
            torch.zeros(1, 2, dtype=torch.bool))  # fmt: skip
    reader = StateReader(8, every=every)
    with torch.no_grad():  # a reader that adds 0.02 camera heights a frame towards the camera
        reader.nets[0][-1].bias.copy_(torch.tensor([0.0, 0.02]))
    plain, read = play_on_floor(*args), play_on_floor(*args, reader=reader)
    assert torch.equal(read, plain) != every


def test_a_reader_needs_the_floor_stage() -> None:
    with pytest.raises(ValueError, match="track_reader corrects the floor stage's state"):
        dataclasses.replace(get_preset("tracks"), track_reader=8)
    cfg = dataclasses.replace(get_preset("tracks"), track_floor=Floor().as_tuple(), track_reader=8)
    assert cfg.track_reader == 8


def test_reader_config_reports_bad_options() -> None:
    with pytest.raises(TrainError, match="--videos must be at least 1.*--steps must be"):
        ReaderConfig(model="m.pt", out="o.pt", videos=0, steps=0)
    with pytest.raises(TrainError, match="--lr must be above 0.*--weight-decay must be 0 or more"):
        ReaderConfig(model="m.pt", out="o.pt", lr=0.0, weight_decay=-1e-3)
    assert ReaderConfig(model="m.pt", out="o.pt", weight_decay=0.0).weight_decay == 0.0
    with pytest.raises(TrainError, match="--members must be at least 1.*--workers must be 0"):
        ReaderConfig(model="m.pt", out="o.pt", members=0, workers=-1)
    floor = dataclasses.replace(get_preset("tracks"), track_floor=Floor().as_tuple())
    with pytest.raises(ValueError, match="track_reader_members must be >= 1, got 0"):
        dataclasses.replace(floor, track_reader=8, track_reader_members=0)


@pytest.mark.slow
def test_fit_reader_writes_a_forecaster_whose_reader_moves_new_objects(
    shard_root: Path, tmp_path: Path
) -> None:
    model = floor_forecaster(tmp_path)
    out = tmp_path / "reader.pt"
    args = ("fit-reader", "--model", str(model), "--out", str(out))
    proc = run_cli(*args, "--videos", "30", "--steps", "200", "--first-id", "5000",
                   "--hidden", "32", "--members", "2", "--lr", "2e-3", "--weight-decay", "0",
                   "--workers", "0")  # fmt: skip
    assert "generated scenes" in proc.stdout and "wrote" in proc.stdout, proc.stdout
    forecaster, cfg, payload = load_model(out, task="tracks")
    fit_report = payload["reader_fit"]
    assert cfg.track_reader == 32 and fit_report["hidden"] == 32
    assert cfg.track_reader_members == 2 and len(forecaster.reader.nets) == 2
    assert cfg.track_reader_every and forecaster.reader.every
    assert fit_report["lr"] == 2e-3 and fit_report["weight_decay"] == 0.0
    assert fit_report["objects"] > 30
    # and where each object's centre is seen: closer than its centroid on the scenes it fitted
    placed = fit_report["placing"]
    assert placed["objects"] > 20 and placed["median_px_after"] < placed["median_px_before"]
    assert forecaster.reader.placing.abs().sum() > 0 and "centres are seen" in proc.stdout
    old = load_checkpoint(model)["model"]
    assert all(torch.equal(old[k], v) for k, v in payload["model"].items() if k in old)
    assert any(k.startswith("reader.") for k in payload["model"])
    # on generated videos the fitted reader moves some object another way than without it
    plain = load_model(model, task="tracks")[0].eval()
    masks = torch.from_numpy(np.stack([make_video(0, v)[1] for v in range(1000, 1012)])).long()
    with_reader, shift = forecaster.eval().forecast(masks)
    without, plain_shift = plain.forecast(masks)
    assert not torch.equal(shift, plain_shift)
    assert with_reader.shape == without.shape == (12, 11, 160, 240)
    # the new checkpoint predicts through the CLI
    segmenter = tiny_segmenter(tmp_path / "seg.pt")
    proc = run_cli("predict", "--shards", str(shard_root), "--ckpt", str(out), "--segmenter",
                   str(segmenter), "--split", "val", "--out", str(tmp_path / "p.zarr"),
                   "--no-progress")  # fmt: skip
    assert "predicted 4 of 4 val videos" in proc.stdout + proc.stderr, proc.stdout
    # never over an existing file; a forecaster without the floor is refused; one error line
    again = run_cli(*args, "--videos", "2", check=False)
    assert again.returncode == 1 and again.stderr.strip().startswith("error:"), again.stderr
    assert "exists" in again.stderr and "Traceback" not in again.stderr
    # a forecaster without the floor stage is written unchanged, and says so
    bare = save_untrained(tmp_path / "bare.pt", get_preset("tracks"))
    kept = run_cli("fit-reader", "--model", str(bare), "--out", str(tmp_path / "b.pt"))
    assert "no floor stage" in kept.stdout and "unchanged" in kept.stdout, kept.stdout
    same, cfg, payload = load_model(tmp_path / "b.pt", task="tracks")
    assert cfg.track_reader == 0 and payload["reader_fit"]["fitted"] is False
    assert all(
        torch.equal(v, same.state_dict()[k]) for k, v in load_checkpoint(bare)["model"].items()
    )


@pytest.mark.slow
def test_fit_contacts_drops_a_reader_it_would_change(shard_root: Path, tmp_path: Path) -> None:
    cfg = dataclasses.replace(get_preset("tracks"), track_floor=Floor().as_tuple(), track_reader=8)
    model = save_untrained(tmp_path / "with-reader.pt", cfg)
    out = tmp_path / "refit.pt"
    run_cli("fit-contacts", "--model", str(model), "--shards", str(shard_root), "--out",
            str(out), "--tune-steps", "0", "--check-split", "")  # fmt: skip
    forecaster, refit, payload = load_model(out, task="tracks")  # loads, disc stage or floor
    assert refit.track_reader == 0 and forecaster.reader is None
    assert not any(k.startswith("reader.") for k in payload["model"])


@pytest.mark.slow
def test_worker_processes_read_the_same_samples_as_one(tmp_path: Path) -> None:
    from convrnn_video.train.reader import all_samples

    path = str(floor_forecaster(tmp_path))
    model = load_model(path, "cpu", task="tracks")[0].eval()
    here = all_samples(model, path, 0, range(7000, 7012), workers=0)
    two = all_samples(model, path, 0, range(7000, 7012), workers=2)
    assert len(here[0]) > 12  # every scene holds objects
    for a, b in zip(here, two, strict=True):
        np.testing.assert_array_equal(a, b)
