"""Deleting a run from the dashboard: only its owner or an admin; the store enforces it, the page says so."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
from streamlit.testing.v1 import AppTest

from app import queries
from importer import store
from importer.errors import InputError

APP_MAIN = Path(__file__).resolve().parent.parent / "app" / "main.py"


def _run_page(db: Path, user: str) -> tuple[AppTest, str, str]:
    with duckdb.connect(str(db), read_only=True) as con:
        run_id, owner = con.execute("SELECT run_id, owner FROM runs WHERE name = 'alexnet-layerloop'").fetchone()
    at = AppTest.from_file(str(APP_MAIN), default_timeout=60)
    at.session_state["dashboard_user"] = user
    at.switch_page("views/run.py")
    at.query_params["run"] = run_id
    at.run()
    assert not at.exception
    return at, run_id, owner


def _count(db: Path, run_id: str) -> int:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute("SELECT count(*) FROM layer_stats WHERE run_id = ?", [run_id]).fetchone()[0]


def test_someone_else_cannot_delete_and_is_told_why(sample_store):
    at, run_id, owner = _run_page(sample_store, "somebody-else")
    assert any(f"Only its owner ({owner}) or an admin" in c.value for c in at.caption)
    assert not [b for b in at.button if b.label == "Delete run"]
    # The rule is the store's, not the page's: asking the query module directly is refused as well.
    with pytest.raises(InputError, match="belongs to"):
        queries.delete_run(run_id, "somebody-else")
    assert _count(sample_store, run_id) > 0


def test_the_owner_deletes_their_run_after_confirming(sample_store):
    at, run_id, owner = _run_page(sample_store, store.current_user())
    assert owner == store.current_user()
    button = next(b for b in at.button if b.label == "Delete run")
    assert button.disabled  # until confirmed
    at.checkbox(key=f"delete_confirm:{run_id}").check().run()
    next(b for b in at.button if b.label == "Delete run").click().run()
    assert not at.exception
    assert _count(sample_store, run_id) == 0
    with duckdb.connect(str(sample_store), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM runs WHERE run_id = ?", [run_id]).fetchone()[0] == 0
        assert con.execute("SELECT count(*) FROM runs").fetchone()[0] == 3  # the others are untouched
    assert at.title[0].value == "Overview"


def test_an_admin_deletes_anyone_s_run(sample_store):
    with store.connect(sample_store) as con:
        store.set_admin(con, ["root-admin"], True, by="root-admin")
    at, run_id, _ = _run_page(sample_store, "root-admin")
    assert [b for b in at.button if b.label == "Delete run"]
    queries.delete_run(run_id, "root-admin")
    assert _count(sample_store, run_id) == 0
