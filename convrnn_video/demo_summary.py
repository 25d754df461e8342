"""`demo_summary`: what `run_demo` returns: where everything is, the val scores, the optimizer
steps each training run made (`run_steps`) and the seconds of each stage.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from convrnn_video.infer.config import DemoConfig


def run_steps(run: Path) -> int:
    """The optimizer steps a training run made (its metrics' end record)."""
    ends = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()
            if '"end"' in line]  # fmt: skip
    return int(ends[-1]["step"]) if ends else 0


def demo_summary(
    cfg: DemoConfig,
    root: Path,
    shards: str,
    runs: dict[str, Path],
    done: dict[str, Any],
    reports: list[dict],
    montages: list[str],
    seconds: dict[str, float],
) -> dict:
    """What `run_demo` returns: where everything is, the val scores, the steps and times
    (`seconds`: each stage's and the total, from the demo's clock)."""
    (report, tracks_report), preds, export = reports, done["preds"], done["export"]
    jaccard = report.get("jaccard", {})
    tracks = tracks_report["jaccard"]["model"]
    return {
        "out": str(root),
        "data": str(root / "data"),
        "shards": shards,
        "run": str(runs["run"]),
        "ckpt": str(runs["ckpt"]),
        "segmenter_run": str(runs["segmenter_run"]),
        "segmenter": str(runs["segmenter"]),
        "tracks_run": str(runs["tracks_run"]),
        "tracks": str(runs["tracks"]),
        "preds": {**preds, **{f"{k} tracks": v for k, v in done["tracks"].items()}},
        "predictions": export["out"],
        "png_files": export["files"],
        "submission": done["submission"]["out"],
        "report": str(root / "report.json"),
        "plot": report["plot"],
        "tracks_report": str(root / "report-tracks.json"),
        "montage": montages[0],
        "frames_montage": montages[1],
        "videos": report["videos"],
        "train_videos": cfg.train,
        # frames 12-22 of the val videos: the submitted path (objects moved as wholes), the
        # frame model alone and copying the last input frame
        "tracks_frames": {k: v["mean"] for k, v in tracks_report["model"].items()},
        "model": {k: v["mean"] for k, v in report["model"].items()},
        "copy_last_frame": {k: v["mean"] for k, v in report["copy_last_frame"].items()},
        # the course's score of the val masks: frame 22 ("last") and all predicted frames
        "jaccard": {
            "tracks": {"last": tracks["last"], "mean": tracks["mean"]},
            **{
                key: {"last": jaccard[key]["last"], "mean": jaccard[key]["mean"]}
                for key in ("model", "copy_last_input", "extrapolate_objects", "segmenter_on_true")
                if key in jaccard
            },
        },
        "steps": {
            "frames": run_steps(runs["run"]),
            "segmenter": run_steps(runs["segmenter_run"]),
            "tracks": run_steps(runs["tracks_run"]),
        },
        "seconds": seconds,
    }
