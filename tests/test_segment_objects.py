"""segment/objects.py: connected regions, and fragments given their object's main class."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import REAL_SAMPLES
from convrnn_video.segment.objects import regions, steady_last, whole_objects


def flood_regions(fg: torch.Tensor) -> torch.Tensor:
    """The slow reference: every pixel takes the largest index of its 8-connected region by
    max-pooling until nothing changes."""
    h, w = fg.shape
    lab = torch.arange(1, h * w + 1, dtype=torch.float32).view(1, 1, h, w) * fg
    while True:
        new = F.max_pool2d(lab, 3, stride=1, padding=1) * fg
        if torch.equal(new, lab):
            return lab[0, 0].long()
        lab = new


def same_partition(a: torch.Tensor, b: torch.Tensor) -> bool:
    pairs = torch.unique(torch.stack([a.flatten(), b.flatten()]), dim=1)
    return pairs.shape[1] == len(a.unique()) == len(b.unique())


def test_regions_match_flooding_on_noise_and_shapes() -> None:
    g = torch.Generator().manual_seed(0)
    for density in (0.3, 0.5, 0.6):  # many small regions, some touching only diagonally
        fg = torch.rand(37, 53, generator=g) < density
        got = regions(fg)
        assert same_partition(got, flood_regions(fg))
        assert torch.equal(got > 0, fg)
        assert got.max() == len(got.unique()) - 1  # numbered 1..n without gaps
    fg = torch.zeros(9, 9, dtype=torch.bool)
    fg[1, 1] = fg[2, 2] = True  # diagonal neighbours: one region
    fg[5, 5] = fg[5, 7] = True  # a gap of one pixel: two
    assert regions(fg).unique().tolist() == [0, 1, 2, 3]
    assert regions(fg)[1, 1] == regions(fg)[2, 2]
    assert regions(torch.zeros(4, 6, dtype=torch.bool)).eq(0).all()
    assert regions(torch.ones(4, 6, dtype=torch.bool)).eq(1).all()


def test_fragments_take_the_main_class_and_touching_objects_stay() -> None:
    ids = torch.zeros(2, 20, 30, dtype=torch.uint8)  # (T, H, W)
    ids[0, 2:10, 2:10] = 5  # an object of class 5, 64 px ...
    ids[0, 2:4, 2:4] = 9  # ... with a 4-px piece read as class 9 (6% of it: a fragment)
    ids[0, 4:10, 9:10] = 7  # ... and a 6-px stripe of 7 (9%: a fragment)
    ids[0, 12:18, 2:20] = 3  # two touching objects, 3 (108 px) and 4 (60 px): both stay
    ids[0, 12:18, 20:30] = 4
    ids[1, 5:9, 5:9] = 9  # frame 2: 9 is an object of its own there
    out = whole_objects(ids, num_classes=49)
    assert out.dtype == ids.dtype and out.shape == ids.shape
    assert (out[0, 2:10, 2:10] == 5).all()
    assert (out[0, 12:18, 2:20] == 3).all() and (out[0, 12:18, 20:30] == 4).all()
    assert torch.equal(out[1], ids[1])  # each frame by itself
    assert torch.equal(out == 0, ids == 0)  # the floor stays floor, objects stay objects
    assert torch.equal(whole_objects(ids, 49, min_share=0, min_weight=0), ids)
    assert torch.equal(whole_objects(out, 49), out)  # whole objects stay as they are
    # a piece is a fragment by the frame-weight rule when its class is rare in the frame
    # against its region's main class, though it holds a fair share of the region
    small = torch.zeros(1, 40, 40, dtype=torch.long)
    small[0, 2:6, 2:12] = 5  # 40 px of 5 here ...
    small[0, 20:40, 20:40] = 5  # ... and 400 more elsewhere in the frame
    small[0, 2:6, 12:16] = 8  # 16 px touching the 40: share 0.29 but weight 16/440 < 0.1
    assert (whole_objects(small, 49)[0, 2:6, 12:16] == 5).all()
    # a partly hidden object behind a larger one keeps its class (weight 16/100 >= 0.1)
    hidden = torch.zeros(1, 20, 30, dtype=torch.long)
    hidden[0, 2:12, 2:12] = 5
    hidden[0, 2:6, 12:16] = 8
    assert (whole_objects(hidden, 49)[0, 2:6, 12:16] == 8).all()
    assert whole_objects(torch.zeros(0, 4, 4, dtype=torch.long), 49).shape == (0, 4, 4)


@pytest.mark.skipif(not REAL_SAMPLES.is_dir(), reason="no ../shared/real-samples")
def test_true_real_masks_are_whole_already() -> None:
    """The course's own masks have one class per object: the rule leaves nearly all of them."""
    for path in sorted(REAL_SAMPLES.glob("*/*/mask.npy")):
        masks = torch.from_numpy(np.load(path).astype(np.int64))  # (22, H, W)
        changed = (whole_objects(masks, 49) != masks).float().mean()
        assert changed < 0.001, path


def test_the_last_mask_steadied_where_the_segmenter_changed_its_mind() -> None:
    ids = torch.zeros(1, 4, 24, 32, dtype=torch.long)
    ids[0, :, 4:12, 4:12] = 5  # a still cube, class 5 in every frame ...
    ids[0, 3, 4:12, 4:12] = 9  # ... but 9 in the last
    ids[0, :, 14:20, 20:26] = 7  # another object, steady throughout
    out = steady_last(ids, 49)
    assert torch.equal(out[0, 3, 4:12, 4:12], torch.full((8, 8), 5))  # given back its class
    assert torch.equal(out[:, :3], ids[:, :3]) and torch.equal(out[0, 3, 14:20], ids[0, 3, 14:20])
    # a piece of it: the piece goes back too
    part = ids.clone()
    part[0, 3, 4:12, 4:12], part[0, 3, 4:8, 4:12] = 5, 9
    assert torch.equal(steady_last(part, 49)[0, 3], ids[0, 0])
    # one object sliding over another: the one behind keeps its pixels' count, so the one in
    # front keeps its class
    over = torch.zeros(1, 4, 24, 32, dtype=torch.long)
    over[0, :, 4:12, 4:20] = 5  # a long still object
    for t in range(4):
        over[0, t, 6:10, 2 + 4 * t : 8 + 4 * t] = 9  # passing in front of it
    assert torch.equal(steady_last(over, 49), over)  # (most of its pixels were 5 before)
    # too few frames to vote
    assert torch.equal(steady_last(ids[:, :3], 49), ids[:, :3])
    assert torch.equal(steady_last(ids[:, :2], 49), ids[:, :2])
