"""Commands of the data: `synth`, `ingest`, `shards-info`, `presets`."""

from __future__ import annotations

from pathlib import Path

import typer

from convrnn_video.cli_app import SHARDS, app, say, user_errors

# The stages' config dataclasses are torch-free: the options take their defaults from them.
from convrnn_video.convrnn.config import ModelConfig
from convrnn_video.ingest.config import LAYOUT_HELP, IngestConfig
from convrnn_video.ingest.synth.config import SynthConfig

# --- synth ---------------------------------------------------------------------------------


@app.command()
def synth(
    out: Path = typer.Argument(..., help="DATA_ROOT to create: train/ val/ unlabeled/ hidden/."),
    train: int = typer.Option(SynthConfig.train, help="Videos in train/ (ids from 0)."),
    val: int = typer.Option(SynthConfig.val, help="Videos in val/ (ids from 1000)."),
    unlabeled: int = typer.Option(SynthConfig.unlabeled, help="Videos in unlabeled/ (from 2000)."),
    hidden: int = typer.Option(SynthConfig.hidden, help="Videos in hidden/ (from 15000)."),
    full: bool = typer.Option(False, "--full", help="The real sizes: 1000/1000/13000/2000."),
    seed: int = typer.Option(SynthConfig.seed, help="Each video's RNG is (seed, video id)."),
    workers: int = typer.Option(SynthConfig.workers, help="Processes (files do not depend on it)."),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace the splits of a non-empty OUT."
    ),
) -> None:
    """Generate CLEVRER-like videos in the real dataset layout (resumable: rerun to complete)."""
    from convrnn_video.ingest.synth import SynthError, generate
    from convrnn_video.ingest.synth.config import FULL_COUNTS

    counts = (
        dict(FULL_COUNTS)
        if full
        else dict(train=train, val=val, unlabeled=unlabeled, hidden=hidden)
    )
    cfg = SynthConfig(out=out, seed=seed, workers=workers, overwrite=overwrite, **counts)
    with user_errors(SynthError):
        result = generate(cfg)
    say(
        f"{out}: "
        + ", ".join(f"{k} {result[k]}" for k in counts)
        + f" videos ({result['written']} written, {result['skipped']} already there)"
    )


# --- ingest --------------------------------------------------------------------------------


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


@app.command()
def ingest(
    data_root: Path = typer.Argument(
        IngestConfig.data_root, help="DATA_ROOT holding train/ val/ unlabeled/ hidden/."
    ),
    out: Path | None = typer.Option(
        None, "--out", help="Folder for the tars + manifest.", show_default="DATA_ROOT/shards"
    ),
    workers: int = typer.Option(IngestConfig.workers, help="Processes reading and checking PNGs."),
    videos_per_shard: int = typer.Option(
        IngestConfig.videos_per_shard, help="Videos per tar (several shards per split)."
    ),
    skip_bad: bool = typer.Option(
        IngestConfig.skip_bad, "--skip-bad", help="Leave bad videos out (listed), don't fail."
    ),
    overwrite: bool = typer.Option(
        IngestConfig.overwrite, "--overwrite", help="Replace an output that has a manifest."
    ),
    layout: str = typer.Option(IngestConfig.layout, help=LAYOUT_HELP),
) -> None:
    """Check every PNG video and pack them into WebDataset shards + manifest.json (resumable)."""
    from convrnn_video.ingest.errors import IngestError
    from convrnn_video.ingest.pack import run_ingest

    cfg = IngestConfig(
        data_root=data_root,
        out=out,
        workers=workers,
        videos_per_shard=videos_per_shard,
        skip_bad=skip_bad,
        overwrite=overwrite,
        layout=layout,
    )
    with user_errors(IngestError):
        manifest = run_ingest(cfg)
    for split, entry in manifest["splits"].items():
        size = _size(sum(s["bytes"] for s in entry["shards"]))
        shards = len(entry["shards"])
        frame = f"{entry['frames']} frames {entry['height']}x{entry['width']}x{entry['channels']}"
        say(f"{split:<10} {entry['videos']:>6} videos  {frame:<20} {shards:>4} shards  {size}")
    if manifest["ignored"]:
        ignored = manifest["ignored"]
        shown = ", ".join(ignored[:8]) + (" ..." if len(ignored) > 8 else "")
        say(f"ignored {len(ignored)} stray file(s): {shown}")
    for entry in manifest["skipped"]:
        typer.echo(f"skipped {entry['split']}/{entry['video']}: {entry['reason']}", err=True)
    say(f"wrote {cfg.shards_dir / 'manifest.json'}")


# --- shards-info ---------------------------------------------------------------------------


@app.command("shards-info")
def shards_info(
    shards: str = typer.Argument(
        SHARDS, help="Shard folder or fsspec URL (s3://..., memory://...)."
    ),
    verify: bool = typer.Option(
        False, "--verify", help="Recompute every checksum and decode every sample."
    ),
    labels: list[str] = typer.Option(
        [], "--labels", help="With --verify: also check these label stores (from `label`)."
    ),
) -> None:
    """Per-split counts and sizes from the manifest; --verify checks every shard and sample."""
    from convrnn_video.infer.errors import InferError
    from convrnn_video.shards.errors import ShardError
    from convrnn_video.shards.info import summarize
    from convrnn_video.shards.info import verify as verify_shards

    with user_errors(ShardError, InferError):
        info = summarize(shards)
        say(f"shards: {shards}  (ingested from {info['source']})")
        head = ("split", "videos", "frames", "HxWxC", "masks", "shards", "size")
        say("{:<10} {:>7} {:>6} {:>11} {:>5} {:>6} {:>9}".format(*head))
        for split, e in info["splits"].items():
            masks = "yes" if e["masks"] else "no"
            frame = f"{e['height']}x{e['width']}x{e['channels']}"
            say(
                f"{split:<10} {e['videos']:>7} {e['frames']:>6} {frame:>11} {masks:>5} "
                f"{e['shards']:>6} {_size(e['bytes']):>9}"
            )
        say(
            f"skipped at ingest: {len(info['skipped'])} video(s); "
            f"ignored: {len(info['ignored'])} stray file(s)"
        )
        if verify:
            report = verify_shards(shards, progress=True)
            for problem in report["problems"]:
                typer.echo(f"FAILED: {problem}", err=True)
            if not report["ok"]:
                typer.echo(
                    f"error: {len(report['problems'])} problem(s) in {report['shards']} "
                    "shards; re-ingest (`python cli.py ingest ... --overwrite`)",
                    err=True,
                )
                raise typer.Exit(1)
            say(f"verified {report['shards']} shards, {report['samples']} samples: ok")
            if labels:
                from convrnn_video.infer.labels import verify_labels

                problems = [p for store in labels for p in verify_labels(store, shards)]
                for problem in problems:
                    typer.echo(f"FAILED: {problem}", err=True)
                if problems:
                    typer.echo(f"error: {len(problems)} problem(s) in the label stores; rerun "
                               "`python cli.py label` (with --overwrite if it was made by "
                               "another segmenter)", err=True)  # fmt: skip
                    raise typer.Exit(1)
                say(f"verified {len(labels)} label store(s): ok")


# --- presets -------------------------------------------------------------------------------


@app.command()
def presets(
    as_json: bool = typer.Option(False, "--json", help="Print a JSON list of objects."),
    frames_in: int = typer.Option(
        ModelConfig.frames_in, help="Observed frames per video for the FLOP count."
    ),
    frames_out: int = typer.Option(
        ModelConfig.frames_out, help="Predicted frames per video for the FLOP count."
    ),
    segmenter: bool = typer.Option(
        False, "--segmenter", help="Only the segmenter presets (with --json: their rows)."
    ),
) -> None:
    """List the model presets (forecasters, then segmenters) with parameters and GFLOP.

    Forecasters: cell, recurrent grid, GFLOP per video; segmenters: GFLOP per frame, stride, head.
    """
    import json

    with user_errors(ValueError):
        from convrnn_video.convrnn.summary import format_table, preset_table
        from convrnn_video.segment.summary import format_table as seg_format_table
        from convrnn_video.segment.summary import preset_table as seg_preset_table

        if segmenter:
            rows = seg_preset_table()
            typer.echo(json.dumps(rows, indent=2)) if as_json else say(seg_format_table(rows))
            return
        rows = preset_table(frames_in=frames_in, frames_out=frames_out)
        typer.echo(json.dumps(rows, indent=2)) if as_json else say(format_table(rows))
        if not as_json:
            say("\n" + seg_format_table(seg_preset_table()))
