"""``replay:FILE``: power recorded earlier (a rails.csv), replayed onto this run's clock. For demos and tests.

FILE has rails.csv's columns (docs/bundle-format.md): ``t_ns,rail,power_mw`` and optionally ``voltage_mv``,
``current_ma``; it may be gzipped (``.gz``). Its first sample (smallest t_ns) is placed at the run's start (the
smallest ``t_start_ns`` of the events): every time is shifted by run start - first recorded t_ns; samples that
then fall after the run's end (the largest ``t_end_ns``) are dropped. The rails are the file's distinct rail
names in order of appearance; VDD_IN, POM_5V_IN and VIN_SYS_5V0 are marked total.

The values were not measured during this run, so the source says ``"simulated": true`` (and the bundle is
labelled simulated). ``update_interval_ms`` is the one given, else the median spacing of the first rail's
samples in the file (an estimate, said so in the manifest).
"""

import collections
import csv
import gzip
import hashlib
import io
import os

from runner.bundle import RailSample
from runner.power.common import PowerSourceError, clean_number, is_total_rail, rail_entry

KIND = "replay"
REQUIRED = ("t_ns", "rail", "power_mw")


def _number(text, what, where):
    text = (text or "").strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise PowerSourceError(f"replay: {where}: {what} is {text!r}, not a number") from None
    return clean_number(value)


def load(path):
    """[(t_ns, rail, power_mw, voltage_mv, current_ma)] of a rails CSV, sorted by time (stable)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise PowerSourceError(f"replay: cannot read {path} ({e.strerror or e})") from None
    sha = hashlib.sha256(data).hexdigest()
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except OSError as e:
            raise PowerSourceError(f"replay: {path} is not valid gzip ({e})") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise PowerSourceError(f"replay: {path} is not UTF-8 text") from None
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in REQUIRED if c not in (reader.fieldnames or [])]
    if missing:
        raise PowerSourceError("replay: {} lacks column(s) {} (expected t_ns,rail,power_mw[,voltage_mv,"
                               "current_ma])".format(path, ", ".join(missing)))
    rows = []
    for line, rec in enumerate(reader, start=2):
        where = f"{os.path.basename(path)} line {line}"
        t = (rec.get("t_ns") or "").strip()
        try:
            t_ns = int(t)
        except ValueError:
            raise PowerSourceError(f"replay: {where}: t_ns is {t!r}, not an integer") from None
        rail = (rec.get("rail") or "").strip()
        if not rail:
            raise PowerSourceError(f"replay: {where}: empty rail")
        power = _number(rec.get("power_mw"), "power_mw", where)
        if power is None:
            raise PowerSourceError(f"replay: {where}: empty power_mw")
        rows.append((t_ns, rail, power, _number(rec.get("voltage_mv"), "voltage_mv", where),
                     _number(rec.get("current_ma"), "current_ma", where)))
    if not rows:
        raise PowerSourceError(f"replay: {path} holds no samples")
    rows.sort(key=lambda r: r[0])
    last = {}
    for r in rows:
        if last.get(r[1]) == r[0]:
            raise PowerSourceError(f"replay: {path}: rail {r[1]} has two samples at t_ns {r[0]}")
        last[r[1]] = r[0]
    return rows, sha


class ReplaySource:
    """Replays a recorded rails CSV onto a run's events (module docstring)."""

    kind = KIND
    simulated = True

    def __init__(self, path, name=KIND, update_interval_ms=None):
        self.name = name
        self.path = os.path.abspath(str(path))
        self.rows, self.sha256 = load(self.path)
        order = collections.OrderedDict()
        for _, rail, _, _, _ in sorted(self.rows, key=lambda r: r[0]):
            order.setdefault(rail, True)
        self.rails = [rail_entry(r, is_total_rail(r)) for r in order]
        self.rail_names = list(order)
        if update_interval_ms is not None:
            self.update_interval_ms = float(update_interval_ms)
            self.update_interval_note = "given"
        else:
            first = [r[0] for r in self.rows if r[1] == self.rail_names[0]]
            gaps = sorted(b - a for a, b in zip(first, first[1:]))
            self.update_interval_ms = round(gaps[len(gaps) // 2] / 1e6, 3) if gaps else None
            first_rail = self.rail_names[0]
            self.update_interval_note = (f"estimated: median spacing of {first_rail}'s samples in the file"
                                         if gaps else "unknown: one sample per rail")
        self.location = self.path

    def describe(self):
        return collections.OrderedDict([
            ("name", self.name),
            ("kind", self.kind),
            ("simulated", True),
            ("update_interval_ms", self.update_interval_ms),
            ("rails", [collections.OrderedDict(r) for r in self.rails]),
            ("file", self.path),
            ("sha256", self.sha256),
            ("recorded_samples", len(self.rows)),
            ("update_interval_source", self.update_interval_note),
            ("description", f"replayed from {self.path}: recorded values placed on this run's clock (first "
                            "sample at the run's start); not measured during this run"),
        ])

    def start(self):
        """Nothing to start: the file is replayed over the events afterwards."""

    def stop(self):
        """Nothing to stop."""

    def shift_ns(self, events):
        """The time shift that puts the file's first sample at the run's start."""
        return min(e.t_start_ns for e in events) - self.rows[0][0]

    def samples(self, events):
        """rails.csv rows: the file's samples shifted onto the run's clock, those after its end dropped."""
        if not events:
            return []
        shift = self.shift_ns(events)
        end = max(e.t_end_ns for e in events)
        out = []
        for t, rail, p, v, c in self.rows:
            t += shift
            if t > end:
                break
            out.append(RailSample(t, rail, p, v, c))
        return out

    def ground_truth(self, events=None):
        """No ground truth: the replayed values are not a simulation with known energy."""
        return []
