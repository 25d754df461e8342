"""The `demo` command: the whole pipeline, small, in one command."""

from __future__ import annotations

import typer

from convrnn_video.cli_app import FRAME_METRICS, app, say, user_errors

# The stages' config dataclasses are torch-free: the options take their defaults from them.
from convrnn_video.infer.config import (
    DemoConfig,
)

# --- demo ----------------------------------------------------------------------------------


@app.command()
def demo(
    out: str = typer.Option(DemoConfig.out, help="Folder for everything the demo writes."),
    preset: str = typer.Option(
        DemoConfig.preset, help="Frame model preset (a frames preset: `presets`)."
    ),
    minutes: float = typer.Option(
        DemoConfig.minutes, help="Frame model training budget, minutes (the lr decays over it)."
    ),
    steps: int | None = typer.Option(
        DemoConfig.steps, help="Also stop the frame model after these steps (default: time only)."
    ),
    seg_preset: str = typer.Option(
        DemoConfig.seg_preset, help="Segmenter preset to train (tiny, small)."
    ),
    seg_minutes: float = typer.Option(
        DemoConfig.seg_minutes, help="Segmenter training budget, minutes."
    ),
    seg_steps: int | None = typer.Option(
        DemoConfig.seg_steps, help="Also stop the segmenter after these steps (default: time only)."
    ),
    seg_batch_size: int = typer.Option(
        DemoConfig.seg_batch_size, help="Videos per segmenter step (one window of each)."
    ),
    tracks_minutes: float = typer.Option(
        DemoConfig.tracks_minutes, help="Track forecaster training budget, minutes."
    ),
    tracks_steps: int | None = typer.Option(
        DemoConfig.tracks_steps, help="Also stop the track forecaster after these steps."
    ),
    train: int = typer.Option(DemoConfig.train, help="Generated training videos."),
    val: int = typer.Option(DemoConfig.val, help="Generated validation videos (evaluated)."),
    hidden: int = typer.Option(DemoConfig.hidden, help="Generated hidden videos (exported)."),
    batch_size: int = typer.Option(
        DemoConfig.batch_size, help="Frame model: videos per step; prediction: per batch."
    ),
    lr: float = typer.Option(DemoConfig.lr, help="Frame model's Adam learning rate."),
    seed: int = typer.Option(DemoConfig.seed, help="Seed of the generator and the training."),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace an earlier demo in OUT (a folder with its marker)."
    ),
) -> None:
    """Run the whole pipeline on a small generated example, masks and submission included:
    under 10 minutes on 2 CPU cores (training runs on time budgets)."""
    from convrnn_video.infer.errors import InferError
    from convrnn_video.ingest.errors import IngestError
    from convrnn_video.ingest.synth.config import SynthError
    from convrnn_video.shards.errors import ShardError
    from convrnn_video.train.errors import TrainError

    with user_errors(
        InferError, IngestError, SynthError, ShardError, TrainError,
        rerun="rerun with --overwrite to start the demo over",
    ):  # fmt: skip
        from convrnn_video.demo import run_demo
        from convrnn_video.runtime.device import tune_process

        tune_process()  # threads, allocator: the command's settings, not the library's
        s = run_demo(
            DemoConfig(
                out=out,
                preset=preset,
                minutes=minutes,
                steps=steps,
                seg_preset=seg_preset,
                seg_minutes=seg_minutes,
                seg_steps=seg_steps,
                seg_batch_size=seg_batch_size,
                tracks_minutes=tracks_minutes,
                tracks_steps=tracks_steps,
                train=train,
                val=val,
                hidden=hidden,
                batch_size=batch_size,
                lr=lr,
                seed=seed,
                overwrite=overwrite,
            )
        )
    _print_demo(s)


def _print_demo(s: dict) -> None:
    """What the demo wrote and how its models scored (`run_demo`'s summary `s`)."""
    say(
        f"\ndemo finished in {s['seconds']['total']:.0f} s "
        f"({', '.join(f'{k} {v:.0f} s' for k, v in s['seconds'].items() if k != 'total')}); "
        f"the frame model trained {s['steps']['frames']} steps, the segmenter "
        f"{s['steps']['segmenter']}, the track forecaster {s['steps']['tracks']}"
    )
    for label, key in (
        ("generated videos", "data"),
        ("shards", "shards"),
        ("training run", "run"),
        ("checkpoint", "ckpt"),
        ("segmenter run", "segmenter_run"),
        ("segmenter", "segmenter"),
        ("tracks run", "tracks_run"),
        ("track forecaster", "tracks"),
        ("PNG predictions", "predictions"),
        ("submission", "submission"),
        ("val report", "report"),
        ("val tracks report", "tracks_report"),
        ("val plot", "plot"),
        ("montage", "montage"),
        ("frames montage", "frames_montage"),
    ):
        say(f"  {label:<19} {s[key]}")
    for split, path in s["preds"].items():
        say(f"  {split + ' store':<19} {path}")
    say(
        "the submission and the PNGs come from the track forecaster (its masks; the objects of "
        "the last input frame moved as wholes where it says, the frame model's frames "
        "elsewhere), the README's course path (README.md, 'From data/ to submission.pt'), "
        f"trained here on the masks of {s['train_videos']} videos, not 14,000"
    )
    say(f"val metrics on {s['videos']} videos (frames 12-22):")
    say(f"  {'':<8} {'objects moved':>13}   {'frame model':>11}   {'copy-last-frame':>15}")
    for name in FRAME_METRICS:
        say(
            f"  {name:<8} {s['tracks_frames'][name]:13.5f}   {s['model'][name]:11.5f}   "
            f"{s['copy_last_frame'][name]:15.5f}"
        )
    if s["jaccard"]:
        j = s["jaccard"]
        say("val masks, Jaccard (49 classes) of frame 22 / of frames 12-22:")
        for label, key in (
            ("track forecaster (submitted)", "tracks"),
            ("segmenter on predicted frames", "model"),
            ("copying the last input's mask", "copy_last_input"),
            ("extrapolating its objects", "extrapolate_objects"),
            ("segmenter on true frames", "segmenter_on_true"),
        ):
            if key in j:
                say(f"  {label:<30} {j[key]['last']:.4f} / {j[key]['mean']:.4f}")
