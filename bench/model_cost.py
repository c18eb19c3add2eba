"""Model-cost analysis speed: prints the time to parse and analyse the sample networks (not a timed test).

    .venv/bin/python bench/model_cost.py [--repeats N]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from importer.model.cost import analyze
from importer.model.net import read_prototxt

MODELS = Path(__file__).resolve().parent.parent / "sample_traces" / "models"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    for model in ("resnet50", "googlenet", "mobilenet_v1", "squeezenet_v1.0", "alexnet"):
        times_ms = []
        for _ in range(args.repeats):
            started = time.perf_counter()
            analysis = analyze(read_prototxt(MODELS / f"{model}.prototxt"))
            times_ms.append((time.perf_counter() - started) * 1e3)
        median_ms = statistics.median(times_ms)
        print(f"{model:16} {len(analysis.layers):4d} layers  parse + analyse: median {median_ms:6.1f} ms"
              f"  (min {min(times_ms):.1f}, max {max(times_ms):.1f}, {args.repeats} runs)")


if __name__ == "__main__":
    main()
