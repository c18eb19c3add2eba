"""Reader of run bundles (format version 1, docs/bundle-format.md): a folder or a zip, validated before use.

Tables are read with DuckDB's CSV reader into numpy-backed frames; every problem becomes an InputError naming
the file, the line or field, and what was expected.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from importer.errors import InputError
from importer.readers import archives
from importer.readers.text_tables import NO_PROGRESS_BAR

FORMAT_NAME = "layerjoule-run-bundle"
SUPPORTED_MAJOR = 1
PHASES = ("setup", "warmup", "inference", "idle")
MODES = ("network", "layer-loop")
RUN_ID_PATTERN = re.compile(r"^[A-Za-z0-9._-]{1,128}$")

# Column name -> DuckDB type; (required columns, optional columns) per table.
EVENT_COLUMNS = {
    "kind": "VARCHAR",
    "phase": "VARCHAR",
    "iteration": "INTEGER",
    "layer_index": "INTEGER",
    "layer_name": "VARCHAR",
    "layer_type": "VARCHAR",
    "repeats": "INTEGER",
    "t_start_ns": "BIGINT",
    "t_end_ns": "BIGINT",
}
RAIL_COLUMNS = {"t_ns": "BIGINT", "rail": "VARCHAR", "power_mw": "DOUBLE"}
RAIL_OPTIONAL_COLUMNS = {"voltage_mv": "DOUBLE", "current_ma": "DOUBLE"}
TRUTH_COLUMNS = {"phase": "VARCHAR", "iteration": "INTEGER", "layer_index": "INTEGER", "rail": "VARCHAR",
                 "energy_mj": "DOUBLE"}
TABLE_FILES = ("events.csv", "rails.csv", "ground_truth.csv")
MAX_UPDATE_INTERVAL_MS = 86_400_000


@dataclass
class PowerSource:
    name: str
    kind: str
    simulated: bool
    update_interval_ns: int | None


@dataclass
class Rail:
    name: str
    source: PowerSource
    is_total: bool


@dataclass
class Bundle:
    path: Path
    manifest: dict
    prototxt: str
    phases: pd.DataFrame  # seq, phase, t_start_ns, t_end_ns
    layer_events: pd.DataFrame  # phase, iteration, layer_index, repeats, t_start_ns, t_end_ns
    layers: pd.DataFrame  # layer_index, name, type
    rails: list[Rail]
    samples: pd.DataFrame  # rail, t_ns, power_mw, voltage_mv, current_ma (empty without power data)
    content_sha256: str
    ground_truth: pd.DataFrame | None = None  # simulated runs: phase, iteration, layer_index, rail, energy_mj

    @property
    def run_id(self) -> str:
        return self.manifest["run_id"]


def is_bundle(path: Path) -> bool:
    if path.is_dir():
        return (path / "manifest.json").is_file()
    try:
        if path.is_file() and zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                return any(_is_manifest(n) for n in archive.namelist())
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError):
        return False  # a damaged zip: the reader that is chosen says what is wrong with it
    return False


def _is_manifest(name: str) -> bool:
    return name.split("/")[-1] == "manifest.json" and name.count("/") <= 1


def read_bundle(path: str | Path) -> Bundle:
    path = Path(path)
    if not path.exists():
        raise InputError("no such file or folder", path=str(path))
    with tempfile.TemporaryDirectory(prefix="layerjoule-bundle-") as scratch:
        folder = _unpack(path, Path(scratch)) if path.is_file() else path
        return _read_folder(folder, shown_as=path)


def _unpack(path: Path, scratch: Path) -> Path:
    """Copy the bundle's known members out of a zip under their fixed names (nothing else is extracted), within
    the limits of importer/limits.py; escaping paths and links anywhere in the zip refuse it whole."""
    if not zipfile.is_zipfile(path):
        raise InputError("not a run bundle: expected a folder or a zip holding manifest.json", path=str(path))
    with archives.open_zip(path, "a zipped run bundle") as archive:
        infos = archives.checked_infos(archive, str(path))
        manifests = [i.filename for i in infos if _is_manifest(i.filename)]
        if len(manifests) != 1:
            raise InputError("expected one manifest.json at the zip's root or in one top folder", path=str(path))
        prefix = manifests[0][: -len("manifest.json")]
        wanted = {"manifest.json", "model.prototxt"} | {f + ext for f in TABLE_FILES for ext in ("", ".gz")}
        chosen = {}
        for info in infos:
            member = info.filename[len(prefix):] if info.filename.startswith(prefix) else None
            if member in wanted and not info.is_dir():
                if member in chosen:
                    raise InputError(f"member {info.filename!r} is in the zip twice; expected each file once",
                                     path=str(path))
                chosen[member] = info
        archives.extract(archive, [(info, scratch / member) for member, info in chosen.items()], str(path))
    return scratch


def _member(folder: Path, name: str) -> Path | None:
    for candidate in (folder / name, folder / (name + ".gz")):
        if candidate.is_file():
            return candidate
    return None


def _display(shown_as: Path, member: Path) -> str:
    return f"{shown_as}/{member.name}" if shown_as.is_dir() else f"{shown_as}!{member.name}"


def _read_folder(folder: Path, shown_as: Path) -> Bundle:
    manifest_path = folder / "manifest.json"
    if not manifest_path.is_file():
        raise InputError("not a run bundle: manifest.json is missing", path=str(shown_as))
    manifest_name = _display(shown_as, manifest_path)
    manifest = _read_manifest(manifest_path, manifest_name)

    prototxt_path = folder / manifest["model"]["prototxt"]["file"]
    if not prototxt_path.is_file() or prototxt_path.parent != folder:
        raise InputError(
            f"model.prototxt.file names {manifest['model']['prototxt']['file']!r}, which is not in the bundle",
            path=manifest_name,
        )
    digest = hashlib.sha256()
    members = [manifest_path, prototxt_path] + [m for m in (_member(folder, f) for f in TABLE_FILES) if m]
    for member in sorted(members, key=lambda m: m.name.removesuffix(".gz")):
        digest.update(member.name.removesuffix(".gz").encode() + b"\0")
        _hash_checked(member, _display(shown_as, member), digest)
    prototxt_bytes = prototxt_path.read_bytes()
    if hashlib.sha256(prototxt_bytes).hexdigest() != manifest["model"]["prototxt"]["sha256"]:
        raise InputError(
            "sha256 differs from model.prototxt.sha256 in the manifest; expected the prototxt that ran",
            path=_display(shown_as, prototxt_path),
        )

    events_path = _member(folder, "events.csv")
    if events_path is None:
        raise InputError("events.csv is missing; expected the run's event table", path=str(shown_as))
    events = _read_csv(events_path, _display(shown_as, events_path), EVENT_COLUMNS, {})
    phases, layer_events, layers = _check_events(events, _display(shown_as, events_path), manifest["mode"])

    rails = _rails_from_manifest(manifest, manifest_name)
    rails_path = _member(folder, "rails.csv")
    if rails_path is not None:
        samples = _read_csv(rails_path, _display(shown_as, rails_path), RAIL_COLUMNS, RAIL_OPTIONAL_COLUMNS)
        _check_samples(samples, _display(shown_as, rails_path), {r.name for r in rails})
    else:
        samples = pd.DataFrame({c: pd.Series(dtype="float64") for c in ["t_ns", "power_mw", *RAIL_OPTIONAL_COLUMNS]})
        samples["rail"] = pd.Series(dtype="object")
    for column in RAIL_OPTIONAL_COLUMNS:
        if column not in samples:
            samples[column] = np.nan
    seen_rails = set(samples["rail"].unique())
    rails = [r for r in rails if r.name in seen_rails]
    truth_path = _member(folder, "ground_truth.csv")
    truth = None
    if truth_path is not None:
        if not manifest["simulated"]:
            raise InputError("a ground truth belongs to simulated runs only; expected \"simulated\": true",
                             path=manifest_name)
        truth = _read_csv(truth_path, _display(shown_as, truth_path), TRUTH_COLUMNS, {})

    return Bundle(
        path=shown_as,
        manifest=manifest,
        prototxt=prototxt_bytes.decode("utf-8", errors="replace"),
        phases=phases,
        layer_events=layer_events,
        layers=layers,
        rails=rails,
        samples=samples[["rail", "t_ns", "power_mw", "voltage_mv", "current_ma"]],
        content_sha256=digest.hexdigest(),
        ground_truth=truth,
    )


def _hash_checked(member: Path, name: str, digest) -> None:
    """Feed the member's (decompressed) bytes to the digest; a truncated gzip, a gzip bomb or a CSV cut mid-line is
    an error."""
    last = b""
    if member.suffix == ".gz":
        chunks = archives.gzip_chunks(member, name)
    else:
        chunks = _file_chunks(member)
    is_csv = name.removesuffix(".gz").endswith(".csv")
    for chunk in chunks:
        if is_csv and not last and (chunk.startswith((b"\xff\xfe", b"\xfe\xff")) or b"\x00" in chunk[:4096]):
            raise InputError("is UTF-16 or holds NUL bytes; expected UTF-8 text", path=name, place="line 1")
        digest.update(chunk)
        last = chunk[-1:]
    if is_csv and last not in (b"\n", b""):
        raise InputError("ends in the middle of a line (truncated?); expected each row to end with a newline",
                         path=name)


def _file_chunks(path: Path):
    with open(path, "rb") as stream:
        while chunk := stream.read(archives.CHUNK):
            yield chunk


def _require(mapping: dict, dotted: str, kinds, name: str):
    value: object = mapping
    for key in dotted.split("."):
        if not isinstance(value, dict) or key not in value:
            raise InputError(f"field {dotted!r} is missing", path=name)
        value = value[key]
    if not isinstance(value, kinds) or isinstance(value, bool) and bool not in _tuple(kinds):
        raise InputError(f"field {dotted!r} is {value!r}; expected {_kind_words(kinds)}", path=name)
    return value


def _tuple(kinds) -> tuple:
    return kinds if isinstance(kinds, tuple) else (kinds,)


def _kind_words(kinds) -> str:
    words = {str: "a string", int: "an integer", float: "a number", bool: "true or false", dict: "an object",
             list: "a list"}
    return " or ".join(words.get(k, k.__name__) for k in _tuple(kinds))


def _no_constant(word: str):
    raise ValueError(f"{word} is not JSON")


def _read_manifest(path: Path, name: str) -> dict:
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"), parse_constant=_no_constant)
    except UnicodeDecodeError:
        raise InputError("expected UTF-8 JSON text", path=name) from None
    except json.JSONDecodeError as error:
        raise InputError(f"line {error.lineno} column {error.colno}: {error.msg}; expected JSON", path=name) from None
    except (ValueError, RecursionError) as error:  # NaN or Infinity (not JSON); nesting deeper than Python allows
        raise InputError(f"{error if isinstance(error, ValueError) else 'nested too deeply'}; expected JSON",
                         path=name) from None
    if not isinstance(manifest, dict):
        raise InputError("expected a JSON object", path=name)
    if manifest.get("format") != FORMAT_NAME:
        raise InputError(f"field 'format' is {manifest.get('format')!r}; expected {FORMAT_NAME!r}", path=name)
    version = _require(manifest, "format_version", str, name)
    major = version.split(".")[0]
    if not major.isdigit() or int(major) != SUPPORTED_MAJOR:
        raise InputError(
            f"bundle format version {version} is not supported; this layerjoule reads major version "
            f"{SUPPORTED_MAJOR} (1.x): upgrade layerjoule",
            path=name,
        )
    run_id = _require(manifest, "run_id", str, name)
    if not RUN_ID_PATTERN.match(run_id):
        raise InputError(f"field 'run_id' is {run_id!r}; expected 1-128 letters, digits, '.', '_' or '-'", path=name)
    _require(manifest, "created_utc", str, name)
    _require(manifest, "simulated", bool, name)
    _require(manifest, "engine.name", str, name)
    _require(manifest, "model.network", str, name)
    _require(manifest, "model.prototxt.file", str, name)
    _require(manifest, "model.prototxt.sha256", str, name)
    iterations = _require(manifest, "iterations", int, name)
    if iterations < 1:
        raise InputError(f"field 'iterations' is {iterations}; expected at least 1", path=name)
    mode = _require(manifest, "mode", str, name)
    if mode not in MODES:
        raise InputError(f"field 'mode' is {mode!r}; expected one of {', '.join(MODES)}", path=name)
    _require(manifest, "power_sources", list, name)
    for field in ("clock.monotonic_ns", "clock.realtime_utc_ns"):
        _in_range(field, _require(manifest, field, int, name), INT64, name)
    _in_range("iterations", iterations, INT32, name)
    _check_optional_fields(manifest, name)
    return manifest


INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)


def _in_range(field: str, value: int, bounds: tuple[int, int], name: str) -> None:
    if not bounds[0] <= value <= bounds[1]:
        raise InputError(f"field {field!r} is {value}; expected a {32 if bounds == INT32 else 64}-bit integer",
                         path=name)


def _optional(manifest: dict, dotted: str, kinds, name: str):
    """A field that may be missing or null; when given, of the expected type."""
    value: object = manifest
    for key in dotted.split("."):
        if not isinstance(value, dict) or value.get(key) is None:
            return None
        value = value[key]
    return _require(manifest, dotted, kinds, name)


def _check_optional_fields(manifest: dict, name: str) -> None:
    """The optional fields that reach the store have the types of its columns (docs/bundle-format.md)."""
    for field in ("board", "host", "streamline", "streamline.clock_offset"):
        _optional(manifest, field, dict, name)
    for field in ("board.model", "host.hostname", "engine.version", "engine.device"):
        _optional(manifest, field, str, name)
    for field, least in (("warmup", 0), ("batch", 1)):
        value = _optional(manifest, field, int, name)
        if value is not None and not least <= value <= INT32[1]:
            raise InputError(f"field {field!r} is {value}; expected an integer of at least {least}", path=name)
    shape = _optional(manifest, "input_shape", list, name)
    if shape is not None and not all(isinstance(d, int) and not isinstance(d, bool) and 0 < d <= INT32[1]
                                     for d in shape):
        raise InputError(f"field 'input_shape' is {shape!r}; expected a list of positive integers", path=name)
    added = _optional(manifest, "engine.added_layers", list, name)
    if added is not None and not all(isinstance(layer, str) for layer in added):
        raise InputError("field 'engine.added_layers' holds a value that is not a string; expected layer names",
                         path=name)
    offset = _optional(manifest, "streamline.clock_offset.offset_ns", int, name)
    if offset is not None:
        _in_range("streamline.clock_offset.offset_ns", offset, INT64, name)
    created = manifest["created_utc"]
    try:  # the store's own cast decides (runs.created_utc is a TIMESTAMP)
        with duckdb.connect() as con:
            con.execute("SELECT ?::TIMESTAMP", [created]).fetchall()
    except duckdb.Error:
        raise InputError(f"field 'created_utc' is {created[:40]!r}; expected a UTC date-time such as "
                         "2026-12-01T10:00:00Z", path=name) from None


def _rails_from_manifest(manifest: dict, name: str) -> list[Rail]:
    rails: list[Rail] = []
    for i, entry in enumerate(manifest["power_sources"]):
        where = f"power_sources[{i}]"
        if not isinstance(entry, dict):
            raise InputError(f"{where} is not an object", path=name)
        interval_ms = entry.get("update_interval_ms")
        if interval_ms is not None and (not isinstance(interval_ms, int | float) or isinstance(interval_ms, bool)
                                        or not 0 < interval_ms <= MAX_UPDATE_INTERVAL_MS):
            raise InputError(f"{where}.update_interval_ms is {interval_ms!r}; expected a positive number of "
                             f"milliseconds (at most a day) or null", path=name)
        source = PowerSource(
            name=str(entry.get("name", entry.get("kind", f"source{i}"))),
            kind=str(entry.get("kind", "unknown")),
            simulated=bool(entry.get("simulated", manifest["simulated"])),
            update_interval_ns=None if interval_ms is None else int(round(interval_ms * 1e6)),
        )
        for j, rail in enumerate(entry.get("rails") or []):
            if not isinstance(rail, dict) or not isinstance(rail.get("name"), str):
                raise InputError(f"{where}.rails[{j}] has no name; expected {{\"name\": ...}}", path=name)
            if rail.get("unit", "mW") != "mW":
                raise InputError(f"{where}.rails[{j}].unit is {rail['unit']!r}; expected 'mW'", path=name)
            if any(r.name == rail["name"] for r in rails):
                raise InputError(f"rail {rail['name']!r} is listed twice; expected unique rail names", path=name)
            rails.append(Rail(name=rail["name"], source=source, is_total=bool(rail.get("total", False))))
    return rails


def _header(path: Path, name: str) -> list[str]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8", newline="") as stream:
        try:
            line = stream.readline(1 << 16)
        except UnicodeDecodeError:
            raise InputError("line 1: expected UTF-8 text", path=name) from None
        except (EOFError, OSError) as error:  # a damaged gzip stream
            raise InputError(f"cannot be read ({error}); expected a complete gzip stream", path=name) from None
    if len(line) == 1 << 16 and not line.endswith("\n"):
        raise InputError("line 1 is longer than 64 KiB; expected a CSV header", path=name)
    # A UTF-8 byte order mark (spreadsheets write one) is no part of the first column's name; DuckDB skips it too.
    return [c.strip() for c in line.removeprefix("\ufeff").rstrip("\r\n").split(",")] if line else []


def _read_csv(path: Path, name: str, required: dict, optional: dict) -> pd.DataFrame:
    found = _header(path, name)
    missing = [c for c in required if c not in found]
    if missing:
        raise InputError(
            f"line 1: columns {', '.join(missing)} missing; found {', '.join(found) or 'nothing'}; "
            f"expected {', '.join(required)}",
            path=name,
        )
    # Unknown columns (added by a newer minor version) are read as text and dropped.
    types = {c: required.get(c) or optional.get(c) or "VARCHAR" for c in found}
    try:
        with duckdb.connect() as con:
            con.execute(NO_PROGRESS_BAR)
            table = con.execute(
                "SELECT * FROM read_csv(?, header = true, auto_detect = false, strict_mode = true, "
                "delim = ',', quote = '\"', columns = ?)",
                [str(path), types],
            ).to_arrow_table()
        # Through Arrow: text columns stay Arrow strings (DuckDB's .df() made Python strings, twice as slow);
        # INTEGER columns with empty cells become pandas' nullable Int32, as .df() gave them.
        frame = table.to_pandas(types_mapper={pa.int32(): pd.Int32Dtype()}.get)
    except duckdb.Error as error:
        raise InputError(_csv_error_words(error, types), path=name) from None
    return frame[[c for c in found if c in required or c in optional]]


def _csv_error_words(error: duckdb.Error, types: dict) -> str:
    text = str(error)
    line = re.search(r"on Line: (\d+)", text)
    detail = next((row for row in text.splitlines()[1:] if row.startswith(("Error when", "Expected Number"))), "")
    detail = detail.replace("Error when converting", "cannot convert") or text.splitlines()[0]
    expected = ", ".join(f"{c} ({t.lower()})" for c, t in types.items())
    place = f"line {line.group(1)}: " if line else ""
    return f"{place}{detail}; expected columns {expected}"


def _bad_row(name: str, row_index: int, message: str) -> InputError:
    return InputError(message, path=name, place=f"line {row_index + 2}")


def _check_events(events: pd.DataFrame, name: str, mode: str):
    kinds = events["kind"]
    bad = ~kinds.isin(["phase", "layer"])
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise _bad_row(name, i, f"kind is {kinds.iloc[i]!r}; expected 'phase' or 'layer'")
    bad = ~events["phase"].isin(PHASES)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise _bad_row(name, i, f"phase is {events['phase'].iloc[i]!r}; expected one of {', '.join(PHASES)}")
    bad = events["t_start_ns"].isna() | events["t_end_ns"].isna()
    if bad.any():
        raise _bad_row(name, int(np.flatnonzero(bad)[0]), "t_start_ns and t_end_ns must both be given")
    backwards = events["t_end_ns"] < events["t_start_ns"]
    if backwards.any():
        i = int(np.flatnonzero(backwards)[0])
        raise _bad_row(name, i, "t_end_ns is before t_start_ns; expected t_end_ns >= t_start_ns")

    is_layer = (kinds == "layer").to_numpy()
    layer_rows = events[is_layer]
    layer_row_numbers = np.flatnonzero(is_layer)
    for column in ("iteration", "layer_index", "layer_name", "layer_type"):
        bad = layer_rows[column].isna().to_numpy()
        if bad.any():
            raise _bad_row(name, int(layer_row_numbers[bad][0]), f"{column} is empty; expected it on a layer row")
    starts = layer_rows["t_start_ns"].to_numpy()
    step_back = np.flatnonzero(starts[1:] < layer_rows["t_end_ns"].to_numpy()[:-1])
    if len(step_back):
        i = int(layer_row_numbers[step_back[0] + 1])
        raise _bad_row(name, i, "layer interval starts before the previous one ended; expected time stamps in order")
    repeats = layer_rows["repeats"].fillna(1).astype("int64")
    if (repeats < 1).any():
        i = int(layer_row_numbers[np.flatnonzero((repeats < 1).to_numpy())[0]])
        raise _bad_row(name, i, "repeats must be at least 1")

    layers = layer_rows[["layer_index", "layer_name", "layer_type"]].drop_duplicates()
    clash = layers["layer_index"].duplicated(keep=False)
    if clash.any():
        index = int(layers.loc[clash, "layer_index"].iloc[0])
        raise InputError(f"layer_index {index} has more than one name or type; expected one layer per index",
                         path=name)
    layers = layers.rename(columns={"layer_name": "name", "layer_type": "type"}).sort_values("layer_index")

    layer_events = pd.DataFrame({
        "phase": layer_rows["phase"].to_numpy(),
        "iteration": layer_rows["iteration"].astype("int64").to_numpy(),
        "layer_index": layer_rows["layer_index"].astype("int64").to_numpy(),
        "repeats": repeats.to_numpy(),
        "t_start_ns": starts.astype("int64"),
        "t_end_ns": layer_rows["t_end_ns"].to_numpy().astype("int64"),
    })
    inference = layer_events[layer_events["phase"] == "inference"]
    if inference.empty:
        raise InputError("no layer rows in the inference phase; expected at least one iteration", path=name)
    counts = inference.groupby(["iteration", "layer_index"]).size()
    if (counts > 1).any():
        iteration, index = counts[counts > 1].index[0]
        raise InputError(f"iteration {iteration} holds layer_index {index} more than once; expected once", path=name)
    per_iteration = inference.groupby("iteration")["layer_index"].nunique()
    expected_layers = inference["layer_index"].nunique()
    if (per_iteration != expected_layers).any():
        iteration = int(per_iteration[per_iteration != expected_layers].index[0])
        raise InputError(
            f"inference iteration {iteration} holds {int(per_iteration[iteration])} layers; "
            f"expected every one of the {expected_layers} layers",
            path=name,
        )

    phase_rows = events[~is_layer]
    phases = pd.DataFrame({
        "seq": np.arange(len(phase_rows), dtype="int64"),
        "phase": phase_rows["phase"].to_numpy(),
        "t_start_ns": phase_rows["t_start_ns"].to_numpy().astype("int64"),
        "t_end_ns": phase_rows["t_end_ns"].to_numpy().astype("int64"),
    })
    return phases, layer_events, layers.reset_index(drop=True)


def _check_samples(samples: pd.DataFrame, name: str, known_rails: set[str]) -> None:
    for column in RAIL_COLUMNS:
        bad = samples[column].isna().to_numpy()
        if bad.any():
            raise _bad_row(name, int(np.flatnonzero(bad)[0]), f"{column} is empty; expected a value")
    codes, names = pd.factorize(samples["rail"])  # rails by code: cheaper than comparing millions of strings
    unknown = [code for code, rail in enumerate(names) if rail not in known_rails]
    if unknown:
        i = int(np.flatnonzero(np.isin(codes, unknown))[0])
        raise _bad_row(
            name, i,
            f"rail {samples['rail'].iloc[i]!r} is not in the manifest's power_sources; "
            f"expected one of {', '.join(sorted(known_rails)) or '(none listed)'}",
        )
    power = samples["power_mw"].to_numpy()
    if not np.isfinite(power).all():
        raise _bad_row(name, int(np.flatnonzero(~np.isfinite(power))[0]), "power_mw is not a finite number")
    # Within each rail, time stamps strictly increase. Rows of one rail: a comparison per rail for a few rails,
    # one stable sort of the rail codes for many.
    t = samples["t_ns"].to_numpy()
    by_rail = np.argsort(codes, kind="stable") if len(names) > 16 else None
    starts = np.searchsorted(codes[by_rail], np.arange(len(names) + 1)) if by_rail is not None else None
    for code, rail in enumerate(names):
        rows = np.flatnonzero(codes == code) if by_rail is None else by_rail[starts[code]:starts[code + 1]]
        step_back = np.flatnonzero(np.diff(t[rows]) <= 0)
        if len(step_back):
            k = step_back[0]
            raise _bad_row(
                name, int(rows[k + 1]),
                f"t_ns {t[rows[k + 1]]} of rail {rail!r} is not after the rail's previous sample "
                f"({t[rows[k]]}); expected strictly increasing time stamps per rail",
            )
