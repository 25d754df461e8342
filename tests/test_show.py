"""infer.show: montage and GIF of input, true and predicted frames."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from convrnn_video.infer.config import ShowConfig
from convrnn_video.infer.errors import InferError
from convrnn_video.infer.montage_rows import LABEL_W
from convrnn_video.infer.show import GAP, run_show
from convrnn_video.stores.errors import StoreError
from PIL import Image


@pytest.fixture(scope="module")
def stores(tiny_stores: dict[str, Path]) -> dict[str, Path]:
    return tiny_stores


def test_montage_rows(stores: dict[str, Path], shard_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "montage.png"
    s = run_show(
        ShowConfig(
            videos=["video_1000", "1002"],
            preds=str(stores["val"]),
            shards=str(shard_root),
            out=str(out),
        )
    )
    assert s["truth"] and s["videos"] == ["video_1000", "video_1002"]
    img = Image.open(out)
    # 2 videos x 3 rows (input, true, predicted) of 120x80 tiles, 11 columns, a gap between
    assert img.size == (LABEL_W + 11 * 120, 2 * 3 * 80 + GAP)
    # another picture is not drawn over it unless asked
    before = out.read_bytes()
    one = ShowConfig(videos=["1002"], preds=str(stores["val"]), shards=str(shard_root),
                     out=str(out))  # fmt: skip
    with pytest.raises(InferError, match="montage.png already exists; pass --overwrite"):
        run_show(one)
    assert out.read_bytes() == before
    run_show(dataclasses.replace(one, overwrite=True))
    assert Image.open(out).size == (LABEL_W + 11 * 120, 3 * 80)


def test_hidden_gif(stores: dict[str, Path], shard_root: Path, tmp_path: Path) -> None:
    s = run_show(
        ShowConfig(
            videos=["video_15001"],
            preds=str(stores["hidden"]),
            shards=str(shard_root),
            out=str(tmp_path / "anim.png"),
            gif=True,
        )
    )
    assert s["out"].endswith("anim.gif") and not s["truth"]
    gif = Image.open(s["out"])
    assert gif.n_frames == 22
    montage = run_show(
        ShowConfig(
            videos=["video_15001"],
            preds=str(stores["hidden"]),
            shards=str(shard_root),
            out=str(tmp_path / "m.png"),
        )
    )
    assert Image.open(montage["out"]).size[1] == 2 * 80  # no row of true frames


def test_unknown_video(stores: dict[str, Path], shard_root: Path, tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="video_999 are not in"):
        run_show(
            ShowConfig(
                videos=["video_999"],
                preds=str(stores["val"]),
                shards=str(shard_root),
                out=str(tmp_path / "x.png"),
            )
        )
    with pytest.raises(InferError, match="not a video name"):
        run_show(ShowConfig(videos=["cat"], preds=str(stores["val"]), shards=str(shard_root)))


def test_mask_rows(mask_stores: dict[str, Path], shard_root: Path, tmp_path: Path) -> None:
    s = run_show(
        ShowConfig(
            videos=["1002", "video_1000"],
            preds=str(mask_stores["val"]),
            shards=str(shard_root),
            out=str(tmp_path / "val.png"),
        )
    )
    assert s["masks"] and s["videos"] == ["video_1002", "video_1000"]
    img = Image.open(s["out"])
    # per video: input, true, predicted, true mask, predicted mask
    assert img.size == (LABEL_W + 11 * 120, 2 * 5 * 80 + GAP)
    hidden = run_show(
        ShowConfig(
            videos=["video_15001"],
            preds=str(mask_stores["hidden"]),
            shards=str(shard_root),
            out=str(tmp_path / "hidden.png"),
        )
    )
    assert Image.open(hidden["out"]).size[1] == 3 * 80  # input, predicted, predicted mask


def test_motion_colours_hue_is_direction_saturation_length() -> None:
    import numpy as np
    from convrnn_video.infer.colour_wheel import legend, motion_colours

    flow = np.zeros((2, 2, 4), np.float32)  # (2, h, w): still on the left half
    flow[0, :, 2] = 3.0  # right
    flow[1, :, 3] = -1.5  # up, half as far
    rgb = motion_colours(flow)
    assert rgb.shape == (2, 4, 3) and rgb.dtype == np.uint8
    assert (rgb[:, :2] == 255).all()  # no displacement: white
    assert rgb[0, 2].tolist() == [255, 0, 0]  # the longest, to the right: full red
    assert rgb[0, 3].tolist() == [191, 128, 255]  # up, half saturated: pale violet
    wheel = np.asarray(legend(21))
    assert wheel[10, 20].tolist() == [255, 12, 12] and (wheel[10, 10] == 255).all()


def test_motion_row(shard_root: Path, tmp_path: Path) -> None:
    import numpy as np
    from convrnn_video.infer.config import PredictConfig
    from convrnn_video.infer.montage_rows import MOTION_ROW_MIN_H, WHEEL
    from convrnn_video.infer.predict import run_predict
    from infer_helpers import motion_checkpoint

    ckpt = motion_checkpoint(tmp_path / "m.pt", (-1.0, 0.0))  # frame k samples 8k px left
    store = tmp_path / "val.zarr"
    run_predict(PredictConfig(shards=str(shard_root), ckpt=str(ckpt), out=str(store),
                              split="val", motion=True, progress=False))  # fmt: skip
    s = run_show(ShowConfig(videos=["1000"], preds=str(store), shards=str(shard_root),
                            out=str(tmp_path / "m.png")))  # fmt: skip
    assert s["motion"]
    img = np.asarray(Image.open(s["out"]))
    # input, true, predicted, then the motion row: tiles 120x80, at least MOTION_ROW_MIN_H tall
    assert img.shape == (3 * 80 + max(80, MOTION_ROW_MIN_H), LABEL_W + 11 * 120, 3)
    tiles = img[3 * 80 + 20 :, LABEL_W:].reshape(60, 11, 120, 3)  # below the frame numbers
    # content moves right by 8k px: red, deeper each frame, the last one full
    assert (tiles[..., 0] == 255).all() and (tiles[..., 1] == tiles[..., 2]).all()
    green = tiles[..., 1].reshape(60, 11, -1).mean((0, 2))
    assert (np.diff(green) < 0).all() and green[-1] == 0 and green[0] > 200
    wheel = img[-WHEEL - 3 : -3, LABEL_W - WHEEL - 4 : LABEL_W - 4]
    assert len({tuple(p) for p in wheel.reshape(-1, 3)}) > 100  # the legend's colours
    # (a store without motion keeps its rows: test_montage_rows)
