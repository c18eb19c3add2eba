"""The committed corpus of broken inputs (tests/corpus, written by tests/corpus/make_corpus.py) through the command
line: each file gets exactly the answer expected.json records. A failure is exit status 2 and one line naming the
file, with the store unchanged; the harmless variants (UTF-8 BOM, CRLF, ...) import."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import duckdb
import pytest

from cli.main import main
from importer.ingest import import_sources

import bundles

CORPUS = Path(__file__).parent / "corpus"
EXPECTED = json.loads((CORPUS / "expected.json").read_text())
LENET = Path(__file__).resolve().parent.parent / "sample_traces" / "models" / "legacy_v1_lenet.prototxt"


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    db = tmp_path_factory.mktemp("corpus") / "store.duckdb"
    import_sources([bundles.write_bundle(db.parent / "existing", bundles.manifest(run_id="run-existing"))], db=db)
    return db


def counts(db: Path) -> dict[str, int]:
    with duckdb.connect(str(db), read_only=True) as con:
        tables = [r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()]
        return {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables}


def command(entry: dict, path: Path, db: Path, tmp_path: Path) -> list[str]:
    how = entry["how"]
    if how == "analyze":
        return ["analyze", str(path)]
    if how == "weights":
        return ["analyze", str(LENET), "--weights", str(path)]
    if how == "bundle":
        return ["import", f"bundle:{path}", "--db", str(db)]
    # A log or a capture joins a tiny run of its own (a new run_id, so that every success is a new run).
    run = bundles.write_bundle(tmp_path / "run", bundles.manifest(run_id=f"run-{uuid.uuid4().hex[:12]}"))
    return ["import", str(run), f"{how}:{path}", "--offset-ms", "0", "--interval-ms", "100", "--db", str(db)]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_corpus_file(store, tmp_path, capsys, name):
    entry = EXPECTED[name]
    path = CORPUS / name
    # The bundle variants that import share a run_id: each of them goes to a store of its own.
    db = tmp_path / "own.duckdb" if entry["how"] == "bundle" and entry["exit"] == 0 else store
    before = counts(store)
    capsys.readouterr()
    status = main(command(entry, path, db, tmp_path))
    err = capsys.readouterr().err
    assert status == entry["exit"], err
    if status == 0:
        return
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(("layerjoule import: ", "layerjoule analyze: ")), lines[0]
    assert str(path) in lines[0] or (entry["how"] == "weights" and str(LENET) in lines[0]), lines[0]
    if entry["error"]:
        assert entry["error"] in lines[0], lines[0]
    assert counts(store) == before


def test_the_corpus_is_what_the_generator_writes():
    """Every variant of every format is there, and small."""
    files = {str(p.relative_to(CORPUS)) for p in CORPUS.glob("*/*")}
    assert files == set(EXPECTED)
    assert sum((CORPUS / name).stat().st_size for name in files) < 300_000


@pytest.mark.parametrize("name", ["bundle/truncated.zip", "power-csv/utf16.csv", "prototxt/reordered.prototxt"])
def test_a_real_process_prints_no_traceback(tmp_path, name):
    entry = EXPECTED[name]
    done = subprocess.run([sys.executable, "-m", "cli.main", *command(entry, CORPUS / name, tmp_path / "s.duckdb",
                                                                      tmp_path)],
                          capture_output=True, text=True, timeout=120, cwd=Path(__file__).resolve().parent.parent)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
