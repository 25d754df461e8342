"""cli: the console script's entry point, running from another folder, the default shard folder."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import typer
from faults import run_faulted
from typer.testing import CliRunner

from convrnn_video import cli

REPO = Path(__file__).resolve().parents[1]


def test_console_script_points_at_main():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    module, _, function = project["scripts"]["convrnn-video"].partition(":")
    assert (module, function) == ("convrnn_video.cli", "main") and callable(cli.main)


def test_a_users_own_train_py_and_infer_folder_do_not_meet_ours(tmp_path: Path):
    """The install takes one name, convrnn_video: a folder with the user's own train.py,
    infer/, shards/ and cli.py still imports the API and runs the commands."""
    for name in ("train.py", "infer/__init__.py", "shards/__init__.py", "cli.py"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text(f"raise SystemExit('the user's {name} was imported')\n")
    (tmp_path / "use.py").write_text(
        "from convrnn_video import PipelineError, load_checkpoint, read_video\n"
        "import convrnn_video.infer.predict, convrnn_video.train.loop\n"
        "print(convrnn_video.train.loop.__name__)\n"
    )
    # this clone's package, found after the user's folder (as an installed one would be)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    used = subprocess.run([sys.executable, "use.py"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120, env=env)  # fmt: skip
    assert used.returncode == 0 and used.stdout.strip() == "convrnn_video.train.loop", used.stderr
    for command in ([sys.executable, "-m", "convrnn_video.cli"], [sys.executable, REPO / "cli.py"]):
        run = subprocess.run([*command, "presets"], cwd=tmp_path, capture_output=True, text=True,
                             timeout=120, env=env)  # fmt: skip
        assert run.returncode == 0 and "compact" in run.stdout, run.stderr


def test_runs_from_another_folder_and_defaults_to_data_shards(shard_root: Path, tmp_path: Path):
    def run(*args: str) -> subprocess.CompletedProcess:
        command = [sys.executable, str(REPO / "cli.py"), *args]
        return subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=120)

    done = run("shards-info", str(shard_root))
    assert done.returncode == 0, done.stderr
    assert "160x240x3" in done.stdout
    done = run("--quiet", "shards-info")  # default: data/shards under the working folder
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "error: no manifest at data/shards/manifest.json: "
        "run `convrnn-video ingest DATA_ROOT --out data/shards` first"
    ]
    from convrnn_video.ingest.config import IngestConfig

    from convrnn_video.cli_app import SHARDS

    assert str(IngestConfig().shards_dir) == SHARDS == "data/shards"


def test_ctrl_c_tells_what_a_rerun_does(tmp_path: Path) -> None:
    # demo cannot resume: it must not say "rerun the same command to resume". Ctrl-C right
    # after the generator's first video (the first progress bar update, in its worker pool).
    done = run_faulted(
        ["demo", "--out", tmp_path / "demo"], "tqdm:tqdm.update", 1, signal.SIGINT,
        cwd=tmp_path, capture_output=True, text=True,
        # as from a shell: Ctrl-C delivered (a test process may ignore SIGINT, and an ignored
        # signal is inherited)
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    err = done.stderr
    assert done.returncode == 130, err
    assert "start the demo over" in err and "resume" not in err and "Traceback" not in err
    # stopped in the generator: its first video written (its second worker may have finished
    # one more), nothing ingested
    assert list((tmp_path / "demo" / "data").glob("*/video_*"))
    assert not (tmp_path / "demo" / "shards").exists()


def test_help_shows_a_type_only_for_options_that_take_a_value() -> None:
    runner = CliRunner()
    commands = list(typer.main.get_command(cli.app).commands)
    for args in ([], *([name] for name in commands)):
        done = runner.invoke(cli.app, [*args, "--help"], env={"COLUMNS": "200"})
        assert done.exit_code == 0, done.output
        assert "<bool>" not in done.output, args  # flags (--verbose, --help, --overwrite ...)
    predict = runner.invoke(cli.app, ["predict", "--help"], env={"COLUMNS": "200"}).output
    # a "[default: ...]" inside a help text is rich markup and vanished ("forward pass .")
    assert "Videos per forward pass. [default: (8; on a CPU 1 for" in predict
    assert "under --runs" in predict and "<int>" in predict  # options with a value keep it


def on_a_terminal(*args: str, cwd: Path) -> tuple[str, str]:
    """`python cli.py ARGS` with stderr on a pseudo-terminal, where a person would watch bars;
    -> (stdout, what the terminal showed)."""
    import fcntl
    import pty
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # 100 columns
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, str(REPO / "cli.py"), *args], cwd=cwd, env=env,
                          stdout=subprocess.PIPE, stderr=slave, text=True, timeout=120)  # fmt: skip
    os.close(slave)
    shown = b""
    with contextlib.suppress(OSError):  # EIO: the terminal's writer has gone
        while chunk := os.read(master, 1 << 16):
            shown += chunk
    os.close(master)
    assert proc.returncode == 0, shown
    return proc.stdout, shown.decode()


@pytest.mark.slow
def test_bars_on_a_terminal_only_and_quiet_prints_only_errors(tmp_path: Path) -> None:
    counts = ("--train", "1", "--val", "1", "--unlabeled", "0", "--hidden", "1")
    out, shown = on_a_terminal("synth", "a", *counts, cwd=tmp_path)
    assert "synth: 100%" in shown and out.startswith("a: train 1, val 1")
    out, shown = on_a_terminal("--quiet", "synth", "b", *counts, cwd=tmp_path)
    assert out == "" and shown == ""  # was: the bar, and the summary line
    # off a terminal (a log file): no bar, whose \r-updates filled logs (the last one twice)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    command = [sys.executable, str(REPO / "cli.py"), "synth", "c", *counts]
    logged = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert logged.returncode == 0 and logged.stderr == "" and logged.stdout.startswith("c: train")
    runner = CliRunner()
    os.chdir(tmp_path)
    try:
        for loud, quiet in (
            (["ingest", "a", "--out", "s1"], ["ingest", "a", "--out", "s2"]),
            (["shards-info", "s1", "--verify"], ["shards-info", "s1", "--verify"]),
        ):
            said = runner.invoke(cli.app, loud)
            assert said.exit_code == 0 and said.output.strip(), said.output
            hushed = runner.invoke(cli.app, ["--quiet", *quiet])
            assert hushed.exit_code == 0 and hushed.output == "", hushed.output
        asked = runner.invoke(cli.app, ["--quiet", "presets", "--segmenter", "--json"])
        assert asked.output.startswith("[")  # what --json asks for still prints
        failed = runner.invoke(cli.app, ["--quiet", "shards-info", "nowhere"])
        assert failed.exit_code == 1 and failed.output.startswith("error: ")
        # our loggers are convrnn_video.*: -v shows their debug lines, the default their info
        verbose = runner.invoke(cli.app, ["-v", "synth", "d", *counts])
        assert "wrote 3 videos (0 already there)" in verbose.output
        assert "train: 1 video" in runner.invoke(cli.app, ["ingest", "d"]).output
    finally:
        os.chdir(REPO)
