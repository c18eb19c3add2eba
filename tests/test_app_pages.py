"""Dashboard pages (AppTest) and the query module, on a real DuckDB store in tmp_path.

The store is made by importer.store.connect (which migrates the schema) and filled with plain SQL: a simulated
run (3 layers x 1 rail: two resolved layers, one unresolved) and a timing-only run (rail NULL, energy NULL).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pandas as pd
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from app import queries
from importer.store import ENV_DB, connect

APP_MAIN = Path(__file__).resolve().parent.parent / "app" / "main.py"
TIMEOUT_S = 30

SIM_ID = "20261201T210000Z-tx1-squeezenet-sim"
SIM_NAME = "squeezenet sim"
TIMING_ID = "20261201T220000Z-tx1-alexnet-timing"
TIMING_NAME = "alexnet timing only"
TWO_RAIL_ID = "20261202T080000Z-tx1-googlenet"
TWO_RAIL_NAME = "googlenet two rails"

RUN_SQL = """
INSERT INTO runs (run_id, name, network, device, engine, engine_version, mode, owner, tags, simulated,
                  iterations, warmup, batch, input_shape, created_utc, imported_utc, format_version,
                  primary_rail, time_ms_per_inference, energy_mj_per_inference, manifest)
VALUES (?, ?, ?, 'NVIDIA Jetson TX1', ?, '1.0.0', ?, 'ana', ?, ?, ?, 10, 1, [1, 3, 227, 227],
        ?::TIMESTAMP, ?::TIMESTAMP, '1.0', ?, ?, ?, ?)
"""
LAYER_STATS_SQL = """
INSERT INTO layer_stats (run_id, layer_index, rail, n_iterations, time_ms_mean, time_ms_std, time_ms_ci95,
                         energy_mj_mean, energy_mj_std, energy_mj_ci95, energy_above_idle_mj_mean,
                         energy_above_idle_mj_ci95, power_mw_mean, resolved, method)
VALUES (?, ?, ?, ?, ?, NULL, ?, ?, NULL, ?, ?, NULL, NULL, ?, ?)
"""
PHASE_SQL = "INSERT INTO phase_stats VALUES (?, ?, ?, ?, ?, ?, ?, ?)"


def _insert_run(con, run_id, name, network, engine, mode, simulated, iterations, created, primary_rail,
                time_ms, energy_mj, tags=()):
    manifest = {"format": "layerjoule-run-bundle", "format_version": "1.0", "run_id": run_id,
                "simulated": simulated, "options": {"rails": primary_rail or "none"}}
    con.execute(
        RUN_SQL,
        [run_id, name, network, engine, mode, list(tags), simulated, iterations, created, created,
         primary_rail, time_ms, energy_mj, json.dumps(manifest)],
    )


def _insert_layers(con, run_id, layers):
    for index, (name, layer_type) in enumerate(layers):
        con.execute("INSERT INTO layers (run_id, layer_index, name, type) VALUES (?, ?, ?, ?)",
                    [run_id, index, name, layer_type])


def fill_store(path: Path) -> None:
    with connect(path) as con:
        _insert_run(con, SIM_ID, SIM_NAME, "squeezenet_v1.1", "caffe", "network", True, 200,
                    "2026-12-01 21:00:00", "VDD_IN", 18.25, 95.5, tags=["sim", "nightly"])
        _insert_layers(con, SIM_ID, [("conv1", "Convolution"), ("relu_conv1", "ReLU"), ("pool1", "Pooling")])
        con.execute("INSERT INTO rails VALUES (?, 'VDD_IN', 'sim', 'simulated', true, 54000000, true, 1000)",
                    [SIM_ID])
        for row in [
            (0, "VDD_IN", 200, 5.5, 0.1, 40.25, 1.5, 20.0, True, "nnls"),
            (1, "VDD_IN", 200, 0.75, 0.05, 3.125, 2.9, 1.0, False, "nnls"),
            (2, "VDD_IN", 200, 1.25, 0.02, 7.5, 0.4, 3.5, True, "nnls"),
        ]:
            con.execute(LAYER_STATS_SQL, [SIM_ID, *row])
        for row in [
            ("idle", "VDD_IN", 2, 2000.0, 5000.0, 0.0, 2500.0),
            ("inference", "VDD_IN", 1, 3650.0, 19100.0, 9975.0, 5232.9),
            ("setup", "VDD_IN", 1, 850.0, 4000.0, 1875.0, 4705.9),
            ("warmup", "VDD_IN", 1, 190.0, 1000.0, 525.0, 5263.2),
        ]:
            con.execute(PHASE_SQL, [SIM_ID, *row])

        _insert_run(con, TIMING_ID, TIMING_NAME, "bvlc_alexnet", "opencv", "layer-loop", False, 50,
                    "2026-12-01 22:00:00", None, 42.125, None)
        _insert_layers(con, TIMING_ID, [("conv1", "Convolution"), ("fc8", "InnerProduct")])
        for row in [
            (0, None, 50, 30.5, 0.25, None, None, None, None, "timing"),
            (1, None, 50, 11.625, 0.125, None, None, None, None, "timing"),
        ]:
            con.execute(LAYER_STATS_SQL, [TIMING_ID, *row])
        for row in [
            ("setup", None, 1, 900.0, None, None, None),
            ("inference", None, 1, 2106.25, None, None, None),
        ]:
            con.execute(PHASE_SQL, [TIMING_ID, *row])


def add_two_rail_run(path: Path) -> None:
    """A measured run with two rails whose primary rail is not the first one listed."""
    with connect(path) as con:
        _insert_run(con, TWO_RAIL_ID, TWO_RAIL_NAME, "bvlc_googlenet", "caffe", "network", False, 1000,
                    "2026-12-02 08:00:00", "VDD_GPU", 60.0, 310.0)
        _insert_layers(con, TWO_RAIL_ID, [("conv1/7x7_s2", "Convolution")])
        for rail, is_total in [("VDD_IN", True), ("VDD_GPU", False)]:
            con.execute("INSERT INTO rails VALUES (?, ?, 'ina3221', 'ina3221', ?, 54000000, false, 5000)",
                        [TWO_RAIL_ID, rail, is_total])
        for row in [("VDD_IN", 21.0, 0.5, 9.0), ("VDD_GPU", 12.0, 0.25, 6.0)]:
            con.execute(LAYER_STATS_SQL, [TWO_RAIL_ID, 0, row[0], 1000, 4.0, 0.1, *row[1:], True, "nnls"])


@pytest.fixture(autouse=True)
def clear_caches():
    st.cache_data.clear()
    yield
    st.cache_data.clear()


@pytest.fixture
def db(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "store.duckdb"
    fill_store(path)
    monkeypatch.setenv(ENV_DB, str(path))
    return path


@pytest.fixture
def empty_db(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "empty.duckdb"
    monkeypatch.setenv(ENV_DB, str(path))
    return path


def app_test() -> AppTest:
    return AppTest.from_file(APP_MAIN, default_timeout=TIMEOUT_S)


def open_run_page(run_id: str | None) -> AppTest:
    at = app_test().run()
    at.switch_page("views/run.py")
    if run_id is not None:
        at.query_params["run"] = run_id
    return at.run()


def texts(elements) -> list[str]:
    return [element.value for element in elements]


def metrics(at: AppTest) -> dict[str, str]:
    return {metric.label: metric.value for metric in at.metric}


def no_exception(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


# Queries


def test_list_runs_reads_both_runs(db):
    runs = queries.list_runs()
    assert list(runs.columns) == queries.RUN_COLUMNS
    assert runs["run_id"].tolist() == [TIMING_ID, SIM_ID]  # newest import first
    sim = runs.set_index("run_id").loc[SIM_ID]
    assert bool(sim["simulated"]) and list(sim["tags"]) == ["sim", "nightly"]
    assert sim["energy_mj_per_inference"] == 95.5
    assert pd.isna(runs.set_index("run_id").loc[TIMING_ID, "energy_mj_per_inference"])


def test_get_run_parses_manifest_and_nulls(db):
    run = queries.get_run(TIMING_ID)
    assert run["name"] == TIMING_NAME
    assert run["manifest"]["run_id"] == TIMING_ID
    assert run["energy_mj_per_inference"] is None and run["primary_rail"] is None
    assert run["input_shape"] == [1, 3, 227, 227]
    assert queries.get_run("no-such-run") is None


def test_layer_and_phase_stats(db):
    stats = queries.layer_stats(SIM_ID)
    assert stats["name"].tolist() == ["conv1", "relu_conv1", "pool1"]
    assert stats["resolved"].tolist() == [True, False, True]
    phases = queries.phase_stats(SIM_ID)
    assert phases["phase"].tolist() == ["setup", "warmup", "inference", "idle"]
    assert queries.rails(SIM_ID)["rail"].tolist() == ["VDD_IN"]
    assert queries.rails(TIMING_ID).empty


def test_queries_leave_no_connection_open(db):
    queries.list_runs()
    queries.layer_stats(SIM_ID)
    # A read-only connection still open in this process would make a writing connection fail.
    with connect(db) as con:
        con.execute("UPDATE runs SET owner = 'bob' WHERE run_id = ?", [SIM_ID])


def test_missing_store_reads_as_empty(empty_db):
    assert queries.list_runs().empty
    assert empty_db.exists()


# Runs list: the Overview page (tests/test_app_overview.py has the rest)


def test_runs_page_lists_runs_and_marks_simulated(db):
    at = app_test().run()
    no_exception(at)
    assert at.title[0].value == "Overview"
    assert at.markdown[0].value == "**2 runs**"
    table = at.dataframe[0].value
    assert set(table["name"]) == {SIM_NAME, TIMING_NAME}
    data = dict(zip(table["name"], table["data"], strict=True))
    assert data == {SIM_NAME: "SIMULATED", TIMING_NAME: "measured"}
    assert any("SIMULATED" in text for text in texts(at.warning))


def test_runs_page_without_simulated_runs_has_no_warning(db):
    with connect(db) as con:
        con.execute("DELETE FROM runs WHERE simulated")
    at = app_test().run()
    no_exception(at)
    assert not at.warning
    assert at.dataframe[0].value["name"].tolist() == [TIMING_NAME]
    # Its only run is timing-only: listed, not plotted.
    assert any("None of these runs has power data" in text for text in texts(at.info))


def test_runs_page_empty_state(empty_db):
    at = app_test().run()
    no_exception(at)
    assert "No runs yet: import one with `layerjoule import BUNDLE`" in texts(at.info)
    assert not at.dataframe


def test_runs_page_opens_run(db):
    at = app_test().run()
    at.selectbox(key="runs_open_select").select(SIM_ID).run()
    at.button(key="runs_open_button").click().run()
    no_exception(at)
    assert at.query_params["run"] == SIM_ID
    assert at.title[0].value == SIM_NAME


# Run page


def test_run_page_simulated_run(db):
    at = open_run_page(SIM_ID)
    no_exception(at)
    assert at.title[0].value == SIM_NAME
    assert "squeezenet_v1.1" in at.markdown[0].value and "caffe" in at.markdown[0].value
    assert "Simulated data: not a measurement" in texts(at.warning)
    shown = metrics(at)
    assert shown["Time per inference (ms)"] == "18.250"
    assert shown["Energy per inference (mJ, VDD_IN)"] == "95.500"
    assert at.selectbox(key="run_select").value == SIM_ID
    # One rail: no rail select box.
    assert [box.label for box in at.selectbox] == ["Run"]


def test_run_page_layer_table_blanks_unresolved_energy(db):
    at = open_run_page(SIM_ID)
    layers = at.dataframe[0].value.set_index("name")
    assert layers.index.tolist() == ["conv1", "relu_conv1", "pool1"]
    assert layers.loc["conv1", "energy_mj_mean"] == 40.25
    assert layers.loc["conv1", "energy_mj_ci95"] == 1.5
    assert bool(layers.loc["conv1", "resolved"]) is True
    for column in ["energy_mj_mean", "energy_mj_ci95", "energy_above_idle_mj_mean"]:
        assert pd.isna(layers.loc["relu_conv1", column]), column
    assert bool(layers.loc["relu_conv1", "resolved"]) is False
    assert layers.loc["relu_conv1", "time_ms_mean"] == 0.75  # time is still measured


def test_run_page_phase_table(db):
    at = open_run_page(SIM_ID)
    phases = at.dataframe[1].value
    assert phases["phase"].tolist() == ["setup", "warmup", "inference", "idle"]
    assert phases.set_index("phase").loc["inference", "energy_mj"] == 19100.0


def test_run_page_timing_only_run(db):
    at = open_run_page(TIMING_ID)
    no_exception(at)
    assert at.title[0].value == TIMING_NAME
    assert not at.warning
    shown = metrics(at)
    assert shown["Time per inference (ms)"] == "42.125"
    assert shown["Energy per inference"] == "n/a (no power data)"
    assert any("no power data" in text for text in texts(at.info))
    layers = at.dataframe[0].value
    assert layers["time_ms_mean"].tolist() == [30.5, 11.625]
    assert layers["energy_mj_mean"].isna().all()
    phases = at.dataframe[1].value
    assert phases["phase"].tolist() == ["setup", "inference"]
    assert phases["energy_mj"].isna().all()


def test_run_page_select_box_updates_url(db):
    at = open_run_page(SIM_ID)
    at.selectbox(key="run_select").select(TIMING_ID).run()
    no_exception(at)
    assert at.query_params["run"] == TIMING_ID
    assert at.title[0].value == TIMING_NAME


def test_run_page_without_query_parameter_shows_newest_run(db):
    at = open_run_page(None)
    no_exception(at)
    assert at.title[0].value == TIMING_NAME
    assert at.query_params["run"] == TIMING_ID


def test_run_page_unknown_run(db):
    at = open_run_page("no-such-run")
    no_exception(at)
    assert any("no-such-run" in text for text in texts(at.error))


def test_run_page_rail_select_defaults_to_primary_rail(db):
    add_two_rail_run(db)
    at = open_run_page(TWO_RAIL_ID)
    no_exception(at)
    rail_box = next(box for box in at.selectbox if box.label == "Rail")
    assert rail_box.options == ["VDD_IN", "VDD_GPU"]
    assert rail_box.value == "VDD_GPU"
    assert at.dataframe[0].value["energy_mj_mean"].tolist() == [12.0]
    rail_box.select("VDD_IN").run()
    assert at.dataframe[0].value["energy_mj_mean"].tolist() == [21.0]


def test_run_page_empty_state(empty_db):
    at = open_run_page(None)
    no_exception(at)
    assert any("No runs yet" in text for text in texts(at.info))


def test_new_import_appears_after_cache_ttl(db):
    assert len(queries.list_runs()) == 2
    add_two_rail_run(db)
    time.sleep(queries.CACHE_TTL_S + 0.2)
    assert len(queries.list_runs()) == 3
