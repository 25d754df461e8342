"""infer.show: montage and GIF of input, true and predicted frames."""

from __future__ import annotations

from pathlib import Path

import pytest
from convrnn_video.infer.config import ShowConfig
from convrnn_video.infer.errors import InferError
from convrnn_video.infer.show import GAP, LABEL_W, run_show
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
