"""What the power sources share: the error type, sysfs helpers, the Sampler thread and a base class.

Python 3.6 + standard library (runs on a Jetson TX1 with JetPack 4.6).
"""

import array
import collections
import math
import os
import re
import threading

from runner.bundle import RailSample, monotonic_ns

try:
    import resource
except ImportError:  # pragma: no cover - not Linux
    resource = None

ENV_ROOT = "LAYERJOULE_SYSFS_ROOT"

# Rails that already are the whole board's (module's) input: never add the other rails to them.
TOTAL_RAILS = ("VDD_IN", "POM_5V_IN", "VIN_SYS_5V0")


class PowerSourceError(Exception):
    """A power source asked for cannot be used (not there, not readable, bad option): one line for the user."""


def sysfs_root(root=None):
    """The folder that stands for '/': ``root`` when given, else $LAYERJOULE_SYSFS_ROOT, else '/'."""
    if root is None or root == "":
        root = os.environ.get(ENV_ROOT) or "/"
    return str(root)


def under(root, *parts):
    """``root``/``parts`` (the parts are kernel paths without the leading '/')."""
    return os.path.join(root, *[p.lstrip("/") for p in parts])


def is_total_rail(name):
    return str(name).strip().upper() in TOTAL_RAILS


def is_nc_label(label):
    """True for an unconnected channel: an empty label, or 'NC' as a word of it ('NC', 'NC_1', 'CH1 NC')."""
    text = str(label).strip().upper()
    if not text:
        return True
    return "NC" in re.split(r"[^A-Z0-9]+", text)


def read_text(path):
    """A sysfs attribute's text, stripped."""
    with open(path) as f:
        return f.read().strip()


def read_number(path):
    """A sysfs attribute holding one number: int when it is one, else float. ValueError when it is not."""
    with open(path, "rb") as f:
        data = f.read()
    text = data.split(None, 1)[0] if data.strip() else b""
    try:
        return int(text)
    except ValueError:
        return float(text)


def readable(path):
    """(True, None) when the file can be opened and read now, else (False, 'why')."""
    try:
        with open(path, "rb") as f:
            f.read(64)
        return True, None
    except OSError as e:
        return False, f"{type(e).__name__}: {e.strerror or e}"


def rail_entry(name, total):
    return collections.OrderedDict([("name", name), ("unit", "mW"), ("total", bool(total))])


def clean_number(x):
    """A stored float back to what the sensor gave: None for NaN, int when integral, else the float."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return None
    if isinstance(x, float) and x.is_integer() and abs(x) < 2 ** 53:
        return int(x)
    return x


def thread_cpu_s():
    """CPU time (user + system, seconds) of the calling thread; None where the OS cannot tell."""
    if resource is None or not hasattr(resource, "RUSAGE_THREAD"):
        return None
    try:
        ru = resource.getrusage(resource.RUSAGE_THREAD)
    except (OSError, ValueError):
        return None
    return ru.ru_utime + ru.ru_stime


NAN = float("nan")


class Sampler(threading.Thread):
    """Polls ``read()`` every ``interval_s`` in a daemon thread and keeps every reading with its time stamp.

    ``read()`` returns a sequence of numbers, the same length every time (use NaN for a missing value). Each
    reading is stamped with CLOCK_MONOTONIC ns (runner.bundle.monotonic_ns) taken right after ``read()``
    returns; stamps strictly increase. Polls are scheduled on a fixed grid (start + k x interval) and the
    thread sleeps in between (threading.Event.wait: ``stop()`` wakes it at once); a poll that comes too late
    skips the grid points already past (counted in ``missed_polls``) and never reads back to back.

    A read that raises (a transient OSError from the driver, a half-written value) is counted in
    ``failed_reads``, its message kept in ``first_error``/``last_error``, and polling goes on.

    The thread measures its own CPU time (getrusage(RUSAGE_THREAD) at its start and end) so that the runner
    can report what sampling cost. ``cpus``: a set of CPU numbers the thread is pinned to (Linux
    sched_setaffinity on the thread itself); None leaves it where the process runs.
    """

    def __init__(self, read, interval_s, name="power-sampler", cpus=None):
        threading.Thread.__init__(self, name=name)
        self.daemon = True
        if not interval_s > 0:
            raise ValueError("interval_s must be > 0")
        self._read = read
        self.interval_s = float(interval_s)
        self.cpus = None if cpus is None else sorted(set(int(c) for c in cpus))
        self._halt = threading.Event()
        self._lock = threading.Lock()
        self._times = array.array("q")
        self._values = array.array("d")
        self.width = None
        self.reads = 0
        self.failed_reads = 0
        self.missed_polls = 0
        self.first_error = None
        self.last_error = None
        self.read_ns_total = 0
        self.read_ns_max = 0
        self.started_ns = None
        self.ended_ns = None
        self.cpu_s = None
        self.affinity = None
        self.affinity_error = None

    # -- inside the thread ------------------------------------------------------------------------------

    def _pin(self):
        if self.cpus is None:
            return
        try:
            os.sched_setaffinity(0, self.cpus)  # pid 0 = this thread on Linux
            self.affinity = sorted(os.sched_getaffinity(0))
        except (OSError, ValueError, AttributeError) as e:
            self.affinity_error = f"{type(e).__name__}: {e}"

    def _store(self, t_ns, values):
        values = [float(v) if v is not None else NAN for v in values]
        if self.width is None:
            self.width = len(values)
        elif len(values) != self.width:
            raise ValueError(f"reading has {len(values)} values, expected {self.width}")
        with self._lock:
            self._times.append(t_ns)
            self._values.extend(values)

    def run(self):
        self._pin()
        cpu0 = thread_cpu_s()
        interval_ns = max(1, int(round(self.interval_s * 1e9)))
        self.started_ns = monotonic_ns()
        next_ns = self.started_ns
        last_t = None
        while not self._halt.is_set():
            before = monotonic_ns()
            try:
                values = self._read()
                t_ns = monotonic_ns()
                if last_t is not None and t_ns <= last_t:
                    t_ns = last_t + 1
                self._store(t_ns, values)
            except Exception as e:  # a sensor read must never kill the sampler: count it and go on
                self.failed_reads += 1
                self.last_error = f"{type(e).__name__}: {e}"
                if self.first_error is None:
                    self.first_error = self.last_error
            else:
                last_t = t_ns
                self.reads += 1
                took = t_ns - before
                self.read_ns_total += took
                if took > self.read_ns_max:
                    self.read_ns_max = took
            next_ns += interval_ns
            now = monotonic_ns()
            if next_ns <= now:
                skipped = (now - next_ns) // interval_ns + 1
                self.missed_polls += skipped
                next_ns += skipped * interval_ns
            self._halt.wait((next_ns - now) / 1e9)
        self.ended_ns = monotonic_ns()
        cpu1 = thread_cpu_s()
        if cpu0 is not None and cpu1 is not None:
            self.cpu_s = max(0.0, cpu1 - cpu0)

    # -- from the runner --------------------------------------------------------------------------------

    def stop(self, timeout=2.0):
        """Wake the thread and wait (up to ``timeout`` s) for it to end. True when it has ended."""
        self._halt.set()
        if self.is_alive():
            self.join(timeout)
        return not self.is_alive()

    def readings(self):
        """(times: list of int ns, rows: list of tuples of floats, NaN for missing), a snapshot."""
        with self._lock:
            times = self._times.tolist()
            values = self._values.tolist()
        width = self.width or 0
        rows = [tuple(values[i * width:(i + 1) * width]) for i in range(len(times))]
        return times, rows

    def stats(self):
        """What the sampling did and cost, for the manifest and the console."""
        wall_s = None
        if self.started_ns is not None:
            end = self.ended_ns if self.ended_ns is not None else monotonic_ns()
            wall_s = (end - self.started_ns) / 1e9
        ncpu = os.cpu_count() or 1
        one = all_ = None
        if self.cpu_s is not None and wall_s:
            one = self.cpu_s / wall_s
            all_ = one / ncpu
        out = collections.OrderedDict([
            ("poll_ms", round(self.interval_s * 1e3, 6)),
            ("reads", self.reads),
            ("failed_reads", self.failed_reads),
            ("missed_polls", self.missed_polls),
            ("wall_s", None if wall_s is None else round(wall_s, 6)),
            ("reads_per_s", None if not wall_s else round(self.reads / wall_s, 3)),
            ("read_ms_mean", round(self.read_ns_total / self.reads / 1e6, 4) if self.reads else None),
            ("read_ms_max", round(self.read_ns_max / 1e6, 4) if self.reads else None),
            ("cpu_s", None if self.cpu_s is None else round(self.cpu_s, 6)),
            ("cpu_share_of_one_core", None if one is None else round(one, 6)),
            ("cpu_share_of_all_cores", None if all_ is None else round(all_, 6)),
            ("cpu_count", ncpu),
            ("stopped", self.ended_ns is not None),
        ])
        if self.cpus is not None:
            out["affinity_requested"] = self.cpus
            out["affinity"] = self.affinity
            if self.affinity_error:
                out["affinity_error"] = self.affinity_error
        if self.first_error:
            out["first_error"] = self.first_error
            out["last_error"] = self.last_error
        return out


class SampledSource:
    """Base of the real sources: a Sampler polls ``read()`` between ``start()`` and ``stop()``.

    Subclasses set ``kind``, ``driver``, ``location`` and ``rails`` (list of manifest rail entries), and
    implement ``read()`` (a flat tuple of numbers) and ``_rows(times, rows)`` (RailSample rows).
    """

    kind = None
    driver = ""
    simulated = False

    def __init__(self, name, update_interval_ms, poll_ms, sampler_cpus=None):
        self.name = name
        self.update_interval_ms = None if update_interval_ms is None else float(update_interval_ms)
        if not poll_ms or not poll_ms > 0:
            raise PowerSourceError(f"{name}: the poll interval must be more than 0 ms")
        self.poll_ms = float(poll_ms)
        self.sampler_cpus = sampler_cpus
        self.sampler = None
        self.rails = []
        self.location = None
        self.notes = []

    @property
    def rail_names(self):
        return [r["name"] for r in self.rails]

    def read(self):
        raise NotImplementedError

    def start(self):
        """Start polling in a daemon thread (a new one each call; the previous readings are dropped)."""
        if self.sampler is not None and self.sampler.is_alive():
            raise PowerSourceError(f"{self.name}: already started")
        self.sampler = Sampler(self.read, self.poll_ms / 1e3, name="power-" + self.name, cpus=self.sampler_cpus)
        self.sampler.start()

    def stop(self):
        """Stop polling (returns at once when not started); the readings stay for samples()."""
        if self.sampler is not None:
            self.sampler.stop()

    def stats(self):
        return None if self.sampler is None else self.sampler.stats()

    def samples(self, events=None):
        """rails.csv rows (RailSample) of every reading between start() and stop(), one per rail per reading.

        ``events`` is not used: a real source reports what it read, when it read it.
        """
        if self.sampler is None:
            return []
        times, rows = self.sampler.readings()
        return self._rows(times, rows)

    def _rows(self, times, rows):
        raise NotImplementedError

    def ground_truth(self, events=None):
        """A measurement has no ground truth."""
        return []

    def _details(self):
        """Extra manifest fields of a kind (device path, driver, ...)."""
        return []

    def describe(self):
        """This source's entry of manifest.power_sources (with the sampler's figures once it has run)."""
        out = collections.OrderedDict([
            ("name", self.name),
            ("kind", self.kind),
            ("simulated", self.simulated),
            ("update_interval_ms", self.update_interval_ms),
            ("rails", [collections.OrderedDict(r) for r in self.rails]),
            ("driver", self.driver),
            ("device", self.location),
            ("poll_ms", self.poll_ms),
        ])
        for key, value in self._details():
            out[key] = value
        if self.notes:
            out["notes"] = list(self.notes)
        stats = self.stats()
        if stats is not None:
            out["sampler"] = stats
        return out


def rail_samples(times, rows, rails_fields):
    """RailSample rows from readings: ``rails_fields`` is [(rail, i_power, i_voltage or None, i_current or None)]."""
    out = []
    for t, row in zip(times, rows):
        for rail, ip, iv, ic in rails_fields:
            p = clean_number(row[ip])
            if p is None:
                continue
            v = None if iv is None else clean_number(row[iv])
            c = None if ic is None else clean_number(row[ic])
            out.append(RailSample(int(t), rail, p, v, c))
    return out
