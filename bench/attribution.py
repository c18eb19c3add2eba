"""Attribution speed and memory: prints figures for a synthetic long trace (not a timed test).

    .venv/bin/python bench/attribution.py [--samples N] [--iterations N] [--layers N]
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np
import pandas as pd

from importer.attribution import RailSignal, layer_statistics, phase_statistics

MS = 1_000_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=2_000_000, help="power samples per rail")
    parser.add_argument("--iterations", type=int, default=5_000)
    parser.add_argument("--layers", type=int, default=66)
    parser.add_argument("--rails", type=int, default=3)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    durations_ns = rng.integers(50_000, 2_000_000, size=args.iterations * args.layers)
    ends = np.cumsum(durations_ns) + 1_000 * MS
    events = pd.DataFrame({
        "phase": "inference",
        "iteration": np.repeat(np.arange(args.iterations), args.layers),
        "layer_index": np.tile(np.arange(args.layers), args.iterations),
        "repeats": 1,
        "t_start_ns": ends - durations_ns,
        "t_end_ns": ends,
    })
    span_ns = int(ends[-1]) + 1_000 * MS
    phases = pd.DataFrame({"seq": [0, 1], "phase": ["idle", "inference"],
                           "t_start_ns": [0, 1_000 * MS], "t_end_ns": [1_000 * MS, int(ends[-1])]})
    interval_ns = span_ns // args.samples
    t = np.arange(1, args.samples + 1, dtype=np.int64) * interval_ns
    signals = {f"RAIL{r}": RailSignal(t, 1000 + 500 * rng.random(args.samples), interval_ns)
               for r in range(args.rails)}

    started = time.perf_counter()
    stats = layer_statistics(events, phases, signals)
    phase_statistics(phases, signals)
    elapsed_s = time.perf_counter() - started
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"layer intervals: {len(events):,}  rails: {args.rails}  samples per rail: {args.samples:,}")
    print(f"attribution time: {elapsed_s:.3f} s ({len(events) * args.rails / elapsed_s / 1e6:.1f} M interval-rails/s)")
    print(f"peak resident memory of the process: {peak_mib:.0f} MiB")
    print(f"per-layer rows: {len(stats)}")


if __name__ == "__main__":
    main()
