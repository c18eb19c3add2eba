"""What the fuzz tests check: a rejected input is one InputError line naming the file; an accepted one goes
through attribution and every INSERT of a real import into a real DuckDB store (then rolled back, so one store
serves every example)."""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

from importer import store
from importer.assemble import ImportOptions, RunSources
from importer.errors import InputError
from importer.ingest import _write_run, prepare_run

STORE = Path(tempfile.mkdtemp(prefix="layerjoule-fuzz-")) / "store.duckdb"
atexit.register(shutil.rmtree, STORE.parent, ignore_errors=True)


def check_one_line(error: InputError, path: Path | str) -> None:
    text = str(error)
    assert text.strip() and "\n" not in text and "\r" not in text, repr(text)
    assert str(path) in text or text.startswith(("LAYERJOULE_", "--")), text


def write_and_roll_back(run: RunSources, options: ImportOptions | None = None):
    """Prepare the run as an import does and write it inside a transaction that is rolled back; returns the
    prepared run, or None when an InputError said no (the caller checks it)."""
    prepared = prepare_run(run, None, "fuzz", [], options or ImportOptions())
    with store.connect(STORE) as con:
        con.execute("BEGIN TRANSACTION")
        try:
            result = _write_run(con, prepared, lambda message: None)
        finally:
            con.execute("ROLLBACK")
    assert result.status == "imported"
    return prepared
