"""The team store against a real PostgreSQL server (tests/pg.py) with DuckLake's Parquet files in a folder: the
same results as the DuckDB file, owners and deletion, copying both ways, db info and migrate, and several
importer processes writing at once (also on the DuckDB file)."""

import json
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from importer import store
from importer.ingest import import_sources
from importer.report import list_runs, run_report

import bundles
from browser import chromium_page, running_app

pytest_plugins = ["pg"]  # the PostgreSQL server and team store fixtures

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "sample_traces"
# A real run with its Streamline capture and tegrastats log: every table of the schema gets rows.
MATCHED_RUN = [SAMPLES / "squeezenet_v1.1-network", *sorted((SAMPLES / "extras").glob("*.apc.zip")),
               *sorted((SAMPLES / "extras").glob("*.tegrastats.log"))]


def layerjoule(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cli.main", *args], capture_output=True, text=True, timeout=300,
                          cwd=ROOT, env={**os.environ, **(env or {})})


def contents(db) -> dict[str, pd.DataFrame]:
    """Every row of every run table, in a fixed order (import times aside: they differ between two imports)."""
    with store.connect(db, read_only=True) as con:
        frames = {t: con.execute(f"SELECT * FROM {t} ORDER BY ALL").df() for t in store.run_tables(con)}
    return {t: f.drop(columns=["imported_utc"], errors="ignore") for t, f in frames.items()}


def counts(db) -> dict[tuple[str, str], int]:
    with store.connect(db, read_only=True) as con:
        return {(t, run_id): n for t in store.run_tables(con)
                for run_id, n in con.execute(f"SELECT run_id, count(*) FROM {t} GROUP BY run_id").fetchall()}


def test_the_team_store_holds_exactly_what_the_duckdb_file_holds(tmp_path, team_url):
    file_db = tmp_path / "store.duckdb"
    tiny = bundles.write_bundle(tmp_path / "tiny-run")
    for db in (file_db, team_url):
        import_sources(MATCHED_RUN, db=db, owner="ana", team="vision", tags=["tx1"])
        import_sources([tiny], db=db, owner="bo")
    in_file, in_lake = contents(file_db), contents(team_url)
    assert sorted(in_lake) == sorted(in_file) and len(in_file) >= 15
    for table, frame in in_file.items():
        pd.testing.assert_frame_equal(in_lake[table], frame, obj=table)
    assert min(len(frame) for frame in in_file.values()) > 0  # every table was compared on rows

    run, layers = run_report("run-tiny-1", team_url)
    assert run["owner"] == "bo" and run["energy_mj_per_inference"] == pytest.approx(160.0)
    assert list(layers["energy_mj_mean"]) == pytest.approx([120.0, 40.0])
    assert list_runs(team_url).drop(columns="imported_utc").equals(list_runs(file_db).drop(columns="imported_utc"))
    # Importing again is harmless on the team store too.
    assert [r.status for r in import_sources([tiny], db=team_url)] == ["already-present"]


def test_owners_teams_and_deletion_through_the_command_line(tmp_path, team_url):
    ana = bundles.write_bundle(tmp_path / "ana-run", bundles.manifest(run_id="run-ana"))
    bo = bundles.write_bundle(tmp_path / "bo-run", bundles.manifest(run_id="run-bo"))
    assert layerjoule("import", str(ana), "--db", team_url, "--owner", "ana", "--team", "vision").returncode == 0
    done = layerjoule("import", str(bo), "--db", team_url, env={"LAYERJOULE_USER": "bo", "LAYERJOULE_TEAM": "audio"})
    assert done.returncode == 0, done.stderr
    listed = json.loads(layerjoule("runs", "--json", "--db", team_url).stdout)
    assert {(r["run_id"], r["owner"], r["team"]) for r in listed} == {("run-ana", "ana", "vision"),
                                                                      ("run-bo", "bo", "audio")}

    refused = layerjoule("delete", "run-ana", "--db", team_url, env={"LAYERJOULE_USER": "bo"})
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert refused.stderr.strip() == ("layerjoule delete: run 'run-ana' belongs to 'ana', not to 'bo'; expected the "
                                      "user's own runs (an admin may delete any: `layerjoule db admin list`)")
    assert counts(team_url)[("power_samples", "run-ana")] == 38

    assert layerjoule("delete", "run-bo", "--db", team_url, env={"LAYERJOULE_USER": "bo"}).returncode == 0
    assert layerjoule("db", "admin", "add", "carl", "--db", team_url, "--user", "carl").returncode == 0
    assert layerjoule("delete", "run-ana", "--db", team_url, "--user", "carl").returncode == 0
    assert counts(team_url) == {}  # no row of either run is left in any table
    info = store.store_info(team_url)
    assert info["runs"] == 0 and info["admins"] == ["carl"]


def test_copy_to_the_team_store_and_back_twice_duplicates_nothing(tmp_path, team_url):
    local, back = tmp_path / "local.duckdb", tmp_path / "back.duckdb"
    import_sources(MATCHED_RUN, db=local, owner="ana")
    import_sources([bundles.write_bundle(tmp_path / "tiny-run")], db=local, owner="ana")
    ids = sorted(list_runs(local)["run_id"])

    pushed = layerjoule("db", "copy", "--from", str(local), "--to", team_url, "--json")
    assert pushed.returncode == 0, pushed.stderr
    assert sorted((r["run_id"], r["status"]) for r in json.loads(pushed.stdout)) == [(i, "copied") for i in ids]
    again = store.copy_runs(local, team_url)
    assert [r["status"] for r in again] == ["already-present"] * 2
    expected = contents(local)
    for table, frame in contents(team_url).items():
        pd.testing.assert_frame_equal(frame, expected[table], obj=table)

    # And back: one run, twice.
    for status in ("copied", "already-present"):
        done = layerjoule("db", "copy", "--from", team_url, "--to", str(back), "--run", "run-tiny-1", "--json")
        assert json.loads(done.stdout) == [{"run_id": "run-tiny-1", "name": "tiny-run", "status": status}]
    assert {run_id for _, run_id in counts(back)} == {"run-tiny-1"}
    assert {k: n for k, n in counts(local).items() if k[1] == "run-tiny-1"} == counts(back)
    with store.connect(back, read_only=True) as con:  # copied as it was: import time and owner too
        copied = con.execute("SELECT imported_utc, owner FROM runs").fetchall()
    with store.connect(local, read_only=True) as con:
        assert copied == con.execute("SELECT imported_utc, owner FROM runs WHERE run_id = 'run-tiny-1'").fetchall()

    # A different run under a run_id the target has is refused, and nothing is written.
    other = tmp_path / "other.duckdb"
    import_sources([bundles.write_bundle(tmp_path / "other", rails=bundles.tiny_rails(interval_ms=20))], db=other)
    before = counts(team_url)
    refused = layerjoule("db", "copy", "--from", str(other), "--to", team_url)
    assert refused.returncode == 2 and "with different content" in refused.stderr
    assert counts(team_url) == before


def test_info_and_migrate_on_a_new_and_an_older_team_store(tmp_path, pg_cluster, team_url,
                                                           monkeypatch):
    info = json.loads(layerjoule("db", "info", "--json", "--db", team_url).stdout)
    assert info["exists"] is False and info["kind"].startswith("team store")
    done = layerjoule("db", "migrate", "--db", team_url)
    assert done.returncode == 0 and done.stdout.strip() == f"schema version {store.SCHEMA_VERSION} (was 0)"
    assert layerjoule("db", "migrate", "--db", team_url).stdout.strip() == \
        f"schema version {store.SCHEMA_VERSION}: up to date"

    # An older team store (schema 6, before roles) with a run in it is upgraded in place, its run kept.
    older_url = f"ducklake:postgres:{pg_cluster.conninfo(pg_cluster.create_database())} data_path={tmp_path / 'older'}"
    with monkeypatch.context() as patch:
        patch.setattr(store, "MIGRATIONS", store.MIGRATIONS[:6])
        patch.setattr(store, "SCHEMA_VERSION", 6)
        import_sources([bundles.write_bundle(tmp_path / "tiny-run")], db=older_url, owner="ana", team="vision")
    assert store.store_info(older_url)["schema_version"] == 6
    text = layerjoule("db", "info", "--db", older_url).stdout
    assert "schema version: 6, this layerjoule's: 7 (older: `layerjoule db migrate` upgrades it)" in text
    assert layerjoule("db", "migrate", "--db", older_url).stdout.strip() == "schema version 7 (was 6)"
    assert store.store_info(older_url)["schema_version"] == 7  # this process sees another's migration too
    info = json.loads(layerjoule("db", "info", "--json", "--db", older_url).stdout)
    assert info["schema_version"] == 7 and info["admins"] == [] and info["data_path"] == f"{tmp_path / 'older'}/"
    assert info["runs_by_owner"] == [{"owner": "ana", "team": "vision", "runs": 1}]
    assert info["duplicates"] == {"run_id": 0, "content_sha256": 0}
    assert (tmp_path / "older").is_dir() and any((tmp_path / "older").rglob("*.parquet"))


def test_bad_urls_and_unreachable_servers_are_one_line_errors(pg_cluster):
    wrong_db = f"ducklake:postgres:{pg_cluster.conninfo('no_such_db')} password=hunter2"
    for url, expected in [
        ("ducklake:postgres:host=127.0.0.1 port=1 dbname=lj", "Connection refused"),
        (wrong_db, 'database "no_such_db" does not exist'),
    ]:
        done = layerjoule("runs", "--db", url)
        assert done.returncode == 2 and done.stdout == ""
        assert done.stderr.count("\n") == 1 and expected in done.stderr and "Traceback" not in done.stderr
        assert "hunter2" not in done.stderr


def _zipped(folder: Path) -> Path:
    archive = folder.with_suffix(".zip")
    with zipfile.ZipFile(archive, "w") as z:
        for member in folder.iterdir():
            z.write(member, f"{folder.name}/{member.name}")
    return archive


@pytest.mark.parametrize("kind", ["team", "file"])
def test_importer_processes_writing_at_once_lose_nothing_and_duplicate_nothing(kind, tmp_path, request):
    db = request.getfixturevalue("team_url") if kind == "team" else str(tmp_path / "store.duckdb")
    b = [bundles.write_bundle(tmp_path / f"run-{i}", bundles.manifest(run_id=f"run-{i}", iterations=3 + i),
                              events=bundles.tiny_events(3 + i), rails=bundles.tiny_rails(3 + i))
         for i in range(4)]
    # Seven processes, started together: three import run-0 (one from a zip), and runs 2 and 3 arrive twice.
    calls = [[b[0]], [b[0]], [_zipped(b[0])], [b[1], b[2]], [b[2]], [b[3]], [b[3], b[1]]]
    reference = tmp_path / "reference.duckdb"
    import_sources(b, db=reference)

    started = time.monotonic()
    processes = [subprocess.Popen([sys.executable, "-m", "cli.main", "import", *map(str, call), "--db", db,
                                   "--json"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for call in calls]
    # Meanwhile the dashboard's kind of reads: each sees whole runs only (every sample of every run it lists).
    reads, seen = 0, set()
    while any(p.poll() is None for p in processes):
        with store.connect(db, read_only=True) as con:
            rows = con.execute("SELECT run_id, (SELECT count(*) FROM power_samples AS p WHERE p.run_id = r.run_id) "
                               "FROM runs AS r").fetchall()
        expected = {run_id: n for (table, run_id), n in counts(reference).items() if table == "power_samples"}
        assert all(n == expected[run_id] for run_id, n in rows), rows
        seen |= {run_id for run_id, _ in rows}
        reads += 1
        time.sleep(0.05)
    outputs = [p.communicate() for p in processes]
    elapsed_s = time.monotonic() - started
    assert [p.returncode for p in processes] == [0] * len(calls), [err for _, err in outputs]

    statuses = [(r["run_id"], r["status"]) for out, _ in outputs for r in json.loads(out)]
    assert sorted(statuses) == sorted(
        [("run-0", "imported"), ("run-0", "already-present"), ("run-0", "already-present"),
         ("run-1", "imported"), ("run-1", "already-present"), ("run-2", "imported"), ("run-2", "already-present"),
         ("run-3", "imported"), ("run-3", "already-present")])
    assert counts(db) == counts(reference)  # every run exactly once, with all its rows in every table
    info = store.store_info(db)
    assert info["runs"] == 4 and info["duplicates"] == {"run_id": 0, "content_sha256": 0}
    print(f"\n{kind}: {len(calls)} importer processes, {elapsed_s:.1f} s, {reads} reads meanwhile "
          f"(saw {len(seen)} runs)")


def test_the_dashboard_over_the_team_store_shows_a_run_imported_while_it_is_open(tmp_path, team_url):
    first = bundles.write_bundle(tmp_path / "first-run", bundles.manifest(run_id="run-first"))
    second = bundles.write_bundle(tmp_path / "second-run", bundles.manifest(run_id="run-second"))
    assert layerjoule("import", str(first), "--db", team_url).returncode == 0
    with running_app(team_url) as url, chromium_page() as page:
        page.goto(url)
        page.get_by_text("first-run").first.wait_for(state="attached")
        assert page.get_by_text("second-run").count() == 0
        done = layerjoule("import", str(second), "--db", team_url, "--json")
        assert json.loads(done.stdout) == [{"run_id": "run-second", "name": "second-run", "status": "imported"}]
        page.reload()
        page.get_by_text("second-run").first.wait_for(state="attached")
        page.get_by_text("first-run").first.wait_for(state="attached")
