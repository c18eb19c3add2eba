"""Read-side queries used by the command line (`layerjoule runs`, `layerjoule report`)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd

from importer import store
from importer.errors import InputError

RUN_COLUMNS = [
    "run_id", "name", "network", "device", "engine", "engine_device", "mode", "owner", "team", "tags", "simulated",
    "iterations", "time_ms_per_inference", "energy_mj_per_inference", "primary_rail", "created_utc",
    "imported_utc", "model_cost_note", "import_notes",
]
LAYER_COLUMNS = [
    "index", "name", "type", "rail", "n_iterations", "time_ms_mean", "time_ms_std", "time_ms_ci95",
    "energy_mj_mean", "energy_mj_std", "energy_mj_ci95", "energy_above_idle_mj_mean",
    "energy_above_idle_mj_ci95", "power_mw_mean", "resolved", "method",
    "module", "macs", "flops", "params", "weight_bytes", "traffic_bytes", "arithmetic_intensity",
    "measured_bytes_per_s", "added_by_engine",
]


# Per-layer statistics of one run joined with the layer, its model cost and its measured bandwidth: the one query
# behind `layerjoule report` and the dashboard's run page (app/queries.py).
LAYER_STATS_SQL = """
    SELECT s.layer_index, l.name, l.type, l.added_by_engine, s.* EXCLUDE (run_id, layer_index),
           c.module, c.macs, c.flops, c.params, c.weight_bytes, c.traffic_bytes, c.arithmetic_intensity,
           b.measured_bytes_per_s
    FROM layer_stats AS s
    LEFT JOIN layers AS l ON l.run_id = s.run_id AND l.layer_index = s.layer_index
    -- The model's cost joins the measured layers by name (layers an engine adds itself have none).
    LEFT JOIN layer_costs AS c ON c.run_id = s.run_id AND c.layer_name = l.name
    LEFT JOIN (SELECT run_id, layer_index, sum(bytes_per_s) AS measured_bytes_per_s FROM layer_counters
               WHERE bytes_per_s IS NOT NULL GROUP BY ALL) AS b
           ON b.run_id = s.run_id AND b.layer_index = s.layer_index
    WHERE s.run_id = ?
    ORDER BY s.layer_index, s.rail NULLS FIRST
"""


def list_runs(db: str | Path | None = None) -> pd.DataFrame:
    with store.connect(db, read_only=True) as con:
        return con.execute(f"SELECT {', '.join(RUN_COLUMNS)} FROM runs ORDER BY imported_utc, run_id").df()


def run_report(run_id: str, db: str | Path | None = None) -> tuple[dict, pd.DataFrame]:
    """The run's row and its per-layer statistics, one row per layer and rail, in network order."""
    with store.connect(db, read_only=True) as con:
        runs = con.execute(f"SELECT {', '.join(RUN_COLUMNS)} FROM runs WHERE run_id = ?", [run_id]).df()
        if runs.empty:
            raise InputError(f"no run with id {run_id!r} in the store; `layerjoule runs` lists them",
                             path=store.describe(db))
        layers = con.execute(LAYER_STATS_SQL, [run_id]).df().rename(columns={"layer_index": "index"})
    return records(runs)[0], layers[LAYER_COLUMNS]


def records(frame: pd.DataFrame) -> list[dict]:
    """Rows as JSON-ready dicts: NaN/NA become None, time stamps ISO text, numpy scalars Python ones."""
    return json.loads(frame.to_json(orient="records", date_format="iso", date_unit="us"), parse_float=_finite)


def _finite(text: str) -> float | None:
    value = float(text)
    return value if math.isfinite(value) else None
