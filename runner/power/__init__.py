"""Power sources of the runner: real sensors sampled in a thread, the simulation, a replayed recording.

Every source has the interface of runner.simulate.SimulatedINA3221: ``name``, ``kind``, ``simulated``,
``update_interval_ms``; ``describe()`` (its manifest.power_sources entry), ``start()``, ``stop()``,
``samples(events)`` (rails.csv rows, runner.bundle.RailSample) and ``ground_truth(events)`` ([] unless simulated).

    sources, messages = open_sources(["auto"])      # or ["ina3221"], ["rapl"], ["replay:rails.csv"], ["none"]
    start_all(sources)
    try:
        events = ...                                  # the run
    finally:
        stop_all(sources)
    samples, truth = collect(sources, events)
    power_sources = [s.describe() for s in sources]

docs/power-sources.md says where each source reads, in which units, how often, and what is total.
Python 3.6 + standard library.
"""

from runner.power.common import TOTAL_RAILS, PowerSourceError, SampledSource, Sampler, sysfs_root
from runner.power.factory import (
    REAL_KINDS,
    SPECS,
    RenamedRails,
    collect,
    open_sources,
    sampler_summary,
    split_specs,
    start_all,
    stop_all,
)
from runner.power.hwmon import INA3221Hwmon
from runner.power.ina3221 import INA3221Iio
from runner.power.nvml import NvmlGpus
from runner.power.rapl import RaplPackages
from runner.power.replay import ReplaySource

__all__ = [
    "INA3221Hwmon", "INA3221Iio", "NvmlGpus", "PowerSourceError", "REAL_KINDS", "RaplPackages", "RenamedRails",
    "ReplaySource", "SPECS", "Sampler", "SampledSource", "TOTAL_RAILS", "collect", "open_sources",
    "sampler_summary", "split_specs", "start_all", "stop_all", "sysfs_root",
]
