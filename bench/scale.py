"""Scale: an hours-long trace as a run bundle, and what importing and showing it costs (not a timed test).

Builds, in a temporary folder, a simulated run of 1 million layer intervals (50 layers of 0.05 to 50 ms x 20,000
iterations, about 2.3 hours) with 10 million rail samples (two rails of a fast meter updating every 1.6 ms: exact
window averages of known layer powers plus 10 mW noise), written as a run bundle (docs/bundle-format.md), then
prints side by side:

- import: `layerjoule import` of the bundle into a fresh DuckDB file, against DuckDB's own read_csv loading the
  same CSV files into tables of a fresh file (the practical limit; goal: within 1.5x);
- attribution: importer.attribution.attribute() and phase_statistics() on the run's data (goal: under 2 s) and
  the process's peak resident memory (goal: under 2 GB), in a process of its own;
- the run page's server time on that run (goal: under 0.5 s): app/main.py's Run page in Streamlit's AppTest.

    .venv/bin/python bench/scale.py [--intervals 1000000] [--samples 10000000] [--keep FOLDER]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
MS = 1_000_000
RUN_ID = "scale-run"
RAILS = ("VDD_IN", "VDD_GPU")
GAP_MW = {"VDD_IN": 1500.0, "VDD_GPU": 300.0}
IDLE_NS = 1000 * MS


def prototxt(layers: int) -> str:
    """A chain of `layers` layers named like the events: convolutions with a ReLU after each."""
    lines = ['name: "scale"', 'input: "data"', "input_shape { dim: 1 dim: 16 dim: 32 dim: 32 }"]
    bottom = "data"
    for k in range(layers):
        if k % 2 == 0:
            lines.append(f'layer {{ name: "layer{k}" type: "Convolution" bottom: "{bottom}" top: "layer{k}" '
                         "convolution_param { num_output: 16 kernel_size: 3 pad: 1 } }")
            bottom = f"layer{k}"
        else:
            lines.append(f'layer {{ name: "layer{k}" type: "ReLU" bottom: "{bottom}" top: "{bottom}" }}')
    return "\n".join(lines) + "\n"


def build(folder: Path, intervals: int, samples: int, layers: int, seed: int = 0) -> dict:
    """Write the bundle; returns what it holds (and the true per-layer power, for a check of the estimate)."""
    rng = np.random.default_rng(seed)
    iterations = intervals // layers
    # Layer durations from 0.05 to 50 ms (log-uniform), 10% jitter; half the layers followed by a random gap.
    base_ns = np.exp(rng.uniform(np.log(0.05), np.log(50.0), layers)) * MS
    duration = (np.tile(base_ns, iterations) * rng.uniform(0.9, 1.1, iterations * layers)).astype(np.int64)
    gap = np.where(rng.random(iterations * layers) < 0.5, rng.exponential(0.5 * MS, iterations * layers), 0)
    gap = gap.astype(np.int64) + 20_000
    starts = IDLE_NS + np.concatenate([[0], np.cumsum(duration + gap)[:-1]])
    ends = starts + duration
    inference_end = int(ends[-1] + gap[-1])
    span_end = inference_end + IDLE_NS
    power = {"VDD_IN": rng.uniform(2000, 6000, layers), "VDD_GPU": rng.uniform(500, 4000, layers)}

    per_rail = samples // len(RAILS)
    interval_ns = span_end // per_rail
    t_ns = np.arange(1, per_rail + 1, dtype=np.int64) * interval_ns
    # Power is a step function: gap power, then each interval's layer power. Window averages are exact.
    edges = np.concatenate([[0], np.ravel(np.column_stack([starts, ends])), [span_end]])
    frames = []
    for rail in RAILS:
        levels = np.ravel(np.column_stack([np.full(len(starts), GAP_MW[rail]), np.tile(power[rail], iterations)]))
        levels = np.concatenate([levels, [GAP_MW[rail]]])
        cumulative = np.concatenate([[0.0], np.cumsum(levels * np.diff(edges))])

        def integral(x, levels=levels, cumulative=cumulative):
            k = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, len(levels) - 1)
            return cumulative[k] + levels[k] * (x - edges[k])

        values = (integral(t_ns) - integral(t_ns - interval_ns)) / interval_ns + rng.normal(0, 10.0, per_rail)
        frames.append(pd.DataFrame({"t_ns": t_ns, "rail": rail, "power_mw": np.round(values, 3)}))
    rails = pd.concat(frames, ignore_index=True)
    events = pd.DataFrame({
        "kind": "layer", "phase": "inference", "iteration": np.repeat(np.arange(iterations), layers),
        "layer_index": np.tile(np.arange(layers), iterations),
        "layer_name": np.tile([f"layer{k}" for k in range(layers)], iterations),
        "layer_type": np.tile(["Convolution" if k % 2 == 0 else "ReLU" for k in range(layers)], iterations),
        "repeats": 1, "t_start_ns": starts, "t_end_ns": ends,
    })
    phases = pd.DataFrame({"kind": "phase", "phase": ["idle", "inference", "idle"],
                           "t_start_ns": [0, IDLE_NS, inference_end], "t_end_ns": [IDLE_NS, inference_end, span_end]})
    folder.mkdir(parents=True, exist_ok=True)
    with duckdb.connect() as con:
        for table, frame in (("events", events), ("phases", phases), ("rails", rails)):
            con.register(table, frame)
        con.execute(f"""COPY (SELECT kind, phase, iteration, layer_index, layer_name, layer_type, repeats, t_start_ns,
                                     t_end_ns FROM (
                                 SELECT 0 AS o, kind, phase, NULL::INTEGER AS iteration, NULL::INTEGER AS layer_index,
                                        NULL AS layer_name, NULL AS layer_type, NULL::INTEGER AS repeats,
                                        t_start_ns, t_end_ns FROM phases WHERE phase = 'idle' AND t_start_ns = 0
                                 UNION ALL SELECT 1, kind, phase, NULL, NULL, NULL, NULL, NULL, t_start_ns, t_end_ns
                                        FROM phases WHERE phase = 'inference'
                                 UNION ALL SELECT 2, * FROM events
                                 UNION ALL SELECT 3, kind, phase, NULL, NULL, NULL, NULL, NULL, t_start_ns, t_end_ns
                                        FROM phases WHERE phase = 'idle' AND t_start_ns > 0)
                              ORDER BY o, t_start_ns)
                        TO '{folder / "events.csv"}' (HEADER, DELIMITER ',')""")
        con.execute(f"""COPY (SELECT t_ns, rail, power_mw, NULL::DOUBLE AS voltage_mv, NULL::DOUBLE AS current_ma
                              FROM rails ORDER BY t_ns, rail)
                        TO '{folder / "rails.csv"}' (HEADER, DELIMITER ',')""")
    model = prototxt(layers).encode()
    (folder / "model.prototxt").write_bytes(model)
    manifest = {
        "format": "layerjoule-run-bundle", "format_version": "1.0", "run_id": RUN_ID,
        "created_utc": "2026-12-01T10:00:00Z", "simulated": True, "board": {"model": "bench/scale.py"},
        "engine": {"name": "synthetic", "version": "1", "device": "none"},
        "model": {"network": "scale", "prototxt": {"file": "model.prototxt",
                                                   "sha256": hashlib.sha256(model).hexdigest()}, "weights": None},
        "input_shape": [1, 16, 32, 32], "batch": 1, "iterations": iterations, "warmup": 0, "mode": "network",
        "power_sources": [{"name": "fast-meter", "kind": "simulate", "simulated": True,
                           "update_interval_ms": interval_ns / MS,
                           "rails": [{"name": r, "unit": "mW", "total": r == "VDD_IN"} for r in RAILS]}],
        "clock": {"monotonic_ns": 0, "realtime_utc_ns": 1_796_000_000_000_000_000},
    }
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return {"iterations": iterations, "intervals": len(events), "samples": len(rails), "interval_ns": interval_ns,
            "hours": span_end / 3.6e12, "power": power, "short_layers": int((base_ns < 2 * interval_ns).sum())}


def timed_process(command: list[str], env: dict | None = None) -> tuple[float, float, str]:
    """Run a command; (wall seconds, peak resident MiB of that process, its stdout)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        process = subprocess.Popen(command, cwd=ROOT, stdout=out, stderr=err, text=True,
                                   env={**os.environ, **(env or {})})
        _, status, usage = os.wait4(process.pid, 0)  # its own rusage, not the largest child's so far
        seconds = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if process.returncode != 0:
            raise SystemExit(f"{' '.join(command[:4])} failed:\n{err.read()}")
        return seconds, usage.ru_maxrss / 1024, out.read()


DUCKDB_LOAD = """
import sys, duckdb
folder, db = sys.argv[1], sys.argv[2]
with duckdb.connect(db) as con:
    con.execute("CREATE TABLE events AS SELECT * FROM read_csv(?, header = true)", [folder + "/events.csv"])
    con.execute("CREATE TABLE rails AS SELECT * FROM read_csv(?, header = true)", [folder + "/rails.csv"])
"""

ATTRIBUTION = """
import json, resource, sys, time, tracemalloc
import numpy as np
from importer.attribution import RailSignal, attribute, phase_statistics
from importer.readers.bundle import read_bundle
started = time.perf_counter()
bundle = read_bundle(sys.argv[1])
read_s = time.perf_counter() - started
def signals():
    out = {}
    for rail in bundle.rails:
        rows = bundle.samples[bundle.samples["rail"] == rail.name]
        out[rail.name] = RailSignal(rows["t_ns"].to_numpy(np.int64), rows["power_mw"].to_numpy(np.float64),
                                    rail.source.update_interval_ns)
    return out
before_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
seconds = []
for _ in range(3):  # the median of three (a shared machine's load moves single figures)
    fresh = signals()
    started = time.perf_counter()
    stats, estimates = attribute(bundle.layer_events, bundle.phases, fresh)
    phase_statistics(bundle.phases, fresh)
    seconds.append(time.perf_counter() - started)
attribution_s = sorted(seconds)[1]
peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
# Once more under tracemalloc (which slows numpy's allocations down), for attribution's own allocations.
fresh = signals()
tracemalloc.start()
attribute(bundle.layer_events, bundle.phases, fresh)
phase_statistics(bundle.phases, fresh)
traced_peak = tracemalloc.get_traced_memory()[1]
tracemalloc.stop()
on_rail = stats[stats["rail"] == "VDD_IN"]
print(json.dumps({"read_s": read_s, "attribution_s": attribution_s, "all_s": seconds,
                  "rss_before_mib": before_kib / 1024,
                  "rss_peak_mib": peak_kib / 1024, "attribution_alloc_peak_mib": traced_peak / 2**20,
                  "power_mw": on_rail["power_mw_mean"].tolist(), "method": on_rail["method"].tolist()}))
"""

IMPORT_STAGES = """
import json, sys, time
started = time.perf_counter()
from importer.ingest import import_sources
marks = [("start-up (imports)", time.perf_counter())]
def progress(message):
    marks.append((message.split(" ")[0], time.perf_counter()))
import_sources([sys.argv[1]], db=sys.argv[2], progress=progress)
marks.append(("end", time.perf_counter()))
stages = {name: round(marks[i + 1][1] - at, 2) for i, (name, at) in enumerate(marks[:-1])}
stages["start-up (imports)"] = round(marks[1][1] - started, 2)
print(json.dumps(stages))
"""

RUN_PAGE = """
import json, sys, time
from streamlit.testing.v1 import AppTest
at = AppTest.from_file(sys.argv[1], default_timeout=600)
at.run()
at.switch_page("views/run.py")
at.query_params["run"] = sys.argv[2]
times = []
for _ in range(3):
    started = time.perf_counter()
    at.run()
    times.append(time.perf_counter() - started)
errors = [e.value for e in at.exception]
charts = len(at.get("vega_lite_chart")) + len(at.get("arrow_vega_lite_chart"))
print(json.dumps({"seconds": times, "errors": errors, "charts": charts}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--intervals", type=int, default=1_000_000, help="layer intervals")
    parser.add_argument("--samples", type=int, default=10_000_000, help="rail samples, all rails together")
    parser.add_argument("--layers", type=int, default=50)
    parser.add_argument("--keep", type=Path, help="build the bundle and store in this folder and keep them")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="layerjoule-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    bundle = work / "scale-run"
    try:
        started = time.perf_counter()
        info_file = work / "scale-run.json"
        wanted = {"intervals": args.intervals, "samples": args.samples, "layers": args.layers}
        if info_file.exists() and json.loads(info_file.read_text())["wanted"] == wanted:
            info = json.loads(info_file.read_text())  # --keep: the same bundle again
            info["power"] = {rail: np.array(values) for rail, values in info["power"].items()}
        else:
            print(f"building the bundle in {bundle} ...", flush=True)
            shutil.rmtree(bundle, ignore_errors=True)
            info = build(bundle, args.intervals, args.samples, args.layers)
            info_file.write_text(json.dumps({**info, "wanted": wanted,
                                             "power": {k: v.tolist() for k, v in info["power"].items()}}))
        size_mb = sum(p.stat().st_size for p in bundle.iterdir()) / 1e6
        print(f"bundle: {info['intervals']:,} layer intervals ({args.layers} layers x {info['iterations']:,} "
              f"iterations), {info['samples']:,} rail samples ({len(RAILS)} rails every "
              f"{info['interval_ns'] / MS:g} ms), {info['hours']:.2f} h of sampling; {size_mb:,.0f} MB of CSV; "
              f"{info['short_layers']} layers shorter than two sensor intervals; built in "
              f"{time.perf_counter() - started:.0f} s", flush=True)

        print(f"load average before the measurements: {os.getloadavg()[0]:.1f} (2 cores)", flush=True)
        for db in work.glob("*.duckdb*"):
            db.unlink()
        print("measuring: DuckDB's own load, then `layerjoule import` (about a minute) ...", flush=True)
        duck_s, _, _ = timed_process([sys.executable, "-c", DUCKDB_LOAD, str(bundle),
                                             str(work / "duckdb-only.duckdb")])
        import_s, import_mib, _ = timed_process([sys.executable, "-m", "cli.main", "import", str(bundle), "--db",
                                                 str(work / "store.duckdb"), "--json"])
        print(f"import:      layerjoule import {import_s:6.1f} s   DuckDB read_csv into a table {duck_s:6.1f} s   "
              f"ratio {import_s / duck_s:.2f}x (goal <= 1.5x); peak RSS of the import {import_mib:,.0f} MiB",
              flush=True)
        _, _, out = timed_process([sys.executable, "-c", IMPORT_STAGES, str(bundle), str(work / "staged.duckdb")])
        stages = json.loads(out.strip().splitlines()[-1])
        print("             where an import's time goes (a second import, in process): "
              + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in stages.items()), flush=True)

        _, _, out = timed_process([sys.executable, "-c", ATTRIBUTION, str(bundle)])
        figures = json.loads(out.strip().splitlines()[-1])
        truth = info["power"]["VDD_IN"]
        estimated = np.array(figures["power_mw"])
        error = np.abs(estimated - truth) / truth
        print(f"attribution: {figures['attribution_s']:6.2f} s (goal < 2 s; median of "
              f"{', '.join(f'{v:.2f}' for v in figures['all_s'])}) for {info['intervals']:,} intervals x "
              f"{len(RAILS)} rails; peak RSS {figures['rss_peak_mib']:,.0f} MiB (goal < 2048; "
              f"{figures['rss_before_mib']:,.0f} MiB before attribution, with the bundle read in "
              f"{figures['read_s']:.1f} s); attribution's own allocations peak at "
              f"{figures['attribution_alloc_peak_mib']:,.0f} MiB", flush=True)
        print(f"             VDD_IN per-layer power against the simulation's truth: median |error| "
              f"{100 * np.median(error):.2f}%, max {100 * error.max():.2f}%; methods "
              f"{dict(pd.Series(figures['method']).value_counts())}", flush=True)

        _, _, out = timed_process([sys.executable, "-c", RUN_PAGE, str(ROOT / "app" / "main.py"), RUN_ID],
                                  env={"LAYERJOULE_DB": str(work / "store.duckdb")})
        page = json.loads(out.strip().splitlines()[-1])
        print(f"run page:    server time {', '.join(f'{s:.2f}' for s in page['seconds'])} s (first, then reruns; "
              f"goal < 0.5 s); {page['charts']} charts; errors: {page['errors'] or 'none'}", flush=True)
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
