"""infer.palette: 49 distinct colours a person can read; palette PNGs keep the class ids."""

from __future__ import annotations

import numpy as np
import pytest
from convrnn_video.infer.palette import CLEVR_COLOURS, PALETTE, class_name, colourize, mask_image
from PIL import Image


def test_palette_colours() -> None:
    assert PALETTE.shape == (49, 3) and PALETTE.dtype == np.uint8
    assert len({tuple(c) for c in PALETTE}) == 49
    brightness = PALETTE.astype(int).sum(1)
    assert brightness[0] < brightness[1:].min()  # background is the darkest
    for cls in range(1, 49):
        k = cls - 1
        shape, material, colour = k // 16, (k // 8) % 2, k % 8
        base = np.asarray(CLEVR_COLOURS[colour])
        if base.max() > base.min():  # the base colour's strongest channel stays the strongest
            assert PALETTE[cls].argmax() == base.argmax()
        if material == 0:  # metal is lighter than the rubber of the same shape and colour
            assert brightness[cls] > brightness[cls + 8]
        if shape < 2:  # cube < sphere < cylinder within a material
            assert brightness[cls] < brightness[cls + 16]
    assert class_name(0) == "background" and class_name(5) == "brown metal cube"
    assert class_name(12) == "green rubber cube" and class_name(22) == "cyan metal sphere"


def test_mask_image_round_trip(tmp_path) -> None:
    rng = np.random.default_rng(0)
    mask = rng.integers(0, 49, size=(160, 240), dtype=np.uint8)
    mask_image(mask).save(tmp_path / "m.png")
    img = Image.open(tmp_path / "m.png")
    assert img.mode == "P" and np.array_equal(np.asarray(img), mask)
    assert np.array_equal(np.asarray(img.convert("RGB")), colourize(mask))
    with pytest.raises(ValueError, match="class ids must be < 49"):
        colourize(np.full((2, 2), 49, dtype=np.uint8))
