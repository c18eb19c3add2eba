"""Tables of the dashboard: pure functions from query results to the frames the pages show (no streamlit).

Measurement honesty: a layer the sensor could not resolve shows resolved=False and empty (NaN) energy cells,
so no unresolved number looks like a measurement; simulated runs are marked SIMULATED in every table.
"""

from __future__ import annotations

import io
import json
import re
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from importer.assemble import ImportOptions, detect_kind
from importer.errors import InputError

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
    "team",
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
    "weight_bytes",
    "traffic_bytes",
    "arithmetic_intensity",
    "achieved_gflop_per_s",
    "gflop_per_j",
    "min_traffic_bytes_per_s",
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
    return table.reindex(columns=RUNS_COLUMNS).reset_index(drop=True)  # team: absent before schema 6


def run_label(run: dict | pd.Series) -> str:
    """How a run is named in a select box: name, SIMULATED mark, run id."""
    mark = f" [{SIMULATED_LABEL}]" if bool(run["simulated"]) else ""
    return f"{run['name']}{mark} ({run['run_id']})"


def rail_rows(stats: pd.DataFrame, rail: str | None) -> pd.DataFrame:
    """The rows of one rail (rail None: the rows without a rail, i.e. a timing-only run)."""
    if rail is None:
        return stats[stats["rail"].isna()]
    return stats[stats["rail"] == rail]


def layer_table(stats: pd.DataFrame, simulated: bool | None = None) -> pd.DataFrame:
    """Per-layer table of one rail in network order; unresolved layers have empty (NaN) energy cells.

    Derived: achieved_gflop_per_s = flops / time, gflop_per_j = flops / energy (empty where energy is),
    min_traffic_bytes_per_s = the model's minimum traffic / time (beside the measured bandwidth, where counters
    gave one). simulated: True/False adds a first column `data` (SIMULATED or measured) for exported files.
    """
    table = stats.sort_values("layer_index", kind="stable").rename(columns={"layer_index": "index"})
    table = table.reindex(columns=LAYER_COLUMNS).reset_index(drop=True)  # cost columns may be absent
    resolved = table["resolved"].astype("boolean")
    # A figure without a resolved flag is not a measurement either.
    resolved = resolved.mask(resolved.isna() & table["energy_mj_mean"].notna(), False)
    table["resolved"] = resolved
    measured = resolved.fillna(False).astype(bool)
    for column in ENERGY_COLUMNS:
        table[column] = table[column].astype("float64").where(measured)
    flops = table["flops"].astype("float64")
    time_ms = table["time_ms_mean"].astype("float64").where(lambda t: t > 0)
    energy_mj = table["energy_mj_mean"].where(lambda e: e > 0)
    table["achieved_gflop_per_s"] = flops / (time_ms * 1e6)  # flops / (ms * 1e-3) / 1e9
    table["gflop_per_j"] = flops / (energy_mj * 1e6)  # flops / (mJ * 1e-3) / 1e9
    table["min_traffic_bytes_per_s"] = table["traffic_bytes"].astype("float64") / (time_ms * 1e-3)
    if simulated is not None:
        table.insert(0, "data", SIMULATED_LABEL if simulated else MEASURED_LABEL)
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

# Overview filters: run column -> query parameter (repeated: ?network=a&network=b). Tags are a list per run.
RUN_FILTERS = {"network": "network", "device": "device", "engine": "engine", "mode": "mode", "owner": "owner",
               "team": "team", "tags": "tag"}
DATA_CHOICES = ["all", MEASURED_LABEL, "simulated"]


def filter_options(runs: pd.DataFrame, column: str) -> list[str]:
    """The values a filter offers: the column's distinct values, sorted; for "tags", every tag of any run."""
    values = runs[column].explode() if column == "tags" else runs[column]
    return sorted(str(v) for v in values.dropna().unique())


def filter_runs(runs: pd.DataFrame, chosen: dict[str, list[str]], data: str = "all") -> pd.DataFrame:
    """The runs matching every filter: for each column in `chosen` with a non-empty list, runs whose value is one
    of them ("tags": runs holding any of the tags); data "measured" or "simulated" keeps only those runs.
    """
    keep = pd.Series(True, index=runs.index)
    for column, values in chosen.items():
        if not values:
            continue
        if column == "tags":
            tags = runs["tags"].explode()
            keep &= tags.isin(values).groupby(level=0).any().reindex(runs.index, fill_value=False)
        else:
            keep &= runs[column].astype("string").isin(values).fillna(False).astype(bool)
    if data == MEASURED_LABEL:
        keep &= ~runs["simulated"].astype(bool)
    elif data == "simulated":
        keep &= runs["simulated"].astype(bool)
    return runs[keep]


def count_text(shown: int, total: int) -> str:
    """"12 of 40 runs", or "40 runs" when nothing is filtered out."""
    noun = "run" if total == 1 else "runs"
    return f"{total} {noun}" if shown == total else f"{shown} of {total} {noun}"


# --- run page ---

GROUP_COLUMNS = [
    "n_layers",
    "time_ms_mean",
    "time_ms_ci95",
    "energy_mj_mean",
    "energy_mj_ci95",
    "energy_above_idle_mj_mean",
    "resolved",
    "n_unresolved",
    "macs",
    "flops",
    "params",
    "traffic_bytes",
    "layers",
]


def group_table(groups: pd.DataFrame, by: str, simulated: bool | None = None) -> pd.DataFrame:
    """Per-module or per-type table (app.queries.layer_groups): an unresolved group has empty energy cells, as an
    unresolved layer does; its layers column names its layers."""
    table = groups.rename(columns={"group": by}).reindex(columns=[by, *GROUP_COLUMNS]).reset_index(drop=True)
    measured = table["resolved"].astype("boolean").fillna(False).astype(bool)
    for column in ENERGY_COLUMNS:
        table[column] = table[column].astype("float64").where(measured)
    if simulated is not None:
        table.insert(0, "data", SIMULATED_LABEL if simulated else MEASURED_LABEL)
    return table


def _phase_value(by_phase: pd.DataFrame, phase: str, column: str) -> float | None:
    if phase not in by_phase.index:
        return None
    value = by_phase.loc[phase, column]
    return None if pd.isna(value) else float(value)


def setup_and_inference(phases: pd.DataFrame, iterations: int | None) -> dict[str, float | None]:
    """The poster's "setup + inference" from phase_table rows of one rail: energy (mJ) and time (ms) of the
    setup and of the inference phase, the inference phase per iteration (its energy / iterations: the layers
    and the gaps between them) and setup + inference. None where unknown (no power data, no such phase)."""
    by_phase = phases.drop_duplicates("phase").set_index("phase")
    figures: dict[str, float | None] = {}
    for unit, column in (("mj", "energy_mj"), ("ms", "time_ms")):
        setup = _phase_value(by_phase, "setup", column)
        inference = _phase_value(by_phase, "inference", column)
        figures[f"setup_{unit}"] = setup
        figures[f"inference_{unit}"] = inference
        figures[f"per_iteration_{unit}"] = inference / iterations if inference is not None and iterations else None
        figures[f"setup_plus_inference_{unit}"] = (
            setup + inference if setup is not None and inference is not None else None
        )
    return figures


# --- compare page ---

COMPARE_BY = {"layer": "layer name", "module": "module"}
COMPARE_TOTALS_COLUMNS = [
    "run", "data", "time_ms_per_inference", "time_ratio", "energy_mj_per_inference", "energy_ratio",
    "setup_time_ms", "setup_energy_mj", "inference_time_ms", "inference_energy_mj",
    "setup_plus_inference_time_ms", "setup_plus_inference_energy_mj",
    "network", "device", "engine", "mode", "owner", "team", "rail", "iterations", "run_id",
]


def numbered_labels(runs: pd.DataFrame, run_ids: list[str]) -> dict[str, str]:
    """Short, unique names for chosen runs in charts: "1: name [SIMULATED]", numbered in the chosen order."""
    by_id = runs.set_index("run_id")
    return {
        run_id: f"{i}: {by_id.at[run_id, 'name']}"
                + (f" [{SIMULATED_LABEL}]" if bool(by_id.at[run_id, "simulated"]) else "")
        for i, run_id in enumerate(run_ids, start=1)
    }


def aligned_order(layers: pd.DataFrame, run_ids: list[str]) -> list[str]:
    """The keys (layer names or modules) in network order: the first run's, then those only later runs hold."""
    rank = layers["run_id"].map({run_id: i for i, run_id in enumerate(run_ids)})
    ordered = layers.assign(rank=rank).sort_values(["rank", "position"], kind="stable")
    return ordered.drop_duplicates("key")["key"].tolist()


def compare_rows(layers: pd.DataFrame, run_ids: list[str], baseline: str) -> pd.DataFrame:
    """Every (key, run) pair in aligned order, runs in the chosen order: present False (and values NaN) where a
    run lacks the layer, so it is a gap, not a zero. time_ratio and energy_ratio: run / baseline for the same key;
    energy_ratio_resolved: both energies resolved. Energy values are raw here (charts mark unresolved ones).
    """
    order = aligned_order(layers, run_ids)
    grid = pd.MultiIndex.from_product([order, run_ids], names=["key", "run_id"]).to_frame(index=False)
    rows = grid.merge(layers, on=["key", "run_id"], how="left", validate="one_to_one")
    rows["order"] = rows["key"].map({key: i for i, key in enumerate(order)})
    rows["present"] = rows["position"].notna()
    base = layers.loc[layers["run_id"] == baseline, ["key", "time_ms", "energy_mj", "resolved"]]
    rows = rows.merge(base.add_prefix("base_"), left_on="key", right_on="base_key", how="left")
    rows["time_ratio"] = rows["time_ms"] / rows["base_time_ms"].where(rows["base_time_ms"] > 0)
    rows["energy_ratio"] = rows["energy_mj"] / rows["base_energy_mj"].where(rows["base_energy_mj"] > 0)
    both = rows["resolved"].eq(True) & rows["base_resolved"].eq(True)  # NA (no energy) is not resolved
    rows["energy_ratio_resolved"] = both.fillna(False).astype(bool)
    # Left merges keep the grid's order: keys in aligned order, runs in the chosen order within each key.
    return rows.drop(columns=[c for c in rows if c.startswith("base_")])


def compare_layer_table(rows: pd.DataFrame, labels: dict[str, str], by: str = "layer") -> pd.DataFrame:
    """compare_rows as shown and downloaded: one row per layer (or module) and run, missing ones kept with
    in_run False and empty cells; energy and energy ratio empty where the sensor could not resolve them.
    """
    table = rows.assign(run=rows["run_id"].map(labels), in_run=rows["present"])
    resolved = table["resolved"].astype("boolean")
    resolved = resolved.mask(resolved.isna() & table["energy_mj"].notna(), False)
    measured = resolved.fillna(False).astype(bool)
    table["resolved"] = resolved
    for column in ["energy_mj", "energy_mj_ci95"]:
        table[column] = table[column].astype("float64").where(measured)
    table["energy_ratio"] = table["energy_ratio"].where(table["energy_ratio_resolved"])
    columns = ["key", "run", "in_run", "n_layers", "type", "time_ms", "time_ms_ci95", "energy_mj", "energy_mj_ci95",
               "resolved", "time_ratio", "energy_ratio", "run_id"]
    if by == "module":
        columns.remove("type")
    else:
        columns.remove("n_layers")
    return table[columns].rename(columns={"key": by}).reset_index(drop=True)


def compare_totals_table(totals: pd.DataFrame, labels: dict[str, str], run_ids: list[str],
                         baseline: str) -> pd.DataFrame:
    """One row per chosen run in the chosen order: per inference, ratio to the baseline, setup and inference
    phases on the primary rail (the poster's "setup + inference"); energy empty for a run without power data.
    """
    table = totals.set_index("run_id").reindex(run_ids).reset_index()
    table["run"] = table["run_id"].map(labels)
    table["data"] = [SIMULATED_LABEL if bool(s) else MEASURED_LABEL for s in table["simulated"]]
    base = table.loc[table["run_id"] == baseline].iloc[0]
    for quantity, column in [("time", "time_ms_per_inference"), ("energy", "energy_mj_per_inference")]:
        table[f"{quantity}_ratio"] = table[column] / base[column] if base[column] and base[column] > 0 else float("nan")
    table["setup_plus_inference_time_ms"] = table["setup_time_ms"] + table["inference_time_ms"]
    table["setup_plus_inference_energy_mj"] = table["setup_energy_mj"] + table["inference_energy_mj"]
    return table[COMPARE_TOTALS_COLUMNS]


# --- efficiency page ---

MEMORY_BOUND = "memory"
COMPUTE_BOUND = "compute"
EFFICIENCY_COLUMNS = [
    "run", "data", "device", "engine", "layer_index", "name", "type", "module", "arithmetic_intensity",
    "gflops_per_s", "gflop_per_j", "time_ms", "energy_mj", "resolved", "flops", "traffic_bytes",
]
ROOFLINE_COLUMNS = ["bound", "attainable_gflops_per_s", "roof_fraction"]  # shown after gflops_per_s
ALL_NETWORKS = "all"  # the Efficiency page's network choice that offers the runs of every network


def bound_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per run of an efficiency_table with a roofline: how many layers are memory- and compute-bound, and the
    median achieved fraction of the roof of each kind."""
    with_cost = table[table["bound"].notna()]
    counts = with_cost.pivot_table(index="run", columns="bound", values="name", aggfunc="count", fill_value=0)
    medians = with_cost.pivot_table(index="run", columns="bound", values="roof_fraction", aggfunc="median")
    summary = pd.DataFrame(index=counts.index)
    for kind in [MEMORY_BOUND, COMPUTE_BOUND]:
        summary[f"{kind}_bound_layers"] = counts.get(kind, pd.Series(0, index=counts.index)).astype(int)
        summary[f"{kind}_bound_median_roof_fraction"] = medians.get(kind, pd.Series(float("nan"), index=counts.index))
    return summary.reset_index()


def ridge_point(peak_gflops_per_s: float, bandwidth_gb_per_s: float) -> float:
    """The arithmetic intensity (FLOP/byte) where the memory roof meets the compute roof."""
    return peak_gflops_per_s / bandwidth_gb_per_s


def efficiency_table(rows: pd.DataFrame, labels: dict[str, str], peak_gflops_per_s: float | None = None,
                     bandwidth_gb_per_s: float | None = None) -> pd.DataFrame:
    """Per layer of app.queries.efficiency_layers as shown: energy and GFLOP/J empty where the sensor could not
    resolve the layer. With both roofline figures: the attainable GFLOP/s at the layer's intensity,
    min(peak, bandwidth x intensity), whether the layer is memory- or compute-bound (left or right of the ridge
    point) and its achieved fraction of that roof; empty for layers without a model cost.
    """
    table = rows.assign(run=rows["run_id"].map(labels))
    table["data"] = [SIMULATED_LABEL if bool(s) else MEASURED_LABEL for s in table["simulated"]]
    resolved = table["resolved"].astype("boolean")
    resolved = resolved.mask(resolved.isna() & table["energy_mj"].notna(), False)
    table["resolved"] = resolved
    measured = resolved.fillna(False).astype(bool)
    for column in ["energy_mj", "gflop_per_j"]:
        table[column] = table[column].astype("float64").where(measured)
    table = table[EFFICIENCY_COLUMNS]
    if peak_gflops_per_s and bandwidth_gb_per_s:
        intensity = table["arithmetic_intensity"].astype("float64").where(table["flops"] > 0)
        left_of_ridge = intensity.lt(ridge_point(peak_gflops_per_s, bandwidth_gb_per_s))
        table = table.assign(
            attainable_gflops_per_s=(intensity * bandwidth_gb_per_s).clip(upper=peak_gflops_per_s),
            bound=left_of_ridge.map({True: MEMORY_BOUND, False: COMPUTE_BOUND}).where(intensity.notna()),
        )
        table["roof_fraction"] = table["gflops_per_s"] / table["attainable_gflops_per_s"]
        at = EFFICIENCY_COLUMNS.index("gflops_per_s") + 1
        table = table[EFFICIENCY_COLUMNS[:at] + ROOFLINE_COLUMNS + EFFICIENCY_COLUMNS[at:]]
    return table.reset_index(drop=True)


# --- models page ---

MODEL_LAYER_COLUMNS = ["index", "name", "type", "module", "output_shape", "macs", "flops", "params", "weight_bytes",
                       "input_bytes", "output_bytes", "traffic_bytes", "arithmetic_intensity", "known"]
MODULE_COLUMNS = ["module", "layers", "first_index", "macs", "flops", "params", "weight_bytes", "traffic_bytes",
                  "arithmetic_intensity"]


def shape_text(shape) -> str:
    """A blob shape as written in the docs: 1x3x227x227."""
    return "" if shape is None else "x".join(str(int(d)) for d in shape)


def model_layer_table(costs: pd.DataFrame) -> pd.DataFrame:
    """Per-layer model cost in prototxt order (costs: importer.model.cost.cost_frame rows)."""
    table = costs.rename(columns={"layer_name": "name", "prototxt_index": "index"})
    table["output_shape"] = table["output_shape"].map(shape_text)
    return table[MODEL_LAYER_COLUMNS].reset_index(drop=True)


def model_module_table(layers: pd.DataFrame) -> pd.DataFrame:
    """Per-module totals (docs/model-cost.md, Modules) in network order; a module's traffic is the sum of its layers'
    minimum traffic, and its arithmetic intensity FLOPs over that traffic."""
    sums = ["macs", "flops", "params", "weight_bytes", "traffic_bytes"]
    modules = (
        layers.groupby("module", sort=False)
        .agg(layers=("index", "size"), first_index=("index", "min"), **{c: (c, "sum") for c in sums})
        .reset_index()
        .sort_values("first_index", kind="stable")
    )
    traffic = modules["traffic_bytes"].astype("float64")
    modules["arithmetic_intensity"] = (modules["flops"].astype("float64") / traffic).where(traffic > 0)
    return modules[MODULE_COLUMNS].reset_index(drop=True)


def model_totals(totals: dict) -> dict:
    """importer.model.cost.Analysis.totals() plus activation bytes (every layer's inputs and outputs, read and
    written once: minimum traffic = weight bytes + activation bytes)."""
    return {**totals, "activation_bytes": totals["input_bytes"] + totals["output_bytes"]}


# --- upload page ---

# The kinds a file of an upload can be (importer.assemble.KINDS plus the three the page adds), in words.
UPLOAD_KINDS = {
    "bundle": "run bundle (zip of the folder)",
    "bundle-file": "file of a run bundle folder",
    "streamline-capture": "Streamline capture (.apc zip)",
    "streamline-report": "Streamline report (CSV)",
    "tegrastats": "tegrastats log",
    "power-csv": "power CSV",
    "energy-probe": "energy probe CSV",
    "ptdaemon": "PTDaemon log",
    "prototxt": "prototxt (the model of a capture-only run)",
    "ignore": "leave out",
}
# The files of a run bundle folder (docs/bundle-format.md), for bundles uploaded as loose files.
BUNDLE_FILES = ("manifest.json", "model.prototxt", "events.csv", "events.csv.gz", "rails.csv", "rails.csv.gz",
                "ground_truth.csv", "ground_truth.csv.gz")
DETECT_HEAD_BYTES = 1 << 16  # detect_kind reads only the start of a log; zips and gzip files are whole


def upload_basename(name: str) -> str:
    """The name an upload is written under: the last part of what the browser sent (a folder upload sends
    "folder/file", a hostile client anything), never empty, "." or "..", so it stays inside its folder."""
    base = name.replace("\\", "/").split("/")[-1].replace("\0", "")[:200]
    return base if base not in ("", ".", "..") else "upload"


def detect_upload_kind(name: str, data: bytes, names: list[str]) -> tuple[str | None, str | None]:
    """The kind a file of an upload most likely is, and None with the reason when it cannot be told.

    names: every file of the upload (a manifest.json among them makes the bundle's files one bundle)."""
    base = upload_basename(name)
    if base in BUNDLE_FILES and "manifest.json" in {upload_basename(n) for n in names}:
        return "bundle-file", None
    if base.lower().endswith(".prototxt"):
        return "prototxt", None
    with tempfile.TemporaryDirectory(prefix="layerjoule-detect-") as folder:
        path = Path(folder) / base
        whole = base.endswith(".gz") or zipfile.is_zipfile(io.BytesIO(data))
        path.write_bytes(data if whole else data[:DETECT_HEAD_BYTES])
        try:
            return detect_kind(path), None
        except InputError as error:
            # The page offers a kind select box where the command line says KIND:PATH.
            return None, re.sub(r"\s*\(name it: KIND:PATH.*\)$", "", error.message)


@dataclass
class UploadPlan:
    """How to import an upload: `layerjoule import` arguments (KIND:PATH) and options, and the uploaded name of
    every path written, to put the user's file names back into the importer's messages."""

    arguments: list[str]
    options: ImportOptions
    shown: dict[str, str] = field(default_factory=dict)  # written path -> name as uploaded

    def words(self, text: str) -> str:
        """A message of the importer with the uploaded file names instead of the temporary paths."""
        for path in sorted(self.shown, key=len, reverse=True):
            text = text.replace(path, self.shown[path])
        return text


def plan_upload(files: list[tuple[str, bytes]], kinds: list[str | None], folder: Path,
                options: ImportOptions | None = None) -> UploadPlan:
    """Write the uploaded files (name, content) under `folder`, keeping their names, and plan their import.

    Raises InputError, naming the uploaded file, where the kinds chosen cannot make one run. The sources
    themselves are checked by the importer, which reads all of them before it writes anything."""
    folder = folder.resolve()
    plan = UploadPlan([], options or ImportOptions())
    chosen = [(name, data, kind) for (name, data), kind in zip(files, kinds, strict=True) if kind != "ignore"]
    if not chosen:
        raise InputError("nothing to import; expected a run bundle or a Streamline capture", place="upload")
    for name, _, kind in chosen:
        if kind not in UPLOAD_KINDS:
            raise InputError("its format could not be detected; expected a kind chosen for it (or 'leave out')",
                             path=name)
    by_kind = {kind: [(n, d) for n, d, k in chosen if k == kind] for kind in UPLOAD_KINDS}
    if by_kind["bundle-file"]:
        _stage_bundle_files(by_kind["bundle-file"], folder, plan)
    for i, (name, data, kind) in enumerate(chosen):
        if kind in ("bundle-file", "prototxt"):
            continue
        path = folder / str(i) / upload_basename(name)
        _write(path, data, name, plan)
        plan.arguments.append(f"{kind}:{path}")
    prototxts = by_kind["prototxt"]
    if prototxts:
        name, data = prototxts[-1]
        if len(prototxts) > 1:
            raise InputError("is a second prototxt; expected at most one (the model of a capture-only run)", path=name)
        if by_kind["bundle"] or by_kind["bundle-file"] or not by_kind["streamline-capture"]:
            raise InputError("a prototxt joins only a run made from a Streamline capture without a run bundle (a "
                             "bundle carries its own model.prototxt); expected it with a capture, or left out "
                             "(the Models page analyses a prototxt on its own)", path=name)
        path = folder / "model" / upload_basename(name)
        _write(path, data, name, plan)
        plan.options.model = path
    return plan


def _write(path: Path, data: bytes, name: str, plan: UploadPlan) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    plan.shown[str(path)] = name


def _stage_bundle_files(members: list[tuple[str, bytes]], folder: Path, plan: UploadPlan) -> None:
    """Loose files of a run bundle go back into one folder, named as the uploaded folder or the run id (the run's
    default name)."""
    seen: dict[str, str] = {}
    for name, _ in members:
        base = upload_basename(name)
        if base not in BUNDLE_FILES:
            raise InputError(f"is not a file of a run bundle folder; expected one of {', '.join(BUNDLE_FILES)}",
                             path=name)
        if base in seen:
            raise InputError(f"is uploaded twice (also as {seen[base]!r}); expected each file of a run bundle once",
                             path=name)
        seen[base] = name
    if "manifest.json" not in seen:
        raise InputError("is a file of a run bundle without its manifest.json; expected manifest.json with it",
                         path=members[0][0])
    manifest_name, manifest = next((n, d) for n, d in members if upload_basename(n) == "manifest.json")
    bundle = folder / "bundle" / _bundle_folder_name(manifest_name, manifest)
    for name, data in members:
        _write(bundle / upload_basename(name), data, name, plan)
    plan.shown[str(bundle)] = "the uploaded run bundle files"
    plan.arguments.append(f"bundle:{bundle}")


def _bundle_folder_name(manifest_name: str, manifest: bytes) -> str:
    parts = manifest_name.replace("\\", "/").split("/")
    if len(parts) > 1 and upload_basename(parts[-2]) != "upload":
        return upload_basename(parts[-2])
    try:
        run_id = json.loads(manifest).get("run_id")
    except (ValueError, AttributeError):
        run_id = None  # the bundle reader says what is wrong with the manifest
    return upload_basename(run_id) if isinstance(run_id, str) and run_id else "run-bundle"


def parse_tags(text: str) -> list[str]:
    """Tags typed as "tx1, nightly": each once, in order, without blanks."""
    return list(dict.fromkeys(tag.strip() for tag in text.split(",") if tag.strip()))
