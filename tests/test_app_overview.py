"""Overview page: filters bound to the URL, the energy/time scatter, the runs table, counts and empty states.

AppTest runs on a copy of the store of real imported sample runs (conftest.sample_store), varied with SQL: one run
measured on a TX1 by ana (team lab-a), one of bo's (team lab-b, tag nightly), one timing-only.
Pure tests cover app.tables' filter functions and app.charts.runs_scatter.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from app import charts, tables
from importer.store import connect

from apptest import (
    app_test,
    chart_rows,
    no_exception,
    run_ids_by_name,
    texts,
    vega_charts,
)

GOOGLENET = "googlenet-network"
ALEXNET = "alexnet-layerloop"
SQUEEZE_LOOP = "squeezenet_v1.1-layerloop"
SQUEEZE_NET = "squeezenet_v1.1-network"


# Fixtures


@pytest.fixture
def varied_store(sample_store) -> Path:
    with connect(sample_store) as con:
        con.execute("UPDATE runs SET simulated = false, device = 'TX1', engine = 'caffe', owner = 'ana', "
                    "team = 'lab-a', tags = ['tx1', 'paper'] WHERE name = ?", [GOOGLENET])
        con.execute("UPDATE runs SET owner = 'bo', team = 'lab-b', tags = ['nightly'] WHERE name = ?", [ALEXNET])
        con.execute("UPDATE runs SET energy_mj_per_inference = NULL, primary_rail = NULL WHERE name = ?",
                    [SQUEEZE_LOOP])
    return sample_store


def open_overview(params: dict | None = None) -> AppTest:
    at = app_test()
    for key, value in (params or {}).items():
        at.query_params[key] = value
    return at.run()


def shown_names(at: AppTest) -> set[str]:
    return set(at.dataframe[0].value["name"])


def count(at: AppTest) -> str:
    return at.markdown[0].value.strip("*")


# Pure: filters


def runs_frame() -> pd.DataFrame:
    return pd.DataFrame({
        "run_id": ["a", "b", "c"],
        "name": ["A", "B", "C"],
        "network": ["alexnet", "googlenet", "alexnet"],
        "device": ["TX1", "TX2", None],
        "engine": ["caffe", "caffe", "opencv"],
        "mode": ["network", "network", "layer-loop"],
        "owner": ["ana", None, "bo"],
        "team": ["lab-a", "lab-b", None],
        "tags": [np.array(["x", "y"]), np.array([], dtype=object), None],
        "simulated": [False, True, True],
        "time_ms_per_inference": [10.0, 20.0, 30.0],
        "energy_mj_per_inference": [50.0, None, 70.0],
    })


def test_filter_options_are_sorted_distinct_values_without_nulls():
    runs = runs_frame()
    assert tables.filter_options(runs, "network") == ["alexnet", "googlenet"]
    assert tables.filter_options(runs, "owner") == ["ana", "bo"]
    assert tables.filter_options(runs, "tags") == ["x", "y"]


def test_filter_runs_combines_filters():
    runs = runs_frame()
    assert tables.filter_runs(runs, {})["run_id"].tolist() == ["a", "b", "c"]
    assert tables.filter_runs(runs, {"network": ["alexnet"]})["run_id"].tolist() == ["a", "c"]
    assert tables.filter_runs(runs, {"network": ["alexnet"], "owner": ["bo"]})["run_id"].tolist() == ["c"]
    assert tables.filter_runs(runs, {"network": [], "team": ["lab-b"]})["run_id"].tolist() == ["b"]
    # A run without a device never matches a device filter.
    assert tables.filter_runs(runs, {"device": ["TX1", "TX2"]})["run_id"].tolist() == ["a", "b"]
    assert tables.filter_runs(runs, {"tags": ["y"]})["run_id"].tolist() == ["a"]
    assert tables.filter_runs(runs, {"tags": ["nope"]}).empty
    assert tables.filter_runs(runs, {}, "measured")["run_id"].tolist() == ["a"]
    assert tables.filter_runs(runs, {"engine": ["caffe"]}, "simulated")["run_id"].tolist() == ["b"]


def test_count_text():
    assert tables.count_text(12, 40) == "12 of 40 runs"
    assert tables.count_text(40, 40) == "40 runs"
    assert tables.count_text(1, 1) == "1 run"


# Pure: the scatter


def test_runs_scatter_plots_runs_with_energy_and_marks_simulated_hollow():
    spec = charts.runs_scatter(runs_frame()).to_dict()
    rows = spec["datasets"][spec["data"]["name"]]
    assert [(r["run_id"], r["data"]) for r in rows] == [("a", "measured"), ("c", "SIMULATED")]  # b: no energy
    assert [(r["time_ms_per_inference"], r["energy_mj_per_inference"]) for r in rows] == [(10.0, 50.0), (30.0, 70.0)]
    assert rows[1]["device_engine"] == "? / opencv"
    encoding = spec["encoding"]
    assert encoding["x"]["field"] == "time_ms_per_inference" and encoding["y"]["field"] == "energy_mj_per_inference"
    assert encoding["fill"]["field"] == encoding["stroke"]["field"] == "network"
    assert encoding["shape"]["field"] == "device_engine"
    assert encoding["fillOpacity"]["scale"] == {"domain": ["measured", "SIMULATED"], "range": [0.85, 0.0]}
    assert {t["field"] for t in encoding["tooltip"]} >= {"name", "owner", "data"}
    assert spec["params"][0]["name"] == charts.OPEN_RUN_SELECTION
    assert spec["params"][0]["select"]["fields"] == ["run_id"]
    assert spec["title"] == ("Energy against time per inference "
                             "(hollow points: SIMULATED data, not a measurement)")


def test_runs_scatter_titles():
    runs = runs_frame()
    assert charts.runs_scatter(runs.assign(simulated=False)).to_dict()["title"] == "Energy against time per inference"
    assert charts.runs_scatter(runs.assign(simulated=True)).to_dict()["title"] == (
        "Energy against time per inference" + charts.SIMULATED_SUFFIX + " (hollow points)")


def test_selected_run_id():
    assert charts.selected_run_id({"selection": {charts.OPEN_RUN_SELECTION: [{"run_id": "r1"}]}}) == "r1"
    assert charts.selected_run_id({"selection": {charts.OPEN_RUN_SELECTION: []}}) is None
    assert charts.selected_run_id({"selection": {}}) is None
    assert charts.selected_run_id(None) is None


# The page


def test_overview_lists_all_runs_and_plots_those_with_energy(varied_store):
    at = open_overview()
    no_exception(at)
    assert at.title[0].value == "Overview"
    assert count(at) == "4 runs"
    table = at.dataframe[0].value.set_index("name")
    assert set(table.index) == {GOOGLENET, ALEXNET, SQUEEZE_LOOP, SQUEEZE_NET}
    assert table.loc[GOOGLENET, "data"] == "measured" and table.loc[ALEXNET, "data"] == "SIMULATED"
    assert table.loc[GOOGLENET, "team"] == "lab-a" and table.loc[GOOGLENET, "tags"] == "tx1, paper"
    assert table.loc[GOOGLENET, "energy_mj_per_inference"] == pytest.approx(521.482369, rel=1e-6)
    assert "3 of 4 runs hold SIMULATED data" in at.warning[0].value

    [(spec, frames)] = vega_charts(at)
    points = chart_rows(spec, frames).set_index("name")
    assert set(points.index) == {GOOGLENET, ALEXNET, SQUEEZE_NET}  # the timing-only run is listed, not plotted
    assert points.loc[GOOGLENET, "data"] == "measured" and points.loc[ALEXNET, "data"] == "SIMULATED"
    assert points.loc[GOOGLENET, "device_engine"] == "TX1 / caffe"
    assert points.loc[ALEXNET, "time_ms_per_inference"] == pytest.approx(table.loc[ALEXNET, "time_ms_per_inference"])
    assert "hollow points: SIMULATED" in spec["title"]
    assert any("1 of these runs have no power data" in text for text in texts(at.caption))
    assert at.query_params["data"] == "all"


def test_overview_filters_restored_from_url(varied_store):
    at = open_overview({"network": "squeezenet_v1.1"})
    no_exception(at)
    assert at.multiselect(key="overview_network").value == ["squeezenet_v1.1"]
    assert count(at) == "2 of 4 runs"
    assert shown_names(at) == {SQUEEZE_LOOP, SQUEEZE_NET}
    [(spec, frames)] = vega_charts(at)
    assert chart_rows(spec, frames)["name"].tolist() == [SQUEEZE_NET]


def test_overview_filter_widgets_write_the_url(varied_store):
    at = open_overview()
    at.multiselect(key="overview_owner").select("bo").run()
    no_exception(at)
    assert at.query_params["owner"] == "bo"
    assert count(at) == "1 of 4 runs"
    assert shown_names(at) == {ALEXNET}
    at.multiselect(key="overview_owner").select("ana").run()
    assert at.query_params["owner"] == ["bo", "ana"]
    assert shown_names(at) == {ALEXNET, GOOGLENET}
    at.button(key="overview_clear").click().run()
    assert "owner" not in at.query_params
    assert count(at) == "4 runs"


@pytest.mark.parametrize(
    ("params", "names"),
    [
        ({"team": "lab-a"}, {GOOGLENET}),
        ({"tag": "nightly"}, {ALEXNET}),
        ({"tag": ["nightly", "paper"]}, {ALEXNET, GOOGLENET}),
        ({"device": "TX1", "engine": "caffe"}, {GOOGLENET}),
        ({"mode": "layer-loop"}, {ALEXNET, SQUEEZE_LOOP}),
        ({"data": "simulated"}, {ALEXNET, SQUEEZE_LOOP, SQUEEZE_NET}),
    ],
)
def test_overview_filter_by(varied_store, params, names):
    at = open_overview(params)
    no_exception(at)
    assert shown_names(at) == names
    assert count(at) == f"{len(names)} of 4 runs"


def test_overview_measured_only_has_no_simulated_warning(varied_store):
    at = open_overview({"data": "measured"})
    no_exception(at)
    assert at.segmented_control(key="overview_data").value == "measured"
    assert shown_names(at) == {GOOGLENET}
    assert not at.warning
    [(spec, _)] = vega_charts(at)
    assert spec["title"] == "Energy against time per inference"


def test_overview_filters_matching_nothing(varied_store):
    at = open_overview({"network": "squeezenet_v1.1", "owner": "bo"})
    no_exception(at)
    assert count(at) == "0 of 4 runs"
    assert "No run matches these filters: widen or clear them." in texts(at.info)
    assert not at.dataframe and not vega_charts(at)


def test_overview_unknown_filter_value_in_url(varied_store):
    at = open_overview({"network": ["nonet", "alexnet"]})
    no_exception(at)
    assert any("network=nonet" in text for text in texts(at.warning))
    assert shown_names(at) == {ALEXNET}


def test_overview_only_timing_runs_lists_without_chart(varied_store):
    at = open_overview({"mode": "layer-loop", "owner": "root"})
    no_exception(at)
    assert shown_names(at) == {SQUEEZE_LOOP}
    assert any("None of these runs has power data" in text for text in texts(at.info))
    assert not vega_charts(at)


def test_overview_click_on_a_point_opens_the_run(varied_store):
    run_id = run_ids_by_name(varied_store)[ALEXNET]
    at = open_overview()
    # What the browser sends when a point is clicked (AppTest cannot click a chart).
    at.session_state["overview_scatter"] = {"selection": {charts.OPEN_RUN_SELECTION: [{"run_id": run_id}]}}
    at.run()
    no_exception(at)
    assert at.query_params["run"] == run_id
    assert at.title[0].value == ALEXNET


def test_overview_links_to_compare_and_efficiency(varied_store):
    ids = run_ids_by_name(varied_store)
    at = open_overview({"network": "squeezenet_v1.1"})
    links = {link.proto.page: link.proto for link in at.get("page_link")}
    assert links["compare"].label == "Compare these 2 runs"
    # Newest first, as in the table.
    assert links["compare"].query_string == f"run={ids[SQUEEZE_LOOP]}&run={ids[SQUEEZE_NET]}"
    assert links["efficiency"].query_string == (
        f"network=squeezenet_v1.1&run={ids[SQUEEZE_LOOP]}&run={ids[SQUEEZE_NET]}")


def test_overview_empty_store(tmp_path, monkeypatch):
    monkeypatch.setenv("LAYERJOULE_DB", str(tmp_path / "empty.duckdb"))
    at = open_overview()
    no_exception(at)
    assert "No runs yet: import one with `layerjoule import BUNDLE`" in texts(at.info)
    assert not at.dataframe and not vega_charts(at)
