"""RUN/train.csv and RUN/val.csv from RUN/metrics.jsonl: the same records, as tables a
spreadsheet, pandas or a batch job's plotting script reads without parsing JSON.

Each record becomes one row; nested values are flattened to dotted columns
(`model.jaccard.last`), and lists (per-frame values) are left out (metrics.jsonl keeps them).
The tables are rewritten whole from metrics.jsonl (atomically) whenever curves.png is drawn,
so they follow it exactly, a resumed run's rolled-back records included.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path
from typing import Any

from convrnn_video.train.plots import read_metrics


def flatten(record: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"model": {"mse": {"mean": 1}}} -> {"model.mse.mean": 1}; lists are dropped."""
    out: dict[str, Any] = {}
    for key, value in record.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, name + "."))
        elif not isinstance(value, list):
            out[name] = value
    return out


def write_tables(metrics_path: Path, run: Path) -> list[Path]:
    """Write run/train.csv and run/val.csv (those with records); -> the files written."""
    written = []
    records = read_metrics(metrics_path)
    for kind in ("train", "val"):
        rows = [flatten(r) for r in records if r.get("kind") == kind]
        if not rows:
            continue
        columns = list(dict.fromkeys(k for row in rows for k in row if k != "kind"))
        text = io.StringIO()
        writer = csv.DictWriter(text, columns, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        path = run / f"{kind}.csv"
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text.getvalue())
        os.replace(tmp, path)
        written.append(path)
    return written
