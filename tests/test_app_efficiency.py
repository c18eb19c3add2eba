"""Efficiency page: its query on the store of real imported sample runs, the pure roofline/table/chart functions
on small frames, and AppTest runs asserting shown values, defaults and the URL.
"""

from __future__ import annotations

import pandas as pd
import pytest
from test_app_compare import make_timing_only
from test_app_overview import ALEXNET, GOOGLENET, SQUEEZE_LOOP, SQUEEZE_NET

from app import charts, queries, tables
from importer.store import connect

from apptest import app_test, chart_rows, no_exception, run_ids_by_name, texts, vega_charts

# Pure: four layers of run A (measured) and one of run B (simulated).


def rows_frame() -> pd.DataFrame:
    return pd.DataFrame({
        "run_id": ["A", "A", "A", "A", "B"],
        "run_name": ["a", "a", "a", "a", "b"],
        "network": ["n"] * 5,
        "device": ["TX1", "TX1", "TX1", "TX1", "TX2"],
        "engine": ["caffe"] * 5,
        "simulated": [False, False, False, False, True],
        "layer_index": [0, 1, 2, 3, 0],
        "name": ["conv1", "relu1", "concat", "fc", "conv1"],
        "type": ["Convolution", "ReLU", "Concat", "InnerProduct", "Convolution"],
        "module": ["conv1", "conv1", "c", "fc", "conv1"],
        "flops": [4e9, 1e6, 0, 2e8, 4e9],
        "traffic_bytes": [1e8, 8e6, 1e6, 1e8, 1e8],
        "arithmetic_intensity": [40.0, 0.125, 0.0, 2.0, 40.0],
        "time_ms": [100.0, 1.0, 0.5, 20.0, 50.0],
        "energy_mj": [400.0, 2.0, 1.0, 50.0, 100.0],
        "rail": ["VDD_IN"] * 5,
        "resolved": [True, False, True, True, True],
        "gflops_per_s": [40.0, 1.0, 0.0, 10.0, 80.0],
        "gflop_per_j": [10.0, 0.5, 0.0, 4.0, 40.0],
    })


LABELS = {"A": "1: a", "B": "2: b [SIMULATED]"}


def test_efficiency_points_leave_out_what_a_log_log_chart_cannot_show():
    rows = rows_frame()
    assert charts.efficiency_points(rows, "gflops_per_s")["name"].tolist() == ["conv1", "relu1", "fc", "conv1"]
    # GFLOP/J: an unresolved energy is not a measurement.
    assert charts.efficiency_points(rows, "gflop_per_j")["name"].tolist() == ["conv1", "fc", "conv1"]


def test_roofline_frame_and_ridge_point():
    assert tables.ridge_point(512.0, 25.6) == pytest.approx(20.0)
    roof = charts.roofline_frame(512.0, 25.6, 0.125, 40.0)
    assert roof["arithmetic_intensity"].tolist() == pytest.approx([0.125, 20.0, 80.0])
    assert roof["attainable_gflops_per_s"].tolist() == pytest.approx([3.2, 512.0, 512.0])


def test_efficiency_table_says_memory_or_compute_bound():
    table = tables.efficiency_table(rows_frame(), LABELS, 100.0, 10.0)  # ridge at 10 FLOP/byte
    by = table.set_index(["run", "name"])
    assert by.loc[("1: a", "conv1"), "bound"] == "compute"
    assert by.loc[("1: a", "conv1"), "attainable_gflops_per_s"] == 100.0
    assert by.loc[("1: a", "conv1"), "roof_fraction"] == pytest.approx(0.4)
    assert by.loc[("1: a", "fc"), "bound"] == "memory"
    assert by.loc[("1: a", "fc"), "attainable_gflops_per_s"] == 20.0
    assert by.loc[("1: a", "fc"), "roof_fraction"] == pytest.approx(0.5)
    assert pd.isna(by.loc[("1: a", "concat"), "bound"])  # no FLOPs: neither
    assert by.loc[("2: b [SIMULATED]", "conv1"), "data"] == "SIMULATED"
    # Unresolved energy: empty cells, not numbers.
    assert pd.isna(by.loc[("1: a", "relu1"), "energy_mj"]) and pd.isna(by.loc[("1: a", "relu1"), "gflop_per_j"])
    assert by.loc[("1: a", "relu1"), "gflops_per_s"] == 1.0
    summary = tables.bound_summary(table).set_index("run")
    assert summary.loc["1: a", "memory_bound_layers"] == 2 and summary.loc["1: a", "compute_bound_layers"] == 1
    assert summary.loc["2: b [SIMULATED]", "memory_bound_layers"] == 0
    assert summary.loc["2: b [SIMULATED]", "compute_bound_median_roof_fraction"] == pytest.approx(0.8)


def test_efficiency_table_without_roofline():
    table = tables.efficiency_table(rows_frame(), LABELS)
    assert list(table.columns) == tables.EFFICIENCY_COLUMNS


def test_efficiency_chart_log_log_with_roofline():
    spec = charts.efficiency_chart(rows_frame(), LABELS, "gflops_per_s", "run", (100.0, 10.0)).to_dict()
    points, roof, ridge, label = spec["layer"]
    assert points["encoding"]["x"]["scale"] == {"type": "log"} and points["encoding"]["y"]["scale"] == {"type": "log"}
    assert points["encoding"]["shape"]["field"] == "type"
    assert points["encoding"]["fill"]["field"] == "run"
    assert points["encoding"]["fill"]["scale"]["domain"] == ["1: a", "2: b [SIMULATED]"]
    data = spec["datasets"][points["data"]["name"]]
    assert [(r["name"], r["data"]) for r in data] == [("conv1", "measured"), ("relu1", "measured"),
                                                     ("fc", "measured"), ("conv1", "SIMULATED")]
    roof_rows = spec["datasets"][roof["data"]["name"]]
    assert [r["attainable_gflops_per_s"] for r in roof_rows] == pytest.approx([1.25, 100.0, 100.0])
    assert spec["datasets"][label["data"]["name"]][0]["label"] == "ridge 10 FLOP/byte"
    assert spec["title"] == ("Achieved GFLOP/s per layer; roofline 100 GFLOP/s, 10 GB/s "
                             "(hollow points: SIMULATED data, not a measurement)")


def test_efficiency_chart_energy_by_device_has_no_roofline():
    spec = charts.efficiency_chart(rows_frame(), LABELS, "gflop_per_j", "device", (100.0, 10.0)).to_dict()
    assert len(spec["layer"]) == 1
    points = spec["layer"][0]
    assert points["encoding"]["stroke"]["field"] == "device"
    assert points["encoding"]["y"]["field"] == "gflop_per_j"
    data = points.get("data", spec.get("data"))  # one layer: Altair hoists its data to the top
    assert [r["name"] for r in spec["datasets"][data["name"]]] == ["conv1", "fc", "conv1"]


# Query on real imported runs


@pytest.fixture
def ids(sample_store) -> dict[str, str]:
    return run_ids_by_name(sample_store)


def test_efficiency_layers_compute_throughput_and_efficiency(sample_store, ids):
    rows = queries.efficiency_layers([ids[SQUEEZE_NET], ids[ALEXNET]])
    assert set(rows["run_id"]) == {ids[SQUEEZE_NET], ids[ALEXNET]}
    assert (rows["rail"] == "VDD_IN").all()
    conv1 = rows[(rows["run_id"] == ids[SQUEEZE_NET]) & (rows["name"] == "conv1")].iloc[0]
    assert conv1["flops"] == 44129664 and conv1["arithmetic_intensity"] == pytest.approx(11.331628, rel=1e-6)
    assert conv1["gflops_per_s"] == pytest.approx(conv1["flops"] / (conv1["time_ms"] / 1e3) / 1e9)
    assert conv1["gflop_per_j"] == pytest.approx(conv1["flops"] / (conv1["energy_mj"] / 1e3) / 1e9)
    assert conv1["run_name"] == SQUEEZE_NET and conv1["device"] == "vm" and bool(conv1["simulated"])
    stats = queries.layer_stats(ids[ALEXNET])
    assert (rows["run_id"] == ids[ALEXNET]).sum() == (stats["rail"] == "VDD_IN").sum()


# The page


def open_efficiency(params: dict | None = None):
    at = app_test().run()
    at.switch_page("views/efficiency.py")
    at.query_params.clear()
    for key, value in (params or {}).items():
        at.query_params[key] = value
    return at.run()


def test_efficiency_defaults_to_the_newest_network(sample_store, ids):
    at = open_efficiency()
    no_exception(at)
    assert at.title[0].value == "Efficiency"
    assert at.query_params["network"] == "googlenet"  # the newest import's network
    assert at.query_params["run"] == ids[GOOGLENET]
    assert at.query_params["color"] == "run"
    assert "peak" not in at.query_params and "bandwidth" not in at.query_params
    assert "1 of 1 runs hold SIMULATED data" in at.warning[0].value
    rows = queries.efficiency_layers([ids[GOOGLENET]])
    (gflops, gflops_frames), (per_j, per_j_frames) = vega_charts(at)
    assert len(gflops["layer"]) == 1  # no roofline without figures
    drawn = chart_rows(gflops, gflops_frames, 0)
    assert len(drawn) == len(charts.efficiency_points(rows, "gflops_per_s"))
    assert any(f"{len(drawn)} of {len(rows)} layers drawn" in text for text in texts(at.caption))
    drawn_j = chart_rows(per_j, per_j_frames, 0)
    unresolved = rows[(rows["resolved"] == False) & (rows["flops"] > 0)]  # noqa: E712
    assert len(unresolved) > 0 and not set(unresolved["name"]) & set(drawn_j["name"])
    assert any(f"{len(unresolved)} layers whose energy the sensor could not resolve" in text
               for text in texts(at.caption))
    table = at.dataframe[0].value
    assert len(table) == len(rows) and "bound" not in table.columns


def test_efficiency_network_from_url_chooses_its_runs(sample_store, ids):
    at = open_efficiency({"network": "squeezenet_v1.1"})
    no_exception(at)
    chosen = at.multiselect(key="efficiency_runs").value
    assert chosen == [ids[SQUEEZE_LOOP], ids[SQUEEZE_NET]]  # newest first
    table = at.dataframe[0].value
    assert set(table["run"]) == {"1: squeezenet_v1.1-layerloop [SIMULATED]", "2: squeezenet_v1.1-network [SIMULATED]"}


def test_efficiency_roofline_from_url(sample_store, ids):
    at = open_efficiency({"network": "alexnet", "run": ids[ALEXNET], "peak": "512", "bandwidth": "25.6"})
    no_exception(at)
    assert at.number_input(key="efficiency_peak").value == 512.0
    assert at.number_input(key="efficiency_bandwidth").value == 25.6
    assert any("Ridge point 20 FLOP/byte" in text for text in texts(at.caption))
    gflops, frames = vega_charts(at)[0]
    assert len(gflops["layer"]) == 4
    assert chart_rows(gflops, frames, 2)["arithmetic_intensity"].tolist() == pytest.approx([20.0])
    summary, table = at.dataframe[0].value, at.dataframe[1].value
    by = table.set_index("name")
    assert by.loc["fc6", "bound"] == "memory"  # about 2 FLOP/byte
    assert by.loc["conv2", "bound"] == "compute"
    assert by.loc["conv2", "attainable_gflops_per_s"] == 512.0
    assert by.loc["fc6", "attainable_gflops_per_s"] == pytest.approx(25.6 * by.loc["fc6", "arithmetic_intensity"])
    counts = table["bound"].value_counts()
    assert summary.loc[0, "memory_bound_layers"] == counts["memory"]
    assert summary.loc[0, "compute_bound_layers"] == counts["compute"]


def test_efficiency_roofline_widgets_write_the_url(sample_store, ids):
    at = open_efficiency()
    at.number_input(key="efficiency_peak").set_value(100.0).run()
    no_exception(at)
    assert at.query_params["peak"] == "100.0"
    assert any("Enter both" in text for text in texts(at.caption))
    at.number_input(key="efficiency_bandwidth").set_value(10.0).run()
    assert at.query_params["bandwidth"] == "10.0"
    assert len(vega_charts(at)[0][0]["layer"]) == 4


def test_efficiency_network_change_resets_the_runs(sample_store, ids):
    at = open_efficiency()
    at.selectbox(key="efficiency_network").select("alexnet").run()
    no_exception(at)
    assert at.query_params["network"] == "alexnet"
    assert at.query_params["run"] == ids[ALEXNET]
    at.selectbox(key="efficiency_network").select(tables.ALL_NETWORKS).run()
    assert at.query_params["run"] == [ids[GOOGLENET], ids[ALEXNET], ids[SQUEEZE_LOOP], ids[SQUEEZE_NET]]


def test_efficiency_colour_by_device(sample_store, ids):
    with connect(sample_store) as con:
        con.execute("UPDATE runs SET device = 'TX2' WHERE run_id = ?", [ids[SQUEEZE_NET]])
    at = open_efficiency({"network": "squeezenet_v1.1", "color": "device"})
    no_exception(at)
    assert at.radio(key="efficiency_color").value == "device"
    spec, frames = vega_charts(at)[0]
    points = spec["layer"][0]
    assert points["encoding"]["fill"]["field"] == "device"
    assert points["encoding"]["fill"]["scale"]["domain"] == ["TX2", "vm"]
    assert set(chart_rows(spec, frames, 0)["device"]) == {"TX2", "vm"}


def test_efficiency_timing_only_run_has_no_energy_chart(sample_store, ids):
    make_timing_only(sample_store, ids[ALEXNET])
    at = open_efficiency({"network": "alexnet"})
    no_exception(at)
    assert "None of these runs has power data (timing only): no energy efficiency to show." in texts(at.info)
    assert len(vega_charts(at)) == 1
    assert at.dataframe[0].value["energy_mj"].isna().all()


def test_efficiency_run_without_model_cost(sample_store, ids):
    with connect(sample_store) as con:
        con.execute("DELETE FROM layer_costs WHERE run_id = ?", [ids[ALEXNET]])
    at = open_efficiency({"network": "alexnet"})
    no_exception(at)
    assert any("no model cost" in text for text in texts(at.info))
    assert not vega_charts(at)


def test_efficiency_empty_choice_and_empty_store(sample_store, tmp_path, monkeypatch):
    at = open_efficiency()
    at.multiselect(key="efficiency_runs").set_value([]).run()
    no_exception(at)
    assert "Choose one or more runs to see their layers' efficiency." in texts(at.info)
    monkeypatch.setenv("LAYERJOULE_DB", str(tmp_path / "empty.duckdb"))
    at = open_efficiency()
    no_exception(at)
    assert any("No runs yet" in text for text in texts(at.info))


def test_efficiency_link_with_runs_only_picks_their_network(sample_store, ids):
    at = open_efficiency({"run": ids[SQUEEZE_NET]})
    no_exception(at)
    assert at.query_params["network"] == "squeezenet_v1.1"
    assert at.multiselect(key="efficiency_runs").value == [ids[SQUEEZE_NET]]
    at = open_efficiency({"run": [ids[SQUEEZE_NET], ids[ALEXNET]]})
    no_exception(at)
    assert at.query_params["network"] == tables.ALL_NETWORKS
    assert at.multiselect(key="efficiency_runs").value == [ids[SQUEEZE_NET], ids[ALEXNET]]
    assert not at.warning[1:]  # only the SIMULATED warning: no run left out
