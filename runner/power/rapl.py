"""Intel/AMD RAPL energy counters through Linux powercap (x86 workstations; not on a Jetson).

Each package zone ``/sys/class/powercap/intel-rapl:<N>/`` (no second ``:``) has ``name`` (``package-<N>``),
``energy_uj`` (cumulative energy in microjoules) and ``max_energy_range_uj`` (the counter wraps to 0 after it).
Only package zones are used: sub-zones (``intel-rapl:0:0`` core, uncore, dram) are parts of their package and
``psys`` covers the platform, so mixing them would count energy twice.

A reading is a counter value; the power reported at read k is (E_k - E_(k-1)) / (t_k - t_(k-1)), the exact
average over the time since the previous read (when the counter went down it wrapped: max_energy_range_uj + 1 is
added). So ``update_interval_ms`` is the poll interval (default 50 ms): each sample covers the time since the
previous one. The first read gives no sample. Since Linux 5.10 ``energy_uj`` is readable by root only.
"""

import glob
import os
import re

from runner.bundle import RailSample
from runner.power.common import (
    PowerSourceError,
    SampledSource,
    rail_entry,
    read_number,
    read_text,
    readable,
    under,
)

KIND = "rapl"
PATTERN = "sys/class/powercap/intel-rapl:*"
DEFAULT_POLL_MS = 50.0

_PACKAGE_ZONE = re.compile(r"^intel-rapl:(\d+)$")


def package_zones(root):
    """[(zone folder, name)] of the package zones, by zone number."""
    found = []
    for folder in glob.glob(under(root, PATTERN)):
        m = _PACKAGE_ZONE.match(os.path.basename(folder))
        if not m:
            continue
        try:
            name = read_text(os.path.join(folder, "name"))
        except OSError:
            continue
        if not name.startswith("package"):
            continue
        found.append((int(m.group(1)), folder, name))
    return [(folder, name) for _, folder, name in sorted(found)]


def energy_delta_uj(e0, e1, max_range_uj):
    """Energy between two counter readings, with one wrap-around when the counter went down."""
    d = e1 - e0
    if d < 0:
        d += max_range_uj + 1
    return d


class RaplPackages(SampledSource):
    """All RAPL package zones as one source: one rail per package."""

    kind = KIND
    driver = "powercap intel-rapl"

    def __init__(self, zones, name=KIND, poll_ms=None, sampler_cpus=None):
        poll = float(poll_ms) if poll_ms else DEFAULT_POLL_MS
        SampledSource.__init__(self, name, poll, poll, sampler_cpus)
        if not zones:
            raise PowerSourceError(f"{name}: no RAPL package zone")
        self.zones = []
        for folder, zone_name in zones:
            energy = os.path.join(folder, "energy_uj")
            ok, why = readable(energy)
            if not ok:
                raise PowerSourceError(f"{name}: cannot read {energy} ({why}; root only since Linux 5.10)")
            try:
                max_range = int(read_number(os.path.join(folder, "max_energy_range_uj")))
            except (OSError, ValueError) as e:
                raise PowerSourceError("{}: cannot read {} ({})".format(
                    name, os.path.join(folder, "max_energy_range_uj"), e)) from None
            self.zones.append((folder, zone_name, energy, max_range))
        self.location = os.path.dirname(zones[0][0])
        self.rails = [rail_entry(z[1], len(self.zones) == 1) for z in self.zones]
        self._paths = [z[2] for z in self.zones]

    def read(self):
        return [read_number(p) for p in self._paths]

    def _rows(self, times, rows):
        out = []
        names = self.rail_names
        for k in range(1, len(times)):
            dt = times[k] - times[k - 1]
            if dt <= 0:
                continue
            for j, zone in enumerate(self.zones):
                d = energy_delta_uj(rows[k - 1][j], rows[k][j], zone[3])
                out.append(RailSample(int(times[k]), names[j], round(d * 1e6 / dt, 3), None, None))
        return out

    def _details(self):
        return [
            ("zones", [os.path.basename(z[0]) for z in self.zones]),
            ("max_energy_range_uj", [z[3] for z in self.zones]),
            ("update_interval_source", "the poll interval: each sample is the average power since the previous "
                                       "read (energy_uj difference / time difference)"),
            ("units", "energy_uj uJ (cumulative, wraps at max_energy_range_uj); power mW"),
        ]


def find(root, poll_ms=None, sampler_cpus=None):
    """(sources, problems): one source for all package zones under ``root``, or none."""
    zones = package_zones(root)
    if not zones:
        return [], []
    try:
        return [RaplPackages(zones, KIND, poll_ms, sampler_cpus)], []
    except PowerSourceError as e:
        return [], [str(e)]


def looked_for(root):
    return f"package zones /{PATTERN} with name package-<N> (under {root})"
