"""The generated data sets the quality benchmarks train on, kept in a cache folder."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

from convrnn_video.runtime.runs import METRICS
from convrnn_video.train.plots import read_metrics


def run_records(run: Path) -> dict[str, list[dict]]:
    """The records of a run folder's metrics.jsonl by kind ("train", "val", "end", ...), each
    kind's in the order written."""
    kinds: dict[str, list[dict]] = defaultdict(list)
    for record in read_metrics(run / METRICS):
        kinds[record.get("kind", "")].append(record)
    return kinds


def prepare_shards(
    cache: Path, train: int, val: int, seed: int, workers: int, unlabeled: int = 0
) -> Path:
    """Generate and ingest a set into `cache/shards` unless a matching one is there."""
    from convrnn_video.ingest.pack import IngestConfig, run_ingest
    from convrnn_video.ingest.synth import SynthConfig, generate

    shards = cache / "shards"
    manifest = shards / "manifest.json"
    want = {"train": train, "val": val, "unlabeled": unlabeled}
    if manifest.exists():
        splits = json.loads(manifest.read_text())["splits"]
        if all(splits.get(k, {}).get("videos", 0) == n for k, n in want.items()):
            return shards
    data = cache / "data"
    generate(
        SynthConfig(
            out=data, train=train, val=val, unlabeled=unlabeled, hidden=0, seed=seed,
            workers=workers, overwrite=True, progress=False,
        )
    )  # fmt: skip
    run_ingest(
        IngestConfig(data_root=data, out=shards, workers=workers, overwrite=True, progress=False)
    )
    return shards
