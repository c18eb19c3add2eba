"""Inputs made to hang a parser: long runs of the characters the readers' regular expressions look at (brackets,
spaces, digits, separators, `___`), in header cells, data cells, marker texts and whole lines, 64 KiB or 2 MiB
long. Small fuzzed files cannot find quadratic backtracking; these would take minutes or hours with it. Each must
end (accepted or one InputError line) well within its time-out."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import streamline_writer as sw
from corpus.checks import check_one_line

from importer.assemble import ImportOptions, detect_kind, group_runs, read_one
from importer.errors import InputError
from importer.model.net import parse_prototxt
from importer.readers.streamline_capture import read_capture

L = 64 * 1024
RUNS = {
    "brackets": "(" * L,
    "square": "[" * L,
    "spaces": "a" + " " * L + "b",
    "digits": "1" * L + "x",
    "digit-runs": "1111 " * (L // 5),
    "open-units": "a(a" * (L // 3),
    "underscores": "a_" * (L // 2) + "!",
    "triple": "a___" * (L // 4) + "!",
    "power": "_" * L + "power",
    "dots": "1." * (L // 2),
}


def cases():
    for name, run in RUNS.items():
        yield f"power-csv header {name}", "power-csv", f"time_s,{run}\n0,1\n"
        yield f"power-csv cell {name}", "power-csv", f"time_s,power_mw\n{run},1\n1,2\n"
        yield f"energy-probe header {name}", "energy-probe", f"{run},power\n1,2\n"
        yield f"report header {name}", "streamline-report", f"Time,{run}\n1,2\n"
        yield f"report spaced header {name}", "streamline-report", f"Time  Counter {run}\n1  2\n"
        yield f"report cells {name}", "streamline-report", (f"Time,Duration,Message,Channel,Process/Thread\n"
                                                            f"{run},{run},{run}___x,{run},{run}\n")
        yield f"tegrastats {name}", "tegrastats", f"RAM 1/2MB VDD_IN {run}\nRAM 1/2MB VDD_IN 1/1\n"
        yield f"ptdaemon {name}", "ptdaemon", f"Time,{run}\n"


@pytest.mark.timeout(60)
@pytest.mark.parametrize("label, kind, text", list(cases()), ids=[c[0] for c in cases()])
def test_long_runs_end_quickly(tmp_path, label, kind, text):
    path = tmp_path / "input.txt"
    path.write_text(text)
    for read in (lambda: read_one(kind, path, ImportOptions(interval_ms=100.0)), lambda: detect_kind(path)):
        try:
            read()
        except InputError as error:
            check_one_line(error, path)
            assert len(str(error)) < 2000, "an error line quotes at most a short piece of the input"


@pytest.mark.timeout(60)
@pytest.mark.parametrize("name", sorted(RUNS))
def test_long_runs_in_a_prototxt_end_quickly(name):
    with pytest.raises(InputError):
        parse_prototxt(f'name: "{RUNS[name]}"\nlayer {{ name: "{RUNS[name]}" type: "{RUNS[name]}" }}\n' * 2,
                       "net.prototxt")


@pytest.mark.timeout(60)
def test_long_annotation_texts_make_a_run_quickly(tmp_path):
    """A capture alone becomes a run from its annotations, `name___type` texts parsed: long runs of `___`."""
    D = 5_000_000_000
    text = RUNS["triple"]
    folder = sw.write_capture(tmp_path / "c.apc", monotonic_delta_ns=D, realtime_ns=10**18, tid=1,
                              annotations=[(D + 1000, 1, 1, text), (D + 5000, 1, 1, "conv1___Convolution"),
                                           (D + 9000, 1, 1, "")], markers=[(D + 500, text)])
    [run] = group_runs([read_capture(folder)], ImportOptions())
    assert sorted(run.bundle.layers["name"]) == sorted(["conv1", text])


@pytest.mark.timeout(120)
def test_a_two_megabyte_cell_ends_quickly(tmp_path):
    path = Path(tmp_path) / "report.csv"
    path.write_text("Time,Message,Process/Thread\n" + "1.5," + "1111 " * 400_000 + ",x 1\n")
    with pytest.raises(InputError) as error:
        read_one("streamline-report", path, ImportOptions())
    assert len(str(error.value)) < 2000


@pytest.mark.timeout(60)
def test_a_pipe_given_as_a_source_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "pipe.log"
    os.mkfifo(fifo)
    for read in (lambda: detect_kind(fifo), lambda: read_one("tegrastats", fifo, ImportOptions(interval_ms=1.0))):
        with pytest.raises(InputError, match="is neither a file nor a folder"):
            read()


def test_a_file_the_system_will_not_give_is_one_error_line(tmp_path, monkeypatch):
    log = tmp_path / "power.csv"
    log.write_text("time_s,power_mw\n0,1\n")

    def refuse(self):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_bytes", refuse)
    with pytest.raises(InputError) as error:
        read_one("power-csv", log, ImportOptions())
    assert str(error.value) == f"{log}: cannot be read (Permission denied); expected a readable file"
