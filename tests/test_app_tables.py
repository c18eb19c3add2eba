"""Table transforms of the dashboard (app.tables): what the pages show in st.dataframe."""

from __future__ import annotations

import pandas as pd

from app import tables


def test_layer_table_blanks_unresolved_energy_and_keeps_time():
    stats = pd.DataFrame(
        {
            "layer_index": [1, 0, 2],
            "name": ["relu", "conv1", "pool1"],
            "type": ["ReLU", "Convolution", "Pooling"],
            "rail": ["VDD_IN"] * 3,
            "time_ms_mean": [0.75, 5.5, 1.25],
            "time_ms_ci95": [0.05, 0.1, 0.02],
            "energy_mj_mean": [3.125, 40.25, 7.5],
            "energy_mj_ci95": [2.9, 1.5, 0.4],
            "energy_above_idle_mj_mean": [1.0, 20.0, 3.5],
            "resolved": [False, True, None],
        }
    )
    table = tables.layer_table(stats)
    assert list(table.columns) == tables.LAYER_COLUMNS
    assert table["name"].tolist() == ["conv1", "relu", "pool1"]
    assert table.loc[0, "energy_mj_mean"] == 40.25 and bool(table.loc[0, "resolved"])
    for row in (1, 2):  # unresolved, and a figure without a resolved flag
        assert table.loc[row, tables.ENERGY_COLUMNS].isna().all()
        assert not bool(table.loc[row, "resolved"])
    assert table["time_ms_mean"].tolist() == [5.5, 0.75, 1.25]


def test_layer_table_of_timing_only_run():
    stats = pd.DataFrame(
        {
            "layer_index": [0],
            "name": ["conv1"],
            "type": ["Convolution"],
            "rail": [None],
            "time_ms_mean": [30.5],
            "time_ms_ci95": [0.25],
            "energy_mj_mean": [None],
            "energy_mj_ci95": [None],
            "energy_above_idle_mj_mean": [None],
            "resolved": [None],
        }
    )
    table = tables.layer_table(tables.rail_rows(stats, None))
    assert table.loc[0, "time_ms_mean"] == 30.5
    assert table.loc[0, tables.ENERGY_COLUMNS].isna().all()
    assert pd.isna(table.loc[0, "resolved"])


def test_runs_table_marks_simulated_runs():
    runs = pd.DataFrame(
        {
            "run_id": ["a", "b"],
            "name": ["sim", "real"],
            "network": ["n", "n"],
            "device": ["d", "d"],
            "engine": ["caffe", "caffe"],
            "mode": ["network", "network"],
            "owner": [None, None],
            "tags": [["x", "y"], None],
            "simulated": [True, False],
            "iterations": [10, 10],
            "time_ms_per_inference": [1.0, 2.0],
            "energy_mj_per_inference": [3.0, None],
            "imported_utc": pd.to_datetime(["2026-12-01", "2026-12-02"]),
            "primary_rail": ["VDD_IN", None],
        }
    )
    table = tables.runs_table(runs)
    assert table.columns[0] == "data"
    assert table["data"].tolist() == ["SIMULATED", "measured"]
    assert table["tags"].tolist() == ["x, y", ""]
    assert tables.run_label(runs.iloc[0]) == "sim [SIMULATED] (a)"
    assert tables.run_label(runs.iloc[1]) == "real (b)"


def test_phase_table_picks_the_rail():
    phases = pd.DataFrame(
        {
            "phase": ["setup", "setup"],
            "rail": ["VDD_IN", "VDD_GPU"],
            "occurrences": [1, 1],
            "time_ms": [850.0, 850.0],
            "energy_mj": [4000.0, 1000.0],
            "energy_above_idle_mj": [1875.0, 500.0],
            "power_mw_mean": [4705.9, 1176.5],
        }
    )
    assert tables.phase_table(phases, "VDD_GPU")["energy_mj"].tolist() == [1000.0]
    assert list(tables.phase_table(phases, "VDD_GPU").columns) == tables.PHASE_COLUMNS


def test_estimator_summary_counts_layers_and_resolved_per_method():
    import pandas as pd

    from app.tables import estimator_summary

    stats = pd.DataFrame({"energy_mj_mean": [1.0, 2.0, 3.0, None], "method": ["direct", "statistical",
                                                                              "statistical", None],
                          "resolved": pd.array([True, True, False, pd.NA], dtype="boolean")})
    text = estimator_summary(stats)
    assert "direct (samples integrated over each interval): 1 layers, 1 resolved" in text
    assert "statistical (least squares over sensor windows, bootstrap 95% interval): 2 layers, 1 resolved" in text
