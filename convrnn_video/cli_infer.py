"""Commands of prediction: `predict`, `export-png`, `submit`."""

from __future__ import annotations

import typer

from convrnn_video.cli_app import SHARDS, app, say, user_errors

# The stages' config dataclasses are torch-free: the options take their defaults from them.
from convrnn_video.infer.config import (
    ExportConfig,
    PredictConfig,
    SubmitConfig,
)

# --- predict -------------------------------------------------------------------------------


@app.command()
def predict(
    shards: str = typer.Option(SHARDS, help="Shard folder or URL (manifest.json)."),
    ckpt: str | None = typer.Option(
        None,
        help="Frames or masks checkpoint .pt, or run folder.",
        show_default="the newest run's best.pt under --runs",
    ),
    segmenter: str | None = typer.Option(
        None,
        help="Segment checkpoint: also store the masks of the predicted frames; a masks "
        "checkpoint needs it (it segments the input frames, the store then has masks only).",
    ),
    relabel_unseen: bool = typer.Option(
        False,
        "--relabel-unseen",
        help="Replace predicted classes never seen in the segmented input frames by the best "
        "seen class or background.",
    ),
    motion: bool = typer.Option(
        False,
        "--motion",
        help="Also store each predicted frame's displacement (a model with a motion output); "
        "show draws it.",
    ),
    tracks: str | None = typer.Option(
        None,
        help="Track forecaster checkpoint (train --task tracks), with a frames --ckpt and "
        "--segmenter: the last input frame's objects move as wholes in the predicted frames "
        "(sharp, not faded), and the stored masks are the track forecaster's.",
    ),
    mirror: bool = typer.Option(
        PredictConfig.mirror,
        "--mirror/--no-mirror",
        help="A track forecaster's input masks from the mean of the segmenter's answers for "
        "each frame and its mirror image (twice the segmenter's work; check on your val).",
    ),
    out: str = typer.Option(
        PredictConfig.out, help="Zarr store: a new or empty folder or fsspec URL, or our store."
    ),
    split: str = typer.Option(
        PredictConfig.split,
        help="Split to predict: hidden, val, train or unlabeled (all but hidden: the frames "
        "after a hidden video's, which `evaluate` scores on val and train).",
    ),
    batch_size: int | None = typer.Option(
        PredictConfig.batch_size,
        help="Videos per forward pass.",
        show_default="8; on a CPU 1 for full-resolution models",
    ),
    device: str = typer.Option(PredictConfig.device, help="auto (CUDA when present), cpu, cuda."),
    runs: str = typer.Option(PredictConfig.runs, help="Run folders searched without --ckpt."),
    workers: int = typer.Option(PredictConfig.workers, help="Loader worker processes."),
    precision: str = typer.Option(
        PredictConfig.precision,
        help="auto (bf16 where the device computes it natively, else fp32), fp32 or bf16.",
    ),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace a store made from another checkpoint or split."
    ),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Progress bar."),
) -> None:
    """Predict every video of a split into a chunked Zarr store; rerun to resume.

    The model reads the last frames_in observed frames (a hidden video's) and predicts the next.

    An --out holding anything but a prediction store is refused, with or without --overwrite.
    """
    from convrnn_video.infer.errors import InferError
    from convrnn_video.shards.errors import ShardError

    with user_errors(InferError, ShardError):
        from convrnn_video.infer.predict import run_predict
        from convrnn_video.runtime.device import tune_process

        tune_process()  # threads per process, allocator: the command's, not the library's

        s = run_predict(
            PredictConfig(
                shards=shards,
                out=out,
                ckpt=ckpt,
                runs=runs,
                segmenter=segmenter,
                relabel_unseen=relabel_unseen,
                motion=motion,
                tracks=tracks,
                mirror=mirror,
                split=split,
                batch_size=batch_size,
                device=device,
                workers=workers,
                precision=precision,
                overwrite=overwrite,
                progress=progress,
            )
        )
    if s["rank"] == 0:
        say(f"checkpoint {s['ckpt']} ({s['ckpt_chosen']})")
        if s["task"] in ("masks", "tracks"):
            say(f"segmenter {s['segmenter']} (masks of the input frames)")
        elif s["tracks"]:
            say(f"segmenter {s['segmenter']} (objects of the input frames)")
            say(f"track forecaster {s['tracks']} (objects moved as wholes; its masks)")
        elif s["segmenter"]:
            say(f"segmenter {s['segmenter']} (masks of every predicted frame)")
        relabel = ", unseen classes relabelled" if s["relabel_unseen"] else ""
        say(
            f"{'frame model' if s['task'] == 'frames' else 'mask forecaster'} in {s['precision']}"
            f"{relabel}; the store holds {' and '.join(s['holds'])}"
        )
        say(
            f"predicted {s['predicted']} of {s['videos']} {s['split']} videos "
            f"({s['already_done']} already done) in {s['seconds']:.1f} s -> {s['store']}"
        )


# --- export-png ----------------------------------------------------------------------------


@app.command("export-png")
def export_png(
    preds: str = typer.Option(ExportConfig.preds, help="Prediction store written by predict."),
    out: str = typer.Option(ExportConfig.out, help="Output folder: OUT/video_<id>/image_<t>.png."),
    frames: str = typer.Option(
        ExportConfig.frames, help="last: image_21.png only; all: image_11 ... image_21."
    ),
    workers: int = typer.Option(ExportConfig.workers, help="Threads encoding PNGs."),
    masks: bool = typer.Option(
        False, "--masks", help="Also write mask_<t>.png: predicted class ids, colour-coded."
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing PNG files."),
    partial: bool = typer.Option(False, "--partial", help="Export an unfinished store's videos."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Progress bar."),
) -> None:
    """Write the predicted frames of a finished store as PNG files, one folder per video."""
    from convrnn_video.infer.errors import InferError
    from convrnn_video.shards.errors import ShardError

    with user_errors(
        InferError, ShardError,
        rerun="the PNGs written so far are whole; rerun with --overwrite to export them all",
    ):  # fmt: skip
        from convrnn_video.infer.export import run_export

        s = run_export(
            ExportConfig(
                preds=preds,
                out=out,
                frames=frames,
                workers=workers,
                masks=masks,
                overwrite=overwrite,
                partial=partial,
                progress=progress,
            )
        )
    kept = f"; {s['kept']} already there from this store, kept" if s["kept"] else ""
    say(
        f"wrote {s['files']} PNG files for {s['videos']} videos under {s['out']}/ "
        f"({', '.join(s['frames'][:2])}{' ...' if len(s['frames']) > 2 else ''}){kept}"
    )


# --- submit --------------------------------------------------------------------------------


@app.command()
def submit(
    preds: str = typer.Option(SubmitConfig.preds, help="Finished store with masks (hidden)."),
    out: str = typer.Option(SubmitConfig.out, help="Tensor file; <stem>.json goes beside it."),
    dtype: str = typer.Option(
        SubmitConfig.dtype, help="Class-id dtype: uint8 (what the graders read) or int64."
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing submission."),
    allow_split: bool = typer.Option(
        False, "--allow-split", help="Submit a store of another split than hidden (a val check)."
    ),
) -> None:
    """Save the masks of frame 22 of every hidden video as one tensor, in id order.

    The graders read uint8 class ids 0-48, shape (N, 160, 240), rows in video-id order.

    Refused: a store not ending on the videos' last frame (image_21), or not of hidden videos.
    """
    from convrnn_video.infer.errors import InferError

    with user_errors(InferError):
        from convrnn_video.infer.submit import run_submit

        cfg = SubmitConfig(
            preds=preds, out=out, dtype=dtype, overwrite=overwrite, allow_split=allow_split
        )
        s = run_submit(cfg)
    shape = "x".join(str(n) for n in s["shape"])
    say(
        f"wrote {s['out']} ({s['dtype']} {shape}, {s['frame']} of {s['videos']} {s['split']} "
        f"videos) and {s['json']}"
    )
