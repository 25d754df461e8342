"""The `label` command: pseudo-masks of a split's videos, for training."""

from __future__ import annotations

import typer

from convrnn_video.cli_app import SHARDS, app, say, user_errors

# The stage's config dataclass is torch-free: the options take their defaults from it.
from convrnn_video.infer.config import LabelConfig

# --- label ---------------------------------------------------------------------------------


@app.command()
def label(
    segmenter: str = typer.Option(..., "--segmenter", help="Segmenter checkpoint (.pt)."),
    shards: str = typer.Option(SHARDS, "--shards", help="Shard folder/URL made by `ingest`."),
    split: str = typer.Option(LabelConfig.split, help="The split to label."),
    out: str | None = typer.Option(
        None, "--out", help="Label store (default: labels/<split>.zarr)."
    ),
    batch_size: int = typer.Option(LabelConfig.batch_size, help="Videos per batch."),
    device: str = typer.Option(LabelConfig.device, help="auto | cpu | cuda."),
    precision: str = typer.Option(LabelConfig.precision, help="auto | fp32 | bf16."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace another run's store."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="tqdm bar."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as one JSON object."),
) -> None:
    """Segment every frame of a split into a resumable label store (pseudo-masks for training).

    The store feeds `train --task tracks (or masks) --labels STORE`; a rerun continues an
    interrupted one.
    """
    import json

    from convrnn_video.infer.errors import InferError
    from convrnn_video.shards.errors import ShardError

    with user_errors(InferError, ShardError):
        from convrnn_video.infer.labels import run_label
        from convrnn_video.runtime.device import tune_process

        tune_process()  # threads, allocator: the command's settings (run_label changes none)
        cfg = LabelConfig(
            shards=shards, segmenter=segmenter, split=split, out=out or f"labels/{split}.zarr",
            batch_size=batch_size, device=device, precision=precision, overwrite=overwrite,
            progress=progress,
        )  # fmt: skip
        s = run_label(cfg)
    if as_json:
        typer.echo(json.dumps(s))
        return
    before = f" ({s['already_done']} done before)" if s["already_done"] else ""
    speed = f", {s['frames_per_s']} frames/s in {s['precision']}" if s["labelled"] else ""
    say(
        f"labelled {s['labelled']} of {s['videos']} {s['split']} videos{before} "
        f"in {s['seconds']:.1f} s{speed}"
    )
    if s["complete"]:
        say(f"wrote {s['store']}: train --task tracks (or masks) --labels {s['store']} reads it")
    elif s["complete"] is False:  # None: another process of a distributed run
        say(f"{s['store']} is not complete: rerun the same command to finish it")
