"""Writer of run bundles, format version 1 (docs/bundle-format.md).

Python 3.6, standard library only. The reader is importer/readers/bundle.py on the workstation.

A bundle is written into a temporary sibling folder (``.<name>.tmp-<random>``) and only renamed to its final
name once every file is complete, so a crash or an error never leaves a half bundle under the final name.
"""

import collections
import csv
import datetime
import gzip
import hashlib
import io
import json
import os
import re
import shutil
import socket
import tempfile
import time
import zipfile

FORMAT = "layerjoule-run-bundle"
FORMAT_VERSION = "1.0"

MANIFEST = "manifest.json"
MODEL = "model.prototxt"
EVENTS = "events.csv"
RAILS = "rails.csv"
GROUND_TRUTH = "ground_truth.csv"

EVENT_COLUMNS = ("kind", "phase", "iteration", "layer_index", "layer_name", "layer_type", "repeats",
                 "t_start_ns", "t_end_ns")
RAIL_COLUMNS = ("t_ns", "rail", "power_mw", "voltage_mv", "current_ma")
GROUND_TRUTH_COLUMNS = ("phase", "iteration", "layer_index", "rail", "energy_mj")

PHASES = ("setup", "warmup", "inference", "idle")
MODES = ("network", "layer-loop")

# One row of events.csv. Phase rows have None for iteration, layer_index, layer_name, layer_type, repeats.
Event = collections.namedtuple("Event", EVENT_COLUMNS)
# One row of rails.csv; voltage_mv and current_ma may be None.
RailSample = collections.namedtuple("RailSample", RAIL_COLUMNS)
# One row of ground_truth.csv.
GroundTruth = collections.namedtuple("GroundTruth", GROUND_TRUTH_COLUMNS)

_RUN_ID = re.compile(r"^[A-Za-z0-9._-]{1,128}$")
REQUIRED_MANIFEST = ("format", "format_version", "run_id", "created_utc", "simulated", "engine", "model",
                     "iterations", "mode", "power_sources", "clock")


class BundleError(Exception):
    """A bundle cannot be written as asked (bad manifest, target exists, missing file)."""


def phase_event(phase, t_start_ns, t_end_ns):
    return Event("phase", phase, None, None, None, None, None, int(t_start_ns), int(t_end_ns))


def layer_event(phase, iteration, layer_index, layer_name, layer_type, repeats, t_start_ns, t_end_ns):
    return Event("layer", phase, int(iteration), int(layer_index), layer_name, layer_type, int(repeats),
                 int(t_start_ns), int(t_end_ns))


# ----------------------------------------------------------------------------------------------------
# helpers


def sha256_file(path, chunk=1 << 20):
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            block = f.read(chunk)
            if not block:
                break
            h.update(block)
    return h.hexdigest()


def monotonic_ns():
    """CLOCK_MONOTONIC as integer nanoseconds (Python 3.6 has no time.monotonic_ns)."""
    return int(round(time.clock_gettime(time.CLOCK_MONOTONIC) * 1e9))


def realtime_ns():
    """UTC wall-clock time (CLOCK_REALTIME), integer ns since the epoch (float resolution, < 1 us)."""
    return int(round(time.clock_gettime(time.CLOCK_REALTIME) * 1e9))


def utc_iso(realtime_utc_ns):
    """'2026-12-01T21:30:00.123456Z' for a UTC time in ns since the epoch."""
    seconds, ns = divmod(int(realtime_utc_ns), 1000000000)
    t = datetime.datetime(1970, 1, 1) + datetime.timedelta(seconds=seconds, microseconds=ns // 1000)
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def clock_pair(tries=5):
    """One CLOCK_MONOTONIC reading paired with one UTC reading, taken back to back.

    The realtime reading is bracketed by two monotonic readings; the pair with the tightest bracket of a few
    tries is kept and the monotonic value is the bracket's midpoint. Returns the manifest's ``clock`` object
    plus ``uncertainty_ns`` (half the bracket).
    """
    best = None
    for _ in range(max(1, tries)):
        m0 = monotonic_ns()
        r = realtime_ns()
        m1 = monotonic_ns()
        if best is None or (m1 - m0) < (best[2] - best[0]):
            best = (m0, r, m1)
    m0, r, m1 = best
    return collections.OrderedDict([
        ("monotonic_ns", (m0 + m1) // 2),
        ("realtime_utc_ns", r),
        ("realtime_utc", utc_iso(r)),
        ("uncertainty_ns", (m1 - m0 + 1) // 2),
    ])


def _slug(text, limit):
    s = re.sub(r"[^A-Za-z0-9._-]+", "-", str(text)).strip("-.")
    return (s or "x")[:limit]


def make_run_id(network, realtime_utc_ns=None, host=None, suffix=None):
    """'20261201T213000Z-<host>-<network>-<6 hex>': letters, digits and ._- only, at most 128 characters."""
    if realtime_utc_ns is None:
        realtime_utc_ns = realtime_ns()
    if host is None:
        host = socket.gethostname().split(".")[0]
    if suffix is None:
        suffix = os.urandom(3).hex()
    stamp = (datetime.datetime(1970, 1, 1)
             + datetime.timedelta(seconds=int(realtime_utc_ns) // 1000000000)).strftime("%Y%m%dT%H%M%SZ")
    run_id = f"{stamp}-{_slug(host, 40)}-{_slug(network, 64)}-{_slug(suffix, 16)}"
    return run_id[:128]


def check_run_id(run_id):
    if not isinstance(run_id, str) or not _RUN_ID.match(run_id):
        raise BundleError(f"run_id {run_id!r}: use letters, digits and ._- (at most 128 characters)")


def check_manifest(manifest):
    """Raise BundleError if a required field of docs/bundle-format.md is missing or malformed."""
    missing = [k for k in REQUIRED_MANIFEST if k not in manifest]
    if missing:
        raise BundleError("manifest lacks required field(s): " + ", ".join(missing))
    if manifest["format"] != FORMAT:
        raise BundleError(f"manifest format must be {FORMAT!r}")
    check_run_id(manifest["run_id"])
    if not isinstance(manifest["simulated"], bool):
        raise BundleError("manifest simulated must be true or false")
    if not (manifest["engine"] or {}).get("name"):
        raise BundleError("manifest engine.name is required")
    model = manifest["model"] or {}
    prototxt = model.get("prototxt") or {}
    if not model.get("network") or not prototxt.get("file") or not prototxt.get("sha256"):
        raise BundleError("manifest model.network, model.prototxt.file and .sha256 are required")
    if manifest["mode"] not in MODES:
        raise BundleError("manifest mode must be one of " + ", ".join(MODES))
    if not isinstance(manifest["iterations"], int):
        raise BundleError("manifest iterations must be an integer")
    if not isinstance(manifest["power_sources"], list):
        raise BundleError("manifest power_sources must be a list")
    names = [r.get("name") for src in manifest["power_sources"] for r in src.get("rails", [])]
    if len(names) != len(set(names)):
        raise BundleError(f"rail names must be unique within a bundle: {names}")
    clock = manifest["clock"] or {}
    if "monotonic_ns" not in clock or "realtime_utc_ns" not in clock:
        raise BundleError("manifest clock needs monotonic_ns and realtime_utc_ns")


def _umask():
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _cell(value):
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return value


# ----------------------------------------------------------------------------------------------------
# writer


class BundleWriter:
    """Writes one run bundle.

    ``path`` is the bundle's final path: a folder, or with ``as_zip`` a zip file (``.zip`` is appended
    when the path does not end with it). ``compress`` gzips the CSV tables (``events.csv.gz``, ...).

    Use as a context manager: the bundle is committed (renamed into place) when the block ends without an
    exception, and the temporary folder is removed when it raises::

        with BundleWriter(path, compress=True) as w:
            sha = w.add_model("deploy.prototxt")
            w.write_events(events)
            w.write_rails(samples)               # only with a power source
            w.write_ground_truth(rows)           # only simulated runs
            w.write_manifest(manifest)           # model.prototxt.sha256 is filled in from add_model
        print(w.final_path)
    """

    def __init__(self, path, compress=False, as_zip=False):
        path = os.path.abspath(str(path))
        if as_zip and not path.endswith(".zip"):
            path += ".zip"
        self.final_path = path
        self.compress = bool(compress)
        self.as_zip = bool(as_zip)
        self.model_sha256 = None
        self.written = []
        if os.path.lexists(path):
            raise BundleError(f"{path} already exists: choose a new path")
        parent = os.path.dirname(path)
        if not os.path.isdir(parent):
            os.makedirs(parent)
        base = os.path.basename(path)
        self.tmp_dir = tempfile.mkdtemp(prefix="." + base + ".tmp-", dir=parent)
        os.chmod(self.tmp_dir, 0o777 & ~_umask())  # mkdtemp makes it private; a bundle is not
        self.manifest = None
        self._done = False

    # -- context manager
    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.commit()
        else:
            self.abort()
        return False

    # -- files
    def _table_name(self, name):
        return name + ".gz" if self.compress else name

    def _open_table(self, name):
        target = os.path.join(self.tmp_dir, self._table_name(name))
        raw = open(target, "wb")
        if self.compress:
            # mtime=0 and no file name in the header: the same rows give the same bytes
            gz = gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0)
            return raw, gz, io.TextIOWrapper(gz, encoding="utf-8", newline="")
        return raw, None, io.TextIOWrapper(raw, encoding="utf-8", newline="")

    def _write_table(self, name, columns, rows):
        raw, gz, text = self._open_table(name)
        count = 0
        try:
            writer = csv.writer(text, lineterminator="\n")
            writer.writerow(columns)
            for row in rows:
                writer.writerow([_cell(v) for v in row])
                count += 1
            text.flush()
            text.detach()
            if gz is not None:
                gz.close()
        finally:
            raw.close()
        self.written.append(self._table_name(name))
        return count

    def add_model(self, prototxt_path):
        """Copy the network definition byte for byte as model.prototxt; returns its sha256 (hex)."""
        target = os.path.join(self.tmp_dir, MODEL)
        shutil.copyfile(str(prototxt_path), target)
        self.model_sha256 = sha256_file(target)
        self.written.append(MODEL)
        return self.model_sha256

    def write_events(self, events):
        """events.csv: Event rows (or 9-tuples in EVENT_COLUMNS order), in the order they happened."""
        rows = []
        for e in events:
            e = Event(*e)
            if e.kind not in ("phase", "layer"):
                raise BundleError(f"event kind must be phase or layer, not {e.kind!r}")
            if e.phase not in PHASES:
                raise BundleError("event phase must be one of {}, not {!r}".format(
                    ", ".join(PHASES), e.phase))
            if e.t_end_ns < e.t_start_ns:
                raise BundleError(f"event ends before it starts: {e}")
            rows.append(e)
        return self._write_table(EVENTS, EVENT_COLUMNS, rows)

    def write_rails(self, samples):
        """rails.csv: RailSample rows (t_ns, rail, power_mw, voltage_mv, current_ma)."""
        last = {}
        rows = []
        for s in samples:
            s = RailSample(*s)
            prev = last.get(s.rail)
            if prev is not None and s.t_ns <= prev:
                raise BundleError(f"rail {s.rail}: t_ns must strictly increase ({s.t_ns} after {prev})")
            last[s.rail] = s.t_ns
            rows.append(s)
        return self._write_table(RAILS, RAIL_COLUMNS, rows)

    def write_ground_truth(self, rows):
        """ground_truth.csv: GroundTruth rows (phase, iteration, layer_index, rail, energy_mj)."""
        return self._write_table(GROUND_TRUTH, GROUND_TRUTH_COLUMNS, [GroundTruth(*r) for r in rows])

    def write_manifest(self, manifest):
        """manifest.json. Fills in format, format_version and model.prototxt (file, sha256) when missing."""
        manifest = collections.OrderedDict(manifest)
        manifest.setdefault("format", FORMAT)
        manifest.setdefault("format_version", FORMAT_VERSION)
        model = manifest.get("model")
        if isinstance(model, dict) and self.model_sha256 is not None:
            prototxt = collections.OrderedDict(model.get("prototxt") or {})
            prototxt.setdefault("file", MODEL)
            prototxt.setdefault("sha256", self.model_sha256)
            if prototxt["sha256"] != self.model_sha256:
                raise BundleError("manifest model.prototxt.sha256 does not match the copied model.prototxt")
            model = collections.OrderedDict(model)
            model["prototxt"] = prototxt
            manifest["model"] = model
        check_manifest(manifest)
        with open(os.path.join(self.tmp_dir, MANIFEST), "w", encoding="utf-8") as f:
            json.dump(manifest, f, indent=2, ensure_ascii=False)
            f.write("\n")
        self.written.append(MANIFEST)
        self.manifest = manifest

    # -- end
    def commit(self):
        """Check the required files are there and move the bundle to its final path; returns that path."""
        if self._done:
            return self.final_path
        try:
            names = set(self.written)
            for required in (MANIFEST, MODEL, self._table_name(EVENTS)):
                if required not in names:
                    raise BundleError(f"bundle lacks {required}")
            if os.path.lexists(self.final_path):
                raise BundleError(f"{self.final_path} already exists: choose a new path")
            if self.as_zip:
                self._zip_into_place()
            else:
                os.rename(self.tmp_dir, self.final_path)
        except BaseException:
            self.abort()
            raise
        self._done = True
        return self.final_path

    def _zip_into_place(self):
        parent = os.path.dirname(self.final_path)
        fd, tmp_zip = tempfile.mkstemp(prefix="." + os.path.basename(self.final_path) + ".tmp-", dir=parent)
        os.close(fd)
        os.chmod(tmp_zip, 0o666 & ~_umask())
        try:
            with zipfile.ZipFile(tmp_zip, "w") as zf:
                for name in self.written:
                    # members at the zip root; already gzipped tables are stored as they are
                    method = zipfile.ZIP_STORED if name.endswith(".gz") else zipfile.ZIP_DEFLATED
                    zf.write(os.path.join(self.tmp_dir, name), arcname=name, compress_type=method)
            os.rename(tmp_zip, self.final_path)
        except BaseException:
            if os.path.exists(tmp_zip):
                os.remove(tmp_zip)
            raise
        shutil.rmtree(self.tmp_dir, ignore_errors=True)

    def abort(self):
        """Remove the temporary folder; nothing appears under the final name."""
        self._done = True
        shutil.rmtree(self.tmp_dir, ignore_errors=True)
