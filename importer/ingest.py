"""Putting sources into the store: read and check everything first, then write it all in one transaction.

Importing content that is already in the store (same content hash) changes nothing and reports
"already-present"; so does a bad source anywhere in the call: nothing is written unless everything is good.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from importer import attribution, limits, store
from importer.assemble import ImportOptions, RunSources, detect_kind, group_runs, read_one, split_kind
from importer.errors import InputError
from importer.model.cost import cost_frame, run_layer_costs
from importer.readers.bundle import Bundle


@dataclass
class ImportResult:
    run_id: str
    name: str
    status: str  # "imported" or "already-present"
    source: str
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"run_id": self.run_id, "name": self.name, "status": self.status}


@dataclass
class PreparedRun:
    """A run computed in memory, ready to be written."""

    run: RunSources
    name: str
    run_row: dict
    rails: pd.DataFrame
    layer_stats: pd.DataFrame
    layer_estimates: pd.DataFrame
    phase_stats: pd.DataFrame
    layer_costs: pd.DataFrame
    ground_truth: pd.DataFrame
    layer_counters: pd.DataFrame
    warnings: list[str]

    @property
    def bundle(self) -> Bundle:
        return self.run.bundle


def read_sources(arguments: list[str | Path], options: ImportOptions,
                 progress: Callable[[str], None]) -> list[RunSources]:
    """Read every source (`KIND:PATH` names the reader, else it is detected) and group them into runs."""
    items = []
    for argument in arguments:
        kind, path = split_kind(str(argument))
        kind = kind or detect_kind(path)
        progress(f"reading {path} ({kind})")
        items.append(read_one(kind, path, options))
        limits.pause_point("reading")  # a test hook (importer/limits.py); nothing without its variable
    return group_runs(items, options)


def _default_name(path: Path) -> str:
    return path.name.removesuffix(".zip")


def prepare_run(run: RunSources, name: str | None, owner: str | None, tags: list[str],
                options: ImportOptions | None = None, team: str | None = None) -> PreparedRun:
    options = options or ImportOptions()
    bundle = run.bundle
    # Each rail's samples by its code (one factorize, not a string comparison of every sample per rail).
    codes, names = pd.factorize(bundle.samples["rail"])
    code_of = {name: code for code, name in enumerate(names)}
    t_ns, power_mw = bundle.samples["t_ns"].to_numpy(np.int64), bundle.samples["power_mw"].to_numpy(np.float64)
    signals = {
        rail.name: attribution.RailSignal(
            t_ns=t_ns[mine], power_mw=power_mw[mine], update_interval_ns=rail.source.update_interval_ns)
        for rail in bundle.rails
        for mine in [codes == code_of.get(rail.name, -2)]
    }
    layer_stats, layer_estimates = attribution.attribute(bundle.layer_events, bundle.phases, signals)
    phase_stats = attribution.phase_statistics(bundle.phases, signals)
    costs, warnings = run_layer_costs(bundle.prototxt, bundle.manifest) if bundle.prototxt else ([], [])
    counters = attribution.counter_statistics(bundle.layer_events, run.counters, run.counter_info,
                                              options.bytes_per_access)

    primary_rail = _primary_rail(bundle)
    # Times are the same on every rail's rows: count each layer once.
    time_ms_per_inference = float(layer_stats.drop_duplicates("layer_index")["time_ms_mean"].sum())
    energy_rows = layer_stats if primary_rail is None else layer_stats[layer_stats["rail"] == primary_rail]
    # Without a board-total rail, energy per inference is the sum over all rails (docs/measurement.md).
    energy = energy_rows["energy_mj_mean"]
    energy_mj_per_inference = None if energy.isna().any() or energy.empty else float(energy.sum())

    manifest = bundle.manifest
    engine = manifest["engine"]
    board = manifest.get("board") or {}
    host = manifest.get("host") or {}
    run_name = name or _default_name(bundle.path)
    run_row = {
        "run_id": bundle.run_id,
        "name": run_name,
        "network": manifest["model"]["network"],
        "device": board.get("model") or host.get("hostname") or "unknown",
        "engine": engine["name"],
        "engine_version": engine.get("version"),
        "engine_device": engine.get("device"),
        "mode": manifest["mode"],
        "owner": owner or store.current_user(),
        "team": team or store.current_team(),
        "tags": list(tags),
        "simulated": bool(manifest["simulated"]) or any(r.source.simulated for r in bundle.rails),
        "iterations": manifest["iterations"],
        "warmup": manifest.get("warmup"),
        "batch": manifest.get("batch"),
        "input_shape": manifest.get("input_shape"),
        "created_utc": manifest["created_utc"],
        "format_version": manifest["format_version"],
        "primary_rail": primary_rail,
        "time_ms_per_inference": time_ms_per_inference,
        "energy_mj_per_inference": energy_mj_per_inference,
        "clock_monotonic_ns": manifest["clock"]["monotonic_ns"],
        "clock_realtime_utc_ns": manifest["clock"]["realtime_utc_ns"],
        "prototxt": bundle.prototxt,
        "manifest": json.dumps(manifest),
        "model_cost_note": "; ".join(warnings) or ("no prototxt: no model cost" if not bundle.prototxt else None),
        "import_notes": "\n".join(run.notes) or None,
    }
    rails = pd.DataFrame({
        "rail": [r.name for r in bundle.rails],
        "source": [r.source.name for r in bundle.rails],
        "source_kind": [r.source.kind for r in bundle.rails],
        "is_total": [r.is_total for r in bundle.rails],
        "update_interval_ns": pd.array([r.source.update_interval_ns for r in bundle.rails], dtype="Int64"),
        "simulated": [r.source.simulated for r in bundle.rails],
        "n_samples": [len(signals[r.name].t_ns) for r in bundle.rails],
    })
    truth = bundle.ground_truth if bundle.ground_truth is not None else pd.DataFrame()
    return PreparedRun(run, run_name, run_row, rails, layer_stats, layer_estimates, phase_stats,
                       cost_frame(costs), truth, counters, warnings + run.notes)


def _primary_rail(bundle: Bundle) -> str | None:
    totals = [r.name for r in bundle.rails if r.is_total]
    if totals:
        return totals[0]
    if len(bundle.rails) == 1:
        return bundle.rails[0].name
    return None


def import_sources(
    paths: list[str | Path],
    db: str | Path | None = None,
    name: str | None = None,
    owner: str | None = None,
    tags: list[str] | None = None,
    progress: Callable[[str], None] = lambda message: None,
    options: ImportOptions | None = None,
    team: str | None = None,
) -> list[ImportResult]:
    """Import the sources as runs (docs/alignment.md says which make one run); one transaction, or nothing."""
    tags = tags or []
    options = options or ImportOptions()
    runs = read_sources(list(paths), options, progress)
    if name and len(runs) > 1:
        raise InputError("--name names one run; expected the sources of a single run with --name")
    prepared: list[PreparedRun] = []
    by_content: dict[str, PreparedRun] = {}
    for run in runs:
        if run.content_sha256 not in by_content:
            progress(f"attributing energy for {run.bundle.run_id}")
            limits.pause_point("attributing")
            by_content[run.content_sha256] = prepare_run(run, name, owner, tags, options, team)
        # The same content given twice in one call is written once and reported "already-present" after that.
        prepared.append(by_content[run.content_sha256])

    results: list[ImportResult] = []
    # The write lock (a team store's; a DuckDB file has one writer at a time anyway) makes the content-hash check
    # in _write_run and the writes one step for every process: the same sources imported at once land once.
    progress("opening the store")
    with store.connect(db) as con:
        with store.transaction(con):
            for run in prepared:
                results.append(_write_run(con, run, progress))
            limits.pause_point("committing")
        limits.pause_point("committed")
    return results


def _write_run(con, run: PreparedRun, progress: Callable[[str], None]) -> ImportResult:
    bundle = run.bundle
    hashes = [sha for _, _, sha in run.run.sources]
    known = con.execute(
        "SELECT s.content_sha256, s.run_id, r.name FROM sources s JOIN runs r USING (run_id) "
        "WHERE s.content_sha256 IN (SELECT unnest(?))", [hashes],
    ).fetchall()
    if known:
        run_ids = {row[1] for row in known}
        stored = {row[0] for row in con.execute("SELECT content_sha256 FROM sources WHERE run_id IN "
                                                "(SELECT unnest(?))", [list(run_ids)]).fetchall()}
        if len(run_ids) == 1 and stored == set(hashes):
            return ImportResult(known[0][1], known[0][2], "already-present", str(bundle.path))
        raise InputError(
            f"already in the store as part of run {sorted(run_ids)[0]!r}, which was imported with other sources; "
            "expected all of a run's sources in one call, as before",
            path=str(next(path for _, path, sha in run.run.sources if sha == known[0][0])),
        )
    if con.execute("SELECT count(*) FROM runs WHERE run_id = ?", [bundle.run_id]).fetchone()[0]:
        raise InputError(
            f"run_id {bundle.run_id!r} is already in the store with different content; "
            "expected a new run_id for a different run",
            path=str(bundle.path),
        )
    progress(f"writing {bundle.run_id}: {len(bundle.samples)} power samples, {len(bundle.layer_events)} layer events")
    run_id = bundle.run_id
    row = run.run_row
    columns = ", ".join(row)
    placeholders = ", ".join("?" for _ in row)
    con.execute(f"INSERT INTO runs ({columns}, imported_utc) VALUES ({placeholders}, now()::TIMESTAMP)",
                list(row.values()))
    store.insert_frame(con, "rails", run_id, run.rails)
    added = set((bundle.manifest.get("engine") or {}).get("added_layers") or [])
    store.insert_frame(con, "layers", run_id, bundle.layers.assign(added_by_engine=bundle.layers["name"].isin(added)))
    store.insert_frame(con, "phase_events", run_id, bundle.phases)
    store.insert_frame(con, "layer_events", run_id, bundle.layer_events)
    store.insert_frame(con, "power_samples", run_id, bundle.samples)
    limits.pause_point("writing")
    store.insert_frame(con, "layer_stats", run_id, run.layer_stats)
    store.insert_frame(con, "phase_stats", run_id, run.phase_stats)
    store.insert_frame(con, "layer_costs", run_id, run.layer_costs)
    store.insert_frame(con, "layer_estimates", run_id, run.layer_estimates)
    store.insert_frame(con, "ground_truth", run_id, run.ground_truth)
    store.insert_frame(con, "layer_counters", run_id, run.layer_counters)
    sources = run.run
    store.insert_frame(con, "alignments", run_id, pd.DataFrame([a.as_dict() for a in sources.alignments]))
    if sources.markers is not None:
        store.insert_frame(con, "markers", run_id, sources.markers)
    if sources.counters is not None:
        store.insert_frame(con, "counter_samples", run_id, sources.counters)
    for kind, path, sha in sources.sources:
        con.execute("INSERT INTO sources VALUES (?, ?, ?, ?, now()::TIMESTAMP)",
                    [sha, run_id, kind, str(Path(path).resolve())])
    return ImportResult(run_id, run.name, "imported", str(bundle.path), run.warnings)
