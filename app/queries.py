"""The dashboard's one query module: every SQL statement the app runs lives here (the per-layer query is
shared with `layerjoule report`: importer.report.LAYER_STATS_SQL).

Each function opens a short-lived read-only connection (importer.store.connect retries while the importer
holds the file), runs one query, closes the connection and returns plain data. No connection is kept between
calls: DuckDB lets no other process write the file while any connection to it is open, and the command-line
importer must be able to import while the dashboard is open. Results are cached for CACHE_TTL_S seconds only,
so a new import shows on the next page load.

The database is importer.store.resolve_db_path(db): the LAYERJOULE_DB environment variable (which
`layerjoule app --db PATH` sets for the streamlit process) or the default store.
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from importer import store
from importer.report import LAYER_STATS_SQL
from importer.store import connect, resolve_db_path

CACHE_TTL_S = 2.0

RUN_COLUMNS = [
    "run_id",
    "name",
    "network",
    "device",
    "engine",
    "mode",
    "owner",
    "team",
    "tags",
    "simulated",
    "iterations",
    "time_ms_per_inference",
    "energy_mj_per_inference",
    "imported_utc",
    "primary_rail",
]


def _db_key(db: str | os.PathLike | None) -> str:
    """The resolved database path as a string: part of every cache key, so two stores never share results."""
    return str(resolve_db_path(db))


def _frame(db_path: str, sql: str, params: list[Any] | None = None) -> pd.DataFrame:
    with connect(db_path, read_only=True) as con:
        return con.execute(sql, params or []).df()


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def _list_runs(db_path: str) -> pd.DataFrame:
    return _frame(
        db_path,
        f"SELECT {', '.join(RUN_COLUMNS)} FROM runs ORDER BY imported_utc DESC, run_id",
    )


def list_runs(db: str | os.PathLike | None = None) -> pd.DataFrame:
    """One row per run, newest import first; columns RUN_COLUMNS (tags is a list of strings)."""
    return _list_runs(_db_key(db))


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def _get_run(db_path: str, run_id: str) -> dict[str, Any] | None:
    return _run_row(_frame(db_path, "SELECT * FROM runs WHERE run_id = ?", [run_id]))


def _run_row(frame: pd.DataFrame) -> dict[str, Any] | None:
    if frame.empty:
        return None
    row = frame.iloc[0].to_dict()
    manifest = row.get("manifest")
    row["manifest"] = json.loads(manifest) if isinstance(manifest, str) and manifest else None
    return {key: _plain(value) for key, value in row.items()}


def get_run(run_id: str, db: str | os.PathLike | None = None) -> dict[str, Any] | None:
    """All columns of one run as a dict (manifest parsed from JSON, SQL NULL as None); None if no such run."""
    return _get_run(_db_key(db), run_id)


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def _layer_stats(db_path: str, run_id: str) -> pd.DataFrame:
    return _frame(db_path, LAYER_STATS_SQL, [run_id])


def layer_stats(run_id: str, db: str | os.PathLike | None = None) -> pd.DataFrame:
    """Per-layer statistics of a run, one row per layer and rail (rail None for a timing-only run)."""
    return _layer_stats(_db_key(db), run_id)


PHASE_STATS_SQL = """
    SELECT phase, rail, occurrences, time_ms, energy_mj, energy_above_idle_mj, power_mw_mean
    FROM phase_stats
    WHERE run_id = ?
    ORDER BY CASE phase WHEN 'setup' THEN 0 WHEN 'warmup' THEN 1 WHEN 'inference' THEN 2
                        WHEN 'idle' THEN 3 ELSE 4 END,
             phase, rail NULLS FIRST
"""


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def _phase_stats(db_path: str, run_id: str) -> pd.DataFrame:
    return _frame(db_path, PHASE_STATS_SQL, [run_id])


def phase_stats(run_id: str, db: str | os.PathLike | None = None) -> pd.DataFrame:
    """Time and energy per phase (setup, warmup, inference, idle, then any other) and rail."""
    return _phase_stats(_db_key(db), run_id)


RAILS_SQL = """
    SELECT rail, source, source_kind, is_total, update_interval_ns, simulated, n_samples
    FROM rails
    WHERE run_id = ?
    ORDER BY is_total DESC, rail
"""


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def _rails(db_path: str, run_id: str) -> pd.DataFrame:
    return _frame(db_path, RAILS_SQL, [run_id])


def rails(run_id: str, db: str | os.PathLike | None = None) -> pd.DataFrame:
    """The power rails of a run, total rails first; empty for a run without power data."""
    return _rails(_db_key(db), run_id)


def _plain(value: Any) -> Any:
    """A value of a result row as plain Python: SQL NULL (None, NaN, NaT, NA) as None, arrays as lists."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (str, list, dict)):
        return value
    if value is None or pd.isna(value):
        return None
    if isinstance(value, np.generic):
        return value.item()
    return value


# --- overview page ---


# --- run page ---

def delete_run(run_id: str, user: str, db: str | os.PathLike | None = None) -> None:
    """Delete a run as `user`: the one write the dashboard makes besides uploads. The store enforces who may
    (importer.store.delete_runs raises InputError otherwise); the caches are cleared so every page forgets it."""
    with connect(_db_key(db)) as con:
        store.delete_run(con, run_id, user)
    st.cache_data.clear()


# Per-layer statistics of one rail summed per module (fire, inception, res blocks; a layer without a module is a
# group of its own) or per layer type. A sum is only given when every layer has its figure, a group is resolved
# only when all its layers are, and the 95% intervals combine as the root of the sum of squares (independent
# layers), empty when any layer has none: an aggregate never looks more exact than its parts.
GROUP_KEYS = {"module": "coalesce(module, name)", "type": "type"}
LAYER_GROUPS_SQL = """
    WITH l AS ({layer_stats}), one AS (SELECT * FROM l WHERE rail IS NOT DISTINCT FROM ?)
    SELECT {key} AS "group", min(layer_index) AS first_index, count(*) AS n_layers,
           string_agg(name, ', ' ORDER BY layer_index) AS layers,
           max(n_iterations) AS n_iterations,
           sum(time_ms_mean) AS time_ms_mean,
           CASE WHEN count(time_ms_ci95) = count(*) THEN sqrt(sum(time_ms_ci95 ^ 2)) END AS time_ms_ci95,
           CASE WHEN count(energy_mj_mean) = count(*) THEN sum(energy_mj_mean) END AS energy_mj_mean,
           CASE WHEN count(energy_mj_ci95) = count(*) THEN sqrt(sum(energy_mj_ci95 ^ 2)) END AS energy_mj_ci95,
           CASE WHEN count(energy_above_idle_mj_mean) = count(*) THEN sum(energy_above_idle_mj_mean) END
               AS energy_above_idle_mj_mean,
           CASE WHEN count(energy_mj_mean) > 0 THEN bool_and(coalesce(resolved, false)) END AS resolved,
           count(*) FILTER (WHERE NOT coalesce(resolved, false)) AS n_unresolved,
           count(*) FILTER (WHERE added_by_engine) AS n_added_by_engine,
           sum(macs) AS macs, sum(flops) AS flops, sum(params) AS params, sum(traffic_bytes) AS traffic_bytes
    FROM one
    GROUP BY 1
    ORDER BY first_index
"""

# The power timeline, downsampled in SQL: each rail's samples in the window fall into at most `buckets` time
# buckets, each keeping min, max and mean, so peaks survive and a run of any length gives a chart of bounded
# size. A bucket is drawn at its end (a sensor value is the average over the time before it), which is also
# cheaper than the time of its last sample. One aggregate per rail (UNION ALL): an integer group key hashes much
# faster than (rail, bucket).
POWER_RAIL_SQL = """
    SELECT $rail_{i} AS rail,
           (least($lo_ns + ((t_ns - $lo_ns) // $width_ns + 1) * $width_ns, $hi_ns) - $t0_ns) / 1e9 AS t_s,
           min(power_mw) AS power_mw_min, max(power_mw) AS power_mw_max, avg(power_mw) AS power_mw_mean,
           count(*) AS n_samples
    FROM power_samples
    WHERE run_id = $run_id AND rail = $rail_{i} AND t_ns BETWEEN $lo_ns AND $hi_ns
    GROUP BY (t_ns - $lo_ns) // $width_ns
"""

# The layer intervals in a window: one row per interval when there are at most $max_rows of them, else merged
# per time bucket (one bar per bucket, coloured by the layer type that ran longest in it). Types are joined
# as small integers so that merging a million intervals groups by integers only.
LAYER_INTERVALS_SQL = """
    WITH e AS (
        SELECT t_start_ns, t_end_ns, phase, iteration, layer_index
        FROM layer_events
        WHERE run_id = $run_id AND t_end_ns > $lo_ns AND t_start_ns < $hi_ns
    ),
    n AS (SELECT count(*) AS n FROM e),
    kinds AS (
        SELECT layer_index, name, type, dense_rank() OVER (ORDER BY type) AS type_id FROM layers WHERE run_id = $run_id
    ),
    per_type AS (
        SELECT (t_start_ns - $lo_ns) // $width_ns AS bucket, type_id, min(t_start_ns) AS t_start_ns,
               max(t_end_ns) AS t_end_ns, sum(t_end_ns - t_start_ns) AS busy_ns, count(*) AS n_layers
        FROM e JOIN kinds USING (layer_index)
        WHERE (SELECT n FROM n) > $max_rows
        GROUP BY ALL
    ),
    merged AS (
        SELECT min(t_start_ns) AS t_start_ns, max(t_end_ns) AS t_end_ns, arg_max(type_id, busy_ns) AS type_id,
               sum(n_layers)::BIGINT AS n_layers
        FROM per_type GROUP BY bucket
    )
    SELECT (t_start_ns - $t0_ns) / 1e9 AS t_start_s, (t_end_ns - $t0_ns) / 1e9 AS t_end_s,
           (t_end_ns - t_start_ns) / 1e6 AS duration_ms, name, type, phase, iteration, 1::BIGINT AS n_layers
    FROM e JOIN kinds USING (layer_index)
    WHERE (SELECT n FROM n) <= $max_rows
    UNION ALL
    SELECT (t_start_ns - $t0_ns) / 1e9, (t_end_ns - $t0_ns) / 1e9, (t_end_ns - t_start_ns) / 1e6,
           format('{} layer intervals merged (mostly {})', n_layers, type), type, NULL, NULL, n_layers
    FROM merged JOIN (SELECT DISTINCT type_id, type FROM kinds) USING (type_id)
    ORDER BY t_start_s
"""

MAX_BUCKETS_PER_RAIL = 2000  # a chart about 1,000 pixels wide shows no more; min and max keep the peaks
MAX_POWER_ROWS = 4000  # all rails together: exported charts stay under Altair's 5,000-row limit
MAX_INTERVAL_ROWS = 2000
POWER_COLUMNS = ["rail", "t_s", "power_mw_min", "power_mw_max", "power_mw_mean", "n_samples"]


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def _layer_groups(db_path: str, run_id: str, rail: str | None, by: str) -> pd.DataFrame:
    sql = LAYER_GROUPS_SQL.format(layer_stats=LAYER_STATS_SQL, key=GROUP_KEYS[by])
    return _frame(db_path, sql, [run_id, rail])


def layer_groups(run_id: str, rail: str | None, by: str, db: str | os.PathLike | None = None) -> pd.DataFrame:
    """One rail's per-layer statistics summed per group (by "module" or "type"), groups in network order.

    rail None: the timing-only rows. Columns: group, first_index, n_layers, layers, n_iterations, time_ms_mean,
    time_ms_ci95, energy_mj_mean, energy_mj_ci95, energy_above_idle_mj_mean, resolved, n_unresolved,
    n_added_by_engine, macs, flops, params, traffic_bytes.
    """
    if by not in GROUP_KEYS:
        raise ValueError(f"group by one of {sorted(GROUP_KEYS)}, not {by!r}")
    return _layer_groups(_db_key(db), run_id, rail, by)


# Where a run's time stamps lie, from the cheapest table that has them (phase events are a handful of rows; power
# samples may be millions).
SPAN_SQL = [
    "SELECT min(t_start_ns), max(t_end_ns) FROM phase_events WHERE run_id = ?",
    "SELECT min(t_start_ns), max(t_end_ns) FROM layer_events WHERE run_id = ?",
    "SELECT min(t_ns), max(t_ns) FROM power_samples WHERE run_id = ?",
]
ITERATION_SPAN_SQL = """
    SELECT min(t_start_ns), max(t_end_ns) FROM layer_events WHERE run_id = ? AND phase = ? AND iteration = ?
"""
SOURCES_SQL = """
    SELECT kind, path, imported_utc, content_sha256 FROM sources WHERE run_id = ? ORDER BY imported_utc, kind
"""
ALIGNMENTS_SQL = """
    SELECT source, kind, method, offset_ns, residual_ns, n_points FROM alignments WHERE run_id = ? ORDER BY source
"""

RUN_DETAILS_SQL = {
    "run": "SELECT * FROM runs WHERE run_id = ?",
    "rails": RAILS_SQL,
    "layer_stats": LAYER_STATS_SQL,
    "phase_stats": PHASE_STATS_SQL,
    "sources": SOURCES_SQL,
    "alignments": ALIGNMENTS_SQL,
}


def _span(con, sql: str, params: list[Any]) -> tuple[int, int] | None:
    lo_ns, hi_ns = con.execute(sql, params).fetchone()
    return None if lo_ns is None else (int(lo_ns), int(hi_ns))


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def _run_details(db_path: str, run_id: str) -> dict[str, Any]:
    # One connection for all of them: opening one (~20 ms) costs more than these small queries.
    with connect(db_path, read_only=True) as con:
        details = {name: con.execute(sql, [run_id]).df() for name, sql in RUN_DETAILS_SQL.items()}
        details["span"] = next(filter(None, (_span(con, sql, [run_id]) for sql in SPAN_SQL)), None)
        details["admins"] = store.admins(con)  # who may delete any run (importer.store.may_delete)
    details["run"] = _run_row(details["run"])
    return details


def run_details(run_id: str, db: str | os.PathLike | None = None) -> dict[str, Any]:
    """What the run page shows of one run, read over one connection: run (as get_run(): None if there is no
    such run), rails (as rails()), layer_stats (as layer_stats()), phase_stats (as phase_stats()), sources (the
    files it was imported from), alignments (how each extra source's clock was aligned: docs/alignment.md),
    admins (the store's admin names) and span: (first, last) time stamp in ns on the run's clock, from its
    phases, else its layer intervals, else its power samples (None if it has none)."""
    return _run_details(_db_key(db), run_id)


def _width_ns(lo_ns: int, hi_ns: int, buckets: int) -> int:
    return max(1, -(-(hi_ns - lo_ns) // max(1, buckets)))


def _power(con, run_id: str, rails: tuple[str, ...], lo_ns: int, hi_ns: int, t0_ns: int) -> pd.DataFrame:
    if not rails:
        return pd.DataFrame(columns=POWER_COLUMNS)
    buckets = min(MAX_BUCKETS_PER_RAIL, MAX_POWER_ROWS // len(rails))
    sql = " UNION ALL ".join(POWER_RAIL_SQL.format(i=i) for i in range(len(rails))) + " ORDER BY rail, t_s"
    params = {"run_id": run_id, "lo_ns": lo_ns, "hi_ns": hi_ns, "t0_ns": t0_ns,
              "width_ns": _width_ns(lo_ns, hi_ns, buckets), **{f"rail_{i}": rail for i, rail in enumerate(rails)}}
    return con.execute(sql, params).df()


def _intervals(con, run_id: str, lo_ns: int, hi_ns: int, t0_ns: int) -> pd.DataFrame:
    params = {"run_id": run_id, "lo_ns": lo_ns, "hi_ns": hi_ns, "t0_ns": t0_ns, "max_rows": MAX_INTERVAL_ROWS,
              "width_ns": _width_ns(lo_ns, hi_ns, MAX_INTERVAL_ROWS)}
    return con.execute(LAYER_INTERVALS_SQL, params).df()


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def _timeline(
    db_path: str, run_id: str, rails: tuple[str, ...], t0_ns: int, pad_ns: int, window: tuple
) -> dict[str, Any]:
    with connect(db_path, read_only=True) as con:
        if window[0] == "iteration":
            span = _span(con, ITERATION_SPAN_SQL, [run_id, "inference", int(window[1])])
        else:
            span = (int(window[1]), int(window[2]))
        if span is None:
            return {"window_ns": None, "power": pd.DataFrame(columns=POWER_COLUMNS), "intervals": pd.DataFrame()}
        lo_ns, hi_ns = span
        return {
            "window_ns": span,
            "power": _power(con, run_id, rails, lo_ns - pad_ns, hi_ns + pad_ns, t0_ns),
            "intervals": _intervals(con, run_id, lo_ns, hi_ns, t0_ns),
        }


def timeline(
    run_id: str,
    rails: list[str] | tuple[str, ...],
    t0_ns: int,
    *,
    iteration: int | None = None,
    window_ns: tuple[int, int] | None = None,
    pad_ns: int = 0,
    db: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """The power timeline of one inference iteration (from its first layer's start to its last layer's end) or of
    a window (lo_ns, hi_ns), over one connection: window_ns (None if the iteration has no layer intervals);
    power: the rails' samples within the window widened by pad_ns on each side (one sensor period: the values
    covering its edges), downsampled to at most MAX_BUCKETS_PER_RAIL buckets per rail and MAX_POWER_ROWS in all
    (rail, t_s: seconds since t0_ns, power_mw_min, power_mw_max, power_mw_mean, n_samples); intervals: the layer
    intervals overlapping the window (t_start_s, t_end_s, duration_ms, name, type, phase, iteration, n_layers),
    merged per time bucket when there are more than MAX_INTERVAL_ROWS (n_layers > 1, phase and iteration empty).
    """
    window = ("iteration", int(iteration)) if iteration is not None else ("window", *map(int, window_ns))
    return _timeline(_db_key(db), run_id, tuple(rails), int(t0_ns), int(pad_ns), window)


# --- compare page ---

# The per-layer rows of the chosen runs (parameter: a list of run ids), one per run and layer: each run's primary
# rail, or its rows without a rail (a timing-only run, energy NULL); joined with the layer and, by name, the
# model's cost (none for layers an engine adds). `key` names a layer for alignment across runs: its name, with
# " #2", " #3"... for a name repeated within a run.
CHOSEN_LAYERS_SQL = """
    SELECT *,
           CASE WHEN row_number() OVER (PARTITION BY run_id, name ORDER BY layer_index) = 1 THEN name
                ELSE name || ' #' || row_number() OVER (PARTITION BY run_id, name ORDER BY layer_index)
           END AS key
    FROM (
        SELECT s.run_id, s.layer_index, l.name, l.type, l.added_by_engine, s.rail, s.n_iterations,
               s.time_ms_mean, s.time_ms_ci95, s.energy_mj_mean, s.energy_mj_ci95, s.resolved,
               c.module, c.flops, c.traffic_bytes, c.arithmetic_intensity
        FROM layer_stats AS s
        JOIN (SELECT run_id, primary_rail FROM runs WHERE run_id IN (SELECT unnest(?))) AS r
          ON r.run_id = s.run_id AND (s.rail = r.primary_rail OR s.rail IS NULL)
        LEFT JOIN layers AS l ON l.run_id = s.run_id AND l.layer_index = s.layer_index
        LEFT JOIN layer_costs AS c ON c.run_id = s.run_id AND c.layer_name = l.name
        -- The primary rail's row where a layer has both (rows without a rail only stand in for a missing one).
        QUALIFY row_number() OVER (PARTITION BY s.run_id, s.layer_index ORDER BY s.rail NULLS LAST) = 1
    )
"""

COMPARE_COLUMNS = ["run_id", "key", "position", "type", "n_layers", "time_ms", "time_ms_ci95", "energy_mj",
                   "energy_mj_ci95", "resolved"]

COMPARE_BY_LAYER_SQL = f"""
    SELECT run_id, key, layer_index AS position, type, 1 AS n_layers, time_ms_mean AS time_ms, time_ms_ci95,
           energy_mj_mean AS energy_mj, energy_mj_ci95, resolved
    FROM ({CHOSEN_LAYERS_SQL})
    ORDER BY run_id, position
"""

# Per module (fire2, inception_3a...; a layer without a model cost is a module of its own): sums over its layers.
# A module's energy is NULL unless every layer has one, and it is resolved only if every layer is.
COMPARE_BY_MODULE_SQL = f"""
    SELECT run_id, coalesce(module, key) AS key, min(layer_index) AS position, NULL::VARCHAR AS type,
           count(*) AS n_layers, sum(time_ms_mean) AS time_ms, NULL::DOUBLE AS time_ms_ci95,
           CASE WHEN count(energy_mj_mean) = count(*) THEN sum(energy_mj_mean) END AS energy_mj,
           NULL::DOUBLE AS energy_mj_ci95,
           CASE WHEN count(energy_mj_mean) = count(*) THEN bool_and(coalesce(resolved, false)) END AS resolved
    FROM ({CHOSEN_LAYERS_SQL})
    GROUP BY ALL
    ORDER BY run_id, position
"""


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def _compare_layers(db_path: str, run_ids: tuple[str, ...], by: str) -> pd.DataFrame:
    sql = COMPARE_BY_MODULE_SQL if by == "module" else COMPARE_BY_LAYER_SQL
    return _frame(db_path, sql, [list(run_ids)])[COMPARE_COLUMNS]


def compare_layers(run_ids: list[str], by: str = "layer", db: str | os.PathLike | None = None) -> pd.DataFrame:
    """Time and energy per layer (by="layer", key = layer name) or per module (by="module") of the chosen runs,
    on each run's primary rail; columns COMPARE_COLUMNS, one row per run and key (none where a run lacks it).
    """
    if by not in ("layer", "module"):
        raise ValueError(f"by must be 'layer' or 'module', not {by!r}")
    return _compare_layers(_db_key(db), tuple(run_ids), by)


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def _compare_totals(db_path: str, run_ids: tuple[str, ...]) -> pd.DataFrame:
    return _frame(
        db_path,
        """
        SELECT r.run_id, r.name, r.network, r.device, r.engine, r.mode, r.owner, r.team, r.simulated,
               r.primary_rail AS rail, r.iterations, r.time_ms_per_inference, r.energy_mj_per_inference,
               any_value(p.time_ms) FILTER (WHERE p.phase = 'setup') AS setup_time_ms,
               any_value(p.energy_mj) FILTER (WHERE p.phase = 'setup') AS setup_energy_mj,
               any_value(p.time_ms) FILTER (WHERE p.phase = 'inference') AS inference_time_ms,
               any_value(p.energy_mj) FILTER (WHERE p.phase = 'inference') AS inference_energy_mj
        FROM runs AS r
        LEFT JOIN phase_stats AS p ON p.run_id = r.run_id AND p.rail IS NOT DISTINCT FROM r.primary_rail
        WHERE r.run_id IN (SELECT unnest(?))
        GROUP BY ALL
        """,
        [list(run_ids)],
    )


def compare_totals(run_ids: list[str], db: str | os.PathLike | None = None) -> pd.DataFrame:
    """One row per chosen run (in no particular order): the run's identity, time and energy per inference, and
    time and energy of its setup and inference phases on its primary rail (energy NULL without power data).
    """
    return _compare_totals(_db_key(db), tuple(run_ids))


# --- efficiency page ---

# Achieved throughput and energy efficiency per layer: FLOP per ms / 1e6 = GFLOP/s, FLOP per mJ / 1e6 = GFLOP/J.
# A zero time or energy gives NULL, not infinity; so does a layer without a model cost.
EFFICIENCY_SQL = f"""
    SELECT x.run_id, ru.name AS run_name, ru.network, ru.device, ru.engine, ru.simulated,
           x.layer_index, x.name, x.type, x.module, x.flops, x.traffic_bytes, x.arithmetic_intensity,
           x.time_ms_mean AS time_ms, x.energy_mj_mean AS energy_mj, x.rail, x.resolved,
           x.flops / nullif(x.time_ms_mean, 0) / 1e6 AS gflops_per_s,
           x.flops / nullif(x.energy_mj_mean, 0) / 1e6 AS gflop_per_j
    FROM ({CHOSEN_LAYERS_SQL}) AS x
    JOIN runs AS ru ON ru.run_id = x.run_id
    ORDER BY x.run_id, x.layer_index
"""


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def _efficiency_layers(db_path: str, run_ids: tuple[str, ...]) -> pd.DataFrame:
    return _frame(db_path, EFFICIENCY_SQL, [list(run_ids)])


def efficiency_layers(run_ids: list[str], db: str | os.PathLike | None = None) -> pd.DataFrame:
    """Per layer of the chosen runs (primary rail): model FLOPs, traffic and arithmetic intensity (FLOP/byte)
    beside measured time and energy, achieved GFLOP/s and GFLOP/J, and the run's name, device and engine.
    """
    return _efficiency_layers(_db_key(db), tuple(run_ids))


# --- models page ---


# --- upload page ---
