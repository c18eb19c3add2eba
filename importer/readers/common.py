"""What every reader of a measurement log returns (run bundles have their own richer type, readers/bundle.py).

Time stamps are int64 nanoseconds on the SOURCE'S OWN time base, named in `time_base`:
- "capture": nanoseconds since a Streamline capture started; `anchor["monotonic_raw_ns_at_zero"]` is the
  board's CLOCK_MONOTONIC_RAW at that instant (the capture's monotonic delta), when known;
- "utc": nanoseconds since the Unix epoch, UTC (logs stamped with wall-clock time);
- "relative": nanoseconds since the log's first line (logs without absolute time stamps).
importer/alignment.py moves every table onto the run's CLOCK_MONOTONIC axis.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

TIME_BASES = ("capture", "utc", "relative")


@dataclass
class RailInfo:
    name: str
    unit: str = "mW"
    total: bool = False
    update_interval_ms: float | None = None  # None: instantaneous readings


@dataclass
class SourceData:
    kind: str  # "streamline-capture", "streamline-report", "tegrastats", "power-csv", "energy-probe", "ptdaemon"
    path: Path
    content_sha256: str
    time_base: str
    anchor: dict = field(default_factory=dict)
    # t_ns, rail, power_mw, voltage_mv (nullable), current_ma (nullable); t_ns strictly increasing per rail
    samples: pd.DataFrame | None = None
    rails: list[RailInfo] = field(default_factory=list)
    # closed annotation intervals: t_start_ns, t_end_ns, tid, channel, channel_name, group_name, text
    annotations: pd.DataFrame | None = None
    # point markers: t_ns, text
    markers: pd.DataFrame | None = None
    # counter values: t_ns, counter, core (nullable), value; and one row per counter: counter, title, name, unit
    counters: pd.DataFrame | None = None
    counter_info: pd.DataFrame | None = None
    notes: list[str] = field(default_factory=list)  # the import report: what was skipped, guessed or counted
