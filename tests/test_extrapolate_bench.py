"""benchmarks/extrapolate.py with a track forecaster: its rows for each hit stage, also for a
checkpoint with a state reader (which needs the floor stage, so the rows without the floor
leave the reader out)."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from convrnn_video.convrnn import get_preset
from convrnn_video.convrnn.floor import Floor
from convrnn_video.runtime.checkpoint import save_untrained

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_the_tracks_rows_run_for_a_forecaster_with_a_reader(
    synth_root: Path, tmp_path: Path
) -> None:
    cfg = dataclasses.replace(get_preset("tracks"), track_floor=Floor().as_tuple(),
                              track_contacts=(1.0, 0.85, 0.65, 0.9, 2.2, 0.1, 6.7),
                              track_reader=8)  # fmt: skip
    ckpt = save_untrained(tmp_path / "reader.pt", cfg)
    run = subprocess.run([sys.executable, str(REPO / "benchmarks" / "extrapolate.py"), "--data",
                          str(synth_root), "--videos", "2", "--tracks", str(ckpt)],
                         capture_output=True, text=True, timeout=300,
                         env={**os.environ, "OMP_NUM_THREADS": "1"})  # fmt: skip
    assert run.returncode == 0, run.stderr
    rows = json.loads(run.stdout)["generated_val"]
    for name in ("tracks_model", "tracks_no_hits", "tracks_disc_hits", "tracks_floor_hits"):
        assert 0 <= rows[name]["frame22"] <= 1, name
    # the reader starts at zero: the floor rows are the checkpoint's own
    assert rows["tracks_floor_hits"]["frame22"] == rows["tracks_model"]["frame22"]
