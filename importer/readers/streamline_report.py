"""Reader of Streamline's text reports (docs/log-formats.md): timeline counters, bookmarks, Log view exports.

Streamline's exact report headers are UNKNOWN (/work/shared/docs/streamline-formats.md section 3), so everything
is found from the header: the delimiter (comma, tab, or space-aligned columns), the time column (a name
containing "time", unit in brackets, seconds since the capture started by default), the Log view's columns
(Time, Duration, Message, Group, Channel, Process/Thread; older Core, Where), text columns (bookmarks) and numeric
columns (counters; units in brackets; power in W or mW also becomes rails). `column_map` names anything else.
Comma and tab reports are read with DuckDB's CSV reader; space-aligned ones with vectorised pandas string splits.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from importer.errors import InputError
from importer.readers.common import RailInfo, SourceData
from importer.readers.text_tables import (
    POWER_UNIT_MW,
    TIME_UNIT_NS,
    WHOLE_INPUT_RAILS,
    check_header_cells,
    decimal_to_ns,
    drop_cut_row,
    duckdb_table,
    empty_samples,
    listed,
    norm_time_unit,
    read_raw,
    row_places,
    shorten,
    split_lines,
    split_unit,
)

MAP_KEYS = ("time", "duration", "text", "group", "channel", "thread", "core", "time_unit")
ROLE_NAMES = {
    "duration": ("duration",),
    "text": ("message", "text", "bookmark", "bookmarks", "label", "marker", "annotation", "description", "comment",
             "name", "title"),
    "group": ("group",),
    "channel": ("channel",),
    "thread": ("process/thread", "thread", "process", "tid", "thread id", "process / thread"),
    "core": ("core",),
}
UNIT_SUFFIX = r"\s*(?:%|[munµ]?s|[munµk]?W|[munµ]?V|[munµ]?A|[munµ]?J|[kMG]?Hz|°?C)$"
HEADER_SCAN = 50  # lines looked at for the header (reports may start with a title or the capture's name)
MAX_HEADER_LINE = 1 << 16
# Cells are matched against regular expressions only up to this length: a longer one is no time, number or id
# (and Python's regular expressions backtrack, some quadratically, on long runs of digits or spaces).
MAX_PARSED_CELL = 64


def _tokens_space(header: str) -> tuple[list[str], list[int], bool]:
    """Header cells of a space-aligned report and their start columns; True when cells are 2+ spaces apart."""
    spans = [(m.group(0), m.start()) for m in re.finditer(r"\S+(?: \S+)*", header)]
    if len(spans) > 1:
        return [s for s, _ in spans], [p for _, p in spans], True
    # Single spaces only: words, with a unit in brackets joined to the word before it.
    spans = [(m.group(0), m.start()) for m in re.finditer(r"[^\s\[(]+(?:\s*[\[(][^\])]{0,64}[\])])?", header)]
    return [s for s, _ in spans], [p for _, p in spans], False


def _header_cells(line: str) -> tuple[list[str], str]:
    if "\t" in line:
        return [c.strip() for c in line.split("\t")], "\t"
    if "," in line:
        return [c.strip() for c in next(csv.reader([line]))], ","
    return _tokens_space(line)[0], " "


def _time_candidate(cells: list[str], wanted: str | None) -> str | None:
    """column_map's time column, else 'Time', 'Timestamp', 'Start' (any unit), else the first name containing
    'time' whose unit, if any, is a time unit ('Idle time [%]' is a counter)."""
    if wanted is not None:
        return wanted if wanted in cells else None
    ranked = []
    for position, cell in enumerate(cells):
        bare, unit = split_unit(cell)
        bare = bare.strip().lower()
        if bare in ("time", "timestamp", "start", "start time"):
            ranked.append((0, position))
        elif ("time" in bare and "duration" not in bare and "thread" not in bare
              and (unit is None or norm_time_unit(unit) is not None)):
            ranked.append((1, position))
    return cells[min(ranked)[1]] if ranked else None


def _parse_times(cells: pd.Series, default_unit: str, name: str, lines: np.ndarray | None, column: str,
                 allow_empty: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Time text -> (int64 ns, present). Accepts '1.25' (default_unit), '1.25 ms' / '1.25ms', 'm:ss.fff' and
    'h:mm:ss.fff'. Returns `present` False for empty cells (and '-') when allow_empty, else raises."""
    text = cells.astype("string").fillna("").str.strip()
    empty = text.isin(["", "-", "—", "n/a", "N/A"]).to_numpy()
    if empty.any() and not allow_empty:
        i = int(np.flatnonzero(empty)[0])
        raise InputError("time is empty; expected a time on every row", path=name, place=_place(lines, i, column))
    ns = np.zeros(len(text), dtype="int64")
    done = empty.copy()
    short = text.where(text.str.len() <= MAX_PARSED_CELL, "")
    number = short.str.extract(r"^([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)\s*(s|ms|us|µs|ns)?$")
    for unit in [None, *number[1].dropna().unique()]:
        rows = (number[0].notna() & (number[1].isna() if unit is None else number[1].eq(unit))).fillna(False).to_numpy(
            bool) & ~done
        if rows.any():
            values, bad = decimal_to_ns(number[0][rows], TIME_UNIT_NS[norm_time_unit(unit or default_unit)])
            ns[rows] = values
            done[np.flatnonzero(rows)[~bad]] = True
    clock = short.str.extract(r"^(?:(\d+):)?(\d{1,2}):(\d{1,2}(?:\.\d+)?)$")
    rows = clock[2].notna().to_numpy() & ~done
    if rows.any():
        seconds, bad = decimal_to_ns(clock[2][rows], 10**9)
        whole = (clock[0][rows].fillna("0").astype("int64") * 3600 + clock[1][rows].astype("int64") * 60).to_numpy()
        ns[rows] = whole * 10**9 + seconds
        done[np.flatnonzero(rows)[~bad]] = True
    if not done.all():
        i = int(np.flatnonzero(~done)[0])
        raise InputError(f"time is {shorten(text.iloc[i])}; expected seconds such as 1.25, '1.25 ms' or 'm:ss.fff'",
                         path=name, place=_place(lines, i, column))
    return ns, ~empty


def _place(lines: np.ndarray | None, row: int, column: str | None = None) -> str:
    where = f"line {int(lines[row])}" if lines is not None else f"data row {row + 1}"
    return f"{where} column {column!r}" if column else where


def _numbers(cells: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(values, non-empty) of a column read as numbers, unit suffixes such as '%' or 'mW' dropped."""
    text = cells.astype("string").fillna("").str.strip()
    present = ~text.isin(["", "-", "—"]).to_numpy()
    short = text.where(text.str.len() <= MAX_PARSED_CELL, "not a number")
    stripped = short.str.replace(UNIT_SUFFIX, "", regex=True).str.replace(",", "", regex=False)
    values = pd.to_numeric(stripped, errors="coerce").to_numpy(dtype="float64")
    return values, present


def read_streamline_report(path: str | Path, column_map: Mapping[str, str] | None = None) -> SourceData:
    """A Streamline text report -> SourceData(kind="streamline-report"), time base "capture".

    column_map: {"time": header, "duration": ..., "text": ..., "group": ..., "channel": ..., "thread": ...,
    "core": ..., "time_unit": "s" | "ms" | "us" | "ns"} for headers the detection does not know.
    Returns counters (every numeric column), samples and rails (numeric columns in W or mW), annotations (rows with
    a duration) and markers (rows with text and no duration).
    """
    path, raw, digest = read_raw(path)
    name = str(path)
    column_map = dict(column_map or {})
    unknown = [k for k in column_map if k not in MAP_KEYS]
    if unknown:
        raise InputError(f"column_map key {unknown[0]!r} is unknown; expected keys {', '.join(MAP_KEYS)}",
                         path=name, place="option column_map")
    if "time_unit" in column_map and norm_time_unit(column_map["time_unit"]) is None:
        raise InputError(f"column_map time_unit is {column_map['time_unit']!r}; expected s, ms, us or ns",
                         path=name, place="option column_map")
    text = raw.decode("utf-8", errors="replace").lstrip("\ufeff")
    all_lines = split_lines(text)
    notes: list[str] = []

    header_index, first_cells = None, None
    for index, line in enumerate(all_lines[:HEADER_SCAN]):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if len(line) > MAX_HEADER_LINE:
            raise InputError(f"a line of {len(line):,} characters before any header; expected a header line of at "
                             f"most {MAX_HEADER_LINE:,}", path=name, place=f"line {index + 1}")
        cells, _ = _header_cells(line)
        check_header_cells(cells, name, index + 1)
        first_cells = first_cells if first_cells is not None else cells
        if _time_candidate(cells, column_map.get("time")) is not None:
            header_index = index
            break
    if header_index is None:
        _not_understood(name, first_cells or [], "no time column", 1 if first_cells is None else None, all_lines)
    if header_index:
        notes.append(f"{header_index} line(s) before the header skipped")
    header = all_lines[header_index]
    cells, delimiter = _header_cells(header)
    if len(set(cells)) < len(cells):
        twice = next(c for c in cells if cells.count(c) > 1)
        raise InputError(f"column {twice!r} appears twice; expected unique column names (use column_map for one)",
                         path=name, place=f"line {header_index + 1}")
    table, lines = _read_table(path, raw, name, all_lines, header_index, cells, delimiter)
    table, lines = drop_cut_row(raw, table, lines, notes)
    if delimiter == " ":
        notes.append("space-aligned columns")
    else:
        notes.append("comma-separated" if delimiter == "," else "tab-separated")

    # Roles: explicit column_map first, then names.
    roles: dict[str, str] = {}
    for role, column in column_map.items():
        if role == "time_unit":
            continue
        if column not in cells:
            raise InputError(f"column_map {role!r} names {column!r}, which is not a column; found "
                             f"{listed(cells)}", path=name, place=f"line {header_index + 1}")
        roles[role] = column
    roles.setdefault("time", _time_candidate(cells, None))
    taken = set(roles.values())
    for role, names in ROLE_NAMES.items():
        if role in roles:
            continue
        match = next((c for c in cells if c not in taken and split_unit(c)[0].strip().lower() in names), None)
        if match is None and role == "thread":
            match = next((c for c in cells if c not in taken and split_unit(c)[0].strip().lower() == "where"), None)
        if match is not None:
            roles[role] = match
            taken.add(match)

    time_col = roles["time"]
    header_unit = split_unit(time_col)[1]
    time_unit = norm_time_unit(column_map.get("time_unit") or header_unit) or "s"
    if "time_unit" not in column_map and header_unit is None:
        notes.append(f"{time_col}: no unit in the header; read as seconds since the capture started")
    elif "time_unit" not in column_map and norm_time_unit(header_unit) is None:
        notes.append(f"{time_col}: {header_unit!r} is not a time unit; read as seconds since the capture started")

    # Numeric columns (counters) among the rest; the first other column becomes the text column if none is named.
    numeric: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    text_like = []
    for column in cells:
        if column in taken:
            continue
        values, present = _numbers(table[column])
        parsed = np.isfinite(values) & present
        if present.any() and parsed.sum() * 2 >= present.sum():
            bad = present & ~parsed
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                raise InputError(f"{shorten(table[column].iloc[i])} is not a number; expected one (the column's other "
                                 "rows are numbers)", path=name, place=_place(lines, i, column))
            numeric[column] = (values, present)
        elif present.any():
            text_like.append(column)
    if "text" not in roles and text_like:
        roles["text"] = text_like.pop(0)
    if text_like:
        notes.append(f"text columns not used: {', '.join(text_like)}")
    for role in ("core",):
        if role in roles:
            notes.append(f"column {roles[role]!r} ({role}) kept out: annotations and markers have no {role}")
    if "text" not in roles and not numeric:
        _not_understood(name, cells, "a time column but neither text nor numeric columns", header_index + 1,
                        all_lines)

    t_ns, _ = _parse_times(table[time_col], time_unit, name, lines, time_col)
    annotations, markers = _events(table, roles, t_ns, time_unit, name, lines, notes)
    counters, counter_info, samples, rails = _counters(numeric, t_ns, name, lines, time_col, notes)
    return SourceData(
        kind="streamline-report", path=path, content_sha256=digest, time_base="capture",
        samples=samples, rails=rails, annotations=annotations, markers=markers, counters=counters,
        counter_info=counter_info, notes=notes,
    )


def _not_understood(name: str, cells: list[str], what: str, line: int | None, all_lines: list[str]):
    found = listed(cells) or "nothing"
    place = f"line {line}" if line else f"line {next((i + 1 for i, t in enumerate(all_lines) if t.strip()), 1)}"
    raise InputError(
        f"cannot understand this Streamline report ({what}); columns found: {found}; expected a time column "
        f"(e.g. 'Time [s]') with counter columns ('Power [mW]'), a text column (Message, Bookmark) and optionally "
        f"Duration, Group, Channel, Process/Thread; map other headers with column_map keys {', '.join(MAP_KEYS)} "
        f"(e.g. column_map={{'time': {cells[0] if cells else 'Timestamp'!r}, 'text': ...}})",
        path=name, place=place)


def _read_table(path: Path, raw: bytes, name: str, all_lines: list[str], header_index: int, cells: list[str],
                delimiter: str) -> tuple[pd.DataFrame, np.ndarray | None]:
    """The report's rows as text cells, and each row's line number."""
    if delimiter != " ":
        table = duckdb_table(path, name, header_index + 1, delimiter, {c: "VARCHAR" for c in cells})
        return table, row_places(raw, header_index + 1, len(table))
    header = all_lines[header_index]
    _, starts, wide = _tokens_space(header)
    body = pd.Series(all_lines[header_index + 1:], dtype="str")
    keep = body.str.strip().ne("").to_numpy() & ~body.str.lstrip().str.startswith("#").to_numpy()
    lines = np.flatnonzero(keep) + header_index + 2
    rows = body[keep].str.rstrip().reset_index(drop=True)
    n = len(cells)
    pattern = r"\s{2,}|\t" if wide else r"\s+"
    parts = rows.str.strip().str.split(pattern, n=n - 1, expand=True, regex=True) if len(rows) else pd.DataFrame()
    parts = parts.reindex(columns=range(n)).astype(object)  # columns the split did not reach hold text too
    if wide and len(rows):
        short = parts[n - 1].isna().to_numpy()
        if short.any():  # empty cells in the middle: cut the row at the header's column starts instead
            bounds = [*starts[1:], None]
            for j in range(n):
                sliced = rows[short].str.slice(starts[j] if j else 0, bounds[j]).str.strip()
                parts.loc[short, j] = sliced.to_numpy()
    parts.columns = cells
    return parts.fillna(""), lines


def _events(table: pd.DataFrame, roles: dict[str, str], t_ns: np.ndarray, time_unit: str, name: str,
            lines: np.ndarray | None, notes: list[str]) -> tuple[pd.DataFrame | None, pd.DataFrame | None]:
    if "text" not in roles:
        return None, None
    text = table[roles["text"]].astype("string").fillna("").str.strip()
    if "duration" in roles:
        unit = norm_time_unit(split_unit(roles["duration"])[1]) or time_unit
        duration, has = _parse_times(table[roles["duration"]], unit, name, lines, roles["duration"],
                                     allow_empty=True)
    else:
        duration, has = np.zeros(len(table), dtype="int64"), np.zeros(len(table), dtype=bool)
    negative = has & (duration < 0)
    if negative.any():
        i = int(np.flatnonzero(negative)[0])
        raise InputError("duration is negative; expected a duration of at least 0", path=name,
                         place=_place(lines, i, roles["duration"]))

    def column(role: str) -> pd.Series:
        if role not in roles:
            return pd.Series(pd.NA, index=table.index, dtype="string")
        values = table[roles[role]].astype("string").str.strip()
        return values.where(values.ne("") & values.notna(), pd.NA)

    channel = column("channel").str.extract(r"^(\d+)?\s*[:\-]?\s*(.*)$")
    channel_name = channel[1].where(channel[1].fillna("").ne(""), pd.NA)
    thread = column("thread")
    tid = thread.where(thread.str.len() <= MAX_PARSED_CELL).str.extract(r"(\d+)\D*$")[0]
    annotations = pd.DataFrame({
        "t_start_ns": t_ns[has],
        "t_end_ns": (t_ns + duration)[has],
        "tid": pd.to_numeric(tid[has], errors="coerce").astype("Int64").array,
        "channel": pd.to_numeric(channel[0][has], errors="coerce").astype("Int64").array,
        "channel_name": channel_name[has].to_numpy(),
        "group_name": column("group")[has].to_numpy(),
        "text": text[has].to_numpy(),
    })
    for key in ("channel_name", "group_name", "text"):
        annotations[key] = annotations[key].astype("str")
    point = ~has & text.ne("").to_numpy()
    markers = pd.DataFrame({"t_ns": t_ns[point], "text": text[point].astype("string").to_numpy()})
    markers["text"] = markers["text"].astype("str")
    dropped = int((~has & ~point).sum())
    if dropped:
        notes.append(f"{dropped} row(s) with neither text nor duration skipped")
    if "thread" in roles:
        notes.append(f"tid: the last number in column {roles['thread']!r}")
    annotations = annotations.sort_values("t_start_ns", kind="stable").reset_index(drop=True)
    markers = markers.sort_values("t_ns", kind="stable").reset_index(drop=True)
    notes.append(f"{len(annotations)} annotation(s), {len(markers)} marker(s) from column {roles['text']!r}")
    return annotations, markers


def _counters(numeric: dict, t_ns: np.ndarray, name: str, lines, time_col: str, notes: list[str]):
    if not numeric:
        return None, None, None, []
    frames, info, power = [], [], {}
    for column, (values, present) in numeric.items():
        bare, unit = split_unit(column)
        core_match = re.search(r"#(\d+)\b|[(\[]cpu\s*(\d+)[)\]]", bare, re.IGNORECASE)
        core = int(core_match[1] or core_match[2]) if core_match else pd.NA
        title, _, short = bare.partition(":")
        info.append({"counter": bare, "title": title.strip(), "name": (short or title).strip(), "unit": unit})
        frames.append(pd.DataFrame({"t_ns": t_ns[present], "counter": bare, "core": core, "value": values[present]}))
        if unit is not None and unit.lower().replace("µ", "u") in POWER_UNIT_MW and unit[-1] == "W":
            power[bare] = values * POWER_UNIT_MW[unit.lower().replace("µ", "u")]
    counters = pd.concat(frames, ignore_index=True)
    counters["core"] = counters["core"].astype("Int64")
    counters["counter"] = counters["counter"].astype("str")
    counters = counters.sort_values(["t_ns"], kind="stable").reset_index(drop=True)
    counter_info = pd.DataFrame(info, columns=["counter", "title", "name", "unit"])
    notes.append(f"{len(numeric)} counter column(s): {', '.join(numeric)}")
    if not power:
        return counters, counter_info, None, []
    step_back = np.flatnonzero(np.diff(t_ns) <= 0)
    if len(step_back):
        i = int(step_back[0]) + 1
        raise InputError("time is not after the previous row's; expected strictly increasing times in a timeline "
                         "with power columns", path=name, place=_place(lines, i, time_col))
    frames = []
    for order, (rail, values) in enumerate(power.items()):
        keep = np.isfinite(values)
        frames.append(pd.DataFrame({"t_ns": t_ns[keep], "rail": rail, "_order": order, "power_mw": values[keep],
                                    "voltage_mv": np.nan, "current_ma": np.nan}))
    samples = pd.concat(frames, ignore_index=True).sort_values(["t_ns", "_order"], kind="stable")
    samples = samples.drop(columns="_order").reset_index(drop=True) if len(samples) else empty_samples()
    samples["rail"] = samples["rail"].astype("str")
    notes.append(f"power columns become rails: {', '.join(power)} (none marked total unless named "
                 f"{'/'.join(WHOLE_INPUT_RAILS)})")
    rails = [RailInfo(name=r, unit="mW", total=r in WHOLE_INPUT_RAILS) for r in power]
    return counters, counter_info, samples, rails
