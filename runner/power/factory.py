"""``open_sources``: power sources from the runner's option (``auto``, ``ina3221``, ``replay:FILE``, ...).

Python 3.6 + standard library.
"""

import collections

from runner.bundle import GroundTruth, RailSample
from runner.power import hwmon, ina3221, nvml, rapl
from runner.power.common import PowerSourceError, sysfs_root
from runner.power.replay import ReplaySource

REAL_KINDS = ("ina3221", "hwmon", "rapl", "nvml")  # auto tries these, in this order
SPECS = ("auto",) + REAL_KINDS + ("simulate", "replay:FILE", "none")


def split_specs(specs):
    """A list of specs from a list or a comma-separated string; ``replay:FILE`` keeps the rest of its item."""
    if specs is None:
        return ["auto"]
    if isinstance(specs, str):
        specs = [specs]
    out = []
    for item in specs:
        item = str(item).strip()
        if item.startswith("replay:"):
            out.append(item)
            continue
        out.extend(s.strip() for s in item.split(",") if s.strip())
    return out


def _rails_text(source):
    return ", ".join(r["name"] for r in source.describe()["rails"])


def _find(kind, root, update_interval_ms, poll_ms, sampler_cpus):
    if kind == "ina3221":
        return ina3221.find(root, update_interval_ms, poll_ms, sampler_cpus)
    if kind == "hwmon":
        return hwmon.find(root, update_interval_ms, poll_ms, sampler_cpus)
    if kind == "rapl":
        return rapl.find(root, poll_ms, sampler_cpus)
    return nvml.find(update_interval_ms, poll_ms, sampler_cpus)


def _looked_for(kind, root):
    if kind == "ina3221":
        return ina3221.looked_for(root)
    if kind == "hwmon":
        return hwmon.looked_for(root)
    if kind == "rapl":
        return rapl.looked_for(root)
    return nvml.looked_for()


def _explicit(kind, root, update_interval_ms, poll_ms, sampler_cpus):
    if kind == "nvml":
        return [nvml.NvmlGpus(nvml.KIND, update_interval_ms, poll_ms, sampler_cpus)]
    sources, problems = _find(kind, root, update_interval_ms, poll_ms, sampler_cpus)
    if problems:
        raise PowerSourceError(problems[0])
    if not sources:
        raise PowerSourceError(f"{kind}: not found: looked for {_looked_for(kind, root)}")
    return sources


class RenamedRails:
    """A source whose rails appear under other names (to keep rail names unique in a bundle).

    Everything else is the wrapped source's; ``describe()``, ``samples()`` and ``ground_truth()`` rename.
    """

    def __init__(self, source, renames):
        self.source = source
        self.renames = dict(renames)

    def __getattr__(self, attr):
        return getattr(self.source, attr)

    def _name(self, rail):
        return self.renames.get(rail, rail)

    @property
    def rail_names(self):
        return [r["name"] for r in self.describe()["rails"]]

    def describe(self):
        out = self.source.describe()
        rails = []
        for r in out["rails"]:
            r = collections.OrderedDict(r)
            if r["name"] in self.renames:
                r["recorded_as"] = r["name"]
                r["name"] = self.renames[r["name"]]
            rails.append(r)
        out["rails"] = rails
        return out

    def start(self):
        return self.source.start()

    def stop(self):
        return self.source.stop()

    def samples(self, events):
        return [RailSample(s.t_ns, self._name(s.rail), s.power_mw, s.voltage_mv, s.current_ma)
                for s in self.source.samples(events)]

    def ground_truth(self, events):
        return [GroundTruth(g.phase, g.iteration, g.layer_index, self._name(g.rail), g.energy_mj)
                for g in self.source.ground_truth(events)]


def _unique(sources, messages):
    """Unique source names (-2, -3 appended) and rail names (a later clash gets '<source>.' in front)."""
    names = set()
    for s in sources:
        if s.name in names:
            k = 2
            while f"{s.name}-{k}" in names:
                k += 1
            s.name = f"{s.name}-{k}"
        names.add(s.name)
    rails = set()
    out = []
    for s in sources:
        renames = {}
        for r in s.describe()["rails"]:
            name = r["name"]
            if name in rails:
                new = f"{s.name}.{name}"
                k = 2
                while new in rails:
                    new = f"{s.name}.{name}-{k}"
                    k += 1
                renames[name] = new
                messages.append(f"rail {name} of {s.name} renamed {new} (name already used by another source)")
                name = new
            rails.add(name)
        out.append(RenamedRails(s, renames) if renames else s)
    return out


def open_sources(specs, root=None, update_interval_ms=None, poll_ms=None, noise_mw=10.0, seed=0,
                 sampler_cpus=None):
    """Open the power sources a run asked for. Returns (sources, messages).

    ``specs``: a list (or comma-separated string) of ``auto``, ``ina3221``, ``hwmon``, ``rapl``, ``nvml``,
    ``simulate``, ``replay:FILE``, ``none``. ``auto`` uses the first kind of real source found, in the order
    ina3221, hwmon, rapl, nvml (all devices of that kind); it never simulates or replays, and finding nothing
    is no error (timing only). A kind asked for by name that is not there raises PowerSourceError (one line:
    what was looked for, where). ``auto`` and ``none`` stand alone.

    ``root``: the folder standing for '/' when looking in sysfs (tests); default $LAYERJOULE_SYSFS_ROOT, else
    '/'. ``update_interval_ms``: the sensor's update interval where it cannot be read (INA3221 iio: 54 ms by
    default; overrides hwmon's update_interval file; the simulation's interval, 54 by default).
    ``poll_ms``: how often the sampler reads (default: the update interval; RAPL 50 ms). ``noise_mw``,
    ``seed``: the simulation's. ``sampler_cpus``: CPUs the sampler threads are pinned to (None: not pinned).

    ``messages`` are one-line notes for the console and the manifest's notes.
    """
    specs = split_specs(specs)
    root = sysfs_root(root)
    if not specs:
        specs = ["auto"]
    for alone in ("auto", "none"):
        if alone in specs and len(specs) > 1:
            raise PowerSourceError("power source {} cannot be combined with others (got {})".format(
                alone, ",".join(specs)))
    if update_interval_ms is not None and not update_interval_ms > 0:
        raise PowerSourceError("the update interval must be more than 0 ms")
    if poll_ms is not None and not poll_ms > 0:
        raise PowerSourceError("the poll interval must be more than 0 ms")
    if sampler_cpus is not None:
        sampler_cpus = sorted(set(int(c) for c in sampler_cpus))
        if not sampler_cpus:
            raise PowerSourceError("the sampler CPU list is empty")
    seen = set()
    for spec in specs:
        known = spec in REAL_KINDS or spec in ("auto", "simulate", "none") or spec.startswith("replay:")
        if not known:
            raise PowerSourceError("unknown power source {!r} (choose from {})".format(spec, ", ".join(SPECS)))
        if spec in seen:
            raise PowerSourceError(f"power source {spec} is given twice")
        seen.add(spec)

    if specs == ["none"]:
        return [], ["none: no power source; timing only"]

    sources, messages = [], []
    if specs == ["auto"]:
        problems = []
        for kind in REAL_KINDS:
            found, why = _find(kind, root, update_interval_ms, poll_ms, sampler_cpus)
            problems.extend(why)
            if found:
                sources = found
                for s in found:
                    messages.append(f"auto: using {s.kind} at {s.location} ({_rails_text(s)})")
                for p in why:
                    messages.append("auto: skipped: " + p)
                break
        if not sources:
            note = "auto: no power source found; timing only"
            if problems:
                note += " ({})".format("; ".join(problems))
            return [], [note]
        return _unique(sources, messages), messages

    for spec in specs:
        if spec in REAL_KINDS:
            found = _explicit(spec, root, update_interval_ms, poll_ms, sampler_cpus)
            for s in found:
                messages.append(f"{spec}: using {s.location} ({_rails_text(s)})")
            sources.extend(found)
        elif spec == "simulate":
            from runner.simulate import SimulatedINA3221
            try:
                s = SimulatedINA3221(update_interval_ms=54.0 if update_interval_ms is None else update_interval_ms,
                                     noise_mw=noise_mw, seed=seed)
            except ValueError as e:
                raise PowerSourceError(f"simulate: {e}") from None
            messages.append(f"simulate: simulated INA3221 ({_rails_text(s)}); simulated, not a measurement")
            sources.append(s)
        else:
            path = spec[len("replay:"):]
            if not path:
                raise PowerSourceError("replay: give a file, replay:FILE")
            s = ReplaySource(path, update_interval_ms=update_interval_ms)
            messages.append(f"replay: replaying {s.path} onto this run's clock ({_rails_text(s)}); "
                            "recorded earlier, labelled simulated")
            sources.append(s)
    return _unique(sources, messages), messages


def start_all(sources):
    """Start every source; when one fails, stop those already started and re-raise."""
    started = []
    try:
        for s in sources:
            s.start()
            started.append(s)
    except Exception:
        stop_all(started)
        raise


def stop_all(sources):
    """Stop every source (in reverse order); never raises for one that fails to stop."""
    for s in reversed(list(sources)):
        try:
            s.stop()
        except Exception:
            pass


def collect(sources, events):
    """(rails.csv rows sorted by time, ground_truth.csv rows) of all sources over a run's events."""
    samples, truth = [], []
    for s in sources:
        samples.extend(s.samples(events))
        truth.extend(s.ground_truth(events))
    samples.sort(key=lambda r: r.t_ns)
    return samples, truth


def sampler_summary(sources):
    """One line per sampled source on what its sampler did and cost (for the console); [] when none sampled."""
    lines = []
    for s in sources:
        stats = s.stats() if hasattr(s, "stats") else None
        if not stats:
            continue
        share = stats.get("cpu_share_of_one_core")
        lines.append("{}: {} reads at {:g} ms ({} failed, {} polls missed), sampler CPU {} of one core".format(
            s.name, stats["reads"], stats["poll_ms"], stats["failed_reads"], stats["missed_polls"],
            "unknown" if share is None else f"{share:.2%}"))
    return lines
