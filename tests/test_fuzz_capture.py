"""Fuzzing the Streamline capture reader: data files and XML files of a capture written by
tests/streamline_writer.py, broken in every way tests/corpus/mutations.py knows, in a folder and in a zip; an
accepted capture goes on to make a run alone and to join a bundle, through attribution and the store's INSERTs."""

from __future__ import annotations

import io
import os
import shutil
import tempfile
import zipfile
from pathlib import Path

import pytest
import streamline_writer as sw
from corpus.checks import check_one_line, write_and_roll_back
from corpus.mutations import mutated
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from importer.assemble import ImportOptions, group_runs
from importer.errors import InputError
from importer.readers.bundle import read_bundle
from importer.readers.streamline_capture import read_capture

import bundles

FUZZ = settings(max_examples=int(os.environ.get("LAYERJOULE_FUZZ_EXAMPLES", 60)), deadline=5000,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture], database=None)
D = 5_000_000_000
MS = 1_000_000


def write_good_capture(folder: Path) -> Path:
    """Two layers, three iterations, a sync marker for the tiny bundle, a counter and a power rail."""
    annotations, t = [], D + 100 * MS
    for _ in range(3):
        annotations += [(t, 1, 1, "conv1___Convolution"), (t + 40 * MS, 1, 1, "relu1___ReLU"),
                        (t + 60 * MS, 1, 1, "")]
        t += 60 * MS
    counters = [sw.CounterSpec("ARMv8_Cortex_A57_cnt0", "Cortex-A57", "Bus access", units="", event=0x19,
                               values=[(k * 10 * MS, 0, 1000) for k in range(40)])]
    return sw.write_capture(folder, monotonic_delta_ns=D, realtime_ns=1_796_000_000 * 10**9, tid=1,
                            annotations=annotations, markers=[(D + 50 * MS, "layerjoule-sync monotonic_ns=50000000")],
                            counters=counters, power=[(k * 10 * MS, "VDD_IN", 1500 + k) for k in range(40)],
                            chunk_size=64)


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    folder = write_good_capture(tmp_path_factory.mktemp("capture") / "good.apc")
    bundle = bundles.write_bundle(tmp_path_factory.mktemp("bundle") / "tiny")
    return folder, {p.name: p.read_bytes() for p in folder.iterdir()}, bundle


def read_and_import(path: Path, bundle_path: Path) -> None:
    try:
        capture = read_capture(path)
    except InputError as error:
        check_one_line(error, path)
        return
    for items in ([capture], [read_bundle(bundle_path), capture]):
        try:
            [run] = group_runs(items, ImportOptions())
            write_and_roll_back(run)
        except InputError as error:
            check_one_line(error, path)


@FUZZ
@given(member=st.sampled_from(["0000000000", "captured.xml", "events.xml", "session.xml", "counters.xml"]),
       data=st.data())
def test_fuzz_capture_members(good, member, data):
    folder, members, bundle = good
    broken = data.draw(mutated([members[member]]), label=member)
    with tempfile.TemporaryDirectory() as scratch:
        copy = Path(scratch) / "x.apc"
        shutil.copytree(folder, copy)
        (copy / member).write_bytes(broken)
        read_and_import(copy, bundle)


@FUZZ
@given(data=st.data())
def test_fuzz_zipped_capture(good, data):
    folder, members, bundle = good
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in members.items():
            archive.writestr(f"x.apc/{name}", content)
    broken = data.draw(mutated([buffer.getvalue()]) | st.binary(max_size=300))
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "x.apc.zip"
        path.write_bytes(broken)
        read_and_import(path, bundle)


def test_the_good_capture_is_good(good):
    """The seed itself reads and imports (else the fuzzing above would only see rejections)."""
    folder, _, bundle = good
    capture = read_capture(folder)
    assert len(capture.annotations) == 6 and len(capture.samples) == 40
    [run] = group_runs([read_bundle(bundle), capture], ImportOptions())
    prepared = write_and_roll_back(run)
    counters = prepared.layer_counters
    assert len(counters) == 4 and (counters["n_iterations"] == 3).all()  # 2 layers x (bus access, power counter)
