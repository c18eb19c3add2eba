"""Known-answer validation of the energy estimators: prints per-layer and whole-network errors against the
simulation's ground truth (not a timed test; takes several minutes).

For each network it makes real local runs with the runner (opencv engine, simulated 54 ms INA3221 with 10 mW
noise): network mode with random gaps between layers (--gap-ms) and a layer-loop run, then compares each
estimator's per-layer energy (VDD_IN) with the true energy the simulation recorded (ground_truth.csv).

    .venv/bin/python bench/accuracy.py [--networks squeezenet_v1.1,alexnet] [--iterations 200] [--gap-ms 3]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from importer.attribution import RailSignal, attribute
from importer.readers.bundle import read_bundle

ROOT = Path(__file__).resolve().parent.parent
RAIL = "VDD_IN"


def make_bundle(out: Path, model: str, mode_args: list[str]) -> Path:
    command = [sys.executable, "-m", "runner", "--engine", "opencv", "--model",
               str(ROOT / "sample_traces" / "models" / f"{model}.prototxt"), "--rails", "simulate",
               "--streamline", "off", "--gzip", "--out", str(out), *mode_args]
    subprocess.run(command, cwd=ROOT, check=True, capture_output=True, text=True)
    return out


def evaluate(path: Path) -> tuple[pd.DataFrame, float]:
    bundle = read_bundle(path)
    rows = bundle.samples[bundle.samples["rail"] == RAIL]
    rail = next(r for r in bundle.rails if r.name == RAIL)
    signal = RailSignal(rows["t_ns"].to_numpy(np.int64), rows["power_mw"].to_numpy(float),
                        rail.source.update_interval_ns)
    started = time.perf_counter()
    _, estimates = attribute(bundle.layer_events, bundle.phases, {RAIL: signal})
    elapsed_s = time.perf_counter() - started
    truth = bundle.ground_truth
    truth = truth[(truth["phase"] == "inference") & (truth["rail"] == RAIL)]
    events = bundle.layer_events[bundle.layer_events["phase"] == "inference"]
    truth = truth.merge(events[["iteration", "layer_index", "repeats"]], on=["iteration", "layer_index"])
    true_mj = (truth["energy_mj"] / truth["repeats"]).groupby(truth["layer_index"]).mean()
    estimates = estimates.set_index("layer_index")
    estimates["true_mj"] = true_mj
    estimates["share"] = estimates["true_mj"] / true_mj.sum()
    estimates["error"] = (estimates["energy_mj"] - estimates["true_mj"]) / estimates["true_mj"]
    return estimates, elapsed_s


def report(network: str, run: str, estimates: pd.DataFrame, elapsed_s: float) -> None:
    for method, rows in estimates.groupby("method"):
        big = rows[rows["share"] >= 0.01]
        whole = (rows["energy_mj"].sum() - rows["true_mj"].sum()) / rows["true_mj"].sum()
        resolved = rows[rows["resolved"].fillna(False).astype(bool)]
        print(f"{network:16} {run:12} {method:11} layers {len(rows):3d}  "
              f"median |err| all {100 * rows['error'].abs().median():6.1f}%  "
              f">=1% of energy ({len(big):3d}) {100 * big['error'].abs().median():6.1f}% "
              f"(p90 {100 * big['error'].abs().quantile(0.9):6.1f}%)  "
              f"resolved {len(resolved):3d} (median |err| {100 * resolved['error'].abs().median():5.1f}%)  "
              f"whole network {100 * whole:+7.3f}%  [{elapsed_s:.2f} s]")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--networks", default="squeezenet_v1.1,squeezenet_v1.0,alexnet,resnet50")
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument("--gap-ms", type=float, default=3.0)
    parser.add_argument("--loop-iterations", type=int, default=1, help="layer-loop iterations (0: skip)")
    parser.add_argument("--keep", type=Path, help="keep the bundles in this folder")
    args = parser.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="layerjoule-accuracy-"))
    folder.mkdir(parents=True, exist_ok=True)
    print(f"opencv engine, simulated 54 ms INA3221 (10 mW noise), rail {RAIL}; bundles in {folder}")
    for network in args.networks.split(","):
        runs = [("network", ["--iterations", str(args.iterations), "--gap-ms", str(args.gap_ms)])]
        if args.loop_iterations:
            runs.append(("layer-loop", ["--mode", "layer-loop", "--iterations", str(args.loop_iterations),
                                        "--warmup", "1"]))
        for run, mode_args in runs:
            started = time.perf_counter()
            path = make_bundle(folder / f"{network}-{run}", network, mode_args)
            print(f"  ({network} {run}: run made in {time.perf_counter() - started:.0f} s)", flush=True)
            estimates, elapsed_s = evaluate(path)
            report(network, run, estimates, elapsed_s)


if __name__ == "__main__":
    main()
