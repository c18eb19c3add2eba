"""An import killed at any moment leaves the store with the run complete or absent, and the next import of the same
sources succeeds (then a further one is "already-present").

Real processes (`python -m cli.main import ... --db FILE`) on a real DuckDB file, killed with SIGKILL: at each
stage named by the importer's test hook (LAYERJOULE_TEST_PAUSE_AT, importer/limits.py), and after random delays.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import numpy as np
import pytest

from importer import store
from importer.ingest import import_sources
from importer.limits import PAUSE_ENV, PAUSE_STAGES

import bundles

ROOT = Path(__file__).resolve().parent.parent
RUN_ID = "run-crash-1"
MS = 1_000_000
pytestmark = pytest.mark.timeout(600)


def write_medium_bundle(folder: Path, iterations: int = 2000, layers: int = 20, samples: int = 200_000) -> Path:
    """A simulated run big enough that writing it takes a while: `iterations` x `layers` intervals of 0.2-2 ms
    and `samples` VDD_IN samples every 0.25 ms (a fast meter)."""
    rng = np.random.default_rng(7)
    durations = rng.integers(200_000, 2_000_000, size=iterations * layers)
    ends = 100 * MS + np.cumsum(durations)
    starts = ends - durations
    last = int(ends[-1])
    rows = ["kind,phase,iteration,layer_index,layer_name,layer_type,repeats,t_start_ns,t_end_ns",
            f"phase,idle,,,,,,0,{100 * MS}", f"phase,inference,,,,,,{100 * MS},{last}"]
    index = np.tile(np.arange(layers), iterations)
    iteration = np.repeat(np.arange(iterations), layers)
    rows += [f"layer,inference,{i},{k},layer{k},Convolution,1,{a},{b}"
             for i, k, a, b in zip(iteration.tolist(), index.tolist(), starts.tolist(), ends.tolist(), strict=True)]
    interval_ns = max(last // samples, 1)
    t = np.arange(1, samples + 1, dtype=np.int64) * interval_ns
    power = 1000 + 500 * rng.random(samples)
    rails = "t_ns,rail,power_mw,voltage_mv,current_ma\n" + "".join(
        f"{a},VDD_IN,{p:.3f},,\n" for a, p in zip(t.tolist(), power.tolist(), strict=True))
    manifest = bundles.manifest(run_id=RUN_ID, update_interval_ms=interval_ns / MS, iterations=iterations)
    folder = bundles.write_bundle(folder, manifest, events=rows)
    (folder / "rails.csv").write_text(rails)
    return folder


def run_rows(db: Path) -> dict[str, int]:
    """Rows of RUN_ID in every table that holds rows of runs."""
    with store.connect(db) as con:
        tables = [row[0] for row in con.execute(
            "SELECT DISTINCT table_name FROM information_schema.columns WHERE column_name = 'run_id' "
            "AND table_catalog = current_database()").fetchall()]
        return {t: con.execute(f"SELECT count(*) FROM {t} WHERE run_id = ?", [RUN_ID]).fetchone()[0]
                for t in sorted(tables)}


def other_rows(db: Path) -> int:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute("SELECT count(*) FROM power_samples WHERE run_id <> ?", [RUN_ID]).fetchone()[0]


@pytest.fixture(scope="module")
def medium(tmp_path_factory):
    """The bundle, the rows a good import gives, and how long a whole import takes in a process."""
    folder = write_medium_bundle(tmp_path_factory.mktemp("medium") / "medium-run")
    reference = tmp_path_factory.mktemp("reference") / "store.duckdb"
    started = time.monotonic()
    done = subprocess.run(importer_command(folder, reference), cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    seconds = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    rows = run_rows(reference)
    assert rows["runs"] == 1 and rows["power_samples"] == 200_000 and rows["layer_events"] == 40_000
    return folder, rows, seconds


def importer_command(folder: Path, db: Path) -> list[str]:
    return [sys.executable, "-m", "cli.main", "import", str(folder), "--db", str(db), "--json"]


def store_with_another_run(tmp_path: Path) -> Path:
    db = tmp_path / "store.duckdb"
    import_sources([bundles.write_bundle(tmp_path / "other", bundles.manifest(run_id="run-other"))], db=db)
    return db


def kill_at_stage(folder: Path, db: Path, stage: str) -> None:
    process = subprocess.Popen(importer_command(folder, db), cwd=ROOT, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, PAUSE_ENV: stage})
    try:
        line = process.stderr.readline()  # the hook's line, once the import has reached the stage
        assert line.strip() == f"layerjoule-test-paused {stage}", line
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=60)
        process.stderr.close()
    assert process.returncode == -signal.SIGKILL


def check_complete_or_absent(db: Path, good: dict[str, int], others: int) -> str:
    """The run is all there (every table as a good import has it) or not there at all; other runs untouched."""
    rows = run_rows(db)
    assert other_rows(db) == others
    if rows["runs"] == 0:
        assert not any(rows.values()), rows
        return "absent"
    assert rows == good
    return "complete"


def reimport_twice(folder: Path, db: Path, state: str, good: dict[str, int]) -> None:
    first = subprocess.run(importer_command(folder, db), cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr
    expected = "already-present" if state == "complete" else "imported"
    assert [r["status"] for r in json.loads(first.stdout)] == [expected]
    [second] = import_sources([folder], db=db)
    assert second.status == "already-present"
    assert run_rows(db) == good


@pytest.mark.parametrize("stage", PAUSE_STAGES)
def test_killed_at_each_stage(medium, tmp_path, stage):
    folder, good, _ = medium
    db = store_with_another_run(tmp_path)
    others = other_rows(db)
    kill_at_stage(folder, db, stage)
    state = check_complete_or_absent(db, good, others)
    assert state == ("complete" if stage == "committed" else "absent")
    reimport_twice(folder, db, state, good)


def test_killed_after_random_delays(medium, tmp_path):
    """Kills at random moments over a whole import's duration (start-up, reading, attribution, the write, the
    commit, closing): whatever the moment, complete or absent."""
    folder, good, seconds = medium
    rng = random.Random(20261201)
    states = []
    for attempt in range(6):
        db = store_with_another_run(tmp_path / f"attempt{attempt}")
        others = other_rows(db)
        process = subprocess.Popen(importer_command(folder, db), cwd=ROOT, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.3, 1.1) * seconds)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=60)
        state = check_complete_or_absent(db, good, others)
        states.append(state)
        reimport_twice(folder, db, state, good)
    print("states after random kills:", states)
