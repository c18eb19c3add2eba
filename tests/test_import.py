"""Importing run bundles: values in the store, idempotence, all-or-nothing, and bad input."""

import gzip
import json
import shutil
import subprocess
import sys
import zipfile

import duckdb
import pytest

from cli.main import main
from importer.ingest import import_sources
from importer.report import list_runs, run_report

import bundles


@pytest.fixture
def db(tmp_path):
    return tmp_path / "store.duckdb"


def store_contents(db):
    """Everything a failed import must leave as it was."""
    with duckdb.connect(str(db), read_only=True) as con:
        tables = [r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()]
        return {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables}


def test_import_stores_run_layers_and_exact_energies(tmp_path, db):
    bundle = bundles.write_bundle(tmp_path / "tiny-run")
    [result] = import_sources([bundle], db=db, owner="ana", tags=["lab", "tx1"])
    assert result.as_dict() == {"run_id": "run-tiny-1", "name": "tiny-run", "status": "imported"}
    run, layers = run_report("run-tiny-1", db)
    assert run["owner"] == "ana" and run["tags"] == ["lab", "tx1"] and run["simulated"] is True
    assert run["time_ms_per_inference"] == pytest.approx(60.0)
    # conv1: 3000 mW x 40 ms = 120 mJ; relu1: 2000 mW x 20 ms = 40 mJ; idle is 1000 mW.
    assert run["energy_mj_per_inference"] == pytest.approx(160.0)
    assert list(layers["name"]) == ["conv1", "relu1"]
    assert list(layers["energy_mj_mean"]) == pytest.approx([120.0, 40.0])
    assert list(layers["energy_above_idle_mj_mean"]) == pytest.approx([80.0, 20.0])
    with duckdb.connect(str(db), read_only=True) as con:
        phases = dict(con.execute("SELECT phase, energy_mj FROM phase_stats").fetchall())
        assert phases["inference"] == pytest.approx(480.0)
        assert phases["idle"] == pytest.approx(200.0)
        assert con.execute("SELECT count(*) FROM power_samples").fetchone()[0] == 38
        assert con.execute("SELECT count(*) FROM layer_events").fetchone()[0] == 6


def test_same_content_twice_is_harmless_in_any_packaging(tmp_path, db):
    folder = bundles.write_bundle(tmp_path / "tiny-run")
    zipped = tmp_path / "tiny-run.zip"
    with zipfile.ZipFile(zipped, "w") as archive:
        for member in folder.iterdir():
            archive.write(member, f"tiny-run/{member.name}")
    gzipped = shutil.copytree(folder, tmp_path / "gz")
    for name in ("events.csv", "rails.csv"):
        (gzipped / (name + ".gz")).write_bytes(gzip.compress((gzipped / name).read_bytes()))
        (gzipped / name).unlink()
    assert [r.status for r in import_sources([folder], db=db)] == ["imported"]
    assert [r.status for r in import_sources([zipped, gzipped], db=db)] == ["already-present"] * 2
    assert len(list_runs(db)) == 1


def test_an_import_is_all_or_nothing(tmp_path, db):
    import_sources([bundles.write_bundle(tmp_path / "first")], db=db)
    before = store_contents(db)
    good = bundles.write_bundle(tmp_path / "good", bundles.manifest(run_id="run-good"))
    bad = bundles.write_bundle(tmp_path / "bad", bundles.manifest(run_id="run-bad"),
                               rails=bundles.tiny_rails()[:5] + ["1,VDD_IN,7,,"])
    assert main(["import", str(good), str(bad), "--db", str(db)]) == 2
    assert store_contents(db) == before


def test_a_different_run_under_a_known_run_id_is_refused(tmp_path, db, capsys):
    import_sources([bundles.write_bundle(tmp_path / "a")], db=db)
    other = bundles.write_bundle(tmp_path / "b", rails=bundles.tiny_rails(interval_ms=20))
    assert main(["import", str(other), "--db", str(db)]) == 2
    assert "already in the store with different content" in capsys.readouterr().err


def test_a_run_without_power_data_has_timing_and_null_energy(tmp_path, db):
    bundle = bundles.write_bundle(tmp_path / "timing", bundles.manifest(rails=()), rails=False)
    import_sources([bundle], db=db)
    run, layers = run_report("run-tiny-1", db)
    assert run["energy_mj_per_inference"] is None and run["time_ms_per_inference"] == pytest.approx(60.0)
    assert layers["rail"].isna().all() and layers["energy_mj_mean"].isna().all()


def corrupt(tmp_path, case):
    """A bundle broken in one way; returns (path, text the error must contain)."""
    folder = tmp_path / case
    m = bundles.manifest()
    if case == "missing":
        return tmp_path / "nowhere", "no such file or folder"
    if case == "not-a-bundle":
        folder.mkdir()
        (folder / "notes.txt").write_text("hello")
        return folder, "neither a run bundle (manifest.json) nor a Streamline capture"
    if case == "unknown-version":
        m["format_version"] = "2.0"
        return bundles.write_bundle(folder, m), "format version 2.0 is not supported"
    if case == "bad-json":
        bundles.write_bundle(folder)
        (folder / "manifest.json").write_text('{"format": ')
        return folder, "manifest.json: line 1 column 12"
    if case == "missing-field":
        del m["iterations"]
        return bundles.write_bundle(folder, m), "field 'iterations' is missing"
    if case == "prototxt-changed":
        bundles.write_bundle(folder)
        (folder / "model.prototxt").write_text("layer {}")
        return folder, "sha256 differs"
    if case == "truncated-csv":
        bundles.write_bundle(folder)
        data = (folder / "rails.csv").read_bytes()
        (folder / "rails.csv").write_bytes(data[: len(data) // 2 - 3])
        return folder, "rails.csv: ends in the middle of a line"
    if case == "truncated-gzip":
        bundles.write_bundle(folder)
        data = gzip.compress((folder / "events.csv").read_bytes())
        (folder / "events.csv").unlink()
        (folder / "events.csv.gz").write_bytes(data[: len(data) // 2])
        return folder, "events.csv.gz: cannot be read completely"
    if case == "wrong-columns":
        rails = bundles.tiny_rails()
        rails[0] = "time,rail,watts"
        return bundles.write_bundle(folder, rails=rails), "rails.csv: line 1: columns t_ns, power_mw missing"
    if case == "short-row":
        events = bundles.tiny_events()
        events[3] = "layer,inference,0,0,conv1"
        return bundles.write_bundle(folder, events=events), "events.csv: line 4: Expected Number of Columns"
    if case == "bad-number":
        rails = bundles.tiny_rails()
        rails[6] = rails[6].replace(",VDD_IN,", ",VDD_IN,lots")
        return bundles.write_bundle(folder, rails=rails), "rails.csv: line 7: cannot convert"
    if case == "time-backwards-rails":
        rails = bundles.tiny_rails()
        rails[4], rails[5] = rails[5], rails[4]
        return bundles.write_bundle(folder, rails=rails), "rails.csv: line 6: t_ns 40000000 of rail 'VDD_IN'"
    if case == "time-backwards-events":
        events = bundles.tiny_events()
        events[4], events[5] = events[5], events[4]
        return bundles.write_bundle(folder, events=events), "events.csv: line 6: layer interval starts before"
    if case == "unknown-rail":
        rails = bundles.tiny_rails()
        rails[3] = rails[3].replace("VDD_IN", "VDD_GPU")
        return bundles.write_bundle(folder, rails=rails), "rail 'VDD_GPU' is not in the manifest"
    if case == "missing-layer":
        events = bundles.tiny_events()
        del events[5]
        return bundles.write_bundle(folder, events=events), "inference iteration 1 holds 1 layers"
    raise AssertionError(case)


BAD_CASES = ["missing", "not-a-bundle", "unknown-version", "bad-json", "missing-field", "prototxt-changed",
             "truncated-csv", "truncated-gzip", "wrong-columns", "short-row", "bad-number",
             "time-backwards-rails", "time-backwards-events", "unknown-rail", "missing-layer"]


@pytest.mark.parametrize("case", BAD_CASES)
def test_bad_input_is_one_clear_line_exit_2_and_the_store_unchanged(tmp_path, db, capsys, case):
    import_sources([bundles.write_bundle(tmp_path / "existing", bundles.manifest(run_id="run-existing"))], db=db)
    before = store_contents(db)
    path, expected_text = corrupt(tmp_path, case)
    assert main(["import", str(path), "--db", str(db)]) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert expected_text in lines[0]
    assert lines[0].startswith("layerjoule import: ")
    assert store_contents(db) == before


def test_bad_input_from_a_real_process_has_no_traceback(tmp_path, db):
    path, expected_text = corrupt(tmp_path, "unknown-version")
    done = subprocess.run([sys.executable, "-m", "cli.main", "import", str(path), "--db", str(db)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr and expected_text in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_cli_json_contract(tmp_path, db, capsys):
    bundle = bundles.write_bundle(tmp_path / "tiny-run")
    assert main(["import", str(bundle), "--db", str(db), "--json", "--name", "my run"]) == 0
    assert json.loads(capsys.readouterr().out) == [{"run_id": "run-tiny-1", "name": "my run", "status": "imported"}]
    assert main(["import", str(bundle), "--db", str(db), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["status"] == "already-present"

    assert main(["runs", "--db", str(db), "--json"]) == 0
    [run] = json.loads(capsys.readouterr().out)
    assert {k: run[k] for k in ("run_id", "name", "network", "device", "engine", "mode", "simulated",
                                "iterations")} == {
        "run_id": "run-tiny-1", "name": "my run", "network": "tiny", "device": "Test Board",
        "engine": "synthetic", "mode": "network", "simulated": True, "iterations": 3}
    assert run["time_ms_per_inference"] == pytest.approx(60.0)
    assert run["energy_mj_per_inference"] == pytest.approx(160.0)
    assert "owner" in run

    assert main(["report", "run-tiny-1", "--db", str(db), "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["run"]["run_id"] == "run-tiny-1"
    conv1 = report["layers"][0]
    assert {k: conv1[k] for k in ("index", "name", "type", "rail", "resolved")} == {
        "index": 0, "name": "conv1", "type": "Convolution", "rail": "VDD_IN", "resolved": True}
    assert conv1["time_ms_mean"] == pytest.approx(40.0) and conv1["time_ms_ci95"] == pytest.approx(0.0)
    assert conv1["energy_mj_mean"] == pytest.approx(120.0) and conv1["energy_above_idle_mj_mean"] == pytest.approx(80.0)
    assert "energy_mj_ci95" in conv1

    assert main(["report", "run-tiny-1", "--db", str(db), "--format", "csv"]) == 0
    csv_lines = capsys.readouterr().out.splitlines()
    assert csv_lines[0].startswith("index,name,type,rail,") and csv_lines[1].startswith("0,conv1,Convolution,VDD_IN")

    assert main(["report", "run-tiny-1", "--db", str(db)]) == 0
    table = capsys.readouterr().out
    assert "SIMULATED" in table and "conv1" in table and "120.0000" in table

    assert main(["report", "no-such-run", "--db", str(db)]) == 2
    assert "no run with id 'no-such-run'" in capsys.readouterr().err


def test_default_store_location_and_env_override(tmp_path, monkeypatch):
    from importer.store import default_db_path, resolve_db_path

    monkeypatch.delenv("LAYERJOULE_DB", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert default_db_path() == tmp_path / "data" / "layerjoule" / "layerjoule.duckdb"
    assert resolve_db_path() == default_db_path()
    monkeypatch.setenv("LAYERJOULE_DB", str(tmp_path / "env.duckdb"))
    assert resolve_db_path() == tmp_path / "env.duckdb"
    assert resolve_db_path(tmp_path / "flag.duckdb") == tmp_path / "flag.duckdb"


def test_report_table_leaves_out_unresolved_energy_but_json_keeps_it_flagged(tmp_path, db, capsys):
    # A 30 ms sensor cannot resolve 40 ms and 20 ms layers (they last less than two update intervals).
    bundle = bundles.write_bundle(tmp_path / "slow-sensor", bundles.manifest(update_interval_ms=30.0))
    import_sources([bundle], db=db)
    assert main(["report", "run-tiny-1", "--db", str(db)]) == 0
    table = capsys.readouterr().out
    conv1_row = next(line for line in table.splitlines() if " conv1 " in line)
    assert conv1_row.split()[-4:] == ["-", "-", "-", "False"]
    assert "2 rows unresolved" in table
    assert main(["report", "run-tiny-1", "--db", str(db), "--format", "json"]) == 0
    conv1 = json.loads(capsys.readouterr().out)["layers"][0]
    assert conv1["resolved"] is False and conv1["energy_mj_mean"] is not None
