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


def write_curves(
    metrics_path: Path,
    out: Path,
    panels: tuple[tuple[str, str], ...] = (
        ("psnr", "val PSNR (mean over predicted frames)"),
        ("ssim", "val SSIM (mean over predicted frames)"),
    ),
    baseline_key: str = "copy_last",
) -> Path:
    """Draw train and val loss, then each of `panels` (a val metric's mean against steps) with
    the baseline as a dashed line, into `out` (written atomically)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = read_metrics(metrics_path)
    train = [r for r in records if r.get("kind") == "train"]
    val = [r for r in records if r.get("kind") == "val"]
    fig, axes = plt.subplots(1, 1 + len(panels), figsize=(5 * (1 + len(panels)), 4))
    axes = list(axes) if len(panels) else [axes]
    ax = axes[0]
    if train:
        ax.plot([r["step"] for r in train], [r["loss"] for r in train], label="train loss", lw=1)
    if val:
        steps = [r["step"] for r in val]
        ax.plot(steps, [r["loss"] for r in val], "o-", label="val loss")
        key = f"{baseline_key}_loss"
        if all(key in r for r in val):
            ax.plot(steps, [r[key] for r in val], "--", label=f"val {baseline_key} loss")
    ax.set_yscale("log")
    ax.set_title("loss")
    for ax, (name, title) in zip(axes[1:], panels, strict=True):
        have = [r for r in val if name in r["model"]]  # a run begun before a metric existed
        if have:
            steps = [r["step"] for r in have]
            ax.plot(steps, [r["model"][name]["mean"] for r in have], "o-", label=f"val {name}")
            if all(baseline_key in r for r in have):
                base = [r[baseline_key][name]["mean"] for r in have]
                ax.plot(steps, base, "--", label=baseline_key)
        ax.set_title(title)
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
