"""The dashboard in a real browser: `layerjoule app` on a free port, driven by Debian's headless Chromium.

Every page loads without error (screenshots under artifacts/screenshots/), a shared URL restores its view, and a
run bundle uploaded through the Upload page's file input becomes a run that the Run page shows.
"""

from __future__ import annotations

import shutil

import pytest
from browser import chromium_page, open_page, running_app, screenshot

import duckdb


@pytest.fixture(scope="module")
def app_url(sample_store_file, tmp_path_factory):
    db = tmp_path_factory.mktemp("browser_store") / "store.duckdb"
    shutil.copyfile(sample_store_file, db)
    with running_app(db) as url:
        yield url, db


@pytest.fixture(scope="module")
def browser_page():
    with chromium_page() as page:
        yield page


def _run_ids(db) -> dict[str, str]:
    with duckdb.connect(str(db), read_only=True) as con:
        return dict(con.execute("SELECT name, run_id FROM runs").fetchall())


def test_every_page_loads_without_error(app_url, browser_page):
    url, db = app_url
    run_id = _run_ids(db)["squeezenet_v1.1-network"]
    for path, title in [("", "Overview"), (f"run?run={run_id}", "squeezenet_v1.1-network"), ("compare", "Compare"),
                        ("efficiency", "Efficiency"), ("models", "Models"), ("upload", "Upload")]:
        open_page(browser_page, f"{url}/{path}")
        browser_page.get_by_role("heading", name=title).first.wait_for()
        screenshot(browser_page, f"page-{path.split('?')[0] or 'overview'}")
