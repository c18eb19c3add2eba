"""The dashboard in a real browser: `layerjoule app` on a free port, driven by Debian's headless Chromium.

Every page loads without error (screenshots under artifacts/screenshots/), a shared URL restores its view, and a
run bundle uploaded through the Upload page's file input becomes a run that the Run page shows.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pytest
from playwright.sync_api import expect

from browser import chromium_page, open_page, running_app, screenshot, wait_for_script

SAMPLES = Path(__file__).resolve().parent.parent / "sample_traces"


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


def test_a_shared_url_restores_the_view(app_url, browser_page):
    url, db = app_url
    ids = _run_ids(db)
    page = browser_page
    # Overview filtered by network: only AlexNet's run is counted.
    open_page(page, f"{url}/?network=alexnet")
    page.get_by_text("1 of 4 runs").wait_for()

    # A run per module, largest first, its power timeline on iteration 3.
    open_page(page, f"{url}/run?run={ids['squeezenet_v1.1-network']}&group=module&order=sorted&iteration=3")
    page.get_by_text("A module's figures are the sums of its layers' means").wait_for()
    # Polled: a tab that showed this page before may draw its old value first, then the link's.
    expect(page.locator("input[aria-label=\"Inference iteration\"]")).to_have_value("3")
    screenshot(page, "run-by-module")

    # Compare with two runs aligned by module, the second one as the baseline.
    first, second = ids["squeezenet_v1.1-network"], ids["squeezenet_v1.1-layerloop"]
    open_page(page, f"{url}/compare?run={first}&run={second}&by=module&baseline={second}")
    page.get_by_role("heading", name="Per module").wait_for()
    expect(page.get_by_role("radio", name="module")).to_be_checked()
    screenshot(page, "compare-by-module")

    # Efficiency with a roofline: its ridge point follows from the peak and bandwidth in the link.
    open_page(page, f"{url}/efficiency?network=squeezenet_v1.1&peak=512&bandwidth=25.6")
    page.get_by_text("Ridge point 20 FLOP/byte").wait_for()
    screenshot(page, "efficiency-roofline")


def test_changing_the_view_updates_the_url(app_url, browser_page):
    url, db = app_url
    ids = _run_ids(db)
    page = browser_page
    open_page(page, f"{url}/compare?run={ids['alexnet-layerloop']}&run={ids['googlenet-network']}")
    page.get_by_text("module", exact=True).click()
    page.wait_for_url("**by=module**")
    assert f"run={ids['alexnet-layerloop']}" in page.url and f"run={ids['googlenet-network']}" in page.url


def test_an_uploaded_bundle_becomes_a_run(app_url, browser_page, tmp_path):
    url, db = app_url
    bundle_zip = shutil.make_archive(str(tmp_path / "squeezenet_v1.0-network"), "zip",
                                     root_dir=SAMPLES / "squeezenet_v1.0-network")
    page = browser_page
    open_page(page, f"{url}/upload")
    # `layerjoule app` gives Streamlit the upload limit of importer/limits.py, and the page states it.
    page.get_by_text("Up to 500 MB per file").wait_for()
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(bundle_zip)
    page.get_by_text("squeezenet_v1.0-network.zip").first.wait_for()
    wait_for_script(page)
    page.get_by_role("button", name="Import").click()
    page.get_by_text("Imported squeezenet_v1.0-network").wait_for(timeout=120_000)
    screenshot(page, "upload-done")
    run_id = _run_ids(db)["squeezenet_v1.0-network"]

    page.locator('[data-testid="stPageLink"] a').first.click()
    page.wait_for_url(f"**/run?run={run_id}")
    wait_for_script(page)
    page.get_by_role("heading", name="squeezenet_v1.0-network").first.wait_for()
    screenshot(page, "upload-run-page")
