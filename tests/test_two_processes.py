"""The dashboard never locks the importer out: import while `layerjoule app` is open in a browser."""

import json
import subprocess
import sys

import bundles
from browser import chromium_page, running_app


def layerjoule(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cli.main", *args], capture_output=True, text=True, timeout=120)


def test_import_succeeds_while_the_app_is_open_and_the_run_shows_on_the_next_load(tmp_path):
    db = tmp_path / "store.duckdb"
    first = bundles.write_bundle(tmp_path / "first-run", bundles.manifest(run_id="run-first"))
    second = bundles.write_bundle(tmp_path / "second-run", bundles.manifest(run_id="run-second"))
    assert layerjoule("import", str(first), "--db", str(db)).returncode == 0

    # Run names are in the runs table, whose cells Streamlit's grid keeps in a hidden accessible table: so the
    # checks wait for the text to be in the page, not for it to be visible.
    with running_app(db) as url, chromium_page() as page:
        page.goto(url)
        page.get_by_text("first-run").first.wait_for(state="attached")
        assert page.get_by_text("second-run").count() == 0

        # A second process writes the store while the dashboard has it open in a browser.
        done = layerjoule("import", str(second), "--db", str(db), "--json")
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout) == [{"run_id": "run-second", "name": "second-run", "status": "imported"}]

        page.reload()
        page.get_by_text("second-run").first.wait_for(state="attached")
        # And the page still works after the import (no stale connection or cached failure).
        page.get_by_text("first-run").first.wait_for(state="attached")
