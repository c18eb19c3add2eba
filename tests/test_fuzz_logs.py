"""Fuzzing the readers of text logs (tegrastats, power CSVs, energy probes, PTDaemon, Streamline reports) and the
format detection: the hand-written fixtures broken in every way tests/corpus/mutations.py knows, and plain
random text. The only allowed failure is an InputError of one line; what a reader accepts must keep the
SourceData contract and go through alignment and attribution without an error."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from corpus.checks import check_one_line, write_and_roll_back
from corpus.mutations import NASTY_BYTES, mutated
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from importer.assemble import ImportOptions, detect_kind, group_runs, read_one
from importer.errors import InputError
from importer.readers.bundle import read_bundle

import bundles

LOGS = Path(__file__).parent / "fixtures" / "logs"
# LAYERJOULE_FUZZ_EXAMPLES=2000 fuzzes longer (the default keeps the suite quick).
FUZZ = settings(max_examples=int(os.environ.get("LAYERJOULE_FUZZ_EXAMPLES", 60)), deadline=5000,
                suppress_health_check=[HealthCheck.too_slow], database=None)
OPTIONS = [ImportOptions(offset_ms=0.0), ImportOptions(offset_ms=0.0, interval_ms=100.0)]
SEEDS = {
    "tegrastats": sorted(LOGS.glob("tegrastats_*.log")),
    "power-csv": sorted(LOGS.glob("power_*.csv")),
    "energy-probe": [LOGS / n for n in ("BAT.csv", "A57.csv", "energy_probe_devlib.csv", "daq_devlib.csv",
                                        "juno_readenergy.csv", "arm_probe_devlib.csv")],
    "ptdaemon": [LOGS / "ptdaemon.log"],
    "streamline-report": sorted(LOGS.glob("streamline_*")),
}
SUFFIX = {"tegrastats": ".log", "ptdaemon": ".log", "streamline-report": ".txt"}


@pytest.fixture(scope="module")
def tiny_bundle_path(tmp_path_factory):
    return bundles.write_bundle(tmp_path_factory.mktemp("fuzz") / "tiny")


def check_source(source) -> None:
    """What every log reader promises (importer/readers/common.py)."""
    if source.samples is not None and len(source.samples):
        samples = source.samples
        assert samples["t_ns"].dtype == np.int64
        assert np.isfinite(samples["power_mw"].to_numpy(np.float64)).all()
        assert set(samples["rail"].unique()) <= {r.name for r in source.rails}
        for _, rows in samples.groupby("rail"):
            assert (np.diff(rows["t_ns"].to_numpy()) > 0).all(), "t_ns strictly increasing per rail"
    for rail in source.rails:
        assert rail.update_interval_ms is None or rail.update_interval_ms > 0
    for frame in (source.annotations, source.markers, source.counters):
        assert frame is None or isinstance(frame, pd.DataFrame)


def import_in_memory(kind: str, data: bytes, bundle_path: Path, options: ImportOptions) -> None:
    """Read the log, join it to the tiny bundle and attribute: InputError or success, nothing else."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"log{SUFFIX.get(kind, '.csv')}"
        path.write_bytes(data)
        try:
            source = read_one(kind, path, options)
        except InputError as error:
            check_one_line(error, path)
            return
        check_source(source)
        try:
            [run] = group_runs([read_bundle(bundle_path), source], options)
            prepared = write_and_roll_back(run, options)
        except InputError as error:
            check_one_line(error, path)
            return
        assert prepared.run_row["run_id"] == "run-tiny-1"


def fuzz_kind(kind: str):
    seeds = [p.read_bytes() for p in SEEDS[kind]]

    @FUZZ
    @given(data=mutated(seeds), options=st.sampled_from(OPTIONS))
    def run(tiny_bundle_path, data, options):
        import_in_memory(kind, data, tiny_bundle_path, options)

    return run


test_fuzz_tegrastats = fuzz_kind("tegrastats")
test_fuzz_power_csv = fuzz_kind("power-csv")
test_fuzz_energy_probe = fuzz_kind("energy-probe")
test_fuzz_ptdaemon = fuzz_kind("ptdaemon")
test_fuzz_streamline_report = fuzz_kind("streamline-report")


TEXTY = st.lists(st.sampled_from([*(bytes([b]) for b in NASTY_BYTES), b"VDD_IN ", b"RAM 1/2MB ", b"Time,",
                                  b",Watts,", b"power", b"time", b"mW", b"/", b"(W)", b"\n"]),
                 max_size=60).map(b"".join)


@FUZZ
@given(data=TEXTY | st.binary(max_size=200), kind=st.sampled_from(sorted(SEEDS)))
def test_fuzz_random_text_through_every_reader(tiny_bundle_path, data, kind):
    import_in_memory(kind, data, tiny_bundle_path, OPTIONS[1])


@FUZZ
@given(data=TEXTY | st.binary(max_size=200) | mutated([p.read_bytes() for ps in SEEDS.values() for p in ps]),
       suffix=st.sampled_from([".csv", ".log", ".txt", ".gz", ".zip", ".tar.gz", ""]))
def test_fuzz_format_detection(data, suffix):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"source{suffix}"
        path.write_bytes(data)
        try:
            kind = detect_kind(path)
        except InputError as error:
            check_one_line(error, path)
            return
        assert kind in SEEDS or kind in ("bundle", "streamline-capture")
