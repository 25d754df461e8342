"""Hand-made class-id masks of moving squares, for the track forecaster's tests."""

from __future__ import annotations

import torch
from convrnn_video.convrnn.track_reads import Tracks

H, W = 40, 60


def moving_squares(videos: int, frames: int, seed: int, keep: float) -> torch.Tensor:
    """(videos, frames, H, W) uint8: 1-3 squares of distinct classes per video, each starting
    somewhere with a velocity that keeps `keep` of itself per frame (rounded positions)."""
    g = torch.Generator().manual_seed(seed)
    out = torch.zeros(videos, frames, H, W, dtype=torch.uint8)
    for v in range(videos):
        classes = torch.randperm(48, generator=g)[: int(torch.randint(1, 4, (1,), generator=g))]
        for c in classes.tolist():
            pos = torch.rand(2, generator=g) * torch.tensor([H - 6.0, W / 3])
            vel = (torch.rand(2, generator=g) - 0.3) * torch.tensor([1.0, 3.0])
            for t in range(frames):
                r, col = pos.round().long().tolist()
                if 0 <= r < H - 4 and 0 <= col < W - 4:
                    out[v, t, r : r + 4, col : col + 4] = c + 1
                pos, vel = pos + vel, vel * keep
    return out


def objects(tracks: Tracks) -> Tracks:
    """The slots of objects present in the last input mask, as the trainer keeps them."""
    return Tracks(*(f[tracks.present] for f in tracks))
