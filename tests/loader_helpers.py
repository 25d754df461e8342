"""Helpers of the loader tests."""

from __future__ import annotations

FAST = {"frames_in": 2, "frames_out": 1}  # decode 3 frames where only keys and counts matter


def keys_of(loader) -> list[str]:
    return [k for batch in loader for k in batch["keys"]]
