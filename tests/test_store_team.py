"""The store layer without a server: team store URLs, the DuckLake dialect of the migrations, owners and teams,
and the deletion and admin rules on a DuckDB file (the same functions guard the team store: test_team_store.py)."""

import json
import re
from pathlib import Path

import duckdb
import pytest

from cli.main import main
from importer import store
from importer.errors import InputError
from importer.ingest import import_sources

import bundles


def test_a_team_store_url_is_parsed_normalised_and_shown_without_its_password(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    url = "ducklake:postgres:host=db.lab port=5432  dbname=lj user=ana password='s3 cr\\'et' data_path=lake"
    team = store.parse_team_url(url)
    assert team.catalog == "host=db.lab port=5432 dbname=lj user=ana password='s3 cr\\'et'"
    assert team.data_path == f"{tmp_path}/lake/"  # relative folders become absolute: every process names one place
    assert store.resolve_db_path(url) == team.url
    assert store.parse_team_url(team.url) == team  # the normalised URL reads back the same (the dashboard's env)
    assert "s3 cr" not in store.describe(url) and "password=***" in store.describe(url)
    assert store.parse_team_url("ducklake:postgres:dbname=lj data_path=s3://bucket/runs").data_path == \
        "s3://bucket/runs/"
    assert store.parse_team_url("ducklake:postgres:dbname=lj").data_path is None  # the catalog knows it
    assert store.is_team_store(url) and not store.is_team_store(tmp_path / "x.duckdb")


@pytest.mark.parametrize(("url", "expected"), [
    ("ducklake:sqlite:lake.sqlite", "expected a team store URL ducklake:postgres:"),
    ("ducklake:postgres:host=db port", "expected space-separated KEY=VALUE words"),
    ("ducklake:postgres:host=db port=5432", "expected dbname="),
    ("ducklake:postgres:dbname=a dbname=b", "dbname is given twice"),
    ("ducklake:postgres:dbname=a data_path=''", "data_path is empty"),
])
def test_bad_team_store_urls_are_one_line_errors(url, expected, capsys):
    with pytest.raises(InputError, match=re.escape(expected)):
        store.resolve_db_path(url)
    assert main(["runs", "--db", url]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and expected in err and "Traceback" not in err


def test_the_environment_names_the_store_the_user_and_the_team(tmp_path, monkeypatch):
    monkeypatch.setenv("LAYERJOULE_DB", "ducklake:postgres:dbname=lj data_path=/srv/lake")
    assert store.resolve_db_path() == "ducklake:postgres:dbname=lj data_path=/srv/lake/"
    monkeypatch.setenv("LAYERJOULE_USER", "ana")
    monkeypatch.setenv("LAYERJOULE_TEAM", "vision")
    assert (store.current_user(), store.current_team()) == ("ana", "vision")
    monkeypatch.delenv("LAYERJOULE_TEAM")
    assert store.current_team() is None


def test_the_extensions_load_from_their_packages_and_never_download():
    for name in ("ducklake", "postgres_scanner", "httpfs"):  # httpfs: data on S3-compatible storage
        path = store.extension_file(name)
        assert path.is_file() and path.name == f"{name}.duckdb_extension"
        assert f"v{duckdb.__version__}" in path.parts
    con = duckdb.connect(config=store.OFFLINE)
    con.execute(f"LOAD '{store.extension_file('ducklake')}'")
    loaded = dict(con.execute("SELECT extension_name, loaded FROM duckdb_extensions()").fetchall())
    assert loaded["ducklake"] is True
    assert con.execute("SELECT current_setting('autoinstall_known_extensions')").fetchone()[0] is False


def test_the_ducklake_dialect_drops_only_the_keys_and_quotes_boolean_defaults():
    every_sql = "\n".join(sql for _, sql, *_ in store.MIGRATIONS)
    lake_sql = store._ducklake_sql(every_sql)
    assert "PRIMARY KEY" in every_sql and "PRIMARY KEY" not in lake_sql
    assert "DEFAULT false" in every_sql and "DEFAULT 'false'" in lake_sql
    # Every column survives: same schema, without the keys.
    columns = re.compile(r"^\s+([a-z_0-9]+) [A-Z]", re.M)
    assert columns.findall(lake_sql) == columns.findall(every_sql)


def test_owner_and_team_come_from_the_options_else_the_environment(tmp_path, monkeypatch):
    db = tmp_path / "store.duckdb"
    monkeypatch.setenv("LAYERJOULE_USER", "ana")
    monkeypatch.setenv("LAYERJOULE_TEAM", "vision")
    import_sources([bundles.write_bundle(tmp_path / "a", bundles.manifest(run_id="run-a"))], db=db)
    assert main(["import", str(bundles.write_bundle(tmp_path / "b", bundles.manifest(run_id="run-b"))),
                 "--owner", "bo", "--team", "audio", "--db", str(db)]) == 0
    monkeypatch.delenv("LAYERJOULE_TEAM")
    import_sources([bundles.write_bundle(tmp_path / "c", bundles.manifest(run_id="run-c"))], db=db)
    with store.connect(db, read_only=True) as con:
        rows = con.execute("SELECT run_id, owner, team FROM runs ORDER BY run_id").fetchall()
    assert rows == [("run-a", "ana", "vision"), ("run-b", "bo", "audio"), ("run-c", "ana", None)]


def run_rows(db: Path, run_id: str) -> dict[str, int]:
    with store.connect(db, read_only=True) as con:
        return {t: con.execute(f"SELECT count(*) FROM {t} WHERE run_id = ?", [run_id]).fetchone()[0]
                for t in store.run_tables(con)}


def test_a_user_deletes_only_their_own_runs_and_an_admin_any(tmp_path, capsys):
    db = tmp_path / "store.duckdb"
    import_sources([bundles.write_bundle(tmp_path / "a", bundles.manifest(run_id="run-ana"))], db=db, owner="ana")
    import_sources([bundles.write_bundle(tmp_path / "b", bundles.manifest(run_id="run-bo"))], db=db, owner="bo")
    kept = run_rows(db, "run-ana")
    assert kept["runs"] == 1 and kept["power_samples"] == 38 and kept["layer_stats"] == 2
    with store.connect(db) as con:
        assert store.can_delete(con, "run-ana", "ana") and not store.can_delete(con, "run-ana", "bo")
        assert not store.can_delete(con, "no-such-run", "ana")
        with pytest.raises(InputError, match="belongs to 'ana', not to 'bo'"):
            store.delete_run(con, "run-ana", "bo")
        # All or none: bo's own run is not deleted either when the call also names ana's.
        with pytest.raises(InputError, match="belongs to 'ana'"):
            store.delete_runs(con, ["run-bo", "run-ana"], "bo")
    assert run_rows(db, "run-ana") == kept and run_rows(db, "run-bo") == kept

    assert main(["delete", "run-ana", "--user", "bo", "--db", str(db)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "belongs to 'ana'" in err
    assert main(["delete", "run-bo", "--user", "bo", "--db", str(db)]) == 0
    assert set(run_rows(db, "run-bo").values()) == {0}  # every table, not only runs
    assert run_rows(db, "run-ana") == kept

    # The first admin of a store is anybody's to name; after that only an admin changes the roles.
    assert main(["db", "admin", "add", "carl", "--user", "dave", "--db", str(db)]) == 0
    assert main(["db", "admin", "add", "dave", "--user", "dave", "--db", str(db)]) == 2
    assert "'dave' is not an admin" in capsys.readouterr().err
    with store.connect(db) as con:
        assert store.admins(con) == ["carl"] and store.can_delete(con, "run-ana", "carl")
        store.delete_run(con, "run-ana", "carl")
        assert con.execute("SELECT count(*) FROM runs").fetchone()[0] == 0


def test_copy_between_two_files_moves_every_table_and_copies_nothing_twice(tmp_path, capsys):
    first, second = tmp_path / "first.duckdb", tmp_path / "second.duckdb"
    import_sources([bundles.write_bundle(tmp_path / "a", bundles.manifest(run_id="run-a"))], db=first)
    import_sources([bundles.write_bundle(tmp_path / "b", bundles.manifest(run_id="run-b"))], db=first)
    assert main(["db", "copy", "--from", str(first), "--to", str(second), "--run", "run-b", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == [{"run_id": "run-b", "name": "b", "status": "copied"}]
    assert main(["db", "copy", "--from", str(first), "--to", str(second), "--json"]) == 0
    assert [r["status"] for r in json.loads(capsys.readouterr().out)] == ["copied", "already-present"]
    assert run_rows(second, "run-a") == run_rows(first, "run-a") and run_rows(second, "run-b")["power_samples"] == 38
    assert main(["db", "copy", "--from", str(first), "--to", str(first)]) == 2
    assert main(["db", "copy", "--from", str(tmp_path / "missing.duckdb"), "--to", str(second)]) == 2
    assert main(["db", "copy", "--from", str(first), "--to", str(second), "--run", "run-zz"]) == 2
    assert "no run 'run-zz'" in capsys.readouterr().err
