"""The store: its schema and migrations, short-lived connections, owners and roles, and moving runs between stores.

A store is a DuckDB file (the default), or a team store: DuckLake, its catalog in PostgreSQL and its data as
Parquet files in a shared folder or object storage (docs/team-store.md). Both are reached by connect(), which
gives a DuckDB connection whose default tables are the store's, so the code above (ingest, report, the
dashboard's queries) is the same for both.

DuckDB lets one process write a database file, or several processes read it, never both at once. So every user
of the store (the importer, the dashboard) opens a connection for one short piece of work and closes it; opening
retries for a while when another process holds the file. A team store has no such lock: its writers take one in
PostgreSQL (write_lock), and its readers read snapshots.
"""

from __future__ import annotations

import contextlib
import getpass
import hashlib
import importlib.util
import json
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa

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
    if len(frame) >= 10_000:
        # A big frame goes as Arrow: DuckDB scans Arrow strings directly; a pandas frame's text columns cost a
        # conversion to Python objects first (10 million power samples: 5 s instead of 9 s).
        frame = pa.Table.from_pandas(frame, preserve_index=False)
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
    (
        7,
        # Who may delete any run, not only their own (docs/team-store.md); managed by `layerjoule db admin`.
        """
        CREATE TABLE roles (
            user_name VARCHAR NOT NULL,
            role VARCHAR NOT NULL,
            granted_by VARCHAR,
            granted_utc TIMESTAMP NOT NULL
        );
        """,
    ),
]
SCHEMA_VERSION = MIGRATIONS[-1][0]


def _ducklake_sql(sql: str) -> str:
    """A migration as DuckLake takes it: DuckLake has no PRIMARY KEY, UNIQUE or index, and only literal column
    defaults. The keys the DuckDB file enforces (runs.run_id, sources.content_sha256, rails and layers per run) are
    kept on a team store by its writers: each writes under the store's write lock (write_lock) and checks first."""
    sql = re.sub(r",\s*PRIMARY KEY\s*\([^)]*\)", "", sql)
    sql = re.sub(r"\s+PRIMARY KEY\b", "", sql)
    return re.sub(r"\bDEFAULT (true|false)\b", r"DEFAULT '\1'", sql)


# --- Where the store is: a DuckDB file, or a team store (DuckLake: catalog in PostgreSQL, Parquet files) -------

TEAM_URL_PREFIX = "ducklake:postgres:"
LOCK_KEY = 7_021_770_245_623_410_501  # the writers' advisory lock of a team store (one per PostgreSQL database)
TEAM_LOCK_WAIT_S = 300.0  # how long a writer waits for the others; an import's write step takes seconds
# DuckDB must never download an extension: the team store's come from their pinned PyPI packages.
OFFLINE = {"autoinstall_known_extensions": False, "autoload_known_extensions": False}
EXTENSION_PACKAGES = {
    "postgres_scanner": "duckdb_extension_postgres_scanner",
    "ducklake": "duckdb_extension_ducklake",
    "httpfs": "duckdb_extension_httpfs",  # object storage data paths (s3://...) only
}
# libpq's KEY=VALUE words: a value is a word without spaces or quotes, or single-quoted with \' and \\ escapes.
_WORD = r"([A-Za-z_]+)\s*=\s*('(?:[^'\\]|\\.)*'|[^\s']+)"
_PASSWORD = re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s'\"]+)")


@dataclass(frozen=True)
class TeamStore:
    """A DuckLake store: its catalog in a PostgreSQL database (libpq KEY=VALUE words), its Parquet files under
    data_path (a folder every member mounts at the same path, or s3://bucket/prefix/). Without data_path the
    catalog's own is used (DuckLake records it when the store is made)."""

    catalog: str
    data_path: str | None

    @property
    def url(self) -> str:
        words = [self.catalog] + ([f"data_path={_quote_word(self.data_path)}"] if self.data_path else [])
        return TEAM_URL_PREFIX + " ".join(words)

    def display(self) -> str:
        """The URL for messages: a password in it is hidden (PGPASSWORD or ~/.pgpass keep it out of the URL)."""
        return _masked(self.url)


def _masked(text: str) -> str:
    return _PASSWORD.sub(r"\1***", text)


def _quote_word(value: str) -> str:
    if value and not re.search(r"[\s'\\]", value):
        return value
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _unquote_word(value: str) -> str:
    return re.sub(r"\\(.)", r"\1", value[1:-1]) if value.startswith("'") else value


def _literal(text: str) -> str:
    """A SQL string literal (ATTACH and LOAD take no parameters)."""
    return "'" + text.replace("'", "''") + "'"


def parse_team_url(url: str) -> TeamStore:
    """`ducklake:postgres:host=H port=P dbname=D [user=U] ... [data_path=FOLDER_OR_S3_URL]` (docs/team-store.md)."""
    if not url.startswith(TEAM_URL_PREFIX):
        raise InputError(f"expected a team store URL {TEAM_URL_PREFIX}KEY=VALUE ... (a DuckLake catalog in "
                         "PostgreSQL, docs/team-store.md) or the path of a DuckDB file", path=_masked(url))
    rest = url[len(TEAM_URL_PREFIX):]
    if not re.fullmatch(rf"(?:\s*{_WORD})+\s*", rest):
        raise InputError(f"expected space-separated KEY=VALUE words after {TEAM_URL_PREFIX} (libpq's form, e.g. "
                         "host=db.lab port=5432 dbname=layerjoule data_path=/mnt/team/layerjoule/)",
                         path=_masked(url))
    words = re.findall(_WORD, rest)
    keys = [key for key, _ in words]
    repeated = sorted({key for key in keys if keys.count(key) > 1})
    if repeated:
        raise InputError(f"{repeated[0]} is given twice; expected each KEY once", path=_masked(url))
    if "dbname" not in keys:
        raise InputError("expected dbname=... (the PostgreSQL database holding the catalog)", path=_masked(url))
    data_path = next((_unquote_word(value) for key, value in words if key == "data_path"), None)
    if data_path is not None:
        if not data_path:
            raise InputError("data_path is empty; expected a folder or an s3:// URL", path=_masked(url))
        if re.match(r"[A-Za-z][A-Za-z0-9+.-]*://", data_path):  # object storage: s3://, gs://, az://, ...
            data_path = data_path.rstrip("/") + "/"
        else:  # a shared folder: absolute, so that every process of the team names the same files
            data_path = str(Path(data_path).expanduser().resolve()) + "/"
    catalog = " ".join(f"{key}={value}" for key, value in words if key != "data_path")
    return TeamStore(catalog, data_path)


def default_db_path() -> Path:
    """The database used when neither --db nor LAYERJOULE_DB says otherwise."""
    data_home = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data_home) / "layerjoule" / "layerjoule.duckdb"


def resolve_db_path(db: str | os.PathLike | None = None) -> Path | str:
    """The store named by `db`, else $LAYERJOULE_DB, else the default file: a Path for a DuckDB file, the URL text
    for a team store (`ducklake:...`, its data path made absolute); connect() takes either."""
    given = str(db) if db else os.environ.get(ENV_DB)
    if not given:
        return default_db_path()
    if given.startswith("ducklake:"):
        return parse_team_url(given).url
    return Path(given)


def describe(db: str | os.PathLike | None = None) -> str:
    """The store for messages: the file's path, or the team store's URL without a password."""
    target = resolve_db_path(db)
    return parse_team_url(target).display() if isinstance(target, str) else str(target)


def is_team_store(db: str | os.PathLike | None = None) -> bool:
    return isinstance(resolve_db_path(db), str)


# --- Opening ----------------------------------------------------------------------------------------------------

class _MissingStore(Exception):
    """A reader found no store there: connect() makes it (empty, migrated) with a short write connection first."""


def _is_lock_conflict(error: duckdb.Error) -> bool:
    return "lock" in str(error).lower()


def _open(target: Path | str, read_only: bool, retry_s: float) -> duckdb.DuckDBPyConnection:
    """A connection to the store as it is (no migration)."""
    if isinstance(target, str):
        return _open_team(parse_team_url(target), read_only)
    if read_only and not target.exists():
        raise _MissingStore
    if not read_only:
        target.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + retry_s
    delay_s = 0.02
    while True:
        try:
            con = duckdb.connect(str(target), read_only=read_only)
            # No progress bar: DuckDB prints it on stdout (into `--json` output) for queries over 2 s.
            con.execute("SET enable_progress_bar = false")
            return con
        except duckdb.IOException as error:
            if not _is_lock_conflict(error) or time.monotonic() >= deadline:
                raise
            time.sleep(delay_s)
            delay_s = min(delay_s * 2, 0.5)


def extension_file(name: str) -> Path:
    """The DuckDB extension `name` as its PyPI package ships it, for this duckdb version."""
    package = EXTENSION_PACKAGES[name]
    spec = importlib.util.find_spec(package)
    folder = Path(spec.origin).parent if spec and spec.origin else None
    path = folder / "extensions" / f"v{duckdb.__version__}" / f"{name}.duckdb_extension" if folder else None
    if path is None or not path.is_file():
        raise InputError(f"the team store needs DuckDB's {name} extension; expected the Python package "
                         f"{package.replace('_', '-')}=={duckdb.__version__} (DuckDB never downloads extensions here)")
    return path


def _load_extensions(con: duckdb.DuckDBPyConnection, store: TeamStore) -> None:
    names = ["postgres_scanner", "ducklake"] + (["httpfs"] if "://" in (store.data_path or "") else [])
    loaded = {row[0] for row in con.execute("SELECT extension_name FROM duckdb_extensions() WHERE loaded").fetchall()}
    for name in names:
        if name not in loaded:
            con.execute(f"LOAD {_literal(str(extension_file(name)))}")


def save_s3_secret(name: str, key_id: str, secret: str, region: str | None = None, endpoint: str | None = None,
                   path_style: bool = False, use_ssl: bool = True, scope: str | None = None) -> Path:
    """Keep S3 credentials for team stores whose data_path is s3://... as a DuckDB persistent secret of this
    machine's user (~/.duckdb/stored_secrets/NAME.duckdb_secret, readable by that user only), which every later
    connection finds by itself. httpfs is loaded from its package first: CREATE SECRET of TYPE s3 needs it and
    DuckDB may not download it. Returns the secret's file."""
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise InputError(f"secret name {name!r}: expected letters, digits and underscores")
    options = [f"KEY_ID {_literal(key_id)}", f"SECRET {_literal(secret)}"]
    options += [f"REGION {_literal(region)}"] if region else []
    options += [f"ENDPOINT {_literal(endpoint)}"] if endpoint else []
    options += ["URL_STYLE 'path'"] if path_style else []
    options += [] if use_ssl else ["USE_SSL false"]
    options += [f"SCOPE {_literal(scope)}"] if scope else []
    con = duckdb.connect(config=OFFLINE)
    try:
        con.execute(f"LOAD {_literal(str(extension_file('httpfs')))}")
        con.execute(f"CREATE OR REPLACE PERSISTENT SECRET {name} (TYPE s3, {', '.join(options)})")
        directory = con.execute("SELECT current_setting('secret_directory')").fetchone()[0]
    finally:
        con.close()
    return Path(directory) / f"{name}.duckdb_secret"


def _attach_team(con: duckdb.DuckDBPyConnection, store: TeamStore, name: str, read_only: bool) -> None:
    options = ([f"DATA_PATH {_literal(store.data_path)}"] if store.data_path else []) + (
        ["READ_ONLY"] if read_only else [])
    sql = f"ATTACH {_literal('ducklake:postgres:' + store.catalog)} AS {name}"
    con.execute(sql + (f" ({', '.join(options)})" if options else ""))


# Team stores are reached through one in-memory DuckDB instance per process: loading the two extensions checks
# their signatures (about 80 MB hashed, most of a second), so that is done once, and each team store is attached
# once per mode, under names from its URL: lake_<key> (with lock_<key>, its PostgreSQL database, for writers) and
# lakero_<key> (READ_ONLY, for readers). A connection is a cursor on that instance: its own transactions, and its
# default catalog (USE) the store.
_team_instance: duckdb.DuckDBPyConnection | None = None
_team_attached: set[str] = set()
_team_guard = threading.Lock()


def _open_team(store: TeamStore, read_only: bool) -> duckdb.DuckDBPyConnection:
    global _team_instance
    key = hashlib.sha256(f"{store.catalog} {store.data_path}".encode()).hexdigest()[:16]
    name = f"lakero_{key}" if read_only else f"lake_{key}"
    with _team_guard:
        try:
            if _team_instance is None:
                instance = duckdb.connect(config=OFFLINE)
                _load_extensions(instance, store)
                _team_instance = instance
            if name not in _team_attached:
                _load_extensions(_team_instance, store)
                lock_db = None if read_only else f"lock_{key}"
                if lock_db:
                    _team_instance.execute(f"ATTACH IF NOT EXISTS {_literal(store.catalog)} AS {lock_db} "
                                           "(TYPE postgres)")
                # Two writers making a new team store at once would collide in its catalog: the lock orders them.
                with _advisory_lock(_team_instance, lock_db) if lock_db else contextlib.nullcontext():
                    _attach_team(_team_instance, store, name, read_only)
                _team_attached.add(name)
        except duckdb.Error as error:
            if read_only and "creating a new DuckLake is explicitly disabled" in str(error):
                raise _MissingStore from None
            raise _team_error(store, error) from None
    con = _team_instance.cursor()
    con.execute(f"USE {name}")
    con.execute("SET enable_progress_bar = false")  # as for a file: never on stdout, into `--json` output
    return con


def _team_error(store: TeamStore, error: duckdb.Error) -> InputError:
    """DuckDB's error on opening a team store as one line, without the password."""
    text = " ".join(str(error).split())
    mismatch = re.search(r'existing data path in the catalog "([^"]*)"', text)
    if mismatch:
        reason = (f"data_path {store.data_path} is not this team store's data path ({mismatch[1]}); expected the "
                  "same data_path as the rest of the team, or none (the catalog knows it)")
    else:
        refused = re.search(r'Unable to connect to Postgres at "[^"]*": (.*)', text)
        reason = refused[1] if refused else text
    return InputError(f"cannot open the team store: {_masked(reason)}", path=store.display())


# --- Schema ------------------------------------------------------------------------------------------------------

def schema_version(con: duckdb.DuckDBPyConnection) -> int:
    # Asked directly (listing the tables would also list every attached catalog's: slow on a team store), with
    # DuckDB's Python replacement scans off, so that no Python name `schema_version` stands in for a missing table.
    replacing = con.execute("SELECT current_setting('python_enable_replacements')").fetchone()[0]
    con.execute("SET python_enable_replacements = false")
    try:
        return con.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()[0]
    except duckdb.CatalogException:
        return 0
    finally:
        con.execute(f"SET python_enable_replacements = {str(bool(replacing)).lower()}")


def _is_lake(con: duckdb.DuckDBPyConnection) -> bool:
    return con.execute("SELECT type FROM duckdb_databases() WHERE database_name = current_database()"
                       ).fetchone()[0] == "ducklake"


def migrate(con: duckdb.DuckDBPyConnection) -> int:
    """Bring the schema up to SCHEMA_VERSION; returns the version found before."""
    with write_lock(con):
        found = schema_version(con)
        if found > SCHEMA_VERSION:
            raise InputError(
                f"database schema version {found} is newer than this layerjoule understands ({SCHEMA_VERSION}); "
                "upgrade layerjoule"
            )
        if found == SCHEMA_VERSION:
            return found
        lake = _is_lake(con)
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute(
                "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL, applied_utc TIMESTAMP NOT NULL)"
            )
            for version, sql, *fill in MIGRATIONS:
                if version > found:
                    con.execute(_ducklake_sql(sql) if lake else sql)
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
    """A short-lived connection to the store (a DuckDB file, or a team store: docs/team-store.md), its tables the
    default ones. Writers get the schema migrated; a missing store is made, also for readers (empty tables)."""
    target = resolve_db_path(db)
    try:
        con = _open(target, read_only, retry_s)
    except _MissingStore:
        with connect(target, read_only=False, retry_s=retry_s):
            pass
        con = _open(target, read_only, retry_s)
    try:
        if read_only:
            found = schema_version(con)
            if found != SCHEMA_VERSION:
                con.close()
                # An older store is upgraded by a short write connection, then reopened for reading.
                with connect(target, read_only=False, retry_s=retry_s):
                    pass
                con = _open(target, read_only, retry_s)
        else:
            migrate(con)
        yield con
    finally:
        con.close()


def migrate_store(db: str | os.PathLike | None = None) -> tuple[int, int]:
    """`layerjoule db migrate`: (the schema version found, the version now)."""
    target = resolve_db_path(db)
    con = _open(target, read_only=False, retry_s=LOCK_RETRY_S)
    try:
        return migrate(con), SCHEMA_VERSION
    finally:
        con.close()


# --- Writing: the lock and transactions ----------------------------------------------------------------------------

@contextlib.contextmanager
def write_lock(con: duckdb.DuckDBPyConnection, wait_s: float = TEAM_LOCK_WAIT_S) -> Iterator[None]:
    """Hold the store's write lock. A DuckDB file needs none: one process at a time has it open for writing. A
    team store has no unique keys and lets writers commit at once, so two imports of the same sources could both
    find them absent and both write them. Its writers therefore take a transaction-scoped PostgreSQL advisory
    lock on a connection of their own, before their DuckLake transaction begins (its snapshot is taken at its first
    read, so the check sees every earlier write) and until after it committed. A writer that dies loses its
    PostgreSQL connection, and the lock with it."""
    name, kind = con.execute("SELECT database_name, type FROM duckdb_databases() "
                             "WHERE database_name = current_database()").fetchone()
    if kind != "ducklake" or not name.startswith("lake_"):  # a DuckDB file, or a team store opened for reading
        yield
        return
    with _advisory_lock(con, "lock_" + name.removeprefix("lake_"), wait_s):
        yield


@contextlib.contextmanager
def _advisory_lock(con: duckdb.DuckDBPyConnection, lock_db: str, wait_s: float = TEAM_LOCK_WAIT_S) -> Iterator[None]:
    locker = con.cursor()  # its own transaction, hence its own PostgreSQL connection
    try:
        locker.execute("BEGIN TRANSACTION")
        try:
            locker.execute(f"CALL postgres_execute('{lock_db}', 'SET LOCAL lock_timeout = ''{int(wait_s * 1000)}ms''; "
                           f"SELECT pg_advisory_xact_lock({LOCK_KEY})')")
        except duckdb.Error as error:
            if "lock timeout" not in str(error):
                raise
            raise InputError(f"another writer has held the team store for over {wait_s:.0f} s; expected it to "
                             "finish (try again later)") from None
        yield
    finally:
        with contextlib.suppress(duckdb.Error):
            locker.execute("ROLLBACK")  # ends the PostgreSQL transaction: the lock goes with it
        locker.close()


@contextlib.contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """One write transaction under the store's write lock: all of it, or nothing if anything raises."""
    with write_lock(con):
        con.execute("BEGIN TRANSACTION")
        try:
            yield con
        except BaseException:
            with contextlib.suppress(duckdb.Error):
                con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")


def run_tables(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The tables holding rows of runs (a run_id column), `runs` first."""
    names = [row[0] for row in con.execute(
        "SELECT DISTINCT table_name FROM information_schema.columns WHERE table_catalog = current_database() "
        "AND table_schema = current_schema() AND column_name = 'run_id' ORDER BY table_name").fetchall()]
    return sorted(names, key=lambda name: name != "runs")


# --- Owners, teams and roles (claimed identities: docs/team-store.md) ----------------------------------------------

ENV_USER = "LAYERJOULE_USER"
ENV_TEAM = "LAYERJOULE_TEAM"
ADMIN = "admin"


def current_user() -> str:
    """Who is acting: $LAYERJOULE_USER, else the login name. Claimed, not authenticated."""
    if os.environ.get(ENV_USER):
        return os.environ[ENV_USER]
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def current_team() -> str | None:
    """The team new runs belong to: $LAYERJOULE_TEAM, else none."""
    return os.environ.get(ENV_TEAM) or None


def admins(con: duckdb.DuckDBPyConnection) -> list[str]:
    return [row[0] for row in con.execute(
        "SELECT DISTINCT user_name FROM roles WHERE role = ? ORDER BY user_name", [ADMIN]).fetchall()]


def may_delete(owner: str | None, user: str, admin_names: list[str]) -> bool:
    """The deletion rule: a run's owner may delete it, an admin any run."""
    return owner == user or user in admin_names


def can_delete(con: duckdb.DuckDBPyConnection, run_id: str, user: str | None = None) -> bool:
    """Whether `user` (default: current_user()) may delete the run: their own (runs.owner), or any as an admin."""
    user = user or current_user()
    row = con.execute("SELECT owner FROM runs WHERE run_id = ?", [run_id]).fetchone()
    return row is not None and may_delete(row[0], user, admins(con))


def delete_runs(con: duckdb.DuckDBPyConnection, run_ids: list[str], user: str | None = None) -> list[str]:
    """Delete the runs and all their rows, all of them or none: each must exist and be `user`'s own, unless `user`
    is an admin. Returns the names of the deleted runs. The rule holds here, for every caller."""
    user = user or current_user()
    run_ids = list(dict.fromkeys(run_ids))
    with transaction(con):
        owners = dict(con.execute("SELECT run_id, owner FROM runs WHERE run_id IN (SELECT unnest(?))",
                                  [run_ids]).fetchall())
        admin_names = admins(con)
        for run_id in run_ids:
            if run_id not in owners:
                raise InputError(f"no run {run_id!r} in the store; `layerjoule runs` lists them")
            if not may_delete(owners[run_id], user, admin_names):
                raise InputError(f"run {run_id!r} belongs to {owners[run_id]!r}, not to {user!r}; expected the "
                                 "user's own runs (an admin may delete any: `layerjoule db admin list`)")
        names = [row[0] for row in con.execute(
            "SELECT name FROM runs WHERE run_id IN (SELECT unnest(?)) ORDER BY name", [run_ids]).fetchall()]
        for table in run_tables(con):
            con.execute(f"DELETE FROM {table} WHERE run_id IN (SELECT unnest(?))", [run_ids])
    return names


def delete_run(con: duckdb.DuckDBPyConnection, run_id: str, user: str | None = None) -> None:
    """Delete one run if `user` may (can_delete); an InputError otherwise."""
    delete_runs(con, [run_id], user)


def set_admin(con: duckdb.DuckDBPyConnection, users: list[str], admin: bool, by: str | None = None) -> None:
    """Grant (admin=True) or revoke the admin role of users, all or none. Only an admin may, except that a store
    without any admin takes its first ones from anybody."""
    by = by or current_user()
    with transaction(con):
        current = admins(con)
        if current and by not in current:
            raise InputError(f"{by!r} is not an admin of this store; expected an admin ({', '.join(current)}) to "
                             "change the roles")
        con.execute("DELETE FROM roles WHERE user_name IN (SELECT unnest(?)) AND role = ?", [users, ADMIN])
        if admin:
            con.execute("INSERT INTO roles SELECT unnest(?), ?, ?, now()::TIMESTAMP", [list(dict.fromkeys(users)),
                                                                                   ADMIN, by])


# --- Moving runs between stores, and what a store holds ---------------------------------------------------------

COPY_SOURCE = "copy_source"


def _same_store(a: Path | str, b: Path | str) -> bool:
    if isinstance(a, str) and isinstance(b, str):
        return sorted(parse_team_url(a).catalog.split()) == sorted(parse_team_url(b).catalog.split())
    if isinstance(a, Path) and isinstance(b, Path):
        return a.resolve() == b.resolve()
    return False


def _attach_read_only(con: duckdb.DuckDBPyConnection, target: Path | str, name: str,
                      retry_s: float = LOCK_RETRY_S) -> None:
    if isinstance(target, str):
        store = parse_team_url(target)
        try:
            _load_extensions(con, store)
            _attach_team(con, store, name, read_only=True)
        except duckdb.Error as error:
            raise _team_error(store, error) from None
        return
    deadline = time.monotonic() + retry_s
    while True:
        try:
            con.execute(f"ATTACH {_literal(str(target))} AS {name} (READ_ONLY)")
            return
        except duckdb.IOException as error:
            if not _is_lock_conflict(error) or time.monotonic() >= deadline:
                raise
            time.sleep(0.1)


def copy_runs(source_db: str | os.PathLike, target_db: str | os.PathLike,
              run_ids: list[str] | None = None) -> list[dict]:
    """Copy runs (default: all) with all their rows from one store to another, in one transaction. A run the target
    already has with the same sources is left alone ("already-present"), so copying twice changes nothing; a run_id
    or a source that the target has with other content is refused, as an import would refuse it."""
    source, target = resolve_db_path(source_db), resolve_db_path(target_db)
    if _same_store(source, target):
        raise InputError("--from and --to name the same store; expected two stores", path=describe(source))
    try:
        probe = _open(source, read_only=True, retry_s=LOCK_RETRY_S)
    except _MissingStore:
        raise InputError("no store there; expected a store to copy from", path=describe(source)) from None
    with contextlib.closing(probe):
        found = schema_version(probe)
    if found != SCHEMA_VERSION:
        with connect(source):  # both sides must have the same columns: bring an older source up to date first
            pass
    with connect(target) as con:
        _attach_read_only(con, source, COPY_SOURCE)
        try:
            with transaction(con):
                return _copy_attached(con, describe(source), run_ids)
        finally:
            con.execute(f"DETACH {COPY_SOURCE}")


def _copy_attached(con: duckdb.DuckDBPyConnection, source_name: str, run_ids: list[str] | None) -> list[dict]:
    src = COPY_SOURCE
    names = dict(con.execute(f"SELECT run_id, name FROM {src}.runs ORDER BY imported_utc, run_id").fetchall())
    wanted = list(dict.fromkeys(run_ids)) if run_ids else list(names)
    missing = [run_id for run_id in wanted if run_id not in names]
    if missing:
        raise InputError(f"no run {missing[0]!r} in this store; expected the run_id of one of its {len(names)} runs",
                         path=source_name)

    def hashes(prefix: str) -> dict[str, set[str]]:
        return {run_id: set(found) for run_id, found in con.execute(
            f"SELECT run_id, list(content_sha256) FROM {prefix}sources WHERE run_id IN (SELECT unnest(?)) "
            "GROUP BY run_id", [wanted]).fetchall()}

    # A run is known by the content hashes of its sources, as on import (importer/ingest.py).
    clash = con.execute(
        f"SELECT s.run_id, t.run_id FROM {src}.sources AS s JOIN sources AS t USING (content_sha256) "
        "WHERE s.run_id IN (SELECT unnest(?)) AND s.run_id <> t.run_id LIMIT 1", [wanted]).fetchone()
    if clash:
        raise InputError(f"run {clash[0]!r} has sources that the target store holds as part of run {clash[1]!r}; "
                         "expected each source in one run", path=source_name)
    source_hashes, target_hashes = hashes(f"{src}."), hashes("")
    present = {row[0] for row in con.execute("SELECT run_id FROM runs WHERE run_id IN (SELECT unnest(?))",
                                             [wanted]).fetchall()}
    results, new = [], []
    for run_id in wanted:
        if run_id in present and target_hashes.get(run_id, set()) != source_hashes.get(run_id, set()):
            raise InputError(f"run_id {run_id!r} is in the target store with different content; expected a new "
                             "run_id for a different run", path=source_name)
        status = "already-present" if run_id in present else "copied"
        results.append({"run_id": run_id, "name": names[run_id], "status": status})
        if status == "copied":
            new.append(run_id)
    if new:
        for table in run_tables(con):
            con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM {src}.{table} WHERE run_id IN (SELECT unnest(?))",
                        [new])
    return results


def store_info(db: str | os.PathLike | None = None) -> dict:
    """What `layerjoule db info` shows; reads only (an older or missing store is reported, not changed)."""
    target = resolve_db_path(db)
    team = isinstance(target, str)
    info: dict = {"store": describe(target), "kind": "team store (DuckLake on PostgreSQL)" if team else "DuckDB file",
                  "layerjoule_schema_version": SCHEMA_VERSION}
    if team:
        store = parse_team_url(target)
        info.update(catalog=_masked(store.catalog), data_path=store.data_path)
    else:
        info.update(path=str(target), size_bytes=target.stat().st_size if target.exists() else None)
    try:
        con = _open(target, read_only=True, retry_s=LOCK_RETRY_S)
    except _MissingStore:
        return {**info, "exists": False, "schema_version": None}
    with contextlib.closing(con):
        version = schema_version(con)
        info.update(exists=True, schema_version=version)
        if team:
            lake = con.execute("SELECT current_database()").fetchone()[0]
            info["data_path"] = con.execute(f"SELECT data_path FROM ducklake_settings('{lake}')").fetchone()[0]
            info["snapshots"] = con.execute(f"SELECT count(*) FROM ducklake_snapshots('{lake}')").fetchone()[0]
        if version >= 1:
            info["runs"] = con.execute("SELECT count(*) FROM runs").fetchone()[0]
            team_column = "team" if version >= 6 else "NULL"
            info["runs_by_owner"] = con.execute(
                f"SELECT owner, {team_column} AS team, count(*) AS runs FROM runs GROUP BY ALL "
                "ORDER BY owner NULLS LAST, team NULLS LAST").df().to_dict("records")
            # No constraint keeps these at zero on a team store: the writers' lock does (write_lock).
            info["duplicates"] = dict(zip(["run_id", "content_sha256"], con.execute(
                "SELECT (SELECT count(*) - count(DISTINCT run_id) FROM runs), "
                "(SELECT count(*) - count(DISTINCT content_sha256) FROM sources)").fetchone(), strict=True))
        if version >= 7:
            info["admins"] = admins(con)
    return info
