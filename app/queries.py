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
    frame = _frame(db_path, "SELECT * FROM runs WHERE run_id = ?", [run_id])
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


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def _phase_stats(db_path: str, run_id: str) -> pd.DataFrame:
    return _frame(
        db_path,
        """
        SELECT phase, rail, occurrences, time_ms, energy_mj, energy_above_idle_mj, power_mw_mean
        FROM phase_stats
        WHERE run_id = ?
        ORDER BY CASE phase WHEN 'setup' THEN 0 WHEN 'warmup' THEN 1 WHEN 'inference' THEN 2
                            WHEN 'idle' THEN 3 ELSE 4 END,
                 phase, rail NULLS FIRST
        """,
        [run_id],
    )


def phase_stats(run_id: str, db: str | os.PathLike | None = None) -> pd.DataFrame:
    """Time and energy per phase (setup, warmup, inference, idle, then any other) and rail."""
    return _phase_stats(_db_key(db), run_id)


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def _rails(db_path: str, run_id: str) -> pd.DataFrame:
    return _frame(
        db_path,
        """
        SELECT rail, source, source_kind, is_total, update_interval_ns, simulated, n_samples
        FROM rails
        WHERE run_id = ?
        ORDER BY is_total DESC, rail
        """,
        [run_id],
    )


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


# --- compare page ---


# --- efficiency page ---


# --- models page ---


# --- upload page ---
