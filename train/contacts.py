"""`fit-contacts`: fit the contact stage's seven constants (convrnn/contacts.py) for a track
forecaster on labelled videos, and write the forecaster with them as a new checkpoint.

The constants are found by coordinate search (each in turn over a short list of values, twice
round), scored by the course's Jaccard of frame 22 when the last input mask's objects are moved
by the forecaster's displacements played out with hits; the disc radius line is fitted to the
objects' sizes. The fit reads true masks of a labelled split straight from the shards' mask.npy
members (no frame is decoded); a second labelled split (`check_split`) scores the forecaster
with and without the contacts on videos the fit has not seen, so the report says whether they
help before anyone predicts with them. Last, the floor stage (convrnn/floor.py: the hits played
on the floor plane) is searched the same way from its defaults and kept where it scores the fit
videos higher than the disc stage (`model_config["track_floor"]` set too). The new checkpoint
is the old one with `model_config["track_contacts"]` set: every command that reads a track
forecaster (`predict`, `submit`, `evaluate`, `show`) plays the hits without a flag (and, with
the floor stage, draws each moved object at its new depth's size).
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import numpy as np
import torch
from convrnn_video.convrnn.contacts import Contacts, radius_line, with_contacts
from convrnn_video.convrnn.extrapolate import paint_shifted
from convrnn_video.convrnn.floor import Floor, depth_scale
from convrnn_video.convrnn.floor_play import play_on_floor
from convrnn_video.convrnn.track_features import mask_stats, whole_centre
from convrnn_video.convrnn.track_reads import (
    both_tracks,
    drawn_frames,
    read_before,
    read_fresh,
    read_velocity,
)
from convrnn_video.runtime.checkpoint import load_model, save_checkpoint
from convrnn_video.runtime.jaccard import FrameJaccard
from convrnn_video.shards.manifest import read_manifest
from convrnn_video.shards.reader import decode_mask, read_shard, split_shards
from convrnn_video.train.checkpoints import free_out, weights_without_reader
from convrnn_video.train.contacts_config import ContactsConfig
from convrnn_video.train.contacts_tune import tune, video_windows
from convrnn_video.train.errors import TrainError

# The values the coordinate search tries for each constant (the radius line is fitted).
SEARCH: dict[str, tuple[float, ...]] = {
    "reach": (0.8, 0.9, 1.0, 1.1, 1.2),
    "restitution": (0.5, 0.85, 1.0),
    "keep": (0.5, 0.65, 0.8, 1.0),
    "decay": (0.75, 0.9, 0.97),
    "squash": (1.0, 1.6, 2.2, 3.0),
}
# ... and for the floor stage's (convrnn/floor.py; the rest keep their defaults): frame 22
# moved by 0.04-0.08 for 5 degrees of pitch on generated val (docs/benchmarks.md), so the
# camera's grid is fine
FLOOR_SEARCH: dict[str, tuple[float, ...]] = {
    "pitch": (26.0, 28.0, 30.0, 32.0, 34.0),
    "focal": (220.0, 253.0, 290.0),
    "radius": (0.085, 0.092, 0.098, 0.105, 0.112),
    "restitution": (0.7, 0.85, 1.0),
    "keep": (0.5, 0.65, 0.8),
    "aim_cone": (0.0, 60.0),  # new objects aimed at resting ones, or not
    "all_on_floor": (0.0, 1.0),  # every object the floor knows on the floor, or the hit ones
    "whole_footprint": (0.0, 1.0),  # partly hidden objects placed by their whole footprint
}
ROUNDS = 2
CHUNK = 32  # videos whose tracks are read at once


@dataclasses.dataclass
class Video:
    """What scoring one video needs: its objects and where the forecaster sends them."""

    ids: torch.Tensor  # (N,) the class ids of the last input mask's objects
    shift: torch.Tensor  # (N, T_out, 2) the forecaster's displacements, px as (x, y)
    centre: torch.Tensor  # (N, 2) their centroids in the last input mask, px as (x, y)
    footprint: torch.Tensor  # (N, 2) where their whole footprints are there (`whole_centre`)
    velocity: torch.Tensor  # (N, 2) their steps into the last input mask, px as (x, y)
    last: torch.Tensor  # (H, W) uint8 the last input mask
    target: torch.Tensor  # (H, W) uint8 the true last forecast frame (frame 22)
    before: torch.Tensor  # (N, 2, 2) their steps into the two masks before the last, px (x, y)
    whole: torch.Tensor  # (N, 2) bool: seen in the last three, four input masks (`read_before`)
    fresh: torch.Tensor  # (N,) bool: first seen in the last input mask (`read_fresh`)
    drawn: torch.Tensor  # (N,) bool: drawn in the last forecast frame (`track_new_frames`)


def read_masks(shards: str, split: str, videos: int | None, need: int) -> np.ndarray:
    """The first `videos` (all with None) true masks (V, need, H, W) uint8 of a labelled split,
    in id order: a TrainError if the split has no masks or fewer than `need` frames."""
    manifest = read_manifest(shards)
    entry = manifest["splits"].get(split)
    if entry is None:
        raise TrainError(f"{shards} has no split {split!r} (it has {sorted(manifest['splits'])}): "
                         "name another with --split or --check-split, or --check-split '' for "
                         "no check")  # fmt: skip
    if not entry.get("masks"):
        raise TrainError(f"split {split!r} of {shards} has no masks: fit-contacts needs a "
                         "labelled split (train or val)")  # fmt: skip
    out: list[np.ndarray] = []
    for ref in split_shards(shards, manifest, split):
        for sample in read_shard(ref):
            mask = decode_mask(sample)
            if len(mask) < need:
                raise TrainError(f"shard {ref}: sample {sample['__key__']} has {len(mask)} "
                                 f"frames; the forecaster needs {need}")  # fmt: skip
            out.append(mask[:need])
            if videos is not None and len(out) == videos:
                return np.stack(out)
    if not out:
        raise TrainError(f"split {split!r} of {shards} holds no video")
    return np.stack(out)


def forecast_inputs(model, masks: np.ndarray) -> tuple[list[Video], torch.Tensor, torch.Tensor]:
    """Every video's `Video`, and the rows (M,) and radii (M,) px of all their objects (a radius
    from the object's largest pixel count over the input masks, as a disc's)."""
    cfg = model.cfg
    fi, fo = cfg.frames_in, cfg.frames_out
    videos, rows, radii = [], [], []
    for start in range(0, len(masks), CHUNK):
        chunk = torch.from_numpy(masks[start : start + CHUNK])  # (B, T, H, W) uint8
        b, _, h, w = chunk.shape
        # the masks' statistics once, for the tracks (as `object_tracks` reads them) and the
        # sizes (count: (B, T_in, K))
        stats = mask_stats(chunk[:, :fi].long(), cfg, whole=True)  # the search tries both
        tracks, flipped = both_tracks(stats, h, w, cfg)
        with torch.no_grad():  # the paths `forecast` plays: the mean of the video's and mirror's
            shift = model.free_paths(tracks, flipped, h, w).float().cpu()  # (B, K, T_out, 2)
        velocity = read_velocity(tracks).float().cpu()  # (B, K, 2)
        before, whole = read_before(tracks, cfg, h, w)  # (B, K, 2, 2), (B, K, 2)
        fresh = read_fresh(tracks, cfg)  # (B, K)
        drawn = drawn_frames(tracks, cfg)[..., -1]  # (B, K) in frame 22, as `predict` draws
        size = stats.count.amax(1)  # (B, K) largest pixel count
        seen_at, whole_at = stats.centre[:, fi - 1].float(), whole_centre(stats, fi - 1).float()
        for i in range(b):
            k = tracks.present[i].nonzero().flatten().cpu()
            centre = seen_at[i, k].cpu()
            videos.append(Video(k, shift[i, k], centre, whole_at[i, k].cpu(), velocity[i, k],
                                chunk[i, fi - 1], chunk[i, fi + fo - 1], before[i, k].float().cpu(),
                                whole[i, k].cpu(), fresh[i, k].cpu(),
                                drawn[i, k].cpu()))  # fmt: skip
            rows.append(centre[:, 1])
            radii.append((size[i, k].float() / torch.pi).sqrt())
    return videos, torch.cat(rows), torch.cat(radii)


def frame22(videos: list[Video], stage: Contacts | Floor | None) -> float:
    """The course's Jaccard of the last forecast frame over `videos`, objects moved by the
    forecaster's displacements (played out with the disc or floor stage when given) and drawn
    as `predict` draws them."""
    paths = [v.shift for v in videos] if stage is None else played(videos, stage)
    pred, true = [], []
    for v, shift in zip(videos, paths, strict=True):
        if len(v.ids) == 0:
            pred.append(torch.zeros_like(v.last))
        else:
            step = shift[:, -1:].round()  # (N, 1, 2) as (x, y), as the forecaster draws it
            grow = None
            if isinstance(stage, Floor):  # drawn at the new depth's size, as `moved` does
                grow = depth_scale(v.centre, step, stage, tuple(v.last.shape))
            shown = v.drawn[:, None]  # (N, 1)
            pred.append(paint_shifted(v.last, v.ids, step.flip(-1).long(), grow, shown)[0])
        true.append(v.target)
    acc = FrameJaccard()
    acc.update(torch.stack(pred)[:, None], torch.stack(true)[:, None])
    return float(acc.compute()["last"])


def played(videos: list[Video], stage: Contacts | Floor) -> list[torch.Tensor]:
    """Each video's displacements (N, T_out, 2) played out with the disc stage's constants or
    the floor stage's, all videos at once (their objects in slots padded to the most any video
    has)."""
    slots = max([len(v.ids) for v in videos] + [1])
    t_out = videos[0].shift.shape[1] if videos else 0
    shift = torch.zeros(len(videos), slots, t_out, 2)
    centre, velocity = torch.zeros(len(videos), slots, 2), torch.zeros(len(videos), slots, 2)
    present = torch.zeros(len(videos), slots, dtype=torch.bool)
    classes = torch.zeros(len(videos), slots, dtype=torch.long)
    before = torch.zeros(len(videos), slots, 2, 2)
    whole = torch.zeros(len(videos), slots, 2, dtype=torch.bool)
    fresh = torch.zeros_like(present)
    for i, v in enumerate(videos):
        n = len(v.ids)
        at = v.footprint if isinstance(stage, Floor) and stage.whole_footprint else v.centre
        shift[i, :n], centre[i, :n], present[i, :n] = v.shift, at, True
        velocity[i, :n], classes[i, :n] = v.velocity, v.ids
        before[i, :n], whole[i, :n], fresh[i, :n] = v.before, v.whole, v.fresh
    if isinstance(stage, Floor):
        size = tuple(videos[0].last.shape)
        out = play_on_floor(shift, velocity, centre, present, classes, size, stage,
                            (before, whole), fresh)  # fmt: skip
    else:
        out = with_contacts(shift, centre, present, stage)
    return [out[i, : len(v.ids)] for i, v in enumerate(videos)]


def search(videos: list[Video], start, grid: dict[str, tuple[float, ...]] = SEARCH):
    """The best constants (a `Contacts` or a `Floor`) found from `start` by coordinate search
    over `grid`, and their score."""
    scores: dict[Any, float] = {}

    def score(c) -> float:
        if c not in scores:
            scores[c] = frame22(videos, c)
        return scores[c]

    best = start
    for _ in range(ROUNDS):
        for name, values in grid.items():
            tried = [dataclasses.replace(best, **{name: v}) for v in values]
            best = max([best, *tried], key=score)
    return best, score(best)


def run_fit_contacts(cfg: ContactsConfig) -> dict[str, Any]:
    """Fit, tune, check and write (cfg.out, never over an existing file) -> the report."""
    started = time.time()
    out = free_out(cfg.out)
    model, model_cfg, payload = load_model(cfg.model, task="tracks")
    need = model_cfg.frames_in + model_cfg.frames_out
    masks = read_masks(cfg.shards, cfg.split, cfg.videos, need)
    held = read_masks(cfg.shards, cfg.check_split, cfg.videos, need) if cfg.check_split else None
    fit, rows, radii = forecast_inputs(model, masks)
    if len(rows) < 2:
        raise TrainError(f"the {cfg.split} videos of {cfg.shards} hold {len(rows)} object(s); "
                         "the contact fit needs objects to see")  # fmt: skip
    check = forecast_inputs(model, held)[0] if held is not None else None
    slope, top = radius_line(rows, radii)
    contacts, _ = search(fit, Contacts(radius_slope=slope, radius_top=top))
    report: dict[str, Any] = {"model": str(cfg.model), "fit": _scores(cfg.split, fit, contacts)}
    if check is not None:
        report["check"] = _scores(cfg.check_split, check, contacts)
    if cfg.tune_steps:
        contacts, fit, check = _tune(cfg, model, masks, held, contacts, report)
    report["contacts"] = dataclasses.asdict(contacts)
    floor = _floor(fit, check, report)
    # a state reader learned the state of the stage as it was: a new fit drops it (`fit-reader`)
    model_config = {**payload["model_config"], "track_contacts": list(contacts.as_tuple()),
                    "track_floor": list(floor.as_tuple()) if floor else [],
                    "track_reader": 0}  # fmt: skip
    save_checkpoint(out, {**payload, "model": weights_without_reader(model),
                          "model_config": model_config, "contacts_fit": report})  # fmt: skip
    return {**report, "out": str(out), "seconds": round(time.time() - started, 1)}


def _floor(fit: list[Video], check: list[Video] | None, report: dict[str, Any]) -> Floor | None:
    """The floor stage (`convrnn.floor`, its constants searched over FLOOR_SEARCH from the
    defaults) where it forecasts the fit videos' frame 22 better than the disc stage as fitted
    (None: the disc stage plays the hits); the report gains its scores."""
    disc = report["fit"].get("frame22_tuned", report["fit"]["frame22_with"])
    floor, fitted = search(fit, Floor(), FLOOR_SEARCH)
    entry: dict[str, Any] = {"fit_frame22": fitted}
    if check is not None:
        entry["check_frame22"] = frame22(check, floor)
    entry["kept"] = entry["fit_frame22"] > disc
    report["floor"] = {**entry, "constants": dataclasses.asdict(floor)}
    return floor if entry["kept"] else None


def _scores(split: str | None, videos: list[Video], contacts: Contacts) -> dict[str, Any]:
    """Frame 22 of `videos` (of `split`) without and with `contacts`."""
    return {"split": split, "videos": len(videos), "frame22_without": frame22(videos, None),
            "frame22_with": frame22(videos, contacts)}  # fmt: skip


def _tune(cfg: ContactsConfig, model, masks: np.ndarray, held: np.ndarray | None,
          contacts: Contacts, report: dict[str, Any]):  # fmt: skip
    """Fine-tune `model` through `contacts` on the fit videos (`masks`), search the constants
    again from there and score it: the report gains the tune's and the scores' lines -> (the
    constants the tuned forecaster plays its hits with, its `Video`s of the fit and the check
    masks (None without))."""
    table = video_windows(masks, model.cfg)
    h, w = masks.shape[-2:]
    done = tune(model, table, contacts, cfg.tune_steps, cfg.tune_lr, cfg.seed, h, w)
    report["tune"] = {"steps": cfg.tune_steps, "lr": cfg.tune_lr, "windows": len(table.present),
                      "contacts_before": dataclasses.asdict(contacts), **done}  # fmt: skip
    del table
    fit = forecast_inputs(model, masks)[0]
    check = forecast_inputs(model, held)[0] if held is not None else None
    contacts, report["fit"]["frame22_tuned"] = search(fit, contacts)
    if check is not None:
        report["check"]["frame22_tuned"] = frame22(check, contacts)
    return contacts, fit, check
