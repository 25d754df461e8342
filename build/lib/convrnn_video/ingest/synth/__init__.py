"""Synthetic CLEVRER-like videos in the real dataset's layout: `generate(SynthConfig(...))`.

Importing this package (and its config) is light: numpy and the renderer load on first use.
"""

from .config import SynthConfig, SynthError


def generate(cfg: SynthConfig) -> dict[str, int]:
    """Write the dataset `cfg` describes; return the videos per split plus written/skipped."""
    from .writer import generate as _generate

    return _generate(cfg)


__all__ = ["SynthConfig", "SynthError", "generate"]
