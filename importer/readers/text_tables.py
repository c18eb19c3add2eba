"""Helpers shared by the readers of text tables (power CSVs, tegrastats, Streamline reports): the raw bytes and
their hash, units in headers, exact decimal times, DuckDB's CSV reader with line numbers for errors."""

from __future__ import annotations

import codecs
import csv
import hashlib
import re
from collections.abc import Sequence
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from importer import limits
from importer.errors import InputError
from importer.readers import archives

TIME_UNIT_NS = {"s": 10**9, "sec": 10**9, "ms": 10**6, "us": 10**3, "µs": 10**3, "ns": 1}
POWER_UNIT_MW = {"w": 1000.0, "mw": 1.0, "uw": 0.001, "µw": 0.001, "kw": 1e6}
WHOLE_INPUT_RAILS = ("VDD_IN", "POM_5V_IN", "VIN_SYS_5V0")  # already the whole board's input: never add rails to them
NO_PROGRESS_BAR = "SET enable_progress_bar = false"  # DuckDB would print one on stdout for a read over 2 s
EPOCH_S = 1e9  # a time above this many seconds is taken as absolute (Unix epoch, after 2001-09-09)


def read_raw(path: str | Path) -> tuple[Path, bytes, str]:
    """The file's bytes (decompressed for a .gz file, within the limits) and their sha256; a missing file, a
    folder or a file over LAYERJOULE_MAX_LOG_BYTES is an InputError."""
    path = Path(path)
    if not path.is_file():
        raise InputError("no such file" if not path.exists() else "is a folder; expected a file", path=str(path))
    most = limits.LOG_BYTES.get()
    if path.suffix == ".gz":
        parts, size = [], 0
        for chunk in archives.gzip_chunks(path, str(path)):
            size += len(chunk)
            if size > most:
                break
            parts.append(chunk)
        raw = b"".join(parts)
    else:
        size = path.stat().st_size
        raw = path.read_bytes() if size <= most else b""
    if size > most:
        raise InputError(f"is over {most:,} bytes; expected a smaller log ({limits.LOG_BYTES.env} raises the limit)",
                         path=str(path))
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) or raw[:64].count(b"\x00") >= 16:
        raise InputError("is UTF-16 or UTF-32 text; expected UTF-8 text (save the log as UTF-8)", path=str(path),
                         place="line 1")
    return path, raw, hashlib.sha256(raw).hexdigest()


def head_text(path: Path, size: int = 8192) -> str:
    """The start of a text file (decompressed for .gz) for format detection; bad bytes replaced."""
    if path.suffix == ".gz":
        head = b""
        for chunk in archives.gzip_chunks(path, str(path)):
            head += chunk
            if len(head) >= size:
                break
    else:
        with open(path, "rb") as stream:
            head = stream.read(size)
    return head[:size].decode("utf-8", errors="replace")


def split_lines(text: str) -> list[str]:
    """Lines ended by \\n, \\r\\n or \\r only: str.splitlines() would also split at form feeds, \\x1c-\\x1e, NEL and
    U+2028, which DuckDB and the line numbers of errors do not count."""
    lines = re.split(r"\r\n|\n|\r", text)
    return lines[:-1] if lines and lines[-1] == "" else lines


def split_unit(header: str) -> tuple[str, str | None]:
    """'Time (ms)' -> ('Time', 'ms'); 'Power [mW]' -> ('Power', 'mW'); 'power' -> ('power', None). The unit is
    the text between the last opening bracket with no closing bracket after it and the closing bracket at the end
    (found with rfind: a regular expression here backtracked quadratically on cells of many brackets)."""
    text = header.strip()
    if not text.endswith((")", "]")):
        return text, None
    body = text[:-1]
    after_last_close = max(body.rfind(")"), body.rfind("]")) + 1
    opens = [at for at in (body.find("(", after_last_close), body.find("[", after_last_close)) if at >= 0]
    name = text[:min(opens)].rstrip() if opens else ""
    if not name:
        return text, None
    return name, body[min(opens) + 1:].strip() or None


def suffix_unit(name: str, units) -> tuple[str, str | None]:
    """'t_ms' -> ('t', 'ms') when 'ms' is one of `units` (compared case-insensitively): the letters after the
    last '_' or ' '."""
    start = len(name)
    while start > 0 and (name[start - 1].isascii() and name[start - 1].isalpha() or name[start - 1] == "µ"):
        start -= 1
    if 1 < start < len(name) and name[start - 1] in "_ " and name[start:].lower() in {u.lower() for u in units}:
        return name[:start - 1], name[start:].lower()
    return name, None


def listed(cells: list[str], most: int = 12) -> str:
    """Column names for an error line: the first `most`, then how many more."""
    shown = ", ".join(shorten(c, 40) for c in cells[:most])
    return shown + (f" and {len(cells) - most} more" if len(cells) > most else "")


def shorten(text: object, limit: int = 60) -> str:
    """A value for an error line: its repr, cut to `limit` characters."""
    shown = repr(text)
    return shown if len(shown) <= limit else shown[:limit] + "..."


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


MAX_HEADER_CELL = 256  # characters of a column name: longer ones are no header (and would slow the matching down)


def check_header_cells(cells: list[str], name: str, line: int) -> None:
    long = next((c for c in cells if len(c) > MAX_HEADER_CELL), None)
    if long is not None:
        raise InputError(f"a header cell of {len(long):,} characters ({shorten(long, 40)}); expected column names "
                         f"of at most {MAX_HEADER_CELL}", path=name, place=f"line {line}")


def read_header(raw: bytes, name: str) -> tuple[int, list[str], str]:
    """The first line that is neither blank nor a '#' comment: (its 1-based number, its cells, the delimiter)."""
    try:
        text = raw[: 1 << 16].decode("utf-8")
    except UnicodeDecodeError as error:
        if error.start < (1 << 16) - 4:
            line = raw.count(b"\n", 0, error.start) + 1
            raise InputError("expected UTF-8 text", path=name, place=f"line {line}") from None
        text = raw[: error.start].decode("utf-8")
    for number, line in enumerate(split_lines(text), start=1):
        stripped = line.strip().lstrip("\ufeff")
        if not stripped or stripped.startswith("#"):
            continue
        counts = {d: stripped.count(d) for d in (",", "\t", ";")}
        delimiter = max(counts, key=counts.get)
        if counts[delimiter] == 0:
            delimiter = ","
        cells = [c.strip() for c in next(csv.reader([stripped], delimiter=delimiter))]
        check_header_cells(cells, name, number)
        return number, cells, delimiter
    raise InputError("holds no header line; expected a CSV header naming a time column and power columns",
                     path=name, place="line 1")


def duckdb_table(path: Path, name: str, header_line: int, delimiter: str, types: dict[str, str]) -> pd.DataFrame:
    """Read a CSV after `header_line` with DuckDB and the given column types (every column of the header)."""
    # DuckDB gets plain positional names (a header cell may be empty, or hold quotes or NUL bytes); the frame gets
    # the header's own names back.
    plain = {f"column{i}": kind for i, kind in enumerate(types.values())}
    try:
        with duckdb.connect() as con:
            con.execute(NO_PROGRESS_BAR)
            frame = con.execute(
                "SELECT * FROM read_csv(?, header = true, auto_detect = false, strict_mode = true, "
                "delim = ?, quote = '\"', skip = ?, columns = ?)",
                [str(path), delimiter, header_line - 1, plain],
            ).df()
        frame.columns = list(types)
        return frame
    except duckdb.Error as error:
        text = str(error)
        line = re.search(r"on Line: (\d+)", text)
        column = re.search(r'converting column "column(\d+)"', text)
        found = re.search(r"Could not convert string \"([^\"]*)\" to '(\w+)'", text)
        columns = re.search(r"Expected Number of Columns: (\d+) Found: (\d+)", text)
        place = f"line {line.group(1)}" if line else None
        if found and column:
            wanted = {"DOUBLE": "a number", "BIGINT": "an integer"}.get(found.group(2), found.group(2).lower())
            message = f"column {list(types)[int(column.group(1))]!r} is {shorten(found.group(1))}; expected {wanted}"
        elif columns:
            cells = "1 cell" if columns.group(2) == "1" else f"{columns.group(2)} cells"
            message = (f"{cells}; expected {columns.group(1)} like the header "
                       f"(a line cut short, or a delimiter inside an unquoted cell?)")
        elif "unicode" in text.lower() or "utf-8" in text.lower():
            message = "expected UTF-8 text"
        else:
            message = text.splitlines()[0]
        raise InputError(message, path=name, place=place) from None


def drop_cut_row(raw: bytes, table: pd.DataFrame, places: np.ndarray | None, notes: list[str]):
    """A file whose last line has no newline was cut (a logger killed mid-write): that row may hold a number cut
    short, so it is dropped, with a note. Returns (table, places)."""
    last = raw[max(raw.rfind(b"\n"), raw.rfind(b"\r")) + 1:]
    if not last.strip() or not len(table):
        return table, places
    notes.append("the last line ends without a newline (the file was cut?): skipped")
    return table.iloc[:-1], (places[:-1] if places is not None else None)


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
            raise InputError(f"time is {shorten(text.iloc[i])}; expected a number or an ISO 8601 date-time", path=name,
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
        raise InputError(f"time is {shorten(text.iloc[i])}; expected a number", path=name,
                         place=place_of(places, i, column))
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
