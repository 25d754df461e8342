"""`python cli.py fit-reader`: fit a track forecaster's state reader on the generator's scenes.

The floor stage reads each object's velocity off the input masks; for objects with a short
track (new in the last two input frames, or just out from behind another) that read is a
third of their speed off, and for the others it is off by enough to cost frame 22
(`convrnn/state_reader.py`). The generator (`ingest/synth`) knows where every object really
goes: this draws `videos` of its scenes (ids from `first_id`, as `synth` would draw them),
slides them through the input frames and renders those masks only, has the forecaster read
them as it would at prediction, and fits `StateReader` to each object's true velocity there
(before any hit after it), less the velocity the stage would slide it at. Every object seen in
the last input frame is a sample (and its mirror image), and every one takes the correction
at prediction (`every`). The reader is `members` MLPs, each fitted on its own batches, whose
answers it averages. `workers` processes draw and read the scenes. The new checkpoint is the
forecaster with the reader.

First it fits where the stage places each object (`StateReader.placing`, `fit_placing`): on
the objects seen whole in the last input frame of the first PLACING_VIDEOS scenes, the offset
from the mask's centroid to where the generator's camera sees the object's centre, per shape a
line in the image row (a median 1.33 px before, 0.20 px after). The scenes the nets learn from
are then read with the objects placed, as at prediction.

The reader is the generator's: on real videos the scenes differ (docs/benchmarks.md).
"""

from __future__ import annotations

import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import numpy as np
import torch
from convrnn_video.convrnn.floor import SHAPES, shape_of
from convrnn_video.convrnn.floor_play import read_state
from convrnn_video.convrnn.state_reader import StateReader, features, mirrored, offsets
from convrnn_video.convrnn.track_features import mask_stats
from convrnn_video.convrnn.track_reads import tracks_and_mirror
from convrnn_video.ingest.synth.config import FRAMES, HEIGHT
from convrnn_video.ingest.synth.render import render
from convrnn_video.ingest.synth.scene import CAM_HEIGHT, RADIUS, project
from convrnn_video.ingest.synth.sliding import simulate_to
from convrnn_video.ingest.synth.writer import video_rng
from convrnn_video.runtime.checkpoint import load_model, save_checkpoint
from convrnn_video.train.checkpoints import free_out, weights_without_reader
from convrnn_video.train.errors import TrainError
from convrnn_video.train.reader_config import ReaderConfig

BATCH = 10  # videos read at once
CHUNK = 1000  # scenes a worker process draws and reads at a time
STEP_BATCH = 512  # samples a training step
HUBER = 0.01  # camera heights a frame: errors above count linearly (a few are large)
PLACING_VIDEOS = 1000  # the first scenes, whose objects seen whole fit `placing`
PLACING_MIN = 20  # samples a shape needs to be placed


def _scenes(seed: int, first: int, stop: int, frames_in: int) -> tuple[list, torch.Tensor]:
    """The generator's scenes `first`..`stop - 1` slid to `frames_in` frames, and their input
    masks (B, T, H, W) class ids, rendered as `synth` would."""
    scenes = [simulate_to(video_rng(seed, v), frames_in, FRAMES) for v in range(first, stop)]
    masks = np.stack([render(s.scene(), frames_in)[1] for s in scenes])
    return scenes, torch.from_numpy(masks).long()


def scene_samples(model, seed: int, ids: range) -> tuple[np.ndarray, np.ndarray]:
    """(features (N, FEATURES), targets (N, 2)) of the objects seen in the last input frame of
    the generator's scenes `ids`: the target is the generator's velocity of the object there,
    in camera heights a frame, less the velocity the stage would slide it at."""
    cfg = model.cfg
    fi = cfg.frames_in
    xs, ys = [], []
    for first in range(ids.start, ids.stop, BATCH):
        scenes, seen = _scenes(seed, first, min(first + BATCH, ids.stop), fi)
        with torch.no_grad():
            tracks, flipped = tracks_and_mirror(seen, cfg)
            args = model.floor_inputs(tracks, *seen.shape[-2:], flipped)
            state, cam, _ = read_state(*args)  # as `play_on_floor` reads them
            present, classes = args[3], args[4]
            feats = features(state, present, classes, cam)
        for b, scene in enumerate(scenes):
            truth = scene.vel / CAM_HEIGHT  # (N, 2) the velocity it slides on at
            for j, k in enumerate(scene.scene().ids.tolist()):
                if scene.enter_at[j] < fi and present[b, k]:
                    xs.append(feats[b, k].numpy())
                    ys.append(truth[j] - state.velocity[b, k].numpy())
    return np.array(xs).reshape(-1, feats.shape[-1]), np.array(ys).reshape(-1, 2)


def placing_samples(model, seed: int, ids: range) -> tuple[np.ndarray, np.ndarray]:
    """(each object's (shape, row of its mask centroid) (N, 2), the image offset (x, y) from
    that centroid to where the generator's camera sees its centre (N, 2) px) of the objects
    seen whole (on neither the border nor beside another) in the last input frame of the
    generator's scenes `ids`: what `fit_placing` fits."""
    fi = model.cfg.frames_in
    xs, ys = [], []
    for first in range(ids.start, ids.stop, BATCH):
        scenes, seen = _scenes(seed, first, min(first + BATCH, ids.stop), fi)
        stats = mask_stats(seen, model.cfg, whole=True)
        centre, whole = stats.centre[:, fi - 1].double(), stats.whole[:, fi - 1]
        for b, scene in enumerate(scenes):
            x, z = scene.pos[:, 0], scene.pos[:, 1]  # floor positions in the last input frame
            seen_at, _ = project(np.stack([x, np.full_like(x, RADIUS), z], -1))
            for j, k in enumerate(scene.scene().ids.tolist()):
                if scene.enter_at[j] < fi and whole[b, k]:
                    at = centre[b, k].numpy()
                    xs.append((int(shape_of(torch.tensor(k))), at[1]))
                    ys.append(seen_at[j] - at)
    return np.array(xs).reshape(-1, 2), np.array(ys).reshape(-1, 2)


def fit_placing(x: np.ndarray, y: np.ndarray, height: int) -> torch.Tensor:
    """`StateReader.placing` (SHAPES, 2, 2) from `placing_samples` of frames `height` px
    high: per shape and axis, the least-squares line a + b * row of the offsets, in frame
    heights (zero for a shape with under PLACING_MIN samples: it stays at its centroid)."""
    placing = torch.zeros(SHAPES, 2, 2, dtype=torch.float64)
    for shape in range(SHAPES):
        pick = x[:, 0] == shape
        if pick.sum() < PLACING_MIN:
            continue
        rows = np.stack([np.ones(pick.sum()), x[pick, 1] / height], 1)
        coef = np.linalg.lstsq(rows, y[pick] / height, rcond=None)[0]  # (2 terms, 2 axes)
        placing[shape] = torch.from_numpy(coef.T.copy())
    return placing


def with_placing(model, placing: torch.Tensor | None):
    """`model` made ready to read scenes: without a reader, or with `placing` only (a reader
    whose nets are never run here; `floor_inputs` places the objects by it)."""
    model.reader = None
    if placing is not None:
        model.reader = StateReader(1)
        model.reader.placing.copy_(placing)
    return model


def all_samples(
    model, model_path: str, seed: int, ids: range, workers: int, placing=None, what="state"
) -> tuple:
    """`scene_samples` (what "state"; or `placing_samples`, "placing") of `ids` in chunks of
    at most CHUNK scenes, read by `workers` processes (each loads the forecaster from
    `model_path` and runs one torch thread), or here by `model` (that forecaster, loaded) for
    0 or 1, with the objects placed by `placing` (`with_placing`). The same samples in the
    same order either way."""
    size = max(1, min(CHUNK, -(-len(ids) // max(workers, 1))))  # every worker has a share
    chunks = [range(a, min(a + size, ids.stop)) for a in range(ids.start, ids.stop, size)]
    if workers <= 1:
        model = with_placing(model, placing)
        parts = [SAMPLES[what](model, seed, c) for c in chunks]
    else:  # spawn: a fresh interpreter, whatever threads this one runs
        context = multiprocessing.get_context("spawn")
        start = (model_path, placing)
        with ProcessPoolExecutor(workers, context, _start_worker, start) as pool:
            parts = list(pool.map(_worker_samples, [seed] * len(chunks), chunks,
                                  [what] * len(chunks)))  # fmt: skip
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


SAMPLES = {"state": scene_samples, "placing": placing_samples}
_MODEL: list = []  # a worker process's forecaster, loaded once by `_start_worker`


def _start_worker(model_path: str, placing: torch.Tensor | None) -> None:
    torch.set_num_threads(1)  # the workers share the cores
    _MODEL.append(with_placing(load_model(model_path, "cpu", task="tracks")[0].eval(), placing))


def _worker_samples(seed: int, ids: range, what: str) -> tuple[np.ndarray, np.ndarray]:
    return SAMPLES[what](_MODEL[0], seed, ids)


def fit(x: np.ndarray, y: np.ndarray, cfg: ReaderConfig) -> StateReader:
    """A StateReader of cfg.members MLPs, each fitted to the samples and their mirror images
    on its own batches (Huber loss, AdamW); it corrects every object."""
    torch.manual_seed(cfg.seed)
    x_t = torch.tensor(x, dtype=torch.float32)
    y_t = torch.tensor(y, dtype=torch.float32)
    x_t = torch.cat([x_t, mirrored(x_t)])
    y_t = torch.cat([y_t, y_t * torch.tensor([-1.0, 1.0])])
    reader = StateReader(cfg.hidden, cfg.members, every=True)
    reader.mean.copy_(x_t.mean(0))
    reader.scale.copy_(x_t.std(0).clamp(min=1e-3))
    for member, net in enumerate(reader.nets):
        opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        for _ in range(cfg.steps):
            pick = torch.randint(0, len(x_t), (STEP_BATCH,))
            guess = reader.one_way(x_t[pick], member)
            loss = torch.nn.functional.huber_loss(guess, y_t[pick], delta=HUBER)
            opt.zero_grad()
            loss.backward()
            opt.step()
    return reader.eval()


def fit_placing_on(model, cfg: ReaderConfig, ids: range) -> tuple[torch.Tensor, dict]:
    """(`StateReader.placing` fitted on the objects seen whole in the first PLACING_VIDEOS
    scenes of `ids`, what it did there: objects, the median distance in px from their
    centroids and from where it places them to where their centres are seen)."""
    first = range(ids.start, min(ids.stop, ids.start + PLACING_VIDEOS))
    x, y = all_samples(model, str(cfg.model), cfg.seed, first, cfg.workers, what="placing")
    placing = fit_placing(x, y, HEIGHT)
    moved = offsets(placing, torch.from_numpy(x[:, 0].astype(int)), torch.from_numpy(x[:, 1]),
                    HEIGHT)  # fmt: skip
    left = y - moved.numpy()
    return placing, {"objects": len(x), "median_px_before": _median_px(y),
                     "median_px_after": _median_px(left)}  # fmt: skip


def _median_px(offsets: np.ndarray) -> float:
    """The median length of image offsets (N, 2) px, rounded (0 for none)."""
    return round(float(np.median(np.hypot(*offsets.T))), 3) if len(offsets) else 0.0


def run_fit_reader(cfg: ReaderConfig) -> dict[str, Any]:
    """Draw, read, fit and write (cfg.out, never over an existing file) -> the report. A
    forecaster without the floor stage (`fit-contacts` kept the discs) is written unchanged,
    so the README's recipe runs on either; the report says `fitted` False."""
    started = time.time()
    out = free_out(cfg.out)
    model, model_cfg, payload = load_model(cfg.model, task="tracks")
    fitted = bool(model_cfg.track_floor)
    report: dict[str, Any] = {"model": str(cfg.model), "videos": cfg.videos,
                              "first_id": cfg.first_id, "fitted": fitted}  # fmt: skip
    if not model_cfg.track_floor:  # the disc stage plays the hits: nothing to correct
        save_checkpoint(out, {**payload, "reader_fit": report})
        return {**report, "out": str(out), "seconds": round(time.time() - started, 1)}
    ids = range(cfg.first_id, cfg.first_id + cfg.videos)
    model = model.cpu().eval()
    placing, placing_report = fit_placing_on(model, cfg, ids)
    x, y = all_samples(model, str(cfg.model), cfg.seed, ids, cfg.workers, placing)
    if len(x) < 2:
        raise TrainError(f"{cfg.videos} scenes hold {len(x)} object(s) to learn from")
    reader = fit(x, y, cfg)
    reader.placing.copy_(placing)
    weights = weights_without_reader(model)
    weights.update({f"reader.{k}": v.detach().cpu() for k, v in reader.state_dict().items()})
    model_config = {**payload["model_config"], "track_reader": cfg.hidden,
                    "track_reader_members": cfg.members, "track_reader_every": True}  # fmt: skip
    report.update(objects=len(x), steps=cfg.steps, hidden=cfg.hidden, members=cfg.members,
                  seed=cfg.seed, lr=cfg.lr, weight_decay=cfg.weight_decay,
                  workers=cfg.workers, placing=placing_report)  # fmt: skip
    save_checkpoint(out, {**payload, "model": weights, "model_config": model_config,
                          "reader_fit": report})  # fmt: skip
    return {**report, "out": str(out), "seconds": round(time.time() - started, 1)}
