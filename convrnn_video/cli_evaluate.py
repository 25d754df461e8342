"""Commands that look at a prediction store beside the true frames: `evaluate`, `show`."""

from __future__ import annotations

import typer

from convrnn_video.cli_app import FRAME_METRICS, SHARDS, app, say, user_errors

# The stage's config dataclasses are torch-free: the options take their defaults from them.
from convrnn_video.infer.config import EvaluateConfig, ShowConfig

# --- evaluate ------------------------------------------------------------------------------


def _metric_line(name: str, report: dict) -> str:
    m, c = report["model"][name]["mean"], report["copy_last_frame"][name]["mean"]
    return f"  {name:<8} model {m:10.5f}   copy-last-frame {c:10.5f}"


@app.command()
def evaluate(
    preds: str = typer.Option(EvaluateConfig.preds, help="Store predicted from the val split."),
    shards: str = typer.Option(SHARDS, help="Shards with the true future frames."),
    out: str = typer.Option(EvaluateConfig.out, help="JSON report; the plot goes beside it."),
    segmenter: str | None = typer.Option(
        None,
        help="The store's segmenter, for the mask baselines.",
        show_default="the path it records",
    ),
    batch_size: int = typer.Option(EvaluateConfig.batch_size, help="Videos per batch."),
    device: str = typer.Option(EvaluateConfig.device, help="Segmenter device: auto, cpu, cuda."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Progress bar."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing report."),
) -> None:
    """Score a val store: MSE, MAE, PSNR, SSIM per frame, beside copying the last input frame;
    with masks, the Jaccard score beside copying frame 11's mask, extrapolating its objects and
    segmenting true frames."""
    from convrnn_video.infer.errors import InferError
    from convrnn_video.shards.errors import ShardError

    with user_errors(InferError, ShardError):
        from convrnn_video.infer.evaluate import run_evaluate

        r = run_evaluate(
            EvaluateConfig(
                preds=preds,
                shards=shards,
                out=out,
                segmenter=segmenter,
                batch_size=batch_size,
                device=device,
                progress=progress,
                overwrite=overwrite,
            )
        )
    first, last = r["frames"][0], r["frames"][-1]  # image numbers; the course counts from 1
    say(f"{r['videos']} {r['split']} videos, frames {first + 1}-{last + 1} (image_{first}-{last}):")
    # psnr: per video and frame, then averaged; psnr_mse: of the mean MSE (finite when copying
    # is exact); grid: patch-grid energy (copy-last shows the true frames' level); energy:
    # the frames' spectral energy over the true frames' (below 1: faded or blurred)
    for name in FRAME_METRICS if "model" in r else ():  # none: masks only
        say(_metric_line(name, r))
    if "jaccard" in r:
        last = f"image_{r['frames'][-1]}"
        say(f"  jaccard (49 classes)   {'mean':>7} {last:>9}")
        for key in ("model", "copy_last_input", "extrapolate_objects", "segmenter_on_true"):
            j = r["jaccard"][key]
            say(f"  {key:<20} {j['mean']:8.4f} {j['last']:9.4f}")
    say(f"report {out}, plot {r['plot']}")


# --- show ----------------------------------------------------------------------------------


@app.command()
def show(
    videos: str = typer.Option(..., help="Comma-separated videos: video_1000,video_1001."),
    preds: str = typer.Option(ShowConfig.preds, help="Prediction store."),
    shards: str = typer.Option(SHARDS, help="Shards with the input (and true) frames."),
    out: str = typer.Option(ShowConfig.out, help="Output picture (.png, or .gif with --gif)."),
    gif: bool = typer.Option(False, "--gif", help="An animation instead of a montage."),
    scale: float = typer.Option(ShowConfig.scale, help="Tile size relative to the frames' size."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing picture."),
) -> None:
    """Draw input, true and predicted frames of a few videos so a person can look at them."""
    from convrnn_video.infer.errors import InferError
    from convrnn_video.shards.errors import ShardError

    with user_errors(InferError, ShardError):
        from convrnn_video.infer.show import run_show

        s = run_show(
            ShowConfig(
                videos=[v for v in videos.split(",") if v.strip()],
                preds=preds,
                shards=shards,
                out=out,
                gif=gif,
                scale=scale,
                overwrite=overwrite,
            )
        )
    say(f"wrote {s['out']} ({len(s['videos'])} {s['split']} videos)")
