"""Run page (issue 7): its queries, chart and table builders, and AppTest runs of the page.

Most tests use the `sample_store` fixture: a copy of a store holding real imported sample runs (SqueezeNet v1.1
in network mode with its Streamline capture and tegrastats log, SqueezeNet v1.1 and AlexNet in layer-loop mode,
GoogLeNet in network mode; simulated rails), changed with SQL where a test needs something else. Expected
figures are computed independently from the store's own tables.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest
from streamlit import dataframe_util
from streamlit.testing.v1 import AppTest

from app import charts, queries, tables
from importer.store import connect

import apptest
from apptest import no_exception, texts

APP_MAIN = Path(__file__).resolve().parent.parent / "app" / "main.py"
TIMEOUT_S = 60


# Helpers


def run_id_of(db: Path, name: str) -> str:
    with connect(db, read_only=True) as con:
        return con.execute("SELECT run_id FROM runs WHERE name = ?", [name]).fetchone()[0]


def sql_rows(db: Path, sql: str, params: list | None = None) -> list[tuple]:
    with connect(db, read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def sql_write(db: Path, sql: str, params: list | None = None) -> None:
    with connect(db) as con:
        con.execute(sql, params or [])


@pytest.fixture
def network_run(sample_store) -> str:
    """SqueezeNet v1.1, network mode, 200 iterations, rails VDD_IN, VDD_GPU, VDD_CPU and tegrastats.VDD_IN."""
    return run_id_of(sample_store, "squeezenet_v1.1-network")


@pytest.fixture
def layerloop_run(sample_store) -> str:
    return run_id_of(sample_store, "squeezenet_v1.1-layerloop")


def open_page(params: dict[str, str]) -> AppTest:
    return apptest.open_page("views/run.py", params)


def chart_specs(at: AppTest) -> dict[str, dict]:
    """Each chart on the page by its title: the Vega-Lite spec Streamlit sent, datasets as data frames."""
    found = {}
    for element in at.get("vega_lite_chart"):
        spec = json.loads(element.proto.spec)
        spec["frames"] = {
            dataset.name: dataframe_util.convert_arrow_bytes_to_pandas_df(dataset.data.data)
            for dataset in element.proto.datasets
        }
        found[spec["title"]] = spec
    return found


def chart_titled(at: AppTest, start: str) -> dict:
    matches = [spec for title, spec in chart_specs(at).items() if title.startswith(start)]
    assert len(matches) == 1, (start, list(chart_specs(at)))
    return matches[0]


def frame_of(spec: dict, *views: dict) -> pd.DataFrame:
    """The data of the innermost of views (outermost first) that names some (Altair hoists shared data up)."""
    named = [view["data"]["name"] for view in (spec, *views) if "data" in view]
    return spec["frames"][named[-1]]


def dataframe_with(at: AppTest, column: str) -> pd.DataFrame:
    """The first table on the page with the given column."""
    for element in at.dataframe:
        if column in element.value.columns:
            return element.value
    raise AssertionError(f"no table with column {column!r}")


def y_order(spec: dict) -> list[str]:
    """The label order of a layered bar chart: its shared y axis's domain."""
    return spec["encoding"]["y"]["scale"]["domain"]


def layer_data(spec: dict, index: int) -> pd.DataFrame:
    data = spec["layer"][index].get("data", spec.get("data"))
    return pd.DataFrame(spec["datasets"][data["name"]])


# Queries: groups


def test_module_groups_sum_their_layers(sample_store, network_run):
    stats = tables.rail_rows(queries.layer_stats(network_run), "VDD_IN")
    groups = queries.layer_groups(network_run, "VDD_IN", "module").set_index("group")
    fire2 = stats[stats["module"] == "fire2"]
    assert len(fire2) == 7
    row = groups.loc["fire2"]
    assert row["n_layers"] == 7 and row["first_index"] == fire2["layer_index"].min()
    assert row["time_ms_mean"] == pytest.approx(fire2["time_ms_mean"].sum())
    assert row["time_ms_ci95"] == pytest.approx(math.sqrt((fire2["time_ms_ci95"] ** 2).sum()))
    assert row["energy_mj_mean"] == pytest.approx(fire2["energy_mj_mean"].sum())
    assert row["energy_mj_ci95"] == pytest.approx(math.sqrt((fire2["energy_mj_ci95"] ** 2).sum()))
    assert row["flops"] == fire2["flops"].sum()
    assert row["layers"].split(", ") == fire2.sort_values("layer_index")["name"].tolist()
    # Resolved only if every layer is.
    expected = {module: bool(rows["resolved"].fillna(False).all()) for module, rows in stats.groupby("module")}
    assert {name: bool(groups.loc[name, "resolved"]) for name in expected} == expected
    assert not all(expected.values()) and any(expected.values())
    assert row["n_unresolved"] == int((~fire2["resolved"].fillna(False).astype(bool)).sum())
    # Network order: by each module's first layer.
    assert groups["first_index"].is_monotonic_increasing
    assert groups.index[:3].tolist() == ["conv1", "pool1", "fire2"]


def test_a_layer_without_a_module_is_its_own_group(sample_store, network_run):
    sql_write(sample_store, "DELETE FROM layer_costs WHERE run_id = ? AND layer_name = 'fire2/concat'", [network_run])
    groups = queries.layer_groups(network_run, "VDD_IN", "module").set_index("group")
    assert groups.loc["fire2", "n_layers"] == 6
    assert groups.loc["fire2/concat", "n_layers"] == 1
    assert groups.loc["fire2/concat", "layers"] == "fire2/concat"


def test_group_interval_is_empty_when_a_layer_has_none(sample_store, network_run):
    sql_write(sample_store, "UPDATE layer_stats SET time_ms_ci95 = NULL, energy_mj_ci95 = NULL "
              "WHERE run_id = ? AND layer_index = 3", [network_run])  # fire2/squeeze1x1
    groups = queries.layer_groups(network_run, "VDD_IN", "module").set_index("group")
    assert pd.isna(groups.loc["fire2", "time_ms_ci95"]) and pd.isna(groups.loc["fire2", "energy_mj_ci95"])
    assert pd.notna(groups.loc["fire3", "time_ms_ci95"])


def test_type_groups(sample_store, network_run):
    stats = tables.rail_rows(queries.layer_stats(network_run), "VDD_GPU")
    groups = queries.layer_groups(network_run, "VDD_GPU", "type").set_index("group")
    assert groups["n_layers"].to_dict() == stats.groupby("type").size().to_dict()
    assert groups["energy_mj_mean"].sum() == pytest.approx(stats["energy_mj_mean"].sum())
    with pytest.raises(ValueError, match="group by"):
        queries.layer_groups(network_run, "VDD_GPU", "name")


def test_timing_only_groups_have_time_and_no_energy(sample_store, network_run):
    sql_write(sample_store, "DELETE FROM layer_stats WHERE run_id = ? AND rail <> 'VDD_IN'", [network_run])
    sql_write(sample_store, "UPDATE layer_stats SET rail = NULL, energy_mj_mean = NULL, energy_mj_ci95 = NULL, "
              "resolved = NULL WHERE run_id = ?", [network_run])
    groups = queries.layer_groups(network_run, None, "module")
    assert groups["time_ms_mean"].notna().all()
    assert groups["energy_mj_mean"].isna().all() and groups["resolved"].isna().all()


# Queries: details and timeline


def test_run_details(sample_store, network_run):
    details = queries.run_details(network_run)
    assert details["rails"]["rail"].tolist()[0] == "VDD_IN"  # the total rail first
    assert set(details["rails"]["rail"]) == {"VDD_IN", "VDD_GPU", "VDD_CPU", "tegrastats.VDD_IN"}
    assert sorted(details["sources"]["kind"]) == ["run-bundle", "streamline-capture", "tegrastats"]
    assert sorted(details["alignments"]["kind"]) == ["streamline-capture", "tegrastats"]
    assert details["span"] == sql_rows(sample_store, "SELECT min(t_start_ns), max(t_end_ns) FROM phase_events "
                                       "WHERE run_id = ?", [network_run])[0]
    assert len(details["layer_stats"]) == 66 * 4
    assert set(details["phase_stats"]["phase"]) == {"setup", "warmup", "inference", "idle"}


def test_timeline_of_one_iteration(sample_store, network_run):
    t0_ns = queries.run_details(network_run)["span"][0]
    pad_ns = 54_000_000
    found = queries.timeline(network_run, ["VDD_IN", "VDD_GPU"], t0_ns, iteration=7, pad_ns=pad_ns)
    (lo_ns, hi_ns), = sql_rows(sample_store, "SELECT min(t_start_ns), max(t_end_ns) FROM layer_events "
                               "WHERE run_id = ? AND phase = 'inference' AND iteration = 7", [network_run])
    assert found["window_ns"] == (lo_ns, hi_ns)
    intervals = found["intervals"]
    assert len(intervals) == 66 and intervals["n_layers"].eq(1).all()
    assert intervals["name"].iloc[0] == "conv1" and intervals["type"].iloc[0] == "Convolution"
    assert intervals["iteration"].eq(7).all() and intervals["phase"].eq("inference").all()
    assert intervals["t_start_s"].iloc[0] == pytest.approx((lo_ns - t0_ns) / 1e9)
    power = found["power"]
    assert set(power["rail"]) == {"VDD_IN", "VDD_GPU"}
    for rail, rows in power.groupby("rail"):
        samples = pd.DataFrame(sql_rows(sample_store, "SELECT t_ns, power_mw FROM power_samples WHERE run_id = ? "
                                        "AND rail = ? AND t_ns BETWEEN ? AND ?",
                                        [network_run, rail, lo_ns - pad_ns, hi_ns + pad_ns]),
                               columns=["t_ns", "power_mw"])
        assert rows["n_samples"].sum() == len(samples) > 0
        assert rows["power_mw_max"].max() == samples["power_mw"].max()
        assert rows["power_mw_min"].min() == samples["power_mw"].min()


def test_timeline_downsamples_samples_and_merges_intervals(sample_store, network_run, monkeypatch):
    monkeypatch.setattr(queries, "MAX_BUCKETS_PER_RAIL", 40)
    monkeypatch.setattr(queries, "MAX_INTERVAL_ROWS", 100)
    t0_ns, t1_ns = queries.run_details(network_run)["span"]
    found = queries.timeline(network_run, ["VDD_IN", "VDD_CPU"], t0_ns, window_ns=(t0_ns, t1_ns))
    power = found["power"]
    for rail in ("VDD_IN", "VDD_CPU"):
        rows = power[power["rail"] == rail]
        (n, peak, low), = sql_rows(sample_store, "SELECT count(*), max(power_mw), min(power_mw) FROM power_samples "
                                   "WHERE run_id = ? AND rail = ? AND t_ns BETWEEN ? AND ?",
                                   [network_run, rail, t0_ns, t1_ns])
        assert n > 500 and len(rows) <= 40
        assert rows["n_samples"].sum() == n  # every sample counted once
        assert rows["power_mw_max"].max() == peak and rows["power_mw_min"].min() == low  # peaks survive
        assert (rows["power_mw_min"] <= rows["power_mw_mean"]).all()
        assert (rows["power_mw_mean"] <= rows["power_mw_max"]).all()
        assert rows["t_s"].is_monotonic_increasing
    intervals = found["intervals"]
    (n_events,), = sql_rows(sample_store, "SELECT count(*) FROM layer_events WHERE run_id = ?", [network_run])
    assert len(intervals) <= 101 and intervals["n_layers"].sum() == n_events
    assert intervals["name"].str.contains("layer intervals merged").all()
    assert intervals["phase"].isna().all()


def test_timeline_without_rails_or_iteration(sample_store, network_run):
    t0_ns = queries.run_details(network_run)["span"][0]
    found = queries.timeline(network_run, [], t0_ns, iteration=3)
    assert found["power"].empty and list(found["power"].columns) == queries.POWER_COLUMNS
    assert len(found["intervals"]) == 66
    missing = queries.timeline(network_run, ["VDD_IN"], t0_ns, iteration=100_000)
    assert missing["window_ns"] is None and missing["power"].empty


# Tables


def cost_stats() -> pd.DataFrame:
    return pd.DataFrame({
        "layer_index": [0, 1, 2],
        "name": ["conv1", "relu1", "data_split"],
        "type": ["Convolution", "ReLU", "Split"],
        "added_by_engine": [False, False, True],
        "rail": ["VDD_IN"] * 3,
        "time_ms_mean": [4.0, 0.5, 0.1],
        "energy_mj_mean": [10.0, 1.0, 0.2],
        "energy_mj_ci95": [0.5, 0.9, 0.1],
        "resolved": [True, False, True],
        "flops": [2e9, 1e6, None],
        "traffic_bytes": [1e6, 2e5, None],
        "measured_bytes_per_s": [3e8, None, None],
    })


def test_layer_table_derived_columns():
    table = tables.layer_table(cost_stats(), simulated=True)
    assert list(table.columns) == ["data", *tables.LAYER_COLUMNS]
    assert table["data"].eq("SIMULATED").all()
    conv = table.iloc[0]
    assert conv["achieved_gflop_per_s"] == pytest.approx(500.0)  # 2e9 flops in 4 ms
    assert conv["gflop_per_j"] == pytest.approx(200.0)  # 2e9 flops with 10 mJ
    assert conv["min_traffic_bytes_per_s"] == pytest.approx(2.5e8)  # 1e6 bytes in 4 ms
    assert conv["measured_bytes_per_s"] == 3e8
    relu = table.iloc[1]
    assert relu["achieved_gflop_per_s"] == pytest.approx(2.0)
    assert pd.isna(relu["gflop_per_j"])  # energy unresolved: no efficiency figure
    split = table.iloc[2]
    assert bool(split["added_by_engine"]) and pd.isna(split["achieved_gflop_per_s"])
    assert tables.layer_table(cost_stats(), simulated=False)["data"].eq("measured").all()


def test_group_table_blanks_unresolved_energy():
    groups = pd.DataFrame({
        "group": ["fire2", "pool1"], "first_index": [3, 2], "n_layers": [7, 1], "layers": ["a, b", "pool1"],
        "time_ms_mean": [2.0, 1.0], "time_ms_ci95": [0.1, 0.05], "energy_mj_mean": [12.0, 7.5],
        "energy_mj_ci95": [0.4, 0.2], "energy_above_idle_mj_mean": [8.0, 4.0], "resolved": [False, True],
        "n_unresolved": [3, 0],
    })
    table = tables.group_table(groups, "module").set_index("module")
    assert table.loc["pool1", "energy_mj_mean"] == 7.5
    assert table.loc["fire2", tables.ENERGY_COLUMNS].isna().all()
    assert table.loc["fire2", "time_ms_mean"] == 2.0 and table.loc["fire2", "n_unresolved"] == 3


def test_setup_and_inference():
    phases = pd.DataFrame({
        "phase": ["setup", "warmup", "inference", "idle"], "occurrences": [1, 1, 1, 2],
        "time_ms": [200.0, 50.0, 1000.0, 2000.0], "energy_mj": [600.0, 150.0, 4000.0, None],
    })
    figures = tables.setup_and_inference(phases, iterations=100)
    assert figures["setup_mj"] == 600.0 and figures["inference_mj"] == 4000.0
    assert figures["per_iteration_mj"] == 40.0 and figures["setup_plus_inference_mj"] == 4600.0
    assert figures["per_iteration_ms"] == 10.0 and figures["setup_plus_inference_ms"] == 1200.0
    timing = tables.setup_and_inference(phases.assign(energy_mj=None), iterations=100)
    assert timing["setup_mj"] is None and timing["setup_plus_inference_mj"] is None
    assert timing["setup_plus_inference_ms"] == 1200.0


# Charts


def stats_frame() -> pd.DataFrame:
    return pd.DataFrame({
        "layer_index": [0, 1, 2],
        "name": ["conv1", "relu_conv1", "pool1"],
        "type": ["Convolution", "ReLU", "Pooling"],
        "rail": ["VDD_IN"] * 3,
        "n_iterations": [200] * 3,
        "time_ms_mean": [5.5, 0.75, 6.25],
        "time_ms_ci95": [0.1, 0.05, 0.2],
        "energy_mj_mean": [40.25, 3.125, 47.5],
        "energy_mj_ci95": [1.5, 2.9, 0.4],
        "resolved": [True, False, True],
    })


def test_layer_charts_sorted_largest_first():
    spec = charts.layer_energy_chart(stats_frame(), order="sorted").to_dict()
    assert y_order(spec) == ["pool1", "conv1", "relu_conv1"]
    assert "largest first" in spec["encoding"]["y"]["title"]
    # Sorting changes the order, not the honesty: the unresolved layer is still hollow and apart.
    assert layer_data(spec, 2)["layer"].tolist() == ["relu_conv1"]
    shares = pd.concat([layer_data(spec, 0), layer_data(spec, 2)])["share"]
    assert shares.sum() == pytest.approx(1.0)
    time_spec = charts.layer_time_chart(stats_frame(), order="sorted").to_dict()
    assert y_order(time_spec) == ["pool1", "conv1", "relu_conv1"]
    network = charts.layer_time_chart(stats_frame()).to_dict()
    assert y_order(network) == ["conv1", "relu_conv1", "pool1"]


def module_groups() -> pd.DataFrame:
    return pd.DataFrame({
        "group": ["conv1", "fire2", "pool1"], "first_index": [0, 3, 2], "n_layers": [2, 7, 1],
        "layers": ["conv1, relu_conv1", "fire2/a, fire2/b", "pool1"], "n_iterations": [200] * 3,
        "time_ms_mean": [2.0, 3.0, 1.0], "time_ms_ci95": [0.3, 0.4, None],
        "energy_mj_mean": [14.0, 16.0, 7.5], "energy_mj_ci95": [0.5, 0.6, 0.2],
        "resolved": [True, False, True], "n_unresolved": [0, 2, 0],
    })


def test_group_energy_chart_marks_unresolved_modules():
    spec = charts.group_energy_chart(module_groups(), "module", "VDD_IN", simulated=True).to_dict()
    assert "Energy per module, rail VDD_IN" in spec["title"] and "SIMULATED" in spec["title"]
    assert spec["encoding"]["y"]["field"] == "module"
    assert y_order(spec) == ["conv1", "pool1", "fire2"]  # by first layer
    measured, unresolved = layer_data(spec, 0), layer_data(spec, 2)
    assert measured["module"].tolist() == ["conv1", "pool1"]
    assert measured.set_index("module").loc["conv1", "energy_mj_low"] == pytest.approx(13.5)
    assert unresolved["module"].tolist() == ["fire2"]
    assert unresolved.loc[0, "note"] == "indicative only: 2 of 7 layers unresolved (sensor too slow)"
    assert "energy_mj_ci95" not in unresolved
    assert unresolved.loc[0, "share"] == pytest.approx(16.0 / 37.5)
    assert spec["layer"][2]["mark"]["strokeDash"]
    time_spec = charts.group_time_chart(module_groups(), "module", order="sorted").to_dict()
    assert y_order(time_spec) == ["fire2", "conv1", "pool1"]
    rows = layer_data(time_spec, 0).set_index("module")
    assert pd.isna(rows.loc["pool1", "time_ms_low"])  # no interval: no error bar


def test_type_share_chart():
    groups = module_groups().assign(group=["Convolution", "Concat", "Pooling"])
    spec = charts.type_share_chart(groups).to_dict()
    data = pd.DataFrame(spec["datasets"][spec["data"]["name"]])
    for quantity in ("energy", "time"):
        assert data[data["quantity"] == quantity]["share"].sum() == pytest.approx(1.0)
    status = data.set_index(["quantity", "type"])["status"]
    assert status[("energy", "Concat")] == charts.UNRESOLVED
    assert status[("time", "Concat")] == charts.MEASURED  # time is measured either way
    assert spec["encoding"]["x"]["stack"] == "normalize"


def test_phase_chart():
    phases = pd.DataFrame({
        "phase": ["setup", "warmup", "inference", "idle"], "occurrences": [1, 1, 1, 2],
        "time_ms": [200.0, 50.0, 1000.0, 2000.0], "energy_mj": [600.0, 150.0, 4000.0, None],
    })
    spec = charts.phase_chart(phases, "VDD_IN", simulated=True).to_dict()
    assert spec["title"].startswith("Energy and time per phase: setup + inference") and "SIMULATED" in spec["title"]
    energy, time = (pd.DataFrame(spec["datasets"][view["data"]["name"]]) for view in spec["vconcat"])
    assert energy["phase"].tolist() == ["setup", "warmup", "inference"]  # idle's energy is unknown
    assert energy["share"].sum() == pytest.approx(1.0)
    assert time.set_index("phase")["time_ms"].to_dict() == {"setup": 200.0, "warmup": 50.0, "inference": 1000.0,
                                                             "idle": 2000.0}
    timing = charts.phase_chart(phases.assign(energy_mj=None)).to_dict()
    assert len(timing["vconcat"]) == 1 and timing["title"].startswith("Time per phase")


def test_power_timeline_chart():
    power = pd.DataFrame({"rail": ["VDD_IN"] * 3, "t_s": [1.0, 1.05, 1.1], "power_mw_min": [900.0, 950, 1000],
                          "power_mw_max": [1100.0, 1400, 1000], "power_mw_mean": [1000.0, 1200, 1000],
                          "n_samples": [4, 5, 1]})
    intervals = pd.DataFrame({"t_start_s": [1.01, 1.04], "t_end_s": [1.03, 1.08], "duration_ms": [20.0, 40.0],
                              "name": ["conv1", "pool1"], "type": ["Convolution", "Pooling"],
                              "phase": ["inference"] * 2, "iteration": [0, 0], "n_layers": [1, 1]})
    spec = charts.power_timeline_chart(power, intervals, (1.0, 1.1), "Power", simulated=True,
                                       types=["Convolution", "Pooling", "ReLU"]).to_dict()
    assert spec["title"] == "Power" + charts.SIMULATED_SUFFIX
    power_view, strip = spec["vconcat"]
    band, line, hover = power_view["layer"]
    assert band["mark"]["interpolate"] == "step-before" and line["mark"]["interpolate"] == "step-before"
    assert band["encoding"]["y"]["field"] == "power_mw_min" and band["encoding"]["y2"]["field"] == "power_mw_max"
    assert line["encoding"]["x"]["scale"]["domain"] == [1.0, 1.1]
    assert [tip["field"] for tip in hover["encoding"]["tooltip"]][:3] == ["rail", "t_s", "power_mw_mean"]
    assert strip["mark"]["type"] == "rect" and strip["encoding"]["x2"]["field"] == "t_end_s"
    assert strip["encoding"]["color"]["scale"]["domain"] == ["Convolution", "Pooling", "ReLU"]
    assert pd.DataFrame(spec["datasets"][strip["data"]["name"]])["name"].tolist() == ["conv1", "pool1"]
    linear = charts.power_timeline_chart(power, intervals.iloc[:0], (1.0, 1.1), "P", step=False).to_dict()
    assert linear["layer"][1]["mark"]["interpolate"] == "linear" and "vconcat" not in linear
    only_layers = charts.power_timeline_chart(power.iloc[:0], intervals, (1.0, 1.1), "P").to_dict()
    assert only_layers["mark"]["type"] == "rect"
    with pytest.raises(ValueError, match="nothing to chart"):
        charts.power_timeline_chart(power.iloc[:0], intervals.iloc[:0], (1.0, 1.1), "P")


# The page


def test_page_header_shows_owner_and_team(sample_store, network_run):
    sql_write(sample_store, "UPDATE runs SET owner = 'bo', team = 'vision' WHERE run_id = ?", [network_run])
    at = open_page({"run": network_run})
    no_exception(at)
    header = at.markdown[0].value
    assert "**owner** bo" in header and "**team** vision" in header and "**network** squeezenet_v1.1" in header
    assert "Simulated data: not a measurement" in texts(at.warning)


def test_page_defaults_publish_the_view_in_the_url(sample_store, network_run):
    at = open_page({"run": network_run})
    no_exception(at)
    params = {key: at.query_params[key] for key in ("run", "rail", "group", "order", "timeline", "iteration",
                                                      "rails")}
    assert params == {"run": network_run, "rail": "VDD_IN", "group": "layer", "order": "network",
                      "timeline": "iteration", "iteration": "0", "rails": "chosen"}
    titles = list(chart_specs(at))
    assert titles[0].startswith("Energy per layer, rail VDD_IN") and "SIMULATED" in titles[0]
    assert titles[1].startswith("Time per layer")
    assert titles[2].startswith("Energy and time per phase")
    assert titles[3].startswith("Power (VDD_IN) and layer intervals, inference iteration 0")


def test_page_group_and_order_controls(sample_store, network_run):
    at = open_page({"run": network_run})
    at.button_group(key="group_select").set_value("module").run()
    at.button_group(key="order_select").set_value("sorted").run()
    no_exception(at)
    assert at.query_params["group"] == "module" and at.query_params["order"] == "sorted"
    spec = chart_titled(at, "Energy per module, rail VDD_IN")
    groups = queries.layer_groups(network_run, "VDD_IN", "module")
    expected = groups.sort_values("energy_mj_mean", ascending=False)["group"].tolist()
    assert y_order(spec) == expected
    unresolved = frame_of(spec, spec["layer"][2])
    assert set(unresolved["module"]) == set(groups.loc[~groups["resolved"].astype(bool), "group"])
    table = dataframe_with(at, "module").set_index("module")
    fire2 = groups.set_index("group").loc["fire2"]
    assert table.loc["fire2", "time_ms_mean"] == pytest.approx(fire2["time_ms_mean"])
    assert pd.isna(table.loc["fire2", "energy_mj_mean"]) == (not fire2["resolved"])
    assert any("resolved only if all its layers are" in text for text in texts(at.caption))


def test_page_type_view_shows_shares(sample_store, network_run):
    at = open_page({"run": network_run, "group": "type"})
    no_exception(at)
    assert at.button_group(key="group_select").value == "type"
    spec = chart_titled(at, "Share of time and energy per layer type")
    data = spec["frames"][spec["data"]["name"]]
    time_share = data[data["quantity"] == "time"].set_index("type")["share"]
    stats = tables.rail_rows(queries.layer_stats(network_run), "VDD_IN")
    by_type = stats.groupby("type")["time_ms_mean"].sum()
    assert time_share["Convolution"] == pytest.approx(by_type["Convolution"] / by_type.sum())


def test_page_restores_a_shared_timeline_view(sample_store, network_run):
    at = open_page({"run": network_run, "rail": "VDD_GPU", "timeline": "window", "t_from": "1.5",
                    "t_to": "2.5", "rails": "all"})
    no_exception(at)
    assert at.selectbox(key=f"rail_select:{network_run}").value == "VDD_GPU"
    assert at.number_input(key=f"t_from_input:{network_run}").value == 1.5
    assert at.number_input(key=f"t_to_input:{network_run}").value == 2.5
    spec = chart_titled(at, "Power (VDD_IN, tegrastats.VDD_IN, VDD_CPU, VDD_GPU) and layer intervals, 1.5 s to")
    power_view, strip = spec["vconcat"]
    power = frame_of(spec, power_view, power_view["layer"][0])
    assert set(power["rail"]) == {"VDD_IN", "VDD_GPU", "VDD_CPU", "tegrastats.VDD_IN"}
    assert power_view["layer"][0]["encoding"]["x"]["scale"]["domain"] == [1.5, 2.5]
    intervals = frame_of(spec, strip)
    assert intervals["t_end_s"].min() > 1.5 and intervals["t_start_s"].max() < 2.5
    assert intervals["n_layers"].eq(1).all()
    # The energy charts follow the chosen rail.
    assert list(chart_specs(at))[0].startswith("Energy per layer, rail VDD_GPU")


def test_page_iteration_input_and_bad_url_values(sample_store, network_run):
    at = open_page({"run": network_run, "group": "bogus", "iteration": "100000"})
    no_exception(at)
    assert at.query_params["group"] == "layer" and at.query_params["iteration"] == "0"
    at.number_input(key=f"iteration_input:{network_run}").set_value(12).run()
    no_exception(at)
    assert at.query_params["iteration"] == "12"
    spec = chart_titled(at, "Power (VDD_IN) and layer intervals, inference iteration 12")
    intervals = frame_of(spec, spec["vconcat"][1])
    assert intervals["iteration"].eq(12).all() and len(intervals) == 66


def test_page_layer_table_costs_and_bandwidth(sample_store, network_run, layerloop_run):
    at = open_page({"run": network_run})
    no_exception(at)
    layers = dataframe_with(at, "achieved_gflop_per_s").set_index("name")
    assert layers["data"].eq("SIMULATED").all()
    (flops, traffic), = sql_rows(sample_store, "SELECT flops, traffic_bytes FROM layer_costs "
                                 "WHERE run_id = ? AND layer_name = 'conv1'", [network_run])
    conv1 = layers.loc["conv1"]
    assert conv1["flops"] == flops
    assert conv1["achieved_gflop_per_s"] == pytest.approx(flops / (conv1["time_ms_mean"] * 1e6))
    assert conv1["min_traffic_bytes_per_s"] == pytest.approx(traffic / (conv1["time_ms_mean"] / 1e3))
    resolved = layers["resolved"].astype(bool)
    assert layers.loc[resolved, "gflop_per_j"].notna().any()
    assert layers.loc[~resolved, "gflop_per_j"].isna().all()
    assert layers["measured_bytes_per_s"].notna().all()  # this run has its Streamline capture's counters
    other = open_page({"run": layerloop_run})
    assert dataframe_with(other, "achieved_gflop_per_s")["measured_bytes_per_s"].isna().all()


def test_page_marks_layers_added_by_the_engine(sample_store, network_run):
    sql_write(sample_store, "UPDATE layers SET added_by_engine = true WHERE run_id = ? AND layer_index = 1",
              [network_run])
    at = open_page({"run": network_run})
    layers = dataframe_with(at, "achieved_gflop_per_s")
    assert layers["added_by_engine"].tolist()[:3] == [False, True, False]
    assert any(text.startswith("1 layers were added by the engine") for text in texts(at.caption))


def test_page_phase_figures(sample_store, network_run):
    at = open_page({"run": network_run})
    shown = {metric.label: metric.value for metric in at.metric}
    (setup_mj, inference_mj, setup_ms), = sql_rows(
        sample_store,
        "SELECT max(energy_mj) FILTER (phase = 'setup'), max(energy_mj) FILTER (phase = 'inference'), "
        "max(time_ms) FILTER (phase = 'setup') FROM phase_stats WHERE run_id = ? AND rail = 'VDD_IN'",
        [network_run],
    )
    assert shown["Setup (mJ)"] == f"{setup_mj:,.1f}"
    assert shown["Inference per iteration (mJ)"] == f"{inference_mj / 200:,.3f}"
    assert shown["Setup + inference (mJ)"] == f"{setup_mj + inference_mj:,.1f}"
    assert shown["Setup (ms)"] == f"{setup_ms:,.1f}"
    phases = dataframe_with(at, "occurrences")
    assert phases["phase"].tolist() == ["setup", "warmup", "inference", "idle"]


def test_page_without_power_samples(sample_store, network_run):
    sql_write(sample_store, "DELETE FROM power_samples WHERE run_id = ?", [network_run])
    at = open_page({"run": network_run})
    no_exception(at)
    assert "No power samples in this window." in texts(at.info)
    spec = chart_titled(at, "Power (VDD_IN) and layer intervals")
    assert spec["mark"]["type"] == "rect"  # the layer intervals alone


def test_page_manifest_sources_and_alignments(sample_store, network_run):
    at = open_page({"run": network_run})
    manifest = json.loads(at.json[0].proto.body)
    assert manifest["run_id"] == network_run
    assert sorted(dataframe_with(at, "content_sha256")["kind"]) == ["run-bundle", "streamline-capture", "tegrastats"]
    assert sorted(dataframe_with(at, "offset_ns")["kind"]) == ["streamline-capture", "tegrastats"]
    assert set(dataframe_with(at, "update_interval_ns")["rail"]) == {"VDD_IN", "VDD_GPU", "VDD_CPU",
                                                                      "tegrastats.VDD_IN"}
    assert any("tegrastats" in text for text in texts(at.code))  # the import notes


def test_page_of_a_timing_only_run(sample_store, network_run):
    for sql in [
        "DELETE FROM power_samples WHERE run_id = ?",
        "DELETE FROM rails WHERE run_id = ?",
        "DELETE FROM layer_stats WHERE run_id = ? AND rail <> 'VDD_IN'",
        "UPDATE layer_stats SET rail = NULL, energy_mj_mean = NULL, energy_mj_ci95 = NULL, resolved = NULL, "
        "energy_above_idle_mj_mean = NULL WHERE run_id = ?",
        "DELETE FROM phase_stats WHERE run_id = ? AND rail <> 'VDD_IN'",
        "UPDATE phase_stats SET rail = NULL, energy_mj = NULL, energy_above_idle_mj = NULL WHERE run_id = ?",
        "UPDATE runs SET primary_rail = NULL, energy_mj_per_inference = NULL WHERE run_id = ?",
    ]:
        sql_write(sample_store, sql, [network_run])
    at = open_page({"run": network_run, "group": "module"})
    no_exception(at)
    assert "rail" not in at.query_params and "rails" not in at.query_params
    assert any("no power data" in text for text in texts(at.info))
    assert any("no power samples" in text for text in texts(at.info))
    titles = list(chart_specs(at))
    assert not any(title.startswith("Energy per") for title in titles)
    assert any(title.startswith("Time per module") for title in titles)
    assert any(title.startswith("Time per phase: setup + inference (no power data)") for title in titles)
    timeline = chart_titled(at, "Layer intervals, inference iteration 0")
    assert len(frame_of(timeline, timeline)) == 66
    shown = {metric.label: metric.value for metric in at.metric}
    assert "Setup (mJ)" not in shown and shown["Setup (ms)"] != "n/a"
    assert dataframe_with(at, "module")["energy_mj_mean"].isna().all()


def test_run_page_charts_export_as_svg(sample_store, network_run):
    from app import export

    t0_ns, t1_ns = queries.run_details(network_run)["span"]
    found = queries.timeline(network_run, ["VDD_IN", "VDD_GPU", "VDD_CPU", "tegrastats.VDD_IN"], t0_ns,
                             window_ns=(t0_ns, t1_ns))
    timeline = charts.power_timeline_chart(found["power"], found["intervals"], (0.0, (t1_ns - t0_ns) / 1e9),
                                           "Whole run", simulated=True)
    groups = queries.layer_groups(network_run, "VDD_IN", "type")
    for chart in (timeline, charts.group_energy_chart(groups, "type", "VDD_IN", True),
                  charts.type_share_chart(groups, True)):
        svg = export.chart_svg(chart)
        assert svg.startswith("<svg") and "SIMULATED" in svg
