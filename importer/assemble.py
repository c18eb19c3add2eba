"""Putting one run together from several sources: which reader reads each file, which files make one run, and
clock alignment onto the run's own axis (docs/alignment.md).

A run is anchored by a run bundle (its CLOCK_MONOTONIC is the run's clock) or, without one, by a Streamline
capture (an annotated program that wrote no bundle; its layer intervals come from the annotations). Every other
source (rail logs, Streamline reports, a capture beside a bundle) is moved onto the anchor's clock:
- a capture by the runner's sync markers (`layerjoule-sync monotonic_ns=<t>`); without one, by the capture's
  MONOTONIC_RAW anchor and the manifest's recorded MONOTONIC_RAW - MONOTONIC offset;
- a log stamped with wall-clock time by the manifest's clock pair (one CLOCK_MONOTONIC and one UTC reading);
- a log with relative times by `--offset-ms` (where its time 0 falls after the run's first event);
`--offset-ms` is added on top of an automatic alignment as a correction.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from importer.errors import InputError
from importer.readers.bundle import Bundle, PowerSource, Rail, is_bundle, read_bundle
from importer.readers.common import SourceData
from importer.readers.text_tables import head_text

SYNC_PATTERN = re.compile(r"^layerjoule-sync monotonic_ns=(-?[0-9]+)$")  # runner/streamline.py writes it
ITERATION_MARKER = re.compile(r"^iteration (\d+)$")
POINT_MARKER = re.compile(r"^(?P<name>.+?)___(?P<type>[A-Za-z0-9_]+)$")  # "conv1___Convolution"
LOG_KINDS = ("tegrastats", "power-csv", "energy-probe", "ptdaemon", "streamline-report")
KINDS = ("bundle", "streamline-capture", *LOG_KINDS)
SYNTHETIC_KEY = "layerjoule_synthetic"  # a Summary attribute of captures layerjoule's test writer made


@dataclass
class ImportOptions:
    interval_ms: float | None = None  # tegrastats without time stamps
    offset_ms: float | None = None  # manual clock offset (relative logs), or a correction
    utc_offset_minutes: float = 0.0  # logs stamped with the board's local time
    time_column: str | None = None  # generic power CSVs
    power_columns: list[str] | None = None
    unit: str | None = None
    column_map: dict[str, str] | None = None  # Streamline reports
    sample_rate_hz: float | None = None  # energy probe CSVs without a time column
    network: str | None = None  # a capture-only run: the network's name
    model: Path | None = None  # a capture-only run: its prototxt, for the model cost
    bytes_per_access: int = 64  # memory/bus access counters -> bytes


@dataclass
class Alignment:
    source: str
    kind: str
    method: str  # "sync-marker", "monotonic-raw-anchor", "clock-pair", "manual", "anchor"
    offset_ns: int
    residual_ns: int | None = None
    n_points: int = 0

    def as_dict(self) -> dict:
        return {"source": self.source, "kind": self.kind, "method": self.method, "offset_ns": self.offset_ns,
                "residual_ns": self.residual_ns, "n_points": self.n_points}


@dataclass
class RunSources:
    """One run's sources, read, with everything on the anchor's clock."""

    bundle: Bundle
    sources: list[tuple[str, Path, str]]  # (kind, path, content sha256) of every file
    alignments: list[Alignment] = field(default_factory=list)
    counters: pd.DataFrame | None = None  # t_ns, counter, core, value
    counter_info: pd.DataFrame | None = None  # counter, title, name, unit, counter_class
    markers: pd.DataFrame | None = None  # t_ns, text, source
    notes: list[str] = field(default_factory=list)
    capture_offset_ns: int | None = None  # the capture axis's offset, once a capture-time source fixed it

    @property
    def content_sha256(self) -> str:
        """The run's identity: all its sources' contents, in any order and packaging."""
        hashes = sorted(sha for _, _, sha in self.sources)
        return hashes[0] if len(hashes) == 1 else hashlib.sha256("".join(hashes).encode()).hexdigest()


def split_kind(argument: str) -> tuple[str | None, Path]:
    """`KIND:PATH` names the reader explicitly; anything else is a path whose kind is detected."""
    kind, sep, rest = argument.partition(":")
    if sep and kind in KINDS:
        return kind, Path(rest)
    return None, Path(argument)


def detect_kind(path: Path) -> str:
    with _os_errors_as_input_errors(path):
        return _detect_kind(path)


@contextlib.contextmanager
def _os_errors_as_input_errors(path: Path) -> Iterator[None]:
    """A file the system cannot give (no permission, an I/O error, a name it refuses) is bad input too."""
    try:
        yield
    except OSError as error:
        where = error.filename if isinstance(error.filename, str) else str(path)
        raise InputError(f"cannot be read ({error.strerror or error}); expected a readable file", path=where) from None


def _regular(path: Path) -> None:
    if not path.exists():
        raise InputError("no such file or folder", path=str(path))
    if not path.is_file() and not path.is_dir():  # a pipe or a device could block reading forever
        raise InputError("is neither a file nor a folder (a pipe or a device?); expected a file or a folder",
                         path=str(path))


def _detect_kind(path: Path) -> str:
    from importer.readers.streamline_capture import is_capture

    _regular(path)
    if is_bundle(path):
        return "bundle"
    if is_capture(path):
        return "streamline-capture"
    if path.is_dir():
        raise InputError("a folder that is neither a run bundle (manifest.json) nor a Streamline capture "
                         "(captured.xml)", path=str(path))
    if zipfile.is_zipfile(path) or _is_tar(path):
        raise InputError("an archive that holds neither a run bundle (manifest.json) nor a Streamline capture "
                         "(captured.xml); expected a zip of one of them (tar archives are not read)", path=str(path))
    head = head_text(path)
    lines = [line for line in head.splitlines() if line.strip()]
    first = lines[0].lower() if lines else ""
    if any(line.startswith("Time,") and ",Watts," in line for line in lines[:5]):
        return "ptdaemon"
    if re.search(r"\b(?:VDD|POM|VIN)_\w+ \d+(?:mW)?/\d+", head) or re.search(r"\bRAM \d+/\d+MB", head):
        return "tegrastats"
    cells = [c.strip().lower() for c in re.split(r"[,\t]", first)]
    probe = re.compile(r"^(?:(?:power|voltage|current)_\d+|(?:sys|port)_\w+|\w+_(?:power|voltage|current))$")
    if {"voltage", "current"} & set(cells) or any(probe.match(c) and not c.endswith("_mw") for c in cells):
        return "energy-probe"
    if any("power" in c or re.search(r"[\[(](?:mw|w)[\])]", c) for c in cells):
        return "power-csv"
    if "time" in first:
        return "streamline-report"
    raise InputError("cannot tell which format this is; expected a run bundle, a Streamline capture or report, "
                     "a tegrastats log or a power CSV (name it: KIND:PATH with KIND one of "
                     f"{', '.join(KINDS)})", path=str(path))


def _is_tar(path: Path) -> bool:
    return path.name.lower().endswith((".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz"))


def read_one(kind: str, path: Path, options: ImportOptions) -> Bundle | SourceData:
    with _os_errors_as_input_errors(path):
        return _read_one(kind, path, options)


def _read_one(kind: str, path: Path, options: ImportOptions) -> Bundle | SourceData:
    _regular(path)
    if kind == "bundle":
        return read_bundle(path)
    if kind == "streamline-capture":
        from importer.readers.streamline_capture import read_capture

        return read_capture(path)
    if kind == "tegrastats":
        from importer.readers.tegrastats import read_tegrastats

        return read_tegrastats(path, interval_ms=options.interval_ms, utc_offset_minutes=options.utc_offset_minutes)
    if kind == "streamline-report":
        from importer.readers.streamline_report import read_streamline_report

        return read_streamline_report(path, column_map=options.column_map)
    from importer.readers import power_csv

    if kind == "power-csv":
        return power_csv.read_power_csv(path, time_column=options.time_column, power_columns=options.power_columns,
                                        unit=options.unit)
    if kind == "energy-probe":
        return power_csv.read_energy_probe(path, sample_rate_hz=options.sample_rate_hz, unit=options.unit)
    return power_csv.read_ptdaemon(path, utc_offset_minutes=options.utc_offset_minutes)


def group_runs(items: list[Bundle | SourceData], options: ImportOptions) -> list[RunSources]:
    """Which sources make which run: each bundle alone is a run; logs and captures join the one bundle given
    with them, or, without a bundle, the one capture."""
    bundles = [i for i in items if isinstance(i, Bundle)]
    others = [i for i in items if not isinstance(i, Bundle)]
    if not others:
        return [RunSources(b, [("run-bundle", b.path, b.content_sha256)]) for b in bundles]
    captures = [i for i in others if i.kind == "streamline-capture"]
    if len(bundles) > 1:
        raise InputError(f"{len(bundles)} run bundles with {len(others)} other sources: logs and captures join "
                         "one run, so give one bundle per call with them")
    if bundles:
        run = RunSources(bundles[0], [("run-bundle", bundles[0].path, bundles[0].content_sha256)])
        joining = others
    else:
        if len(captures) != 1:
            raise InputError(f"{len(captures)} Streamline captures and no run bundle: a run without a bundle is "
                             "made from exactly one capture (its annotations give the layers)")
        run = run_from_capture(captures[0], options)
        joining = [i for i in others if i is not captures[0]]
    # Sources with a sync marker first: a report without one can then take the capture axis they fixed.
    for source in sorted(joining, key=lambda source: len(_sync_offsets(source)) == 0):
        join(run, source, options)
    return [run]


def join(run: RunSources, source: SourceData, options: ImportOptions, alignment: Alignment | None = None) -> None:
    """Move a log or capture onto the run's clock and add its rails, counters and markers to the run."""
    alignment = alignment or align(run, source, options)
    run.alignments.append(alignment)
    run.sources.append((source.kind, source.path, source.content_sha256))
    run.notes += [f"{source.path.name}: {note}" for note in source.notes]
    shift = alignment.offset_ns
    bundle = run.bundle
    if source.samples is not None and len(source.samples):
        samples = source.samples.copy()
        taken = {r.name for r in bundle.rails}
        renamed = {r.name: (f"{source.kind}.{r.name}" if r.name in taken else r.name) for r in source.rails}
        samples["rail"] = samples["rail"].map(lambda rail: renamed.get(rail, rail))
        samples["t_ns"] = samples["t_ns"].astype("int64") + shift
        for column in ("voltage_mv", "current_ma"):
            if column not in samples:
                samples[column] = np.nan
        for info in source.rails:
            interval_ns = None if info.update_interval_ms is None else int(round(info.update_interval_ms * 1e6))
            power_source = PowerSource(name=source.path.name, kind=source.kind, simulated=bool(
                source.anchor.get("simulated", False)), update_interval_ns=interval_ns)
            bundle.rails.append(Rail(name=renamed[info.name], source=power_source, is_total=info.total))
        bundle.samples = pd.concat([bundle.samples, samples[list(bundle.samples.columns)]], ignore_index=True)
    if source.counters is not None and len(source.counters):
        counters = source.counters[["t_ns", "counter", "core", "value"]].copy()
        counters["t_ns"] = counters["t_ns"].astype("int64") + shift
        run.counters = counters if run.counters is None else pd.concat([run.counters, counters], ignore_index=True)
        info = source.counter_info.reindex(columns=["counter", "title", "name", "unit", "counter_class"])
        run.counter_info = info if run.counter_info is None else pd.concat([run.counter_info, info]).drop_duplicates(
            "counter")
    if source.markers is not None and len(source.markers):
        markers = pd.DataFrame({"t_ns": source.markers["t_ns"].astype("int64") + shift,
                                "text": source.markers["text"].astype(str), "source": source.kind})
        run.markers = markers if run.markers is None else pd.concat([run.markers, markers], ignore_index=True)


def align(run: RunSources, source: SourceData, options: ImportOptions) -> Alignment:
    """The offset that moves the source's times onto the run's clock (t_run = t_source + offset_ns)."""
    manual_ns = int(round(options.offset_ms * 1e6)) if options.offset_ms is not None else None
    manifest = run.bundle.manifest
    name = str(source.path)
    if source.time_base == "capture":
        syncs = _sync_offsets(source)
        if len(syncs):
            offset = int(np.median(syncs))
            residual = int(np.max(np.abs(syncs - offset))) if len(syncs) > 1 else None
            alignment = Alignment(name, source.kind, "sync-marker", offset, residual, len(syncs))
        elif "monotonic_raw_ns_at_zero" in source.anchor and _raw_offset(manifest) is not None:
            # t_monotonic = t_raw - (raw - monotonic); t_raw = t_capture + raw at the capture's start
            offset = int(source.anchor["monotonic_raw_ns_at_zero"]) - _raw_offset(manifest)
            alignment = Alignment(name, source.kind, "monotonic-raw-anchor", offset, None, 1)
        elif manual_ns is not None:
            return Alignment(name, source.kind, "manual", _run_start(run) + manual_ns)
        elif run.capture_offset_ns is not None:
            # Streamline reports exported from the capture given with them share its time axis.
            alignment = Alignment(name, source.kind, "same-capture", run.capture_offset_ns, None, 0)
        else:
            raise InputError("cannot place this capture-time source on the run's clock: it holds no layerjoule "
                             "sync marker, no other source fixed the capture's axis, and the run's manifest "
                             "records no Streamline clock offset; expected --offset-ms", path=name)
        if run.capture_offset_ns is None:
            run.capture_offset_ns = alignment.offset_ns
    elif source.time_base == "utc":
        clock = manifest.get("clock") or {}
        if "realtime_utc_ns" not in clock:
            if manual_ns is None:
                raise InputError("a wall-clock log needs the manifest's clock pair or --offset-ms", path=name)
            return Alignment(name, source.kind, "manual", _run_start(run) + manual_ns)
        offset = int(clock["monotonic_ns"]) - int(clock["realtime_utc_ns"])
        alignment = Alignment(name, source.kind, "clock-pair", offset, None, 1)
    else:
        if manual_ns is None:
            raise InputError("this log's times are relative to its first line; expected --offset-ms saying where "
                             "its time 0 falls after the run's first event", path=name)
        return Alignment(name, source.kind, "manual", _run_start(run) + manual_ns)
    if manual_ns is not None:
        alignment.offset_ns += manual_ns
        alignment.method += "+manual"
    return alignment


def _run_start(run: RunSources) -> int:
    phases = run.bundle.phases
    return int(phases["t_start_ns"].min()) if len(phases) else int(run.bundle.layer_events["t_start_ns"].min())


def _raw_offset(manifest: dict) -> int | None:
    offset = ((manifest.get("streamline") or {}).get("clock_offset") or {}).get("offset_ns")
    return int(offset) if offset is not None else None


def _sync_offsets(source: SourceData) -> np.ndarray:
    if source.markers is None or not len(source.markers):
        return np.array([], dtype=np.int64)
    found = source.markers["text"].astype(str).str.extract(SYNC_PATTERN.pattern)[0]
    hits = found.notna().to_numpy()
    return found[hits].astype("int64").to_numpy() - source.markers["t_ns"].to_numpy(np.int64)[hits]


def run_from_capture(capture: SourceData, options: ImportOptions) -> RunSources:
    """A run from a capture alone (an annotated program that wrote no bundle): layer intervals from the channel
    annotations, or from point markers `name___type` each spanning to the next marker. Iterations from the
    markers `iteration N`, else a new iteration whenever the first layer comes round again."""
    intervals = _capture_intervals(capture)
    if intervals.empty:
        raise InputError("the capture holds no channel annotations nor name___type markers; expected the layers "
                         "of an annotated run", path=str(capture.path))
    order = list(dict.fromkeys(intervals["text"]))
    layer_index = {name: i for i, name in enumerate(order)}
    intervals["layer_index"] = intervals["text"].map(layer_index)
    intervals["iteration"] = _iterations(capture, intervals)
    duplicated = intervals.duplicated(["iteration", "layer_index"])
    if duplicated.any():
        intervals = intervals[~duplicated]  # a layer annotated twice within one iteration: the first counts
    complete = intervals.groupby("iteration")["layer_index"].transform("nunique") == len(order)
    dropped = int((~complete).sum())
    intervals = intervals[complete]
    if intervals.empty:
        raise InputError("no iteration of the capture holds every annotated layer", path=str(capture.path))
    intervals["iteration"] = intervals["iteration"].rank(method="dense").astype("int64") - 1
    start, end = int(intervals["t_start_ns"].min()), int(intervals["t_end_ns"].max())
    layer_types = intervals.drop_duplicates("layer_index").set_index("layer_index")["type"]
    synthetic = str(capture.anchor.get("summary", {}).get(SYNTHETIC_KEY, "")).lower() == "true"
    network = options.network or capture.path.name.removesuffix(".zip").removesuffix(".apc")
    prototxt = options.model.read_text(encoding="utf-8") if options.model else ""
    sha = capture.content_sha256
    manifest = {
        "format": "layerjoule-run-bundle", "format_version": "1.0", "run_id": f"capture-{sha[:16]}",
        "created_utc": pd.Timestamp(int(capture.anchor.get("realtime_ns_at_zero", 0)), unit="ns").isoformat() + "Z",
        "simulated": synthetic, "board": {"model": (capture.anchor.get("target") or {}).get("name")},
        "engine": {"name": "streamline-capture", "version": None, "device": None},
        "model": {"network": network, "prototxt": {"file": options.model.name if options.model else None,
                                                   "sha256": None}, "weights": None},
        "iterations": int(intervals["iteration"].nunique()), "warmup": 0, "mode": "network", "power_sources": [],
        "clock": {"monotonic_ns": 0, "realtime_utc_ns": int(capture.anchor.get("realtime_ns_at_zero", 0))},
        "source": "a Streamline capture without a run bundle: layer intervals from its annotations",
    }
    bundle = Bundle(
        path=capture.path, manifest=manifest, prototxt=prototxt,
        phases=pd.DataFrame({"seq": [0], "phase": ["inference"], "t_start_ns": [start], "t_end_ns": [end]}),
        layer_events=pd.DataFrame({
            "phase": "inference", "iteration": intervals["iteration"].to_numpy(),
            "layer_index": intervals["layer_index"].to_numpy(np.int64), "repeats": 1,
            "t_start_ns": intervals["t_start_ns"].to_numpy(np.int64),
            "t_end_ns": intervals["t_end_ns"].to_numpy(np.int64)}),
        layers=pd.DataFrame({"layer_index": range(len(order)), "name": order,
                             "type": [layer_types.get(i) if isinstance(layer_types.get(i), str) and layer_types.get(i)
                                      else "unknown" for i in range(len(order))]}),
        rails=[], samples=pd.DataFrame({"rail": pd.Series(dtype=object), "t_ns": pd.Series(dtype="int64"),
                                        "power_mw": pd.Series(dtype=float), "voltage_mv": pd.Series(dtype=float),
                                        "current_ma": pd.Series(dtype=float)}),
        content_sha256=sha,
    )
    run = RunSources(bundle, [])
    notes = [f"layer intervals from {'channel annotations' if 'channel' in intervals else 'markers'}: "
             f"{len(order)} layers, {bundle.manifest['iterations']} iterations"]
    if dropped:
        notes.append(f"{dropped} layer intervals of incomplete iterations left out")
    if synthetic:
        notes.append("the capture says it was written by layerjoule's test writer: synthetic, not recorded")
    join_capture = SourceData(**{**capture.__dict__, "anchor": {**capture.anchor, "simulated": synthetic},
                                 "notes": capture.notes + notes})
    join(run, join_capture, options, Alignment(str(capture.path), capture.kind, "anchor", 0))  # it is the clock
    return run


def _capture_intervals(capture: SourceData) -> pd.DataFrame:
    annotations = capture.annotations
    if annotations is not None and len(annotations):
        rows = annotations[annotations["text"].astype(str).str.len() > 0]
        parts = _point_markers(rows["text"])
        return pd.DataFrame({"t_start_ns": rows["t_start_ns"].to_numpy(np.int64),
                             "t_end_ns": rows["t_end_ns"].to_numpy(np.int64),
                             "text": parts["name"].fillna(rows["text"].astype(str)).to_numpy(),
                             "type": parts["type"].to_numpy(), "channel": rows["channel"].to_numpy()})
    markers = capture.markers
    if markers is None or not len(markers):
        return pd.DataFrame(columns=["t_start_ns", "t_end_ns", "text", "type"])
    markers = markers.sort_values("t_ns")
    parts = _point_markers(markers["text"])
    t = markers["t_ns"].to_numpy(np.int64)
    ends = np.append(t[1:], t[-1])  # a point marker lasts until the next marker
    keep = parts["name"].notna().to_numpy()
    return pd.DataFrame({"t_start_ns": t[keep], "t_end_ns": ends[keep], "text": parts["name"][keep].to_numpy(),
                         "type": parts["type"][keep].to_numpy()})


def _point_markers(texts: pd.Series) -> pd.DataFrame:
    """(name, type) of texts `name___type`; texts longer than 256 characters are no layer's name (and the lazy
    pattern would backtrack quadratically on them)."""
    texts = texts.astype(str)
    return texts.where(texts.str.len() <= 256, "").str.extract(POINT_MARKER.pattern)


def _iterations(capture: SourceData, intervals: pd.DataFrame) -> np.ndarray:
    markers = capture.markers
    if markers is not None and len(markers):
        found = markers["text"].astype(str).str.extract(ITERATION_MARKER.pattern)[0]
        hits = found.notna().to_numpy()
        if hits.any():
            starts = markers["t_ns"].to_numpy(np.int64)[hits]
            numbers = found[hits].astype("int64").to_numpy()
            order = np.argsort(starts)
            k = np.searchsorted(starts[order], intervals["t_start_ns"].to_numpy(np.int64), side="right") - 1
            return np.where(k >= 0, numbers[order][np.maximum(k, 0)], -1)
    first = intervals["layer_index"].to_numpy() == 0
    return np.cumsum(first) - 1
