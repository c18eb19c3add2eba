"""Compare page: its queries on the store of real imported sample runs, the pure alignment/ratio/table/chart
functions on small frames, and AppTest runs asserting shown values and the URL.
"""

from __future__ import annotations

import pandas as pd
import pytest
from test_app_overview import ALEXNET, GOOGLENET, SQUEEZE_LOOP, SQUEEZE_NET

from app import charts, queries, tables
from importer.store import connect

from apptest import app_test, chart_rows, no_exception, run_ids_by_name, texts, vega_charts

TOO_FEW = "Choose two to six runs above to compare them layer by layer"

# Pure: two runs, A (baseline) with conv1, relu1, fc; B with conv1, fc and extra. relu1 of A is unresolved.


def layers_frame() -> pd.DataFrame:
    return pd.DataFrame({
        "run_id": ["A", "A", "A", "B", "B", "B"],
        "key": ["conv1", "relu1", "fc", "conv1", "fc", "extra"],
        "position": [0, 1, 2, 0, 1, 2],
        "type": ["Convolution", "ReLU", "InnerProduct", "Convolution", "InnerProduct", "Softmax"],
        "n_layers": [1] * 6,
        "time_ms": [2.0, 0.5, 4.0, 1.0, 8.0, 0.25],
        "time_ms_ci95": [0.1] * 6,
        "energy_mj": [10.0, 1.0, 20.0, 4.0, 30.0, 0.5],
        "energy_mj_ci95": [0.2] * 6,
        "resolved": [True, False, True, True, True, True],
    })


LABELS = {"A": "1: a", "B": "2: b [SIMULATED]"}


def test_compare_rows_align_by_key_and_keep_gaps():
    rows = tables.compare_rows(layers_frame(), ["A", "B"], "A")
    assert list(zip(rows["key"], rows["run_id"], strict=True)) == [
        ("conv1", "A"), ("conv1", "B"), ("relu1", "A"), ("relu1", "B"), ("fc", "A"), ("fc", "B"),
        ("extra", "A"), ("extra", "B"),
    ]
    present = rows.set_index(["key", "run_id"])["present"]
    assert not present[("relu1", "B")] and not present[("extra", "A")] and present[("fc", "B")]
    by = rows.set_index(["key", "run_id"])
    assert pd.isna(by.loc[("relu1", "B"), "time_ms"])  # a gap, not a zero
    assert by.loc[("fc", "B"), "time_ratio"] == 2.0
    assert by.loc[("conv1", "B"), "energy_ratio"] == 0.4
    assert by.loc[("conv1", "A"), "time_ratio"] == 1.0
    assert pd.isna(by.loc[("extra", "B"), "time_ratio"])  # the baseline lacks it
    assert not by.loc[("relu1", "A"), "energy_ratio_resolved"] and by.loc[("fc", "B"), "energy_ratio_resolved"]


def test_compare_rows_with_another_baseline():
    rows = tables.compare_rows(layers_frame(), ["A", "B"], "B").set_index(["key", "run_id"])
    assert rows.loc[("fc", "A"), "time_ratio"] == 0.5
    assert rows.loc[("conv1", "A"), "energy_ratio"] == 2.5


def test_compare_layer_table_blanks_unresolved_energy_and_keeps_missing_rows():
    rows = tables.compare_rows(layers_frame(), ["A", "B"], "A")
    table = tables.compare_layer_table(rows, LABELS, "layer").set_index(["layer", "run_id"])
    assert table.loc[("relu1", "A"), "time_ms"] == 0.5
    assert pd.isna(table.loc[("relu1", "A"), "energy_mj"]) and table.loc[("relu1", "A"), "resolved"] == False  # noqa: E712
    assert not table.loc[("relu1", "B"), "in_run"]
    assert table.loc[("fc", "B"), "run"] == "2: b [SIMULATED]"
    assert table.loc[("fc", "B"), "energy_mj"] == 30.0 and table.loc[("fc", "B"), "energy_ratio"] == 1.5
    assert "n_layers" not in table.columns
    modules = tables.compare_layer_table(rows, LABELS, "module")
    assert "module" in modules.columns and "type" not in modules.columns


def test_compare_chart_groups_bars_and_leaves_gaps():
    rows = tables.compare_rows(layers_frame(), ["A", "B"], "A")
    spec = charts.compare_chart(rows, LABELS, "energy", "layer", simulated=pd.Series([False, True])).to_dict()
    bars = spec["layer"][0]
    data = spec["datasets"][bars["data"]["name"]] if "data" in bars else spec["datasets"][spec["data"]["name"]]
    pairs = {(r["key"], r["run"]): r for r in data}
    assert set(pairs) == {("conv1", "1: a"), ("relu1", "1: a"), ("fc", "1: a"), ("conv1", "2: b [SIMULATED]"),
                          ("fc", "2: b [SIMULATED]"), ("extra", "2: b [SIMULATED]")}  # no bar for a missing layer
    assert pairs[("relu1", "1: a")]["status"] == charts.UNRESOLVED
    assert pairs[("fc", "2: b [SIMULATED]")]["energy_mj"] == 30.0
    encoding = bars["encoding"]
    # Keys in aligned order: sorted by their position in the alignment.
    assert encoding["y"]["sort"] == {"field": "order", "op": "min"}
    assert {r["key"]: r["order"] for r in data} == {"conv1": 0, "relu1": 1, "fc": 2, "extra": 3}
    assert encoding["yOffset"]["scale"]["domain"] == ["1: a", "2: b [SIMULATED]"]  # each run keeps its slot
    assert encoding["color"]["scale"]["domain"] == ["1: a", "2: b [SIMULATED]"]
    assert encoding["strokeDash"]["field"] == "status"
    assert spec["title"] == ("Energy per layer (mJ), each run on its primary rail "
                             "(runs marked [SIMULATED]: SIMULATED data, not a measurement)")


def test_compare_ratio_chart_leaves_the_baseline_out_and_marks_one():
    rows = tables.compare_rows(layers_frame(), ["A", "B"], "A")
    spec = charts.compare_chart(rows, LABELS, "time", "layer", ratio_to="A").to_dict()
    bars, rule = spec["layer"]
    data = spec["datasets"][bars["data"]["name"]]
    assert {(r["key"], r["time_ratio"]) for r in data} == {("conv1", 0.5), ("fc", 2.0)}
    assert bars["encoding"]["yOffset"]["scale"]["domain"] == ["2: b [SIMULATED]"]
    assert spec["datasets"][rule["data"]["name"]] == [{"one": 1.0}]
    assert spec["title"] == "Time per layer, run / baseline"
    assert bars["encoding"]["x"]["title"] == "time: run / baseline 1: a"


def test_compare_totals_table():
    totals = pd.DataFrame({
        "run_id": ["B", "A"], "name": ["b", "a"], "network": ["n", "n"], "device": ["TX2", "TX1"],
        "engine": ["opencv", "caffe"], "mode": ["network"] * 2, "owner": ["bo", "ana"], "team": ["y", "x"],
        "simulated": [True, False], "rail": ["VDD_IN", None], "iterations": [10, 10],
        "time_ms_per_inference": [30.0, 10.0], "energy_mj_per_inference": [90.0, None],
        "setup_time_ms": [100.0, 200.0], "setup_energy_mj": [5.0, None],
        "inference_time_ms": [300.0, 100.0], "inference_energy_mj": [900.0, None],
    })
    table = tables.compare_totals_table(totals, LABELS, ["A", "B"], "A")
    assert table["run_id"].tolist() == ["A", "B"] and table["data"].tolist() == ["measured", "SIMULATED"]
    assert table["time_ratio"].tolist() == [1.0, 3.0]
    assert table["energy_ratio"].isna().all()  # the baseline has no energy
    assert table["setup_plus_inference_time_ms"].tolist() == [300.0, 400.0]
    assert pd.isna(table.loc[0, "setup_plus_inference_energy_mj"])
    assert table.loc[1, "setup_plus_inference_energy_mj"] == 905.0
    by_b = tables.compare_totals_table(totals, LABELS, ["A", "B"], "B")
    assert by_b["time_ratio"].tolist() == pytest.approx([1 / 3, 1.0])


# Queries on real imported runs


@pytest.fixture
def ids(sample_store) -> dict[str, str]:
    return run_ids_by_name(sample_store)


def test_compare_layers_by_layer_match_the_primary_rail_stats(sample_store, ids):
    chosen = [ids[SQUEEZE_NET], ids[ALEXNET]]
    layers = queries.compare_layers(chosen)
    assert list(layers.columns) == queries.COMPARE_COLUMNS
    for run_id in chosen:
        stats = queries.layer_stats(run_id)
        stats = stats[stats["rail"] == "VDD_IN"]
        mine = layers[layers["run_id"] == run_id]
        assert mine["key"].tolist() == stats["name"].tolist()
        assert mine["time_ms"].tolist() == stats["time_ms_mean"].tolist()
        assert mine["energy_mj"].tolist() == stats["energy_mj_mean"].tolist()
        assert mine["resolved"].tolist() == stats["resolved"].tolist()


def test_compare_layers_follow_each_runs_primary_rail(sample_store, ids):
    with connect(sample_store) as con:
        con.execute("UPDATE runs SET primary_rail = 'VDD_GPU' WHERE run_id = ?", [ids[ALEXNET]])
    stats = queries.layer_stats(ids[ALEXNET])
    gpu = stats[stats["rail"] == "VDD_GPU"]
    layers = queries.compare_layers([ids[ALEXNET], ids[SQUEEZE_NET]])
    assert layers.loc[layers["run_id"] == ids[ALEXNET], "energy_mj"].tolist() == gpu["energy_mj_mean"].tolist()


def test_compare_layers_by_module_sum_their_layers(sample_store, ids):
    run_id = ids[SQUEEZE_NET]
    stats = queries.layer_stats(run_id)
    stats = stats[stats["rail"] == "VDD_IN"].assign(module=lambda f: f["module"].fillna(f["name"]))
    modules = queries.compare_layers([run_id], "module").set_index("key")
    expected = stats.groupby("module").agg(time_ms=("time_ms_mean", "sum"), energy_mj=("energy_mj_mean", "sum"),
                                           n_layers=("name", "size"), resolved=("resolved", "all"))
    assert set(modules.index) == set(expected.index)
    assert modules.loc["fire2", "n_layers"] == 7
    for column in ["time_ms", "energy_mj"]:
        assert modules[column].to_dict() == pytest.approx(expected[column].to_dict())
    assert modules["resolved"].astype(bool).to_dict() == expected["resolved"].to_dict()
    assert modules.loc["conv1", "position"] == 0


def test_compare_layers_of_a_timing_only_run(sample_store, ids):
    run_id = ids[ALEXNET]
    make_timing_only(sample_store, run_id)
    layers = queries.compare_layers([run_id])
    assert len(layers) == 23 and layers["energy_mj"].isna().all() and layers["time_ms"].notna().all()
    modules = queries.compare_layers([run_id], "module")
    assert modules["energy_mj"].isna().all() and modules["resolved"].isna().all()
    totals = queries.compare_totals([run_id]).iloc[0]
    assert totals["setup_time_ms"] > 0 and pd.isna(totals["setup_energy_mj"]) and totals["rail"] is None


def test_compare_totals_read_phases_of_the_primary_rail(sample_store, ids):
    run_id = ids[GOOGLENET]
    totals = queries.compare_totals([run_id, ids[ALEXNET]]).set_index("run_id")
    phases = queries.phase_stats(run_id)
    phases = phases[phases["rail"] == "VDD_IN"].set_index("phase")
    row = totals.loc[run_id]
    assert row["setup_energy_mj"] == phases.loc["setup", "energy_mj"]
    assert row["inference_time_ms"] == phases.loc["inference", "time_ms"]
    assert row["inference_energy_mj"] == phases.loc["inference", "energy_mj"]
    assert row["energy_mj_per_inference"] == queries.get_run(run_id)["energy_mj_per_inference"]


def make_timing_only(db, run_id: str) -> None:
    """The run as if recorded with --rails none: per-layer and phase rows without a rail, no energy."""
    with connect(db) as con:
        for table in ["layer_stats", "phase_stats"]:
            con.execute(f"DELETE FROM {table} WHERE run_id = ? AND rail <> 'VDD_IN'", [run_id])
        con.execute("UPDATE layer_stats SET rail = NULL, energy_mj_mean = NULL, energy_mj_ci95 = NULL, "
                    "energy_above_idle_mj_mean = NULL, resolved = NULL WHERE run_id = ?", [run_id])
        con.execute("UPDATE phase_stats SET rail = NULL, energy_mj = NULL, energy_above_idle_mj = NULL, "
                    "power_mw_mean = NULL WHERE run_id = ?", [run_id])
        con.execute("DELETE FROM rails WHERE run_id = ?", [run_id])
        con.execute("UPDATE runs SET primary_rail = NULL, energy_mj_per_inference = NULL WHERE run_id = ?", [run_id])


# The page


def open_compare(params: dict | None = None):
    at = app_test().run()
    at.switch_page("views/compare.py")
    at.query_params.clear()
    for key, value in (params or {}).items():
        at.query_params[key] = value
    return at.run()


def totals_shown(at) -> pd.DataFrame:
    return at.dataframe[0].value.set_index("run_id")


def test_compare_needs_two_runs(sample_store, ids):
    at = open_compare()
    no_exception(at)
    assert at.title[0].value == "Compare"
    assert any(TOO_FEW in text for text in texts(at.info))
    at = open_compare({"run": ids[ALEXNET]})
    assert any(TOO_FEW in text for text in texts(at.info))
    assert not at.dataframe and not vega_charts(at)


def test_compare_two_runs_from_the_url(sample_store, ids):
    chosen = [ids[SQUEEZE_NET], ids[SQUEEZE_LOOP]]
    at = open_compare({"run": chosen})
    no_exception(at)
    assert at.multiselect(key="compare_runs").value == chosen
    assert at.query_params["by"] == "layer" and at.query_params["baseline"] == chosen[0]
    assert "2 of 2 runs hold SIMULATED data" in at.warning[0].value

    totals = totals_shown(at)
    assert totals.index.tolist() == chosen
    net, loop = (queries.get_run(r) for r in chosen)
    assert totals.loc[chosen[1], "time_ms_per_inference"] == loop["time_ms_per_inference"]
    assert totals.loc[chosen[1], "time_ratio"] == pytest.approx(
        loop["time_ms_per_inference"] / net["time_ms_per_inference"])
    assert totals.loc[chosen[1], "energy_ratio"] == pytest.approx(
        loop["energy_mj_per_inference"] / net["energy_mj_per_inference"])
    assert totals.loc[chosen[0], "run"] == "1: squeezenet_v1.1-network [SIMULATED]"

    shown = vega_charts(at)
    assert len(shown) == 4
    titles = [spec["title"] for spec, _ in shown]
    assert titles[0].startswith("Energy per layer (mJ)") and titles[0].endswith("(runs marked [SIMULATED])")
    assert titles[1].startswith("Energy per layer, run / baseline: SIMULATED data")
    assert shown[1][0]["layer"][0]["encoding"]["x"]["title"] == (
        "energy: run / baseline 1: squeezenet_v1.1-network [SIMULATED]")
    spec, frames = shown[2]  # time per layer
    bars = chart_rows(spec, frames, 0)
    stats = queries.layer_stats(chosen[1])
    conv10 = stats[(stats["rail"] == "VDD_IN") & (stats["name"] == "conv10")]["time_ms_mean"].item()
    assert bars.set_index(["key", "run"]).loc[("conv10", "2: squeezenet_v1.1-layerloop [SIMULATED]"),
                                                "time_ms"] == conv10

    layers = at.dataframe[1].value
    assert len(layers) == 2 * 66 and layers["in_run"].all()
    unresolved = layers[layers["resolved"] == False]  # noqa: E712
    assert len(unresolved) > 0 and unresolved["energy_mj"].isna().all()
    assert any("Faint dashed bars" in text for text in texts(at.caption))


def test_compare_by_module_and_baseline_widgets(sample_store, ids):
    chosen = [ids[SQUEEZE_NET], ids[SQUEEZE_LOOP]]
    at = open_compare({"run": chosen})
    at.radio(key="compare_by").set_value("module").run()
    no_exception(at)
    assert at.query_params["by"] == "module"
    modules = at.dataframe[1].value.set_index(["module", "run_id"])
    assert modules.loc[("fire2", chosen[0]), "n_layers"] == 7
    at.selectbox(key="compare_baseline").select(chosen[1]).run()
    assert at.query_params["baseline"] == chosen[1]
    totals = totals_shown(at)
    assert totals.loc[chosen[1], "time_ratio"] == 1.0
    modules = at.dataframe[1].value.set_index(["module", "run_id"])
    assert modules.loc[("conv10", chosen[0]), "time_ratio"] == pytest.approx(
        modules.loc[("conv10", chosen[0]), "time_ms"] / modules.loc[("conv10", chosen[1]), "time_ms"])


def test_compare_restores_module_view_and_baseline_from_url(sample_store, ids):
    chosen = [ids[SQUEEZE_NET], ids[ALEXNET]]
    at = open_compare({"run": chosen, "by": "module", "baseline": ids[ALEXNET]})
    no_exception(at)
    assert at.radio(key="compare_by").value == "module"
    assert at.selectbox(key="compare_baseline").value == ids[ALEXNET]
    assert totals_shown(at).loc[ids[ALEXNET], "energy_ratio"] == 1.0


def test_compare_across_networks_devices_and_owners_shows_gaps(sample_store, ids):
    with connect(sample_store) as con:
        con.execute("UPDATE runs SET device = 'TX2', owner = 'bo', team = 'lab-b', primary_rail = 'VDD_GPU' "
                    "WHERE run_id = ?", [ids[ALEXNET]])
    chosen = [ids[SQUEEZE_NET], ids[ALEXNET]]
    at = open_compare({"run": chosen})
    no_exception(at)
    totals = totals_shown(at)
    assert totals.loc[ids[ALEXNET], ["device", "owner", "team", "rail"]].tolist() == ["TX2", "bo", "lab-b", "VDD_GPU"]
    assert totals.loc[ids[SQUEEZE_NET], ["device", "owner", "rail"]].tolist() == ["vm", "root", "VDD_IN"]
    captions = texts(at.caption)
    assert any("different networks" in text for text in captions)
    assert any("different primary rails" in text for text in captions)
    assert any("are missing from some runs" in text for text in captions)
    layers = at.dataframe[1].value.set_index(["layer", "run_id"])
    assert not layers.loc[("fire2/squeeze1x1", ids[ALEXNET]), "in_run"]
    assert pd.isna(layers.loc[("fire2/squeeze1x1", ids[ALEXNET]), "time_ms"])
    spec, frames = vega_charts(at)[2]
    bars = chart_rows(spec, frames, 0)
    assert set(bars.loc[bars["key"] == "fire2/squeeze1x1", "run"]) == {"1: squeezenet_v1.1-network [SIMULATED]"}
    assert set(bars.loc[bars["key"] == "fc8", "run"]) == {"2: alexnet-layerloop [SIMULATED]"}


def test_compare_with_a_timing_only_run(sample_store, ids):
    make_timing_only(sample_store, ids[ALEXNET])
    chosen = [ids[ALEXNET], ids[SQUEEZE_NET]]
    at = open_compare({"run": chosen})
    no_exception(at)
    totals = totals_shown(at)
    assert pd.isna(totals.loc[ids[ALEXNET], "energy_mj_per_inference"])
    assert totals["energy_ratio"].isna().all()  # the baseline has no energy
    assert any("No power data (timing only), so no energy bars: 1: alexnet-layerloop" in text
               for text in texts(at.caption))
    spec, frames = vega_charts(at)[0]
    assert set(chart_rows(spec, frames, 0)["run"]) == {"2: squeezenet_v1.1-network [SIMULATED]"}


def test_compare_unknown_run_in_url(sample_store, ids):
    at = open_compare({"run": ["no-such-run", ids[ALEXNET], ids[GOOGLENET]]})
    no_exception(at)
    assert any("no-such-run" in text for text in texts(at.warning))
    assert totals_shown(at).index.tolist() == [ids[ALEXNET], ids[GOOGLENET]]


def test_compare_takes_at_most_six_runs(sample_store, ids):
    with connect(sample_store) as con:
        con.execute("INSERT INTO runs SELECT * EXCLUDE (k) REPLACE (run_id || '-copy' || k AS run_id) "
                    "FROM runs CROSS JOIN (SELECT range AS k FROM range(1, 4)) WHERE runs.name = ?", [ALEXNET])
    seven = [*ids.values(), *(f"{ids[ALEXNET]}-copy{k}" for k in (1, 2, 3))]
    at = open_compare({"run": seven})
    no_exception(at)
    assert any("At most 6 runs" in text for text in texts(at.warning))
    assert at.multiselect(key="compare_runs").value == seven[:6]
    assert at.query_params["run"] == seven[:6]
    assert len(totals_shown(at)) == 6
