"""Tables of the dashboard: pure functions from query results to the frames the pages show (no streamlit).

Measurement honesty: a layer the sensor could not resolve shows resolved=False and empty (NaN) energy cells,
so no unresolved number looks like a measurement; simulated runs are marked SIMULATED in every table.
"""

from __future__ import annotations

import pandas as pd

SIMULATED_LABEL = "SIMULATED"
MEASURED_LABEL = "measured"

RUNS_COLUMNS = [
    "data",
    "name",
    "network",
    "device",
    "engine",
    "mode",
    "iterations",
    "time_ms_per_inference",
    "energy_mj_per_inference",
    "primary_rail",
    "owner",
    "tags",
    "imported_utc",
    "run_id",
]

LAYER_COLUMNS = [
    "index",
    "name",
    "type",
    "added_by_engine",
    "module",
    "time_ms_mean",
    "time_ms_ci95",
    "energy_mj_mean",
    "energy_mj_ci95",
    "energy_above_idle_mj_mean",
    "resolved",
    "method",
    "macs",
    "flops",
    "params",
    "traffic_bytes",
    "arithmetic_intensity",
    "measured_bytes_per_s",
]
ENERGY_COLUMNS = ["energy_mj_mean", "energy_mj_ci95", "energy_above_idle_mj_mean"]

PHASE_COLUMNS = ["phase", "occurrences", "time_ms", "energy_mj", "energy_above_idle_mj", "power_mw_mean"]


def _tags_text(tags: object) -> str:
    if tags is None or isinstance(tags, float):
        return ""
    return ", ".join(str(tag) for tag in tags)


def runs_table(runs: pd.DataFrame) -> pd.DataFrame:
    """The runs list as shown: a 'data' column saying SIMULATED or measured first, tags as text."""
    table = runs.copy()
    table["data"] = [SIMULATED_LABEL if bool(s) else MEASURED_LABEL for s in table["simulated"]]
    table["tags"] = [_tags_text(t) for t in table["tags"]]
    return table[RUNS_COLUMNS].reset_index(drop=True)


def run_label(run: dict | pd.Series) -> str:
    """How a run is named in a select box: name, SIMULATED mark, run id."""
    mark = f" [{SIMULATED_LABEL}]" if bool(run["simulated"]) else ""
    return f"{run['name']}{mark} ({run['run_id']})"


def rail_rows(stats: pd.DataFrame, rail: str | None) -> pd.DataFrame:
    """The rows of one rail (rail None: the rows without a rail, i.e. a timing-only run)."""
    if rail is None:
        return stats[stats["rail"].isna()]
    return stats[stats["rail"] == rail]


def layer_table(stats: pd.DataFrame) -> pd.DataFrame:
    """Per-layer table of one rail in network order; unresolved layers have empty (NaN) energy cells."""
    table = stats.sort_values("layer_index", kind="stable").rename(columns={"layer_index": "index"})
    table = table.reindex(columns=LAYER_COLUMNS).reset_index(drop=True)  # cost columns may be absent
    resolved = table["resolved"].astype("boolean")
    # A figure without a resolved flag is not a measurement either.
    resolved = resolved.mask(resolved.isna() & table["energy_mj_mean"].notna(), False)
    table["resolved"] = resolved
    measured = resolved.fillna(False).astype(bool)
    for column in ENERGY_COLUMNS:
        table[column] = table[column].astype("float64").where(measured)
    return table


def phase_table(phases: pd.DataFrame, rail: str | None) -> pd.DataFrame:
    """Time and energy per phase for one rail (rail None: a run without power data, energy empty)."""
    return rail_rows(phases, rail)[PHASE_COLUMNS].reset_index(drop=True)


ESTIMATOR_WORDS = {
    "direct": "direct (samples integrated over each interval)",
    "statistical": "statistical (least squares over sensor windows, bootstrap 95% interval)",
}


def estimator_summary(stats) -> str:
    """One line: how many layers each estimator gave, and how many of them are resolved."""
    parts = []
    for method, rows in stats[stats["energy_mj_mean"].notna()].groupby("method", sort=True):
        resolved = int(rows["resolved"].fillna(False).astype(bool).sum())
        parts.append(f"{ESTIMATOR_WORDS.get(method, method)}: {len(rows)} layers, {resolved} resolved")
        # docs/measurement.md explains both estimators and the resolution rules
    return "Estimators — " + "; ".join(parts) + ". Unresolved figures are indicative only (docs/measurement.md)."


# --- overview page ---


# --- run page ---


# --- compare page ---


# --- efficiency page ---


# --- models page ---


# --- upload page ---
