"""Where the floor stage places an object: its mask's centroid moved to where the camera sees
its centre (`StateReader.placing`, fitted by `fit-reader` on the generator's scenes)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import torch
from convrnn_video.convrnn import get_preset
from convrnn_video.convrnn.floor import Floor
from convrnn_video.convrnn.state_reader import StateReader
from convrnn_video.convrnn.track_reads import tracks_and_mirror
from convrnn_video.infer.models import hit_rule
from convrnn_video.ingest.synth.writer import make_video
from convrnn_video.runtime.checkpoint import load_model, save_untrained
from convrnn_video.train.reader import fit_placing, placing_samples


def floor_model(tmp_path: Path, reader: int = 0):
    """An untrained track forecaster with the floor stage (and a reader of `reader` hidden
    units), loaded."""
    cfg = dataclasses.replace(get_preset("tracks"), track_floor=Floor().as_tuple(),
                              track_reader=reader)  # fmt: skip
    return load_model(save_untrained(tmp_path / f"floor{reader}.pt", cfg), task="tracks")[0]


def offsets_left(placing: torch.Tensor, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The offsets `y` (N, 2) px less what `placing` moves samples `x` (shape, row) by."""
    reader = StateReader(1)
    reader.placing.copy_(placing)
    centre = torch.tensor([[[0.0, float(row)]] for _, row in x], dtype=torch.float64)
    classes = torch.tensor([[int(shape) * 16 + 1] for shape, _ in x])
    return y - (reader.placed(centre, classes, 160) - centre)[:, 0].numpy()


def test_a_reader_saved_before_placing_places_nothing() -> None:
    old = StateReader(8).state_dict()
    del old["placing"]
    reader = StateReader(8)
    reader.placing.fill_(1.0)
    reader.load_state_dict(old)  # the missing buffer is zero: nothing moves
    centre = torch.tensor([[[10.0, 40.0], [100.0, 120.0]]], dtype=torch.float64)
    classes = torch.tensor([[1, 20]])
    assert torch.equal(reader.placed(centre, classes, 160), centre)
    # a placing moves each object by its shape's line in the row, in frame heights
    reader.placing[1] = torch.tensor([[0.01, 0.0], [-0.01, -0.02]], dtype=torch.float64)
    moved = reader.placed(centre, classes, 160)
    assert torch.equal(moved[0, 0], centre[0, 0])  # class 1 is a cube: shape 0, not placed
    want = centre[0, 1] + torch.tensor([1.6, -1.6 - 0.02 * 120], dtype=torch.float64)
    torch.testing.assert_close(moved[0, 1], want)


def test_placing_fitted_on_generated_scenes_finds_where_centres_are_seen(tmp_path: Path) -> None:
    model = floor_model(tmp_path)
    x, y = placing_samples(model, 0, range(9000, 9040))
    assert len(x) > 60 and set(x[:, 0].astype(int)) == {0, 1, 2}
    placing = fit_placing(x, y, 160)
    assert (placing[:, 1, 0] + placing[:, 1, 1] * 0.5 < 0).all()  # seen above the centroid
    # on other scenes it brings the objects seen whole to within a fraction of a pixel
    x2, y2 = placing_samples(model, 0, range(9100, 9140))
    before = np.median(np.hypot(*y2.T))
    after = np.median(np.hypot(*offsets_left(placing, x2, y2).T))
    assert before > 0.8 and after < 0.4 and after < before / 3, (before, after)
    # a shape with too few samples stays where its centroid is
    cubes = x[:, 0] == 0
    only = fit_placing(x[cubes], y[cubes], 160)
    assert only[0].abs().sum() > 0 and torch.equal(only[1:], torch.zeros(2, 2, 2, dtype=only.dtype))


def test_the_floor_stage_starts_objects_where_the_reader_places_them(tmp_path: Path) -> None:
    model = floor_model(tmp_path, reader=8).eval()
    masks = torch.from_numpy(np.stack([make_video(0, v)[1] for v in range(1000, 1008)])).long()
    seen = masks[:, :11]
    tracks, flipped = tracks_and_mirror(seen, model.cfg)
    plain = model.floor_inputs(tracks, 160, 240, flipped)[2]
    _, unplaced = model.forecast(masks)
    assert "centres are seen" not in hit_rule(model.cfg, None, model)
    model.reader.placing[:, 1, 0] = -0.01  # every object 1.6 px higher
    placed = model.floor_inputs(tracks, 160, 240, flipped)[2]
    present = tracks.present
    torch.testing.assert_close(placed[present], plain[present] + torch.tensor([0.0, -1.6]))
    _, shifted = model.forecast(masks)
    assert not torch.equal(shifted, unplaced)  # the floor plays them from there
    assert "objects placed where their centres are seen" in hit_rule(model.cfg, None, model)
