"""Chart functions of the dashboard, inspected through chart.to_dict() on small frames."""

from __future__ import annotations

import pandas as pd
import pytest

from app import charts


def stats_frame(rail="VDD_IN", energy=(40.25, 3.125, 7.5), resolved=(True, False, True)) -> pd.DataFrame:
    """Three layers given out of network order (pool1, conv1, relu_conv1), one rail."""
    order = [2, 0, 1]
    frame = pd.DataFrame(
        {
            "layer_index": [0, 1, 2],
            "name": ["conv1", "relu_conv1", "pool1"],
            "type": ["Convolution", "ReLU", "Pooling"],
            "rail": [rail] * 3,
            "n_iterations": [200] * 3,
            "time_ms_mean": [5.5, 0.75, 1.25],
            "time_ms_ci95": [0.1, 0.05, None],
            "energy_mj_mean": list(energy),
            "energy_mj_ci95": [1.5, 2.9, 0.4] if energy[0] is not None else [None] * 3,
            "energy_above_idle_mj_mean": [20.0, 1.0, 3.5] if energy[0] is not None else [None] * 3,
            "resolved": list(resolved),
        }
    )
    return frame.iloc[order].reset_index(drop=True)


def layer_data(spec: dict, index: int) -> list[dict]:
    """The data values of one layer of a layered spec (Altair hoists data shared by all layers to the top)."""
    data = spec["layer"][index].get("data", spec.get("data"))
    return spec["datasets"][data["name"]]


def mark_type(layer: dict) -> str:
    mark = layer["mark"]
    return mark if isinstance(mark, str) else mark["type"]


def test_energy_chart_splits_measured_and_unresolved_layers():
    spec = charts.layer_energy_chart(stats_frame()).to_dict()
    measured, error_bars, unresolved = spec["layer"]
    assert [mark_type(layer) for layer in spec["layer"]] == ["bar", "errorbar", "bar"]

    measured_rows = layer_data(spec, 0)
    assert [row["layer"] for row in measured_rows] == ["conv1", "pool1"]
    assert {row["status"] for row in measured_rows} == {charts.MEASURED}
    assert [row["energy_mj_mean"] for row in measured_rows] == [40.25, 7.5]
    assert measured_rows[0]["energy_mj_low"] == pytest.approx(38.75)
    assert measured_rows[0]["energy_mj_high"] == pytest.approx(41.75)

    # Error bars are drawn from the measured rows only.
    assert error_bars["data"] == measured["data"]
    assert error_bars["encoding"]["x"]["field"] == "energy_mj_low"
    assert error_bars["encoding"]["x2"]["field"] == "energy_mj_high"

    unresolved_rows = layer_data(spec, 2)
    assert [row["layer"] for row in unresolved_rows] == ["relu_conv1"]
    assert unresolved_rows[0]["status"] == charts.UNRESOLVED == "unresolved (sensor too slow)"
    assert "indicative only" in unresolved_rows[0]["note"]
    assert "energy_mj_ci95" not in unresolved_rows[0]


def test_unresolved_layers_look_different_and_have_their_legend_entry():
    spec = charts.layer_energy_chart(stats_frame()).to_dict()
    measured, _, unresolved = spec["layer"]
    for layer in (measured, unresolved):
        scale = layer["encoding"]["color"]["scale"]
        assert layer["encoding"]["color"]["field"] == "status"
        assert scale["domain"] == [charts.MEASURED, charts.UNRESOLVED]
        assert scale["range"] == [charts.MEASURED_COLOR, charts.UNRESOLVED_COLOR]
    assert unresolved["mark"]["fillOpacity"] < 0.5
    assert unresolved["mark"]["strokeDash"]
    titles = [tip.get("title") for tip in unresolved["encoding"]["tooltip"]]
    assert "energy_mj (indicative only)" in titles
    assert "unresolved" in titles


def test_layers_in_network_order():
    spec = charts.layer_energy_chart(stats_frame()).to_dict()
    # One label axis for all layers of the chart (bars, error bars, unresolved bars): its domain is the order.
    y = spec["encoding"]["y"]
    assert y["field"] == "layer"
    assert y["scale"]["domain"] == ["conv1", "relu_conv1", "pool1"]
    assert all("y" not in layer["encoding"] for layer in spec["layer"])
    time_spec = charts.layer_time_chart(stats_frame()).to_dict()
    assert [row["layer"] for row in layer_data(time_spec, 0)] == ["conv1", "relu_conv1", "pool1"]
    assert time_spec["encoding"]["y"]["scale"]["domain"] == ["conv1", "relu_conv1", "pool1"]


def test_all_resolved_leaves_unresolved_layer_empty():
    spec = charts.layer_energy_chart(stats_frame(resolved=(True, True, True))).to_dict()
    assert len(layer_data(spec, 0)) == 3
    assert layer_data(spec, 2) == []


def test_missing_resolved_flag_is_not_a_measurement():
    spec = charts.layer_energy_chart(stats_frame(resolved=(True, None, True))).to_dict()
    assert [row["layer"] for row in layer_data(spec, 2)] == ["relu_conv1"]


def test_time_chart_values_and_error_bars():
    spec = charts.layer_time_chart(stats_frame()).to_dict()
    bars, error_bars = spec["layer"]
    rows = {row["layer"]: row for row in layer_data(spec, 0)}
    assert rows["conv1"]["time_ms_mean"] == 5.5
    assert rows["conv1"]["time_ms_low"] == pytest.approx(5.4)
    assert rows["conv1"]["time_ms_high"] == pytest.approx(5.6)
    # No interval stored: no error bar, rather than a zero-width one that would look exact.
    assert rows["pool1"]["time_ms_low"] is None and rows["pool1"]["time_ms_high"] is None
    assert bars["encoding"]["x"]["field"] == "time_ms_mean"
    assert error_bars["encoding"]["x"]["field"] == "time_ms_low"
    assert error_bars["encoding"]["x2"]["field"] == "time_ms_high"
    assert "Time per layer" in spec["title"]


def test_time_chart_keeps_one_row_per_layer_with_several_rails():
    frame = pd.concat([stats_frame("VDD_IN"), stats_frame("VDD_GPU")])
    spec = charts.layer_time_chart(frame).to_dict()
    assert len(layer_data(spec, 0)) == 3


def test_energy_chart_picks_the_rail():
    gpu = stats_frame("VDD_GPU", energy=(20.0, 1.0, 2.0))
    frame = pd.concat([stats_frame("VDD_IN"), gpu])
    spec = charts.layer_energy_chart(frame, rail="VDD_GPU").to_dict()
    assert [row["energy_mj_mean"] for row in layer_data(spec, 0)] == [20.0, 2.0]
    assert "VDD_GPU" in spec["title"]
    with pytest.raises(ValueError, match="several rails"):
        charts.layer_energy_chart(frame)


def test_timing_only_run_has_no_energy_chart():
    timing = stats_frame(rail=None, energy=(None, None, None), resolved=(None, None, None))
    assert not charts.has_energy(timing)
    assert charts.has_energy(stats_frame())
    with pytest.raises(ValueError, match="timing-only"):
        charts.layer_energy_chart(timing)
    # The time chart still works.
    assert len(layer_data(charts.layer_time_chart(timing).to_dict(), 0)) == 3


def test_simulated_runs_are_labelled_in_chart_titles():
    assert "SIMULATED" in charts.layer_energy_chart(stats_frame(), simulated=True).to_dict()["title"]
    assert "SIMULATED" in charts.layer_time_chart(stats_frame(), simulated=True).to_dict()["title"]
    assert "SIMULATED" not in charts.layer_energy_chart(stats_frame()).to_dict()["title"]


def test_duplicate_layer_names_stay_apart():
    frame = stats_frame()
    frame.loc[frame["layer_index"] == 2, "name"] = "conv1"
    spec = charts.layer_time_chart(frame).to_dict()
    assert spec["encoding"]["y"]["scale"]["domain"] == ["0: conv1", "relu_conv1", "2: conv1"]
