"""RUN/curves.png from RUN/metrics.jsonl: losses and validation metrics against steps."""

from __future__ import annotations

import json
import os
from pathlib import Path


def read_metrics(path: Path) -> list[dict]:
    """The records of a metrics.jsonl file (a torn last line is skipped)."""
    records = []
    if not path.exists():
        return records
    for line in path.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def write_curves(metrics_path: Path, out: Path) -> Path:
    """Draw train and val loss, val PSNR and val SSIM against steps, copy-last-frame as a
    dashed line, into `out` (written atomically)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = read_metrics(metrics_path)
    train = [r for r in records if r.get("kind") == "train"]
    val = [r for r in records if r.get("kind") == "val"]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    ax = axes[0]
    if train:
        ax.plot([r["step"] for r in train], [r["loss"] for r in train], label="train loss", lw=1)
    if val:
        steps = [r["step"] for r in val]
        ax.plot(steps, [r["loss"] for r in val], "o-", label="val loss")
        copy = [r["copy_last"]["mse"]["mean"] for r in val]
        ax.plot(steps, copy, "--", label="val copy-last MSE")
    ax.set_yscale("log")
    ax.set_title("loss (per-pixel mean)")
    for ax, name in ((axes[1], "psnr"), (axes[2], "ssim")):
        if val:
            steps = [r["step"] for r in val]
            ax.plot(steps, [r["model"][name]["mean"] for r in val], "o-", label=f"val {name}")
            ax.plot(steps, [r["copy_last"][name]["mean"] for r in val], "--", label="copy-last")
        ax.set_title(f"val {name.upper()} (mean over predicted frames)")
    for ax in axes:
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend()
    fig.tight_layout()
    out = Path(out)
    tmp = out.with_name(out.stem + ".tmp.png")
    fig.savefig(tmp, dpi=80)
    plt.close(fig)
    os.replace(tmp, out)
    return out
