"""How much per-layer bracketing perturbs a run: prints, per sample network on the opencv engine, the per-layer
run's time per inference against plain whole-network forwards (not a timed test).

    .venv/bin/python bench/runner_overhead.py [--iterations N] [--models squeezenet_v1.1,googlenet]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from runner.engine import bracketing_overhead, run_measurement, time_whole_network
from runner.engines.opencv import OpenCVEngine

MODELS = Path(__file__).resolve().parent.parent / "sample_traces" / "models"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=30)
    parser.add_argument("--models", default="squeezenet_v1.1,squeezenet_v1.0,alexnet,googlenet")
    args = parser.parse_args()
    for model in args.models.split(","):
        engine = OpenCVEngine(str(MODELS / f"{model}.prototxt"))
        events = run_measurement(engine, iterations=args.iterations, warmup=3, idle_s=0)
        whole = time_whole_network(engine, args.iterations)
        overhead = bracketing_overhead(events, whole)
        print(f"{model:16} {len(engine.layers):4d} layers  per-layer {overhead['per_layer_sum_ms_mean']:8.2f} ms"
              f"  whole network {overhead['whole_network_ms_mean']:8.2f} ms"
              f"  bracketing overhead {overhead['overhead_pct']:+6.1f}%  ({args.iterations} iterations, OpenCV "
              f"{engine.version})")


if __name__ == "__main__":
    main()
