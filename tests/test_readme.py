"""The README's newcomer path, run as written: its `python cli.py ...` commands, in order.

The commands are read from README.md (the quick start and "From data/ to submission.pt"), so a
renamed option, a changed default or a step that refuses the one before it fails here, not on a
newcomer's first day. Only sizes and budgets change, through the table below, never the commands
themselves. They run in this process through the same Typer app that `python cli.py` runs
(one import of torch for all of them, not one per command: the test stays under a minute).
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import write_square_video
from convrnn_video.stores.predictions import PredStore
from PIL import Image
from typer.testing import CliRunner

from convrnn_video.cli import app

README = Path(__file__).resolve().parents[1] / "README.md"
QUICK_START = "## Quick start"
MASK_PATH = "## From data/ to submission.pt (the course)"

# Sizes and budgets: what the README gives a real run -> what this test runs instead.
REPLACED = {  # an option and its value -> these arguments
    "--time-limit": ("--max-steps", "1"),  # minutes of training -> 1 step
}
ADDED = [  # (the command starts with these words, arguments added after it)
    (("demo",), ("--preset", "tiny", "--steps", "2", "--train", "2", "--val", "2", "--hidden",
                 "2", "--batch-size", "2", "--seg-preset", "tiny", "--seg-steps", "2",
                 "--tracks-steps", "2")),
    (("fit-contacts",), ("--tune-steps", "2")),  # 10,000 steps of fine-tune
    (("fit-reader",), ("--videos", "4", "--steps", "2")),  # 4,000 scenes, 4,000 steps
    (("train", "--task", "segment"), ("--preset", "tiny")),  # the default is `small`
    (("train", "--task", "masks"), ("--preset", "tiny-masks")),  # `compact-masks-extrapolate`
    (("train", "runs/frames"), ("--preset", "tiny")),  # `compact-motion`
    (("train",), ("--batch-size", "2")),
]  # fmt: skip


def readme_commands(heading: str) -> list[list[str]]:
    """The arguments after `python cli.py` of every command in the ```bash blocks of the README
    section under `heading`, in order (continued lines joined, comments dropped)."""
    text = README.read_text()
    assert heading + "\n" in text, f"README.md has no section {heading!r}"
    section = text.split(heading + "\n", 1)[1].split("\n## ", 1)[0]
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", section, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            if words[:2] == ["python", "cli.py"]:
                commands.append(words[2:])
    return commands


def sized(args: list[str]) -> list[str]:
    """`args` with the README's sizes and budgets swapped for the test's (REPLACED, ADDED)."""
    out, words = [], iter(args)
    for word in words:
        if word in REPLACED:
            next(words)  # the README's value
            out.extend(REPLACED[word])
        else:
            out.append(word)
    for start, extra in ADDED:
        if all(word in args for word in start) and args[0] == start[0]:
            out.extend(extra)
    return out


def run(args: list[str]) -> str:
    """One README command through the CLI; -> what it printed. It must exit 0."""
    result = CliRunner().invoke(app, sized(args))
    assert result.exit_code == 0, f"cli.py {' '.join(sized(args))}:\n{result.output}"
    assert "Traceback" not in result.output
    return result.output


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Run from `tmp_path`, as a newcomer runs from their folder; put torch's thread count back
    (the commands set it for their process)."""
    monkeypatch.chdir(tmp_path)
    threads = torch.get_num_threads()
    yield tmp_path
    torch.set_num_threads(threads)


# The mask path's commands in the README's order, and the files each must write.
MASK_PATH_WRITES = [
    ("ingest", ["data/shards/manifest.json"]),
    ("train", [f"runs/seg/{name}" for name in ("best.pt", "last.pt", "config.json", "curves.png")]),
    ("label", ["labels/unlabeled.zarr"]),
    ("train", ["runs/tracks/best.pt", "runs/tracks/last.pt", "runs/tracks/val.csv"]),
    ("fit-contacts", ["runs/tracks/contacts.pt"]),
    ("fit-reader", ["runs/tracks/reader.pt"]),
    ("predict", ["val-masks.zarr"]),
    ("evaluate", ["report.json", "report.png"]),
    ("predict", ["hidden-masks.zarr"]),
    ("submit", ["submission.pt", "submission.json"]),
    ("train", ["runs/frames/best.pt"]),
    ("predict", ["val-sharp.zarr"]),
]


# The course's layout, at 32x48 pixels: split -> (first id, videos, frames, masks)
TINY_DATA = {
    "train": (0, 4, 22, True),
    "val": (1000, 2, 22, True),
    "unlabeled": (2000, 2, 22, False),
    "hidden": (15000, 2, 11, False),
}


@pytest.mark.slow
def test_from_data_to_submission_as_the_readme_says(in_tmp: Path) -> None:
    commands = readme_commands(MASK_PATH)
    assert [c[0] for c in commands] == [name for name, _ in MASK_PATH_WRITES], (
        "the README's mask path changed: update MASK_PATH_WRITES (and REPLACED, ADDED)"
    )
    for split, (first, n, frames, masks) in TINY_DATA.items():  # moving squares
        for i in range(first, first + n):
            folder = in_tmp / "data" / split / f"video_{i}"
            write_square_video(folder, frames, 32, 48, "RGB", seed=i, mask=masks)
    for args, (_, writes) in zip(commands, MASK_PATH_WRITES, strict=True):
        run(args)
        missing = [name for name in writes if not (in_tmp / name).exists()]
        assert not missing, f"cli.py {' '.join(args)} did not write {missing}"
    tracks = json.loads((in_tmp / "runs/tracks/config.json").read_text())["train"]
    assert tracks["task"] == "tracks" and tracks["train_splits"] == ["train", "unlabeled"]
    val = PredStore.open(in_tmp / "val-masks.zarr")
    assert val.attrs["split"] == "val" and val.attrs["task"] == "tracks"
    report = json.loads((in_tmp / "report.json").read_text())
    assert report["split"] == "val" and "copy_last_input" in report["jaccard"]
    submission = json.loads((in_tmp / "submission.json").read_text())
    assert submission["split"] == "hidden" and submission["shape"] == [2, 32, 48]
    # sharp frames: the frame model's store with the objects moved holds the same masks
    sharp = PredStore.open(in_tmp / "val-sharp.zarr")
    assert sharp.attrs["holds"] == ["frames", "masks"] and sharp.frames.shape[:2] == (2, 11)
    assert (sharp.masks[:] == val.masks[:]).all()


@pytest.mark.slow
def test_quick_start_demo_then_its_rerun(in_tmp: Path) -> None:
    """The quick start's one command, then what a second `demo` does in the same folder."""
    commands = readme_commands(QUICK_START)
    assert commands == [["demo"]], "the README's quick start changed: update this test"
    out = in_tmp / "demo"
    out.mkdir()
    (out / "notes.txt").write_text("mine")  # nothing of the demo's names: it may start here
    said = run(commands[0])
    assert "copy-last-frame" in said and "montage" in said
    assert "segmenter on true frames" in said and "submission" in said
    # time budgets, capped here by --steps: the demo says what it did in its time
    assert "the frame model trained 2 steps, the segmenter 2, the track forecaster 2" in said
    assert "track forecaster (submitted)" in said
    assert "extrapolating its objects" in said
    report = json.loads((out / "report.json").read_text())
    assert report["videos"] == 2 and report["split"] == "val"
    assert set(report["jaccard"]) >= {"model", "copy_last_input", "segmenter_on_true"}
    assert len(list((out / "predictions").glob("video_*/image_21.png"))) == 2
    assert len(list((out / "predictions").glob("video_*/mask_21.png"))) == 2
    assert (out / "montage.png").is_file() and (out / "report.png").is_file()
    # both paths drawn: the submitted one (montage.png) and the frame model alone
    assert "frames montage" in said and "objects moved" in said
    assert Image.open(out / "montage.png").size == Image.open(out / "montage-frames.png").size
    val = PredStore.open(out / "preds-val.zarr")
    assert val.masks is not None and val.attrs["task"] == "frames"
    assert val.attrs["segmenter_config"]["base_channels"] == 4  # the tiny segmenter it trained
    submission = json.loads((out / "submission.json").read_text())
    assert submission["shape"] == [2, 160, 240] and submission["split"] == "hidden"
    # handed in by the README's course path: the track forecaster's masks, and its frames
    # (objects moved as wholes) are the PNGs
    assert Path(submission["preds"]).resolve() == out / "tracks-hidden.zarr"
    tracks = PredStore.open(out / "tracks-val.zarr")
    assert tracks.attrs["holds"] == ["frames", "masks"] and tracks.attrs["tracks"]
    hidden = PredStore.open(out / "tracks-hidden.zarr")
    for vid, frames in zip(hidden.ids(), hidden.frames[:], strict=True):
        png = out / "predictions" / f"video_{vid}" / "image_21.png"
        assert np.array_equal(np.asarray(Image.open(png)), frames[-1])
    tracks_report = json.loads((out / "report-tracks.json").read_text())
    assert tracks_report["split"] == "val" and "model" in tracks_report["jaccard"]
    assert "energy" in tracks_report["model"]
    marker = json.loads((out / ".convrnn-demo").read_text())
    assert marker["written_by"] == "convrnn-video demo" and marker["config"]["steps"] == 2
    # the same command again: refused, and it says how to start over
    again = CliRunner().invoke(app, ["demo"])
    assert again.exit_code == 1 and "--overwrite" in again.output
    (out / "runs" / "stale.txt").write_text("from the first demo")
    # an output an earlier version named otherwise, listed in its marker: removed too
    (out / "masks-val.zarr").mkdir()
    marker["outputs"].append("masks-val.zarr")
    (out / ".convrnn-demo").write_text(json.dumps(marker))
    run([*commands[0], "--overwrite"])
    assert not (out / "runs" / "stale.txt").exists() and (out / "submission.pt").is_file()
    assert not (out / "masks-val.zarr").exists()
    assert (out / "notes.txt").read_text() == "mine"  # not the demo's: kept
