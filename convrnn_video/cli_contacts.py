"""The `fit-contacts` and `fit-reader` commands: a track forecaster's hits and state reader."""

from __future__ import annotations

import typer

from convrnn_video.cli_app import SHARDS, app, say, user_errors

# The stage's config dataclass is torch-free: the options take their defaults from it.
from convrnn_video.train.contacts_config import ContactsConfig
from convrnn_video.train.reader_config import ReaderConfig

# --- fit-contacts --------------------------------------------------------------------------


@app.command("fit-contacts")
def fit_contacts(
    model: str = typer.Option(..., "--model", help="Track forecaster checkpoint (.pt)."),
    shards: str = typer.Option(SHARDS, "--shards", help="Shard folder/URL made by `ingest`."),
    out: str = typer.Option(..., "--out", help="The new checkpoint (never overwritten)."),
    split: str = typer.Option(ContactsConfig.split, help="Labelled split to fit on."),
    check_split: str = typer.Option(
        ContactsConfig.check_split, help="Labelled split scored with and without ('' for none)."
    ),
    videos: int = typer.Option(
        ContactsConfig.videos, help="The first N videos of each split (0: all)."
    ),
    tune_steps: int = typer.Option(
        ContactsConfig.tune_steps, help="Fine-tune steps through the contacts (0: keep weights)."
    ),
    tune_lr: float = typer.Option(ContactsConfig.tune_lr, help="The fine-tune's learning rate."),
    seed: int = typer.Option(ContactsConfig.seed, help="The fine-tune's batches and dropout."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as one JSON object."),
) -> None:
    """Fit the hits between a track forecaster's objects, and tune it through them (~7 min).

    Both on labelled videos; under a minute with --tune-steps 0 (no fine-tune). Writes the
    tuned forecaster with its contact constants as a new checkpoint; predict, submit and
    evaluate with it play the hits. The report scores frame 22 without contacts, with them,
    tuned, and with the hits played on the floor (kept where that fits better), on the check
    split: use the new checkpoint only where it helps.
    """
    import json

    from convrnn_video.runtime.errors import RunError
    from convrnn_video.shards.errors import ShardError
    from convrnn_video.train.errors import TrainError

    with user_errors(TrainError, RunError, ShardError, rerun="rerun the same command"):
        from convrnn_video.train.contacts import run_fit_contacts

        cfg = ContactsConfig(model=model, shards=shards, out=out, split=split,
                             check_split=check_split or None, videos=videos or None,
                             tune_steps=tune_steps, tune_lr=tune_lr, seed=seed)  # fmt: skip
        r = run_fit_contacts(cfg)
    if as_json:
        typer.echo(json.dumps(r))
        return
    for part in ("fit", "check"):
        if part in r:
            p = r[part]
            tuned = f", {p['frame22_tuned']:.4f} tuned" if "frame22_tuned" in p else ""
            say(f"{part} ({p['split']}, {p['videos']} videos): frame 22 {p['frame22_without']:.4f} "
                f"without contacts, {p['frame22_with']:.4f} with{tuned}")  # fmt: skip
    floor = r["floor"]
    on_check = f", check {floor['check_frame22']:.4f}" if "check_frame22" in floor else ""
    kept = "kept: it plays the hits" if floor["kept"] else "not kept: the disc stage plays them"
    say(f"hits on the floor: fit {floor['fit_frame22']:.4f}{on_check} ({kept})")
    if floor["kept"]:  # the three switches the search set (convrnn/floor.py `Floor`)
        c = floor["constants"]
        aim = "aimed at objects at rest" if c["aim_cone"] else "not aimed"
        played = "every object it knows slides" if c["all_on_floor"] else "only hit ones slide"
        placed = "their whole footprint" if c["whole_footprint"] else "their seen part"
        say(
            f"on the floor: new objects {aim}; {played} there; partly hidden objects placed by "
            f"{placed}"
        )
    say(f"wrote {r['out']} in {r['seconds']:.0f} s")
    check = r.get("check", {})
    best = check.get("frame22_tuned", check.get("frame22_with"))
    if check and floor["kept"]:
        best = floor["check_frame22"]
    if check and best <= check["frame22_without"]:
        say(f"the contacts do not help on {check['split']}: keep predicting with {model}")


# --- fit-reader ----------------------------------------------------------------------------


@app.command("fit-reader")
def fit_reader(
    model: str = typer.Option(
        ..., "--model", help="Track forecaster checkpoint with the floor stage (fit-contacts)."
    ),
    out: str = typer.Option(..., "--out", help="The new checkpoint (never overwritten)."),
    videos: int = typer.Option(ReaderConfig.videos, help="The generator's scenes to learn from."),
    first_id: int = typer.Option(ReaderConfig.first_id, help="The first scene's id."),
    seed: int = typer.Option(ReaderConfig.seed, help="The generator's seed and the fit's."),
    steps: int = typer.Option(ReaderConfig.steps, help="Training steps of 512 objects."),
    hidden: int = typer.Option(ReaderConfig.hidden, help="The reader's hidden width."),
    members: int = typer.Option(ReaderConfig.members, help="MLPs fitted and averaged."),
    lr: float = typer.Option(ReaderConfig.lr, help="AdamW's learning rate."),
    weight_decay: float = typer.Option(ReaderConfig.weight_decay, help="AdamW's weight decay."),
    workers: int = typer.Option(ReaderConfig.workers, help="Processes drawing the scenes."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as one JSON object."),
) -> None:
    """Fit the state reader of a track forecaster on the generator's scenes (~14 min, 2 cores).

    The floor stage reads each object's velocity off the masks, a new or just-uncovered one's
    badly; the reader learns a correction from scenes whose true motion the generator knows,
    and where each object's centre is seen beside its mask's centroid.
    Writes the forecaster with the reader as a new checkpoint; predict, submit and evaluate
    with it use it. Fitted on generated scenes: check it on your own labelled videos
    (`evaluate`) before you trust it.
    """
    import json

    from convrnn_video.runtime.errors import RunError
    from convrnn_video.train.errors import TrainError

    with user_errors(TrainError, RunError, rerun="rerun the same command"):
        from convrnn_video.train.reader import run_fit_reader

        cfg = ReaderConfig(model=model, out=out, videos=videos, first_id=first_id, seed=seed,
                           steps=steps, hidden=hidden, members=members, lr=lr,
                           weight_decay=weight_decay, workers=workers)  # fmt: skip
        r = run_fit_reader(cfg)
    if as_json:
        typer.echo(json.dumps(r))
        return
    if not r["fitted"]:
        say(f"{model} has no floor stage (fit-contacts kept the discs): the reader "
            "corrects the floor's state, nothing to fit; wrote it unchanged")  # fmt: skip
    else:
        say(f"read {r['objects']} objects of {r['videos']} generated scenes; "
            f"fitted {r['steps']} steps")  # fmt: skip
        p = r["placing"]
        say(f"placed objects where their centres are seen: {p['objects']} objects seen whole, "
            f"a median {p['median_px_before']:.2f} px from their centroids, "
            f"{p['median_px_after']:.2f} px once placed")  # fmt: skip
    say(f"wrote {r['out']} in {r['seconds']:.0f} s")
