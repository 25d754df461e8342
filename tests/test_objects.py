"""convrnn/objects.py: predicted frames with the last input frame's objects moved as wholes,
by hand on a square sliding over a striped floor, then through `predict --tracks` on the
conftest shards."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import zarr
from convrnn_video.convrnn.extrapolate import paint_shifted
from convrnn_video.convrnn.floor import Floor
from convrnn_video.convrnn.floor_play import rule
from convrnn_video.convrnn.objects import background_memory, floor_pixels, objects_moved

H, W, T_IN, T_OUT, SIDE, STEP = 20, 40, 4, 3, 5, 3  # a 5-px square moving 3 px a frame


def floor() -> torch.Tensor:
    """(3, H, W): a floor with vertical stripes, so a wrong source column shows."""
    cols = torch.arange(W, dtype=torch.float32) / W
    return torch.stack([cols.expand(H, W), 1 - cols.expand(H, W), torch.full((H, W), 0.3)])


def square_video(frames: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(frames (frames, 3, H, W), class ids (frames, H, W)): a red square of class 7, left
    column 2 + STEP * t, over `floor`."""
    video, ids = (
        floor().expand(frames, -1, -1, -1).clone(),
        torch.zeros(frames, H, W, dtype=torch.long),
    )
    for t in range(frames):
        x = 2 + STEP * t
        video[t, :, 8 : 8 + SIDE, x : x + SIDE] = torch.tensor([1.0, 0.0, 0.0])[:, None, None]
        ids[t, 8 : 8 + SIDE, x : x + SIDE] = 7
    return video, ids


def test_background_memory_takes_the_latest_frame_that_showed_floor() -> None:
    video, ids = square_video(T_IN)
    floor_now = floor_pixels(ids[None])  # (1, T, H, W)
    # the floor is what is 1 px or more away from an object
    assert not floor_now[0, -1, 7, 2 + STEP * 3] and floor_now[0, -1, 6, 2 + STEP * 3]
    assert torch.equal(floor_pixels(ids[None], margin=0), (ids == 0)[None])
    memory = background_memory(video[None], floor_now)[0]  # (3, H, W)
    # every pixel the square covers (or borders) in the last frame was floor in an earlier one
    assert torch.equal(memory, floor())
    # a pixel covered in every frame keeps the last frame's value
    ids[:, 0, 0] = 3
    video[:, :, 0, 0] = 0.5
    memory = background_memory(video[None], floor_pixels(ids[None]))
    assert torch.equal(memory[0, :, 0, 0], torch.full((3,), 0.5))


def test_a_square_moved_as_a_whole_is_the_true_future() -> None:
    video, ids = square_video(T_IN + T_OUT)
    seen, true = video[:T_IN], video[T_IN:]
    shift = torch.zeros(1, 8, T_OUT, 2, dtype=torch.long)  # (B, K, T_out, 2) as (row, col)
    shift[0, 7, :, 1] = STEP * torch.arange(1, T_OUT + 1)
    moved = paint_shifted(ids[T_IN - 1], torch.tensor([7]), shift[0, [7]])[None]  # (1, T, H, W)
    assert torch.equal(moved[0].long(), ids[T_IN:])
    faded = torch.full((1, T_OUT, 3, H, W), 0.5)  # a frame model that lost everything
    out = objects_moved(seen[None], ids[None, :T_IN], moved, shift, faded)[0]
    square = ids[T_IN:] > 0  # (T, H, W)
    # the square is exactly the true one, and the floor it left is the floor
    assert torch.equal(out.transpose(0, 1)[:, square], true.transpose(0, 1)[:, square])
    near_last = ~floor_pixels(ids[None, T_IN - 1 : T_IN])[0]  # (1, H, W): the square and its edge
    left = near_last & ~square  # (T, H, W)
    assert torch.equal(out.transpose(0, 1)[:, left], true.transpose(0, 1)[:, left])
    # everywhere else the frame model's frames stay
    rest = ~(square | near_last)
    assert rest.sum() > 0.8 * rest.numel() and torch.all(out.transpose(0, 1)[:, rest] == 0.5)
    # a wrong displacement draws the square, sharp, at the wrong place
    wrong = shift.clone()
    wrong[0, 7, :, 1] += 4
    moved = paint_shifted(ids[T_IN - 1], torch.tensor([7]), wrong[0, [7]])[None]
    out = objects_moved(seen[None], ids[None, :T_IN], moved, wrong, faded)[0]
    assert torch.equal(out[-1, :, 8, 2 + STEP * 6 + 4], torch.tensor([1.0, 0.0, 0.0]))


def test_a_square_drawn_larger_is_read_back_at_its_scale() -> None:
    video, ids = square_video(T_IN)
    shift = torch.zeros(1, 8, T_OUT, 2, dtype=torch.long)
    shift[0, 7, :, 1] = STEP * torch.arange(1, T_OUT + 1)
    scale = torch.ones(1, 8, T_OUT, dtype=torch.float64)
    scale[0, 7] = torch.tensor([1.0, 1.4, 1.8])  # nearer the camera each frame
    moved = paint_shifted(ids[T_IN - 1], torch.tensor([7]), shift[0, [7]], scale[0, [7]])[None]
    faded = torch.full((1, T_OUT, 3, H, W), 0.5)
    out = objects_moved(video[None], ids[None], moved, shift, faded, scale)[0]  # (T, 3, H, W)
    grown = moved[0] > 0  # (T, H, W): 25, then 7 x 7, then 9 x 9 px
    assert [int(g.sum()) for g in grown] == [25, 49, 81]
    red = torch.tensor([1.0, 0.0, 0.0])[:, None]
    # every drawn pixel reads the square's colour: no floor from outside it at the edges
    for t in range(T_OUT):
        assert torch.equal(out[t][:, grown[t]], red.expand(3, int(grown[t].sum())))
    # without the scale the larger masks would read floor at their edges
    plain = objects_moved(video[None], ids[None], moved, shift, faded)[0]
    assert not torch.equal(plain[-1][:, grown[-1]], red.expand(3, 81))


@pytest.mark.slow
def test_predict_with_tracks_moves_the_segmented_objects(shard_root: Path, tmp_path: Path) -> None:
    from convrnn_video.convrnn import get_preset
    from convrnn_video.convrnn.track_reads import object_tracks
    from convrnn_video.infer.config import PredictConfig
    from convrnn_video.infer.errors import InferError
    from convrnn_video.infer.predict import run_predict
    from convrnn_video.runtime.checkpoint import load_model, save_untrained
    from convrnn_video.segment.apply import track_rule
    from convrnn_video.segment.objects import steady_last, whole_objects
    from convrnn_video.shards.buffers import frames_to_float
    from convrnn_video.shards.loader import make_loader
    from convrnn_video.stores.errors import StoreError
    from convrnn_video.stores.predictions import PredStore
    from infer_helpers import assert_frames_close, tiny_checkpoint, tiny_segmenter

    frames_ckpt = tiny_checkpoint(tmp_path / "frames.pt")
    seg = tiny_segmenter(tmp_path / "seg.pt")
    tracks_ckpt = save_untrained(tmp_path / "tracks.pt", get_preset("tracks"))  # extrapolates

    def predict(out: str, **kw) -> PredStore:
        # fp32: the expectation below is computed in fp32 (in bf16 autocast, on a CPU with
        # bf16, the untrained segmenter's near-ties land elsewhere)
        run_predict(PredictConfig(shards=str(shard_root), out=str(tmp_path / out), split="val",
                                  precision="fp32", progress=False, **kw))  # fmt: skip
        return PredStore.open(str(tmp_path / out))

    both = predict("both.zarr", ckpt=str(frames_ckpt), segmenter=str(seg), tracks=str(tracks_ckpt))
    plain = predict("plain.zarr", ckpt=str(frames_ckpt))
    masks = predict("masks.zarr", ckpt=str(tracks_ckpt), segmenter=str(seg))
    assert both.attrs["holds"] == ["frames", "masks"] and both.attrs["tracks"] == str(tracks_ckpt)
    assert both.attrs["mask_rule"] == masks.attrs["mask_rule"] == track_rule(mirror=True)
    # --no-mirror: another rule, so a store made with one is not resumed with the other
    flat = predict("flat.zarr", ckpt=str(tracks_ckpt), segmenter=str(seg), mirror=False)
    assert flat.attrs["mask_rule"] == track_rule(mirror=False) != track_rule(mirror=True)
    with pytest.raises(StoreError, match="mirror-averaged"):
        predict("flat.zarr", ckpt=str(tracks_ckpt), segmenter=str(seg))
    # the floor stage's rule for hits is the store's too: a store of the rule before it (no
    # attribute) is not resumed with this one
    floor_ckpt = save_untrained(tmp_path / "floor.pt",
                                get_preset("tracks", track_floor=Floor().as_tuple()))  # fmt: skip
    floor = predict("floor.zarr", ckpt=str(floor_ckpt), segmenter=str(seg))
    drawn = "objects first seen in the last input frame drawn in the first 6 forecast frames"
    assert floor.attrs["hit_rule"] == f"{rule(Floor())}; {drawn}"
    assert masks.attrs["hit_rule"] == drawn  # no floor: how the new objects are drawn
    assert "aimed" in rule(Floor()) and "aimed" not in rule(Floor(aim_cone=0.0))
    del zarr.open_group(str(tmp_path / "floor.zarr"), mode="r+").attrs["hit_rule"]
    with pytest.raises(StoreError, match="hit_rule: store has None"):
        predict("floor.zarr", ckpt=str(floor_ckpt), segmenter=str(seg))
    # the stored masks are the track forecaster's, as its own store has them
    assert np.array_equal(both.masks[:], masks.masks[:])
    # the frames: the frame model's, with the segmented objects moved (by hand here)
    tracks, _, _ = load_model(tracks_ckpt, task="tracks")
    segmenter, _, _ = load_model(seg, task="segment")
    loader = make_loader(str(shard_root), ["val"], mode="eval", batch_size=2, frames_in=11,
                         frames_out=0)  # fmt: skip
    expected = []
    with torch.inference_mode():
        for batch in loader:
            inputs = batch["inputs"]  # (B, 11, 3, H, W)
            # as the track forecaster's masks are made: the mean of the probabilities for the
            # frames and their mirror image, whole objects, the last frame steadied
            probs = [segmenter(v).softmax(1) + segmenter(v.flip(-1)).flip(-1).softmax(1)
                     for v in inputs]  # fmt: skip
            seen = whole_objects(torch.stack([p.argmax(1) for p in probs]), 49)  # (B, 11, H, W)
            seen = steady_last(seen, segmenter.cfg.num_classes)
            t = object_tracks(seen, tracks.cfg)
            shift = tracks.shifts(t, *seen.shape[-2:])
            moved = tracks.moved(t, seen[:, -1], shift)
            pos = plain.positions(batch["ids"])
            base = frames_to_float(torch.from_numpy(plain.frames[pos]))  # (B, T, 3, H, W)
            out = objects_moved(inputs, seen, moved, shift, base, tracks.scales(seen[:, -1], shift))
            expected.append((out.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 1, 3, 4, 2))
    assert (both.masks[:] > 0).any(), "the segmenter found no object: the test tests nothing"
    assert_frames_close(both.frames[:], torch.cat(expected).numpy(), "predict --tracks")
    assert not np.array_equal(both.frames[:], plain.frames[:])
    # a tracks model for other frames, or a masks checkpoint, is refused in one message
    short = save_untrained(tmp_path / "short.pt", get_preset("tracks", frames_in=4, frames_out=4))
    with pytest.raises(InferError, match="reads 4 frames and forecasts 4"):
        predict("x.zarr", ckpt=str(frames_ckpt), segmenter=str(seg), tracks=str(short))
    with pytest.raises(InferError, match="needs a segmenter"):
        predict("y.zarr", ckpt=str(frames_ckpt), tracks=str(tracks_ckpt))
    assert not (tmp_path / "x.zarr").exists() and not (tmp_path / "y.zarr").exists()
