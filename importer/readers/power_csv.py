"""Readers of power tables written by other tools (docs/log-formats.md):

    read_power_csv      a generic CSV: a time column and power columns, found from the header or named by options
    read_energy_probe   Workload Automation / devlib CSVs: Arm Energy Probe (caiman), DAQ, Juno readenergy
    read_ptdaemon       MLPerf PTDaemon log lines (Time,MM-DD-YYYY HH:MM:SS.mmm,Watts,...,Mark,...)

Tables are read with DuckDB's CSV reader with explicit types; time stamps are parsed from their decimal text to
int64 nanoseconds exactly (a float would lose nanoseconds of an epoch time). Every problem is an InputError naming
the file, the line or column, and what was expected. The helpers at the top (raw bytes and their digest, units in
headers, exact decimal times) are shared with tegrastats.py and streamline_report.py.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from importer.errors import InputError
from importer.readers.common import RailInfo, SourceData
from importer.readers.text_tables import (
    POWER_UNIT_MW,
    TIME_UNIT_NS,
    WHOLE_INPUT_RAILS,
    check_increasing,
    drop_cut_row,
    duckdb_table,
    listed,
    long_samples,
    norm_time_unit,
    read_header,
    read_raw,
    row_places,
    shorten,
    split_unit,
    suffix_unit,
    times_from_text,
)

# ---------------------------------------------------------------------------------------------------------------
# Shared helpers

TIME_NAMES = ("time", "timestamp", "t", "ts", "elapsed", "elapsed_time", "time_stamp", "datetime", "date_time")
POWER_WORDS = re.compile(r"power|pow|watt", re.IGNORECASE)
OTHER_UNITS = {"v", "mv", "a", "ma", "ua", "j", "mj", "%", "c", "°c", "hz", "mhz"}


def _time_column(columns: list[str], time_unit: str | None) -> tuple[str | None, str | None]:
    """The time column: a name such as time, timestamp, t, t_s (any unit in brackets), else a name containing
    'time' whose unit, if any, is a time unit ('Idle time [%]' is not one)."""
    best = None
    for column in columns:
        bare, unit = split_unit(column)
        bare, suffix = suffix_unit(bare, TIME_UNIT_NS)
        key = bare.strip().lower()
        if key in TIME_NAMES:
            rank = 0
        elif "time" in key and "duration" not in key and (unit is None or norm_time_unit(unit) is not None):
            rank = 1
        else:
            continue
        if best is None or rank < best[0]:
            best = (rank, column, norm_time_unit(unit) or suffix)
    if best is None:
        return None, None
    return best[1], time_unit or best[2]




def _power_unit(column: str) -> tuple[str, str | None]:
    """(rail name, unit) read from a header such as 'VDD_IN power (mW)', 'gpu_power_mw', 'Watts'."""
    bare, unit = split_unit(column)
    if unit is None:
        bare, unit = suffix_unit(bare, ("mw", "w", "uw", "kw", "watts", "milliwatts"))
    if unit is None and re.search(r"milliwatt", bare, re.IGNORECASE):
        unit = "mW"
    elif unit is None and re.search(r"watts?$", bare, re.IGNORECASE):
        unit = "W"
    unit = {"watts": "W", "milliwatts": "mW"}.get((unit or "").lower(), unit)
    match = re.match(r"^(.*?)[ _-]*(power|pow|watts|milliwatts)$", bare.strip(), re.IGNORECASE)
    rail = match[1] if match and match[1] else bare.strip()
    return rail, unit


def read_power_csv(path: str | Path, time_column: str | None = None,
                   power_columns: Sequence[str] | Mapping[str, str] | None = None, unit: str | None = None,
                   time_unit: str | None = None, total_rail: str | None = None) -> SourceData:
    """A CSV with one time column and one or more power columns (one rail each).

    time_column: the time column's header (default: found from names such as time, timestamp, t, t_s, 'Time (ms)').
    power_columns: the power columns' headers, or a mapping {header: rail name} (default: headers with a power unit,
    mW or W, or a name containing power/pow/watts). unit: 'mW' or 'W' for every power column, overriding the
    headers. time_unit: 's', 'ms', 'us' or 'ns', overriding the header. total_rail: the rail that is the whole
    board's input (default: VDD_IN, POM_5V_IN or VIN_SYS_5V0 when present).
    """
    path, raw, digest = read_raw(path)
    name = str(path)
    if unit is not None and unit.lower() not in ("mw", "w"):
        raise InputError(f"unit is {unit!r}; expected 'mW' or 'W'", path=name, place="option unit")
    if time_unit is not None and norm_time_unit(time_unit) not in TIME_UNIT_NS:
        raise InputError(f"time_unit is {time_unit!r}; expected 's', 'ms', 'us' or 'ns'", path=name,
                         place="option time_unit")
    header_line, columns, delimiter = read_header(raw, name)
    found = listed(columns)
    duplicated = sorted({c for c in columns if columns.count(c) > 1})
    if duplicated:
        raise InputError(f"column {duplicated[0]!r} appears twice; expected unique column names", path=name,
                         place=f"line {header_line}")
    notes: list[str] = []
    if header_line > 1:
        notes.append(f"skipped {header_line - 1} line(s) before the header (blank or '#' comments)")

    if time_column is not None:
        if time_column not in columns:
            raise InputError(f"time_column {time_column!r} is not a column; found {found}", path=name,
                             place=f"line {header_line}")
        bare, header_unit = split_unit(time_column)
        tunit = norm_time_unit(time_unit) or norm_time_unit(header_unit or suffix_unit(bare, TIME_UNIT_NS)[1])
    else:
        time_column, tunit = _time_column(columns, norm_time_unit(time_unit))

    if power_columns is not None:
        mapping = dict(power_columns) if isinstance(power_columns, Mapping) else {c: None for c in power_columns}
        missing = [c for c in mapping if c not in columns]
        if missing:
            raise InputError(f"power column {missing[0]!r} is not a column; found {found}", path=name,
                             place=f"line {header_line}")
    else:
        mapping = {}
        for column in columns:
            if column == time_column:
                continue
            rail, header_unit = _power_unit(column)
            if header_unit is not None and header_unit.lower() in POWER_UNIT_MW:
                mapping[column] = None
            elif (header_unit is None or header_unit.lower() not in OTHER_UNITS) and POWER_WORDS.search(column):
                mapping[column] = None

    if time_column is None or not mapping:
        what = "a time column" if time_column is None else "a power column"
        raise InputError(
            f"cannot find {what} among {found}; expected a time column (time, timestamp, t, t_s, t_ms, "
            f"'Time (s)') and power columns (a unit mW or W in the header, e.g. 'VDD_IN (mW)', 'power_w'); "
            f"name them with time_column=... and power_columns=[...] or {{column: rail}}",
            path=name, place=f"line {header_line}")

    rails: dict[str, tuple[str, float]] = {}
    for column, rail_name in mapping.items():
        rail, header_unit = _power_unit(column)
        chosen = unit or header_unit
        if chosen is None or chosen.lower() not in POWER_UNIT_MW:
            raise InputError(f"column {column!r} has no power unit in its header; expected mW or W there, or "
                             f"unit='mW' / unit='W'", path=name, place=f"line {header_line}")
        rails[column] = (rail_name or rail, POWER_UNIT_MW[chosen.lower()])
    if len({r for r, _ in rails.values()}) < len(rails):  # two headers give one rail name: keep the headers
        rails = {c: (mapping[c] or c, f) for c, (_, f) in rails.items()}

    types = {c: "DOUBLE" if c in rails else "VARCHAR" for c in columns}
    table = duckdb_table(path, name, header_line, delimiter, types)
    places = row_places(raw, header_line, len(table))
    table, places = drop_cut_row(raw, table, places, notes)
    t_ns, base = times_from_text(table[time_column], tunit, name, places, time_column, notes)
    check_increasing(t_ns, name, places, time_column)

    values = {}
    for column, (rail, factor) in rails.items():
        power = table[column].to_numpy(dtype="float64") * factor
        empty = int(np.isnan(power).sum())
        if empty:
            notes.append(f"{column}: {empty} empty cell(s) skipped")
        values[rail] = {"power_mw": power}
    samples = long_samples(t_ns, values)
    total = total_rail if total_rail is not None else next((r for r in values if r in WHOLE_INPUT_RAILS), None)
    if total is not None and total not in values:
        raise InputError(f"total_rail {total!r} is not a rail; rails are {', '.join(values)}", path=name,
                         place="option total_rail")
    ignored = [c for c in columns if c != time_column and c not in rails]
    if ignored:
        notes.append(f"columns not read as power: {', '.join(ignored)}")
    notes.append(f"time column {time_column!r}; power columns: "
                 + ", ".join(f"{c} -> {r} ({'mW' if f == 1 else f'x{f:g} to mW'})" for c, (r, f) in rails.items()))
    return SourceData(
        kind="power-csv", path=path, content_sha256=digest, time_base=base, samples=samples,
        rails=[RailInfo(name=r, unit="mW", total=r == total) for r in values], notes=notes,
    )


# ---------------------------------------------------------------------------------------------------------------
# Workload Automation / devlib energy CSVs

# devlib's measurement kinds (power W, voltage V, current A, energy J, time s) and readenergy's short names.
_KINDS = {
    "power": "power", "pow": "power", "voltage": "voltage", "volt": "voltage", "current": "current",
    "curr": "current", "energy": "energy", "cenr": "energy", "time_ns": "time_ns", "time_us": "time_us",
    "time_ms": "time_ms", "time": "time",
}
_KIND_COLUMN = re.compile(
    r"^(?:(?P<site>.+?)[ _])?(?P<kind>time_ns|time_us|time_ms|time|power|pow|voltage|volt|current|curr|energy|cenr)"
    r"(?:\s*[\[(]\s*(?P<unit>[^\])]*?)\s*[\])])?$",
    re.IGNORECASE,
)
# Factor to mW, mV, mA, mJ for the standard units (unit="W") and caiman's raw thousandths (unit="mW").
_STANDARD = {"power": 1000.0, "voltage": 1000.0, "current": 1000.0, "energy": 1000.0}
_UNIT_FACTORS = {"w": 1000.0, "mw": 1.0, "uw": 1e-3, "v": 1000.0, "mv": 1.0, "uv": 1e-3, "a": 1000.0, "ma": 1.0,
                 "ua": 1e-3, "j": 1000.0, "mj": 1.0, "uj": 1e-3}
_TARGET = {"power": "power_mw", "voltage": "voltage_mv", "current": "current_ma", "energy": "energy_mj"}


def read_energy_probe(path: str | Path, sample_rate_hz: float | None = None, unit: str | None = None,
                      rail: str | None = None) -> SourceData:
    """A Workload Automation / devlib energy CSV (docs/log-formats.md lists the layouts and their sources).

    Columns are `[<site>_]<kind>` with kind power, voltage, current, energy (devlib: W, V, A, J) or readenergy's
    pow, volt, curr, cenr; a column `<site>_time` (s; time_ms, time_us, time_ns) gives the times, else
    `sample_rate_hz` must be given. unit: 'W' (default: devlib's W, V, A, J) or 'mW' (caiman's raw thousandths:
    mW, mV, mA, mJ), overriding units in brackets in the header. rail: the rail name for columns without a site
    (default: the file's name without its extension, as Workload Automation 2 names one CSV per channel label).
    """
    path, raw, digest = read_raw(path)
    name = str(path)
    if unit is not None and unit.lower() not in ("mw", "w"):
        raise InputError(f"unit is {unit!r}; expected 'mW' or 'W'", path=name, place="option unit")
    if sample_rate_hz is not None and not sample_rate_hz > 0:
        raise InputError(f"sample_rate_hz is {sample_rate_hz!r}; expected a positive number", path=name,
                         place="option sample_rate_hz")
    header_line, columns, delimiter = read_header(raw, name)
    duplicated = sorted({c for c in columns if columns.count(c) > 1})
    if duplicated:
        raise InputError(f"column {duplicated[0]!r} appears twice; expected unique column names", path=name,
                         place=f"line {header_line}")
    notes: list[str] = []
    kinds: dict[str, tuple[str, str, str | None]] = {}  # column -> (site, kind, unit)
    ignored = []
    for i, column in enumerate(columns):
        match = _KIND_COLUMN.match(column)
        if i == 0 and (column == "" or column.lower() in ("unnamed: 0", "index")):
            notes.append("first column (a pandas index without a name) ignored")
            ignored.append(column)
            continue
        if not match:
            ignored.append(column)
            continue
        kind = _KINDS[match["kind"].lower()]
        site = match["site"] or (None if not kind.startswith("time") else "time")
        kinds[column] = (site, kind, match["unit"])
    if ignored and any(c for c in ignored):
        notes.append(f"columns not understood, ignored: {', '.join(c for c in ignored if c)}")
    times = [c for c, (_, k, _) in kinds.items() if k.startswith("time")]
    measures = {c: v for c, v in kinds.items() if not v[1].startswith("time")}
    if not measures:
        raise InputError(
            f"no power, voltage, current or energy columns among {listed(columns)}; expected "
            "Workload Automation / devlib headers such as 'power,voltage,current', 'PORT_0_power,PORT_0_voltage' "
            "or Juno readenergy's 'sys_curr,...,sys_pow,...,sys_cenr'; for other tables use read_power_csv",
            path=name, place=f"line {header_line}")
    short = any(k.lower().endswith(("_pow", "_curr", "_volt", "_cenr")) for k in measures)
    kind_set = {k for _, k, _ in measures.values()}
    layout = ("Juno readenergy" if short else "DAQ (power, voltage)" if kind_set == {"power", "voltage"}
              else "energy probe (power, voltage, current)" if kind_set == {"power", "voltage", "current"}
              else "devlib instrument CSV")
    notes.append(f"layout: {layout}")

    types = {c: "DOUBLE" if c in measures else "VARCHAR" for c in columns}
    if "" in types:
        types = {(c or "column0"): t for c, t in types.items()}
    table = duckdb_table(path, name, header_line, delimiter, types)
    table.columns = columns
    places = row_places(raw, header_line, len(table))
    table, places = drop_cut_row(raw, table, places, notes)
    if times:
        column = times[0]
        tunit = {"time": "s", "time_ms": "ms", "time_us": "us", "time_ns": "ns"}[kinds[column][1]]
        tunit = norm_time_unit(kinds[column][2]) or tunit
        t_ns, base = times_from_text(table[column], tunit, name, places, column, notes)
    else:
        if sample_rate_hz is None:
            raise InputError(
                "has no time column; pass sample_rate_hz (caiman with an Arm Energy Probe: about 10000, devlib's "
                "empirical figure; a DAQ: as configured, devlib's default 10000; Juno readenergy: 10)",
                path=name, place=f"line {header_line}")
        t_ns = np.round(np.arange(len(table)) * (1e9 / sample_rate_hz)).astype("int64")
        base = "relative"
        notes.append(f"no time column: times from sample_rate_hz={sample_rate_hz:g}")
    check_increasing(t_ns, name, places, times[0] if times else "row")

    per_site: dict[str, dict[str, np.ndarray]] = {}
    default_site = rail or path.name.split(".")[0]
    for column, (site, kind, header_unit) in measures.items():
        if unit is not None:
            factor = _STANDARD[kind] / (1000.0 if unit.lower() == "mw" else 1.0)
        elif header_unit is not None and header_unit.lower().replace("µ", "u") in _UNIT_FACTORS:
            factor = _UNIT_FACTORS[header_unit.lower().replace("µ", "u")]
        else:
            factor = _STANDARD[kind]
        per_site.setdefault(site or default_site, {})[_TARGET[kind]] = table[column].to_numpy(dtype="float64") * factor

    for site, values in per_site.items():
        if "power_mw" in values:
            continue
        if "energy_mj" in values:  # cumulative energy only: power from its differences
            energy = values["energy_mj"]
            dt_s = np.diff(t_ns) / 1e9
            values["power_mw"] = np.concatenate([[np.nan], np.diff(energy) / dt_s])
            notes.append(f"{site}: power derived from the differences of cumulative energy (first sample dropped)")
        elif "voltage_mv" in values and "current_ma" in values:
            values["power_mw"] = values["voltage_mv"] * values["current_ma"] / 1000.0
            notes.append(f"{site}: power computed as voltage x current")
    rails = {site: values for site, values in per_site.items() if "power_mw" in values}
    for site in per_site.keys() - rails.keys():
        notes.append(f"{site}: no power, energy or voltage and current pair; not a rail")
    if not rails:
        raise InputError("no column gives power; expected <site>_power, <site>_pow or <site>_energy", path=name,
                         place=f"line {header_line}")
    for site, values in rails.items():
        empty = int(np.isnan(values["power_mw"]).sum())
        if empty:
            notes.append(f"{site}: {empty} row(s) without power skipped")
    samples = long_samples(t_ns, rails)
    return SourceData(
        kind="energy-probe", path=path, content_sha256=digest, time_base=base, samples=samples,
        rails=[RailInfo(name=site, unit="mW", total=False) for site in rails], notes=notes,
    )


# ---------------------------------------------------------------------------------------------------------------
# MLPerf PTDaemon

PTD_LINE = re.compile(
    r"^Time,(\d{2}-\d{2}-\d{4} \d{2}:\d{2}:\d{2}(?:\.\d{1,6})?),Watts,([^,]*),Volts,([^,]*),Amps,([^,]*),"
    r"PF,([^,]*)(?:,Mark,(.*))?$"
)
PTD_EXPECTED = "Time,MM-DD-YYYY HH:MM:SS.mmm,Watts,<v>,Volts,<v>,Amps,<v>,PF,<v>,Mark,<text>"


def read_ptdaemon(path: str | Path, utc_offset_minutes: float = 0, rail: str = "wall") -> SourceData:
    """An MLPerf power log (PTDaemon's lines `Time,MM-DD-YYYY HH:MM:SS.mmm,Watts,...,Mark,...`).

    The date is the local time of the machine that ran PTDaemon: utc_offset_minutes is that machine's offset from
    UTC (e.g. 120 for UTC+2). One rail (`rail`, marked total: a wall meter measures the whole system); volts and
    amps kept; the Mark column becomes a marker wherever it changes. Other lines are skipped and counted; a line
    starting 'Time,' that does not parse is an error, unless it is the last line and has no newline (cut).
    """
    path, raw, digest = read_raw(path)
    name = str(path)
    text = raw.decode("utf-8", errors="replace")
    lines = pd.Series(text.split("\n"), dtype="str").str.rstrip("\r")
    cut_last = not text.endswith("\n")
    if not cut_last:
        lines = lines.iloc[:-1]
    parts = lines.str.extract(PTD_LINE)
    parsed = parts[0].notna().to_numpy(copy=True)
    started = lines.str.startswith("Time,").to_numpy(copy=True)
    notes: list[str] = []
    cut = cut_last and len(lines) > 0 and bool(started[-1])
    if cut:  # a killed logger leaves its last line half written: even if it parses, a number may be cut short
        parsed[-1] = started[-1] = False
        notes.append(f"line {len(lines)} ends without a newline (the log was cut): skipped")
    broken = np.flatnonzero(started & ~parsed)
    if len(broken):
        i = int(broken[0])
        raise InputError(f"{lines.iloc[i][:60]!r} is not a PTDaemon sample; expected {PTD_EXPECTED}", path=name,
                         place=f"line {i + 1}")
    if not parsed.any():
        raise InputError(f"no PTDaemon sample lines; expected lines {PTD_EXPECTED}", path=name, place="line 1")
    other = int((~parsed).sum()) - int(cut)
    if other:
        notes.append(f"{other} line(s) that are not samples skipped")
    rows = parts[parsed]
    numbers = np.flatnonzero(parsed) + 1
    stamps = pd.to_datetime(rows[0], format="%m-%d-%Y %H:%M:%S.%f", errors="coerce")
    if stamps.isna().any():
        stamps = stamps.fillna(pd.to_datetime(rows[0], format="%m-%d-%Y %H:%M:%S", errors="coerce"))
    bad = stamps.isna().to_numpy()
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InputError(f"date {rows[0].iloc[i]!r} is not a date; expected MM-DD-YYYY HH:MM:SS.mmm", path=name,
                         place=f"line {numbers[i]}")
    t_ns = stamps.dt.as_unit("ns").astype("int64").to_numpy() - int(round(utc_offset_minutes * 60e9))
    values = {}
    for column, label in ((1, "Watts"), (2, "Volts"), (3, "Amps"), (4, "PF")):
        number = pd.to_numeric(rows[column], errors="coerce").to_numpy(dtype="float64")
        if np.isnan(number).any():
            i = int(np.flatnonzero(np.isnan(number))[0])
            raise InputError(f"{label} is {shorten(rows[column].iloc[i])}; expected a number", path=name,
                             place=f"line {numbers[i]}")
        values[label] = number
    step_back = np.flatnonzero(np.diff(t_ns) <= 0)
    if len(step_back):
        i = int(step_back[0]) + 1
        raise InputError("time is not after the previous sample's; expected strictly increasing times", path=name,
                         place=f"line {numbers[i]}")
    samples = pd.DataFrame({
        "t_ns": t_ns, "rail": rail, "power_mw": values["Watts"] * 1000.0, "voltage_mv": values["Volts"] * 1000.0,
        "current_ma": values["Amps"] * 1000.0, "power_factor": values["PF"],
    })
    marks = rows[5]
    changed = (marks.notna() & marks.ne(marks.shift())).to_numpy()
    markers = pd.DataFrame({"t_ns": t_ns[changed], "text": marks.to_numpy()[changed].astype(str)})
    interval = float(np.median(np.diff(t_ns)) / 1e6) if len(t_ns) > 1 else None
    if interval is not None:
        notes.append(f"update interval taken as the median spacing of the samples, {interval:g} ms")
    if utc_offset_minutes:
        notes.append(f"local times moved to UTC with utc_offset_minutes={utc_offset_minutes:g}")
    return SourceData(
        kind="ptdaemon", path=path, content_sha256=digest, time_base="utc", samples=samples,
        rails=[RailInfo(name=rail, unit="mW", total=True, update_interval_ms=interval)], markers=markers,
        notes=notes,
    )
