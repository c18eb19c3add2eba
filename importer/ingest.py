"""Putting sources into the store: read and check everything first, then write it all in one transaction.

Importing content that is already in the store (same content hash) changes nothing and reports
"already-present"; so does a bad source anywhere in the call: nothing is written unless everything is good.
"""

from __future__ import annotations

import getpass
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from importer import attribution, store
from importer.errors import InputError
from importer.model.cost import cost_frame, run_layer_costs
from importer.readers.bundle import Bundle, is_bundle, read_bundle


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

    bundle: Bundle
    name: str
    run_row: dict
    rails: pd.DataFrame
    layer_stats: pd.DataFrame
    layer_estimates: pd.DataFrame
    phase_stats: pd.DataFrame
    layer_costs: pd.DataFrame
    ground_truth: pd.DataFrame
    warnings: list[str]


def read_source(path: Path) -> Bundle:
    if not path.exists():
        raise InputError("no such file or folder", path=str(path))
    if is_bundle(path):
        return read_bundle(path)
    raise InputError("not a run bundle (no manifest.json); expected a run bundle folder or zip", path=str(path))


def _default_name(path: Path) -> str:
    name = path.name
    for suffix in (".zip",):
        name = name.removesuffix(suffix)
    return name


def prepare_run(bundle: Bundle, name: str | None, owner: str | None, tags: list[str]) -> PreparedRun:
    signals = {
        rail.name: attribution.RailSignal(
            t_ns=rows["t_ns"].to_numpy(np.int64),
            power_mw=rows["power_mw"].to_numpy(np.float64),
            update_interval_ns=rail.source.update_interval_ns,
        )
        for rail in bundle.rails
        for rows in [bundle.samples[bundle.samples["rail"] == rail.name]]
    }
    layer_stats, layer_estimates = attribution.attribute(bundle.layer_events, bundle.phases, signals)
    phase_stats = attribution.phase_statistics(bundle.phases, signals)
    costs, warnings = run_layer_costs(bundle.prototxt, bundle.manifest)

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
        "owner": owner or getpass.getuser(),
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
        "model_cost_note": "; ".join(warnings) or None,
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
    return PreparedRun(bundle, run_name, run_row, rails, layer_stats, layer_estimates, phase_stats,
                       cost_frame(costs), truth, warnings)


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
) -> list[ImportResult]:
    """Import each source as one run; all of them in one transaction, or none at all."""
    tags = tags or []
    if name and len(paths) > 1:
        raise InputError("--name names one run; expected a single source with --name")
    prepared: list[PreparedRun] = []
    by_content: dict[str, PreparedRun] = {}
    for path in map(Path, paths):
        progress(f"reading {path}")
        bundle = read_source(path)
        if bundle.content_sha256 not in by_content:
            progress(f"attributing energy for {bundle.run_id}")
            by_content[bundle.content_sha256] = prepare_run(bundle, name, owner, tags)
        # The same content given twice in one call is written once and reported "already-present" after that.
        prepared.append(by_content[bundle.content_sha256])

    results: list[ImportResult] = []
    with store.connect(db) as con:
        con.execute("BEGIN TRANSACTION")
        try:
            for run in prepared:
                results.append(_write_run(con, run, progress))
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
    return results


def _write_run(con, run: PreparedRun, progress: Callable[[str], None]) -> ImportResult:
    bundle = run.bundle
    known = con.execute(
        "SELECT s.run_id, r.name FROM sources s JOIN runs r USING (run_id) WHERE s.content_sha256 = ?",
        [bundle.content_sha256],
    ).fetchone()
    if known:
        return ImportResult(known[0], known[1], "already-present", str(bundle.path))
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
    store.insert_frame(con, "layers", run_id, bundle.layers)
    store.insert_frame(con, "phase_events", run_id, bundle.phases)
    store.insert_frame(con, "layer_events", run_id, bundle.layer_events)
    store.insert_frame(con, "power_samples", run_id, bundle.samples)
    store.insert_frame(con, "layer_stats", run_id, run.layer_stats)
    store.insert_frame(con, "phase_stats", run_id, run.phase_stats)
    store.insert_frame(con, "layer_costs", run_id, run.layer_costs)
    store.insert_frame(con, "layer_estimates", run_id, run.layer_estimates)
    store.insert_frame(con, "ground_truth", run_id, run.ground_truth)
    con.execute(
        "INSERT INTO sources VALUES (?, ?, 'run-bundle', ?, now()::TIMESTAMP)",
        [bundle.content_sha256, run_id, str(bundle.path.resolve())],
    )
    return ImportResult(run_id, run.name, "imported", str(bundle.path), run.warnings)
