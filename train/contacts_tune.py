"""The second half of `fit-contacts`: fine-tune the track forecaster through its contact stage.

A track forecaster learns each object's displacement alone (`train --task tracks`), so where a
hit may come it learns the average of hit and miss: a striker that slows for no reason, a
struck object that creeps. Played out with contacts (convrnn/contacts.py) those paths miss
hits the disc model would have found, or count a hit twice. This fine-tune scores the
forecaster's displacements after the contact stage has played them out, so the net learns the
free paths that, once played out, land where the objects truly go (the stage is
differentiable in the paths; the hits' timing is not, and needs no gradient).

Batches are whole videos (every object of a video must be played out together): every moment
of each labelled video, and its mirror image, as in `train --task tracks` (`window_shifts`).
The tune runs on the CPU: its steps are 44 contact checks of a few objects each, which a GPU
would spend on kernel launches.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from convrnn_video.convrnn.contacts import Contacts, with_contacts
from convrnn_video.convrnn.track_features import unit_px
from convrnn_video.convrnn.track_reads import Tracks, track_loss
from convrnn_video.convrnn.track_windows import concat_tracks, training_windows

CHUNK = 64  # videos turned into tracks at once
BATCH = 32  # videos (or windows of them) a step


def compact(tracks: Tracks, slots: int | None = None) -> Tracks:
    """The same videos (B, K, ...) with their present objects in the first slots and only
    `slots` of them kept (all a video has, by default): the contact stage's pairs grow with
    the square of the slots, and a video holds a few objects of 49 classes."""
    n = int(tracks.present.sum(1).max()) if slots is None else slots
    order = tracks.present.float().argsort(dim=1, descending=True, stable=True)[:, :n]  # (B, n)

    def take(x: torch.Tensor) -> torch.Tensor:
        index = order.view(*order.shape, *([1] * (x.dim() - 2))).expand(-1, -1, *x.shape[2:])
        return x.gather(1, index)

    return Tracks(*(None if f is None else take(f) for f in tracks))


def video_windows(masks: np.ndarray, cfg) -> Tracks:
    """Every window of every video of true masks (V, T, H, W) uint8 and of its mirror image,
    as Tracks (N, S, ...) with the present objects first in S slots (the most any has)."""
    parts = []
    for start in range(0, len(masks), CHUNK):
        chunk = torch.from_numpy(masks[start : start + CHUNK])  # (B, T, H, W)
        for found in training_windows(chunk.long(), cfg):
            some = found.present.sum(1) > 0  # windows with an object in the last mask
            parts.append(compact(Tracks(*(f[some] for f in found))))
    slots = max(p.present.shape[1] for p in parts)
    return concat_tracks([_pad(p, slots) for p in parts])


def _pad(tracks: Tracks, slots: int) -> Tracks:
    """Tracks (N, S, ...) with empty slots added up to `slots` (present False, zeros)."""
    more = slots - tracks.present.shape[1]
    if more == 0:
        return tracks
    return Tracks(*(torch.cat([f, f.new_zeros(f.shape[0], more, *f.shape[2:])], 1)
                    for f in tracks))  # fmt: skip


def tune(model, table: Tracks, contacts: Contacts, steps: int, lr: float, seed: int,
         height: int, width: int) -> dict[str, float]:  # fmt: skip
    """Fine-tune `model` (in place) for `steps` Adam steps of BATCH windows of `table` (from
    `video_windows`), scored after `contacts` -> the loss of the first and last 100 steps."""
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)  # the dropout
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    unit = unit_px(height, width)
    losses = []
    started = time.time()
    model.train()
    for _ in range(steps):
        pick = torch.randint(0, len(table.present), (BATCH,), generator=generator)
        tracks = compact(Tracks(*(f[pick] for f in table)))
        paths = model.displacements(tracks, height, width)  # (B, S, T_out, 2) px, free
        played = with_contacts(paths, tracks.centre, tracks.present, contacts)
        loss = track_loss(played, tracks, unit)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    model.eval()
    return {
        "loss_first": float(np.mean(losses[:100])) if losses else float("nan"),
        "loss_last": float(np.mean(losses[-100:])) if losses else float("nan"),
        "seconds": round(time.time() - started, 1),
    }
