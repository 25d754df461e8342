"""The fits after `benchmarks/mask_quality.py`'s tracks row, as a user runs them after
`train --task tracks`: `fit-contacts` (row 7b) and `fit-reader` (row 7c), each into the
script's cache, made again with its tracks row."""

from __future__ import annotations

from pathlib import Path


def fit_contacts_run(args, shards: Path, tracks: Path) -> dict:
    """`fit-contacts` for the tracks row's forecaster on train's true masks (up to 1,000) -> the
    summary of the new checkpoint (its constants, the fit's scores and seconds)."""
    from convrnn_video.train.contacts import run_fit_contacts
    from convrnn_video.train.contacts_config import ContactsConfig

    out = args.cache / "runs" / "tracks-contacts.pt"
    out.unlink(missing_ok=True)  # this script's own file, made again with its tracks row
    fit = run_fit_contacts(ContactsConfig(model=str(tracks), shards=str(shards), out=str(out),
                                          check_split=None))  # fmt: skip
    return {"ckpt": out, "fit": fit["fit"], "contacts": fit["contacts"], "floor": fit["floor"],
            "seconds": fit["seconds"]}  # fmt: skip


def fit_reader_run(args, contacts: Path) -> dict:
    """`fit-reader` (its defaults but --reader-videos scenes) for row 7b's forecaster -> its
    report and checkpoint."""
    from convrnn_video.train.reader import run_fit_reader
    from convrnn_video.train.reader_config import ReaderConfig

    out = args.cache / "runs" / "tracks-reader.pt"
    out.unlink(missing_ok=True)  # this script's own file, made again with its tracks row
    cfg = ReaderConfig(model=str(contacts), out=str(out), videos=args.reader_videos)
    fit = run_fit_reader(cfg)
    return {**fit, "ckpt": out}
