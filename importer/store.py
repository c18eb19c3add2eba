"""The store: one DuckDB database, its schema and migrations, and lock-tolerant connections.

DuckDB lets one process write a database file, or several processes read it, never both at once. So every user
of the store (the importer, the dashboard) opens a connection for one short piece of work and closes it; opening
retries for a while when another process holds the file.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import duckdb

from importer.errors import InputError

ENV_DB = "LAYERJOULE_DB"
LOCK_RETRY_S = 30.0

def _backfill_layer_costs(con: duckdb.DuckDBPyConnection) -> None:
    """Runs imported before schema 2 get their model cost from the prototxt and manifest they stored."""
    from importer.model.cost import cost_frame, run_layer_costs

    for run_id, prototxt, manifest in con.execute("SELECT run_id, prototxt, manifest FROM runs").fetchall():
        layers, warnings = run_layer_costs(prototxt, json.loads(manifest))
        insert_frame(con, "layer_costs", run_id, cost_frame(layers))
        con.execute("UPDATE runs SET model_cost_note = ? WHERE run_id = ?", ["; ".join(warnings) or None, run_id])


def _recompute_attribution(con: duckdb.DuckDBPyConnection) -> None:
    """Runs imported before schema 3 get the statistical estimator: attribution again from their stored data."""
    from importer.attribution import RailSignal, attribute

    for (run_id,) in con.execute("SELECT run_id FROM runs").fetchall():
        events = con.execute("SELECT phase, iteration, layer_index, repeats, t_start_ns, t_end_ns FROM layer_events "
                             "WHERE run_id = ? ORDER BY t_start_ns", [run_id]).df()
        phases = con.execute("SELECT seq, phase, t_start_ns, t_end_ns FROM phase_events WHERE run_id = ? "
                             "ORDER BY seq", [run_id]).df()
        signals = {}
        for rail, interval_ns in con.execute("SELECT rail, update_interval_ns FROM rails WHERE run_id = ?",
                                             [run_id]).fetchall():
            samples = con.execute("SELECT t_ns, power_mw FROM power_samples WHERE run_id = ? AND rail = ? "
                                  "ORDER BY t_ns", [run_id, rail]).df()
            signals[rail] = RailSignal(samples["t_ns"].to_numpy(), samples["power_mw"].to_numpy(), interval_ns)
        stats, estimates = attribute(events, phases, signals)
        con.execute("DELETE FROM layer_stats WHERE run_id = ?", [run_id])
        insert_frame(con, "layer_stats", run_id, stats)
        insert_frame(con, "layer_estimates", run_id, estimates)

def insert_frame(con: duckdb.DuckDBPyConnection, table: str, run_id: str, frame) -> None:
    """Insert a pandas frame's columns by name, with run_id; DuckDB scans the frame (no Python loop over rows)."""
    if frame.empty:
        return
    columns = ", ".join(frame.columns)
    con.register("incoming_frame", frame)
    try:
        con.execute(f"INSERT INTO {table} (run_id, {columns}) SELECT ?, {columns} FROM incoming_frame", [run_id])
    finally:
        con.unregister("incoming_frame")

# Each migration takes the schema from version N-1 to N: SQL, then optionally a Python step that fills new
# tables from what the store already holds. Append only: never edit a migration that has shipped.
MIGRATIONS: list[tuple[int, str] | tuple[int, str, Callable]] = [
    (
        1,
        """
        CREATE TABLE runs (
            run_id VARCHAR PRIMARY KEY,
            name VARCHAR NOT NULL,
            network VARCHAR,
            device VARCHAR,
            engine VARCHAR,
            engine_version VARCHAR,
            engine_device VARCHAR,
            mode VARCHAR,
            owner VARCHAR,
            tags VARCHAR[],
            simulated BOOLEAN NOT NULL,
            iterations INTEGER,
            warmup INTEGER,
            batch INTEGER,
            input_shape INTEGER[],
            created_utc TIMESTAMP,
            imported_utc TIMESTAMP NOT NULL,
            format_version VARCHAR,
            primary_rail VARCHAR,
            time_ms_per_inference DOUBLE,
            energy_mj_per_inference DOUBLE,
            clock_monotonic_ns BIGINT,
            clock_realtime_utc_ns BIGINT,
            prototxt VARCHAR,
            manifest JSON
        );
        CREATE TABLE sources (
            content_sha256 VARCHAR PRIMARY KEY,
            run_id VARCHAR NOT NULL,
            kind VARCHAR NOT NULL,
            path VARCHAR,
            imported_utc TIMESTAMP NOT NULL
        );
        CREATE TABLE rails (
            run_id VARCHAR NOT NULL,
            rail VARCHAR NOT NULL,
            source VARCHAR,
            source_kind VARCHAR,
            is_total BOOLEAN NOT NULL,
            update_interval_ns BIGINT,
            simulated BOOLEAN NOT NULL,
            n_samples BIGINT NOT NULL,
            PRIMARY KEY (run_id, rail)
        );
        CREATE TABLE layers (
            run_id VARCHAR NOT NULL,
            layer_index INTEGER NOT NULL,
            name VARCHAR NOT NULL,
            type VARCHAR NOT NULL,
            PRIMARY KEY (run_id, layer_index)
        );
        CREATE TABLE phase_events (
            run_id VARCHAR NOT NULL,
            seq INTEGER NOT NULL,
            phase VARCHAR NOT NULL,
            t_start_ns BIGINT NOT NULL,
            t_end_ns BIGINT NOT NULL
        );
        CREATE TABLE layer_events (
            run_id VARCHAR NOT NULL,
            phase VARCHAR NOT NULL,
            iteration INTEGER NOT NULL,
            layer_index INTEGER NOT NULL,
            repeats INTEGER NOT NULL,
            t_start_ns BIGINT NOT NULL,
            t_end_ns BIGINT NOT NULL
        );
        CREATE TABLE power_samples (
            run_id VARCHAR NOT NULL,
            rail VARCHAR NOT NULL,
            t_ns BIGINT NOT NULL,
            power_mw DOUBLE NOT NULL,
            voltage_mv DOUBLE,
            current_ma DOUBLE
        );
        -- One row per layer and rail; rail is NULL for a run without power data (timing only, energy NULL).
        CREATE TABLE layer_stats (
            run_id VARCHAR NOT NULL,
            layer_index INTEGER NOT NULL,
            rail VARCHAR,
            n_iterations INTEGER NOT NULL,
            time_ms_mean DOUBLE,
            time_ms_std DOUBLE,
            time_ms_ci95 DOUBLE,
            energy_mj_mean DOUBLE,
            energy_mj_std DOUBLE,
            energy_mj_ci95 DOUBLE,
            energy_above_idle_mj_mean DOUBLE,
            energy_above_idle_mj_ci95 DOUBLE,
            power_mw_mean DOUBLE,
            resolved BOOLEAN,
            method VARCHAR
        );
        -- One row per phase and rail (rail NULL for a run without power data); repeated phases are summed.
        CREATE TABLE phase_stats (
            run_id VARCHAR NOT NULL,
            phase VARCHAR NOT NULL,
            rail VARCHAR,
            occurrences INTEGER NOT NULL,
            time_ms DOUBLE NOT NULL,
            energy_mj DOUBLE,
            energy_above_idle_mj DOUBLE,
            power_mw_mean DOUBLE
        );
        """,
    ),
    (
        2,
        """
        -- The model's per-layer cost, by layer name (joined to the measured layers by name).
        CREATE TABLE layer_costs (
            run_id VARCHAR NOT NULL,
            layer_name VARCHAR NOT NULL,
            prototxt_index INTEGER NOT NULL,
            type VARCHAR NOT NULL,
            module VARCHAR NOT NULL,
            output_shape BIGINT[],
            macs BIGINT,
            flops BIGINT,
            params BIGINT,
            weight_bytes BIGINT,
            input_bytes BIGINT,
            output_bytes BIGINT,
            traffic_bytes BIGINT,
            arithmetic_intensity DOUBLE,
            known BOOLEAN NOT NULL
        );
        ALTER TABLE runs ADD COLUMN model_cost_note VARCHAR;
        """,
        _backfill_layer_costs,
    ),
    (
        3,
        """
        -- Every estimator's figure per layer and rail (layer_stats holds the chosen one).
        CREATE TABLE layer_estimates (
            run_id VARCHAR NOT NULL,
            layer_index INTEGER NOT NULL,
            rail VARCHAR NOT NULL,
            method VARCHAR NOT NULL,
            energy_mj DOUBLE,
            energy_mj_ci95_low DOUBLE,
            energy_mj_ci95_high DOUBLE,
            power_mw DOUBLE,
            resolved BOOLEAN,
            n_windows INTEGER,
            condition_number DOUBLE,
            note VARCHAR
        );
        -- Simulated runs only: the simulation's true energy of every layer interval, for validation.
        CREATE TABLE ground_truth (
            run_id VARCHAR NOT NULL,
            phase VARCHAR NOT NULL,
            iteration INTEGER NOT NULL,
            layer_index INTEGER NOT NULL,
            rail VARCHAR NOT NULL,
            energy_mj DOUBLE NOT NULL
        );
        """,
        _recompute_attribution,
    ),
    (
        4,
        """
        -- Runs put together from several sources (docs/alignment.md).
        CREATE TABLE alignments (
            run_id VARCHAR NOT NULL,
            source VARCHAR NOT NULL,
            kind VARCHAR NOT NULL,
            method VARCHAR NOT NULL,
            offset_ns BIGINT NOT NULL,
            residual_ns BIGINT,
            n_points INTEGER NOT NULL
        );
        CREATE TABLE markers (
            run_id VARCHAR NOT NULL,
            t_ns BIGINT NOT NULL,
            text VARCHAR NOT NULL,
            source VARCHAR NOT NULL
        );
        CREATE TABLE counter_samples (
            run_id VARCHAR NOT NULL,
            t_ns BIGINT NOT NULL,
            counter VARCHAR NOT NULL,
            core INTEGER,
            value DOUBLE NOT NULL
        );
        -- Hardware counters per layer: mean per execution (delta counters) or mean level (absolute ones).
        CREATE TABLE layer_counters (
            run_id VARCHAR NOT NULL,
            layer_index INTEGER NOT NULL,
            counter VARCHAR NOT NULL,
            title VARCHAR,
            name VARCHAR,
            unit VARCHAR,
            counter_class VARCHAR,
            n_iterations INTEGER NOT NULL,
            value_mean DOUBLE,
            per_s DOUBLE,
            bytes_per_s DOUBLE
        );
        ALTER TABLE runs ADD COLUMN import_notes VARCHAR;
        """,
    ),
    (
        5,
        """
        -- Layers the engine ran that the prototxt does not have (Caffe's `input` and `*_split` layers).
        ALTER TABLE layers ADD COLUMN added_by_engine BOOLEAN DEFAULT false;
        UPDATE layers SET added_by_engine = true FROM runs
        WHERE layers.run_id = runs.run_id
          AND list_contains(CAST(json_extract(runs.manifest, '$.engine.added_layers') AS VARCHAR[]), layers.name);
        """,
    ),
    (
        6,
        # Every run belongs to a team as well as an owner (the team store, docs/team-store.md).
        """
        ALTER TABLE runs ADD COLUMN team VARCHAR;
        """,
    ),
]
SCHEMA_VERSION = MIGRATIONS[-1][0]



def default_db_path() -> Path:
    """The database used when neither --db nor LAYERJOULE_DB says otherwise."""
    data_home = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data_home) / "layerjoule" / "layerjoule.duckdb"


def resolve_db_path(db: str | os.PathLike | None = None) -> Path:
    if db:
        return Path(db)
    if os.environ.get(ENV_DB):
        return Path(os.environ[ENV_DB])
    return default_db_path()


def _is_lock_conflict(error: duckdb.Error) -> bool:
    return "lock" in str(error).lower()


def _open(path: Path, read_only: bool, retry_s: float) -> duckdb.DuckDBPyConnection:
    deadline = time.monotonic() + retry_s
    delay_s = 0.02
    while True:
        try:
            return duckdb.connect(str(path), read_only=read_only)
        except duckdb.IOException as error:
            if not _is_lock_conflict(error) or time.monotonic() >= deadline:
                raise
            time.sleep(delay_s)
            delay_s = min(delay_s * 2, 0.5)


def schema_version(con: duckdb.DuckDBPyConnection) -> int:
    has_table = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'schema_version'"
    ).fetchone()[0]
    if not has_table:
        return 0
    return con.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()[0]


def migrate(con: duckdb.DuckDBPyConnection) -> int:
    """Bring the schema up to SCHEMA_VERSION; returns the version found before."""
    found = schema_version(con)
    if found > SCHEMA_VERSION:
        raise InputError(
            f"database schema version {found} is newer than this layerjoule understands ({SCHEMA_VERSION}); "
            "upgrade layerjoule"
        )
    if found == SCHEMA_VERSION:
        return found
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(
            "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL, applied_utc TIMESTAMP NOT NULL)"
        )
        for version, sql, *fill in MIGRATIONS:
            if version > found:
                con.execute(sql)
                for step in fill:
                    step(con)
                con.execute("INSERT INTO schema_version VALUES (?, now()::TIMESTAMP)", [version])
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return found


@contextlib.contextmanager
def connect(
    db: str | os.PathLike | None = None, read_only: bool = False, retry_s: float = LOCK_RETRY_S
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A short-lived connection. Writers get the schema migrated; a missing database is created for writers."""
    path = resolve_db_path(db)
    if read_only and not path.exists():
        # Nothing imported yet: create an empty, migrated store so readers see empty tables, not an error.
        with connect(path, read_only=False, retry_s=retry_s):
            pass
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    con = _open(path, read_only, retry_s)
    try:
        if read_only:
            found = schema_version(con)
            if found != SCHEMA_VERSION:
                con.close()
                # An older store is upgraded by a short write connection, then reopened for reading.
                with connect(path, read_only=False, retry_s=retry_s):
                    pass
                con = _open(path, read_only, retry_s)
        else:
            migrate(con)
        yield con
    finally:
        con.close()
