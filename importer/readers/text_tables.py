"""Helpers shared by the readers of text tables (power CSVs, tegrastats, Streamline reports): the raw bytes and
their hash, units in headers, exact decimal times, DuckDB's CSV reader with line numbers for errors."""

from __future__ import annotations

import csv
import hashlib
import re
from collections.abc import Sequence
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from importer.errors import InputError

TIME_UNIT_NS = {"s": 10**9, "sec": 10**9, "ms": 10**6, "us": 10**3, "µs": 10**3, "ns": 1}
POWER_UNIT_MW = {"w": 1000.0, "mw": 1.0, "uw": 0.001, "µw": 0.001, "kw": 1e6}
WHOLE_INPUT_RAILS = ("VDD_IN", "POM_5V_IN", "VIN_SYS_5V0")  # already the whole board's input: never add rails to them
EPOCH_S = 1e9  # a time above this many seconds is taken as absolute (Unix epoch, after 2001-09-09)
_UNIT_IN_BRACKETS = re.compile(r"^(?P<name>.*?)\s*[\[(]\s*(?P<unit>[^\])]*?)\s*[\])]\s*$")


def read_raw(path: str | Path) -> tuple[Path, bytes, str]:
    """The file's bytes and their sha256; a missing file or a folder is an InputError."""
    path = Path(path)
    if not path.is_file():
        raise InputError("no such file" if not path.exists() else "is a folder; expected a file", path=str(path))
    raw = path.read_bytes()
    return path, raw, hashlib.sha256(raw).hexdigest()


def split_unit(header: str) -> tuple[str, str | None]:
    """'Time (ms)' -> ('Time', 'ms'); 'Power [mW]' -> ('Power', 'mW'); 'power' -> ('power', None)."""
    match = _UNIT_IN_BRACKETS.match(header.strip())
    if match and match["name"]:
        return match["name"], match["unit"] or None
    return header.strip(), None


def suffix_unit(name: str, units) -> tuple[str, str | None]:
    """'t_ms' -> ('t', 'ms') when 'ms' is one of `units` (compared case-insensitively)."""
    match = re.match(r"^(.+?)[_ ]([A-Za-zµ]+)$", name)
    if match and match[2].lower() in {u.lower() for u in units}:
        return match[1], match[2].lower()
    return name, None


def line_numbers(raw: bytes, first_line: int) -> np.ndarray:
    """1-based numbers of the non-blank lines from `first_line` (1-based) on: DuckDB skips blank lines, so the
    n-th row it returns is the n-th entry here (unless a quoted field spans lines: callers check the count)."""
    ends = np.flatnonzero(np.frombuffer(raw, dtype=np.uint8) == ord("\n"))
    starts = np.concatenate([[0], ends + 1])
    stops = np.concatenate([ends, [len(raw)]])
    lengths = stops - starts
    has_cr = np.zeros(len(starts), dtype=bool)
    inner = stops > starts
    has_cr[inner] = np.frombuffer(raw, dtype=np.uint8)[stops[inner] - 1] == ord("\r")
    blank = (lengths - has_cr) <= 0
    numbers = np.arange(1, len(starts) + 1)
    keep = (numbers >= first_line) & ~blank
    return numbers[keep]


def decimal_to_ns(values: pd.Series, unit_ns: int) -> tuple[np.ndarray, np.ndarray]:
    """Decimal text (e.g. '1714557600.123456789', '-0.5', '12') times `unit_ns` -> int64 nanoseconds, exactly
    (rounded half away from zero below a nanosecond). Returns (ns, bad): `bad` marks non-empty text that is not a
    number; empty cells come back as bad too, callers tell them apart. Exponent forms ('1.5e-3') go through float."""
    text = values.astype("string").str.strip()
    digits = len(str(unit_ns)) - 1
    parts = text.str.extract(r"^([+-]?)(\d*)(?:\.(\d*))?$")
    plain = parts[1].fillna("").str.len().gt(0) | parts[2].fillna("").str.len().gt(0)
    plain &= parts[1].notna() & (parts[1].fillna("").str.len() <= 18)
    plain = plain.fillna(False).to_numpy(dtype=bool)
    ns = np.zeros(len(text), dtype="int64")
    bad = ~plain
    if plain.any():
        sign = np.where(parts[0][plain].to_numpy(dtype=object) == "-", -1, 1)
        whole = parts[1][plain].fillna("").replace("", "0").astype("int64").to_numpy()
        fraction = parts[2][plain].fillna("")
        kept = fraction.str.slice(0, digits).str.pad(digits, side="right", fillchar="0") if digits else None
        kept_ns = kept.replace("", "0").astype("int64").to_numpy() if digits else np.zeros(len(whole), "int64")
        round_up = fraction.str.slice(digits, digits + 1).fillna("").ge("5").to_numpy(dtype=bool)
        overflow = whole > (np.iinfo("int64").max // unit_ns - 1)
        magnitude = np.where(overflow, 0, whole) * unit_ns + kept_ns + round_up
        ns[plain] = sign * magnitude
        bad[np.flatnonzero(plain)[overflow]] = True
    # Exponent forms and other float spellings.
    rest = np.flatnonzero(bad)
    if len(rest):
        floats = pd.to_numeric(text.iloc[rest], errors="coerce").to_numpy(dtype="float64")
        scaled = floats * unit_ns
        fine = np.isfinite(scaled) & (np.abs(scaled) < 9e18)
        ns[rest[fine]] = np.round(scaled[fine]).astype("int64")
        bad[rest[fine]] = False
    return ns, bad


def read_header(raw: bytes, name: str) -> tuple[int, list[str], str]:
    """The first line that is neither blank nor a '#' comment: (its 1-based number, its cells, the delimiter)."""
    try:
        text = raw[: 1 << 16].decode("utf-8")
    except UnicodeDecodeError as error:
        if error.start < (1 << 16) - 4:
            raise InputError("expected UTF-8 text", path=name, place="line 1") from None
        text = raw[: error.start].decode("utf-8")
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip().lstrip("\ufeff")
        if not stripped or stripped.startswith("#"):
            continue
        counts = {d: stripped.count(d) for d in (",", "\t", ";")}
        delimiter = max(counts, key=counts.get)
        if counts[delimiter] == 0:
            delimiter = ","
        cells = next(csv.reader([stripped], delimiter=delimiter))
        return number, [c.strip() for c in cells], delimiter
    raise InputError("holds no header line; expected a CSV header naming a time column and power columns",
                     path=name, place="line 1")


def duckdb_table(path: Path, name: str, header_line: int, delimiter: str, types: dict[str, str]) -> pd.DataFrame:
    """Read a CSV after `header_line` with DuckDB and the given column types (every column of the header)."""
    try:
        with duckdb.connect() as con:
            return con.execute(
                "SELECT * FROM read_csv(?, header = true, auto_detect = false, strict_mode = true, "
                "delim = ?, quote = '\"', skip = ?, columns = ?)",
                [str(path), delimiter, header_line - 1, types],
            ).df()
    except duckdb.Error as error:
        text = str(error)
        line = re.search(r"on Line: (\d+)", text)
        column = re.search(r'converting column "([^"]*)"', text)
        found = re.search(r"Could not convert string \"([^\"]*)\" to '(\w+)'", text)
        columns = re.search(r"Expected Number of Columns: (\d+) Found: (\d+)", text)
        place = f"line {line.group(1)}" if line else None
        if found and column:
            wanted = {"DOUBLE": "a number", "BIGINT": "an integer"}.get(found.group(2), found.group(2).lower())
            message = f"column {column.group(1)!r} is {found.group(1)!r}; expected {wanted}"
        elif columns:
            cells = "1 cell" if columns.group(2) == "1" else f"{columns.group(2)} cells"
            message = (f"{cells}; expected {columns.group(1)} like the header "
                       f"(a line cut short, or a delimiter inside an unquoted cell?)")
        elif "unicode" in text.lower() or "utf-8" in text.lower():
            message = "expected UTF-8 text"
        else:
            message = text.splitlines()[0]
        raise InputError(message, path=name, place=place) from None


def row_places(raw: bytes, header_line: int, rows: int) -> np.ndarray | None:
    numbers = line_numbers(raw, header_line + 1)
    return numbers if len(numbers) == rows else None


def place_of(places: np.ndarray | None, row: int, column: str | None = None) -> str:
    where = f"line {int(places[row])}" if places is not None else f"data row {row + 1}"
    return f"{where} column {column!r}" if column else where


def times_from_text(values: pd.Series, unit: str | None, name: str, places, column: str,
                    notes: list[str]) -> tuple[np.ndarray, str]:
    """A time column's text -> (t_ns, time base). Numbers carry `unit` (None: guessed, with a note); numbers above
    1e9 s are Unix epoch times (time base 'utc'); ISO 8601 date-times are UTC unless they say otherwise."""
    text = values.astype("string").str.strip()
    empty = (text.isna() | text.eq("")).to_numpy(dtype=bool)
    if empty.any():
        raise InputError("time is empty; expected a time on every row", path=name,
                         place=place_of(places, int(np.flatnonzero(empty)[0]), column))
    as_float = pd.to_numeric(text, errors="coerce").to_numpy(dtype="float64")
    if np.isnan(as_float).all():
        stamps = pd.to_datetime(text, format="ISO8601", errors="coerce", utc=True)
        bad = stamps.isna().to_numpy()
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise InputError(f"time is {text.iloc[i]!r}; expected a number or an ISO 8601 date-time", path=name,
                             place=place_of(places, i, column))
        if not text.str.contains(r"(?:Z|[+-]\d{2}:?\d{2})$", regex=True).all():
            notes.append(f"{column}: date-times without a UTC offset were taken as UTC")
        return stamps.dt.as_unit("ns").astype("int64").to_numpy(), "utc"
    if unit is None:
        largest = float(np.nanmax(np.abs(as_float))) if np.isfinite(as_float).any() else 0.0
        if largest > EPOCH_S:
            unit = "s" if largest < 1e11 else "ms" if largest < 1e14 else "us" if largest < 1e17 else "ns"
            notes.append(f"{column}: no unit in the header; values around {largest:.3g} read as Unix epoch time in "
                         f"{unit} (pass a unit to override)")
        else:
            unit = "s"
            notes.append(f"{column}: no unit in the header; read as seconds")
    ns, bad = decimal_to_ns(text, TIME_UNIT_NS[unit])
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InputError(f"time is {text.iloc[i]!r}; expected a number", path=name, place=place_of(places, i, column))
    base = "utc" if len(ns) and np.abs(ns).max() > EPOCH_S * 1e9 else "relative"
    return ns, base


def check_increasing(t_ns: np.ndarray, name: str, places, column: str) -> None:
    step_back = np.flatnonzero(np.diff(t_ns) <= 0)
    if len(step_back):
        i = int(step_back[0]) + 1
        raise InputError("time is not after the previous row's; expected strictly increasing times", path=name,
                         place=place_of(places, i, column))


def long_samples(t_ns: np.ndarray, columns: dict[str, dict[str, np.ndarray]]) -> pd.DataFrame:
    """{rail: {"power_mw": ..., "voltage_mv": ..., ...}} on one time axis -> the long samples table, rows with no
    power dropped; sorted by time, then by rail in the given order."""
    names = sorted({k for values in columns.values() for k in values} - {"power_mw", "voltage_mv", "current_ma"})
    frames = []
    for order, (rail, values) in enumerate(columns.items()):
        frame = pd.DataFrame({"t_ns": t_ns.astype("int64"), "rail": rail, "_order": order})
        for key in ("power_mw", "voltage_mv", "current_ma", *names):
            frame[key] = values.get(key, np.full(len(t_ns), np.nan))
        frames.append(frame[np.isfinite(frame["power_mw"].to_numpy(dtype="float64"))])
    if not frames:
        return empty_samples(names)
    out = pd.concat(frames, ignore_index=True).sort_values(["t_ns", "_order"], kind="stable")
    return out.drop(columns="_order").reset_index(drop=True)


def empty_samples(extra: Sequence[str] = ()) -> pd.DataFrame:
    frame = pd.DataFrame({"t_ns": pd.Series(dtype="int64"), "rail": pd.Series(dtype="str")})
    for key in ("power_mw", "voltage_mv", "current_ma", *extra):
        frame[key] = pd.Series(dtype="float64")
    return frame


# ---------------------------------------------------------------------------------------------------------------
# Generic power CSV


def norm_time_unit(unit: str | None) -> str | None:
    """'sec' -> 's', 'µs' -> 'us'; None for anything that is not a time unit (e.g. 'UTC')."""
    if unit is None:
        return None
    unit = unit.strip().lower().replace("µ", "u")
    unit = {"sec": "s", "secs": "s", "seconds": "s", "second": "s", "msec": "ms", "usec": "us",
            "nsec": "ns"}.get(unit, unit)
    return unit if unit in TIME_UNIT_NS else None
