"""The tracks task: the object-track forecaster (convrnn/tracks.py) learns where each object of
the last input mask goes, from the centroids of masks (true ones, or the segmenter's
pseudo-labels of unlabeled videos from --labels).

Its batches are objects, not videos. Before the run folder is written, `preflight` reads the
masks of every training video once, straight from the shards' mask.npy members (no frame is
decoded) and the label store, and keeps each object's features and true displacements in
memory: about 0.7 kB an object, each video also seen mirrored left-right (the scene's physics
allows it) and from every training window (`convrnn.track_windows.window_shifts`: the last input
frame at each moment of the video), about 100 MB per 1,000 course videos. An epoch is a
shuffle of those objects by (seed, epoch), split across ranks, so --resume continues the exact
batches. Validation is the masks task's: the segmenter's masks of the val input frames in,
the course's Jaccard of the moved masks out; the val videos are read and segmented once per
run (`val_forecasts`).
"""

from __future__ import annotations

import logging
import time
import zlib
from typing import Any

import numpy as np
import torch
from convrnn_video.convrnn.track_features import unit_px
from convrnn_video.convrnn.track_reads import Tracks, object_tracks, track_loss, tracks_and_mirror
from convrnn_video.convrnn.track_windows import concat_tracks
from convrnn_video.runtime.distributed import DistEnv
from convrnn_video.segment.apply import segment_frames
from convrnn_video.shards.format import video_id
from convrnn_video.shards.manifest import read_manifest
from convrnn_video.shards.reader import decode_mask, read_shard, split_shards
from convrnn_video.train.config import TrainConfig
from convrnn_video.train.errors import TrainError
from convrnn_video.train.tasks.base import StepContext
from convrnn_video.train.tasks.frames import ForecasterTask
from convrnn_video.train.tasks.masks import MasksTask
from convrnn_video.train.tasks.track_table import tables

log = logging.getLogger(__name__)

CHUNK = 64  # videos turned into object features at once
VAL_BATCH = 16  # val videos per batch without --val-batch-size


class ObjectBatches:
    """One epoch of this rank's object batches: a permutation of the table by (seed, epoch),
    every rank the same number of whole batches, the first `start` skipped."""

    def __init__(self, table: Tracks, cfg: TrainConfig, env: DistEnv, epoch: int, start: int):
        self.table, self.batch_size, self.start = table, int(cfg.batch_size), start
        order = torch.randperm(len(table.features), generator=torch.Generator().manual_seed(
            int(cfg.seed) * 100_003 + epoch))  # fmt: skip
        per_rank = len(order) // env.world_size
        self.order = order[env.rank * per_rank : (env.rank + 1) * per_rank]

    def __len__(self) -> int:
        return len(self.order) // self.batch_size

    def __iter__(self):
        b = self.batch_size
        for i in range(self.start, len(self)):
            pick = self.order[i * b : (i + 1) * b]
            yield Tracks(*(None if f is None else f[pick] for f in self.table))


class TracksTask(MasksTask):
    name = "tracks"
    train_scalars = ()
    samples = "objects"

    def __init__(self) -> None:
        super().__init__()
        self._table: Tracks | None = None
        self._model_cfg = None  # the run's ModelConfig, from fit_geometry
        # the val batches read once: (tracks, last input mask, zlib'd true masks, their shape)
        self._val_cache: list[tuple[Tracks, torch.Tensor, bytes, tuple]] | None = None

    def fit_geometry(self, model_cfg, geometry, fresh: bool):
        if self.cfg.crop and min(self.cfg.crop) > 0:
            raise TrainError("--task tracks reads whole masks: leave out --crop")
        # the run's model (new, resumed or --init-from): what the objects' features are made for
        self._model_cfg = ForecasterTask.fit_geometry(self, model_cfg, geometry, fresh)
        return self._model_cfg

    def model_config(self, cfg: TrainConfig):
        model_cfg = super().model_config(cfg)
        if model_cfg.forecast != "tracks":
            raise TrainError(f"--task tracks trains the preset 'tracks', not {cfg.preset!r}")
        return model_cfg

    def preflight(self, cfg: TrainConfig, env: DistEnv, with_val: bool) -> None:
        if cfg.samples_per_epoch is not None:
            raise TrainError(
                "--samples-per-epoch counts videos; an epoch of --task tracks is every object of "
                "the training videos: leave it out (--max-steps or --time-limit set the budget)"
            )
        super().preflight(cfg, env, with_val)
        if self._table is None:
            self._table = self._read_objects(cfg)

    def _read_objects(self, cfg: TrainConfig) -> Tracks:
        """Every object of every training video (and its mirror image) as one Tracks table."""
        started = time.time()
        manifest = read_manifest(cfg.shards)
        shape_cfg = self._model_cfg  # set by fit_geometry, which the session calls first
        videos = 0

        def counted():
            nonlocal videos
            for chunk in self._mask_chunks(cfg, manifest):
                videos += len(chunk)
                yield chunk

        parts = list(tables(counted(), shape_cfg, cfg.workers))
        if not parts or not sum(len(p.features) for p in parts):
            raise TrainError(f"the training splits of {cfg.shards} hold no object to learn from")
        table = concat_tracks(parts)
        log.info(
            "tracks: %d objects (mirrored, every window) from %d videos, %.0f MB, read in %.0f s"
            "%s", len(table.features), videos, sum(f.nbytes for f in table) / 1e6,
            time.time() - started, f" by {cfg.workers} workers" if cfg.workers else "",
        )  # fmt: skip
        return table

    def _mask_chunks(self, cfg: TrainConfig, manifest: dict[str, Any]):
        """uint8 (n, T, H, W) masks of the training videos, CHUNK at a time: mask.npy from the
        shards where they have it, the label store's pseudo-labels for the other splits."""
        need = cfg.frames_in + cfg.frames_out
        for split in cfg.train_splits:
            labelled = bool(manifest["splits"][split].get("masks"))
            batch: list[Any] = []
            for ref in split_shards(cfg.shards, manifest, split):
                for sample in read_shard(ref):
                    batch.append(decode_mask(sample)[:need] if labelled
                                 else video_id(sample["__key__"]))  # fmt: skip
                    if len(batch) == CHUNK:
                        yield self._stack(batch, labelled, need)
                        batch = []
            if batch:
                yield self._stack(batch, labelled, need)

    def _stack(self, batch: list[Any], labelled: bool, need: int) -> np.ndarray:
        if labelled:
            return np.stack(batch)
        assert self._labels is not None  # check_split asked for --labels
        return self._labels.read_ids(batch)[:, :need]

    def train_batches(self, cfg: TrainConfig, env: DistEnv, epoch: int, start: int):
        assert self._table is not None, "preflight reads the objects"
        batches = ObjectBatches(self._table, cfg, env, epoch, start)
        if not len(batches):
            raise TrainError(
                f"--batch-size {cfg.batch_size}: the training videos hold only "
                f"{len(self._table.features)} objects (mirrored ones counted) for "
                f"{env.world_size} process(es); lower --batch-size"
            )
        return batches

    def val_batch_size(self, cfg: TrainConfig) -> int:
        """Val batches are videos, not objects: a batch of 256 course videos would hold 2.6 GB
        of float frames."""
        return int(cfg.val_batch_size or min(int(cfg.batch_size), VAL_BATCH))

    def val_forecasts(self, model, loader, env: DistEnv, autocast):
        """The masks task's val forecasts, reading and segmenting the val videos once per run:
        the first validation keeps each batch's object tracks, last input mask and true masks
        (zlib-compressed; about 70 kB a generated course video in all), so later ones decode
        no frame and run no segmenter, only move objects and count (the first costs about
        10 minutes for the course's 1,000 val videos on 2 AVX2 cores)."""
        if self._val_cache is None:
            fi, fo = self.cfg.frames_in, self.cfg.frames_out
            segmenter, cache = self.segmenter(self.cfg, env.device), []
            for batch in loader:
                seen = segment_frames(segmenter, batch["inputs"], autocast)
                true = np.ascontiguousarray(batch["masks"][:, fi : fi + fo].numpy())
                packed = zlib.compress(true.tobytes(), 1)
                last = seen[:, -1].to("cpu", torch.uint8, copy=True)  # not a view of all 11
                both = tracks_and_mirror(seen, model.cfg)  # as `forecast` reads them
                cache.append((*both, last, packed, true.shape))
            self._val_cache = cache
        for tracks, mirror, last, packed, shape in self._val_cache:
            true = np.frombuffer(zlib.decompress(packed), np.uint8).reshape(shape)
            shift = model.shifts(tracks, *last.shape[-2:], mirror)
            yield model.moved(tracks, last, shift), last.long(), torch.from_numpy(true.copy())

    def samples_in(self, batch: Tracks) -> int:
        return len(batch.features)

    def train_step(self, net: torch.nn.Module, batch: Tracks, ctx: StepContext):
        tracks = Tracks(*(None if f is None else f.to(ctx.device) for f in batch))
        m = ctx.model_cfg
        pred = net(tracks)  # (N, T_out, 2) px: the forward of a Tracks is its displacements
        return track_loss(pred, tracks, unit_px(m.height, m.width)), {}

    def dummy_loss(self, model: torch.nn.Module) -> torch.Tensor:
        cfg = model.cfg
        p = next(model.parameters())
        ids = torch.randint(0, 4, (2, cfg.frames_in, 32, 32), device=p.device)
        return model(object_tracks(ids, cfg)).float().mean()
