"""Reader of tegrastats logs (docs/log-formats.md): every power field of every line becomes a rail sample.

Forms (/work/shared/docs/jetson-power.md): TX2 / JetPack 4 `VDD_IN 1383/1383`, Nano `POM_5V_IN 933/933`, AGX
Xavier `GPU 1155/1155` (names without VDD_), Orin / JetPack 5 with a `MM-DD-YYYY HH:MM:SS` date prefix and
`2390mW/2390mW`, newer releases `5139mW/5139mW/5139mW`. The first value is the current reading (power_mw), the
second the average since tegrastats started (power_avg_mw); the third's meaning is UNKNOWN (power_third_mw).
Lines are parsed with vectorised regular expressions (pandas .str.extract / .str.findall) and numpy.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from importer.errors import InputError
from importer.readers.common import RailInfo, SourceData
from importer.readers.text_tables import WHOLE_INPUT_RAILS, empty_samples, read_raw

# Optional date prefix (MM-DD-YYYY HH:MM:SS; MM-DD HH:MM:SS needs `year`), then tegrastats' first field, RAM.
LINE_START = r"^(?:(\d{1,2}-\d{1,2}(?:-\d{4})?) +(\d{1,2}:\d{2}:\d{2}) +)?(RAM \d)"
# NAME current/average[/third], each value optionally followed by mW; 'RAM 2225/3964MB' does not match (MB).
POWER_FIELD = (r"(?:^|\s)([A-Za-z][A-Za-z0-9_]*) (\d+(?:\.\d+)?)(?:mW)?/(\d+(?:\.\d+)?)(?:mW)?"
               r"(?:/(\d+(?:\.\d+)?)(?:mW)?)?(?=\s|$)")
EXAMPLE = "'RAM 2225/3964MB (lfb 1x4MB) CPU [...] VDD_IN 1383/1383 VDD_CPU 153/191'"


def _some(numbers: np.ndarray, limit: int = 5) -> str:
    shown = ", ".join(str(int(n)) for n in numbers[:limit])
    return shown + (f" and {len(numbers) - limit} more" if len(numbers) > limit else "")


def read_tegrastats(path: str | Path, interval_ms: float | None = None, year: int | None = None,
                    utc_offset_minutes: float = 0) -> SourceData:
    """A tegrastats log -> SourceData(kind="tegrastats").

    interval_ms: tegrastats' --interval (its default is 1000 ms). Required for lines without a date stamp (time
    base "relative": t = line index x interval); with date stamps (time base "utc") it is only needed when several
    lines share one stamp (an interval below a second), and otherwise inferred. year: for date stamps without a
    year (MM-DD HH:MM:SS). utc_offset_minutes: the board's offset from UTC, since the stamps are its local time
    (e.g. 120 for UTC+2: the stamp minus 120 minutes is UTC).
    """
    path, raw, digest = read_raw(path)
    name = str(path)
    if interval_ms is not None and not interval_ms > 0:
        raise InputError(f"interval_ms is {interval_ms!r}; expected a positive number", path=name,
                         place="option interval_ms")
    text = raw.decode("utf-8", errors="replace")
    segments = text.split("\n")
    ends_with_newline = text.endswith("\n")
    if ends_with_newline:
        segments = segments[:-1]
    lines = pd.Series(segments, dtype="str").str.rstrip("\r")
    lines.index.name = "line"
    head = lines.str.extract(LINE_START)
    tegra = np.flatnonzero(head[2].notna().to_numpy())
    if not len(tegra):
        raise InputError(f"no tegrastats lines; expected lines like {EXAMPLE}", path=name, place="line 1")
    notes: list[str] = []
    other = len(lines) - len(tegra)
    if other:
        notes.append(f"{other} line(s) that are not tegrastats output skipped (blank lines or other output)")

    # One row per power field: line (0-based), position in its line, rail, current, average, third.
    found = lines.iloc[tegra].str.findall(POWER_FIELD).explode().dropna()
    if found.empty:
        raise InputError("no power fields (a TX1's tegrastats prints none: use the runner's ina3221 rails)",
                         path=name, place=f"lines {tegra[0] + 1}-{tegra[-1] + 1}")
    fields = pd.DataFrame(found.tolist(), columns=[0, 1, 2, 3], index=found.index.to_numpy())
    row = np.searchsorted(tegra, fields.index.to_numpy())
    position = fields.groupby(level=0).cumcount().to_numpy()
    # A line's signature is its sequence of rail names; the most common one (the longest on a tie) is expected.
    codes, names = pd.factorize(fields[0])
    signatures = np.full((len(tegra), position.max() + 1), -1, dtype="int64")
    signatures[row, position] = codes
    unique, inverse, counts = np.unique(signatures, axis=0, return_inverse=True, return_counts=True)
    # A line naming a rail twice is two lines run together (a lost newline): never the expected signature.
    named = [row[row >= 0] for row in unique]
    counts = np.where([len(set(row.tolist())) == len(row) for row in named], counts, 0)
    if counts.max() == 0:
        raise InputError(f"every tegrastats line names a rail twice (lines run together?); expected lines like "
                         f"{EXAMPLE}", path=name, place=f"line {tegra[0] + 1}")
    tied = np.flatnonzero(counts == counts.max())
    best = tied[np.argmax((unique[tied] >= 0).sum(axis=1))]
    rail_names = [str(names[c]) for c in unique[best] if c >= 0]
    complete = inverse.reshape(-1) == best
    cut_last = not ends_with_newline and tegra[-1] == len(lines) - 1
    if cut_last and complete[-1]:
        complete[-1] = False
    cut = tegra[~complete]
    if len(cut):
        notes.append(f"{len(cut)} line(s) start like tegrastats but are cut or lack power fields the others have "
                     f"({', '.join(rail_names)}): skipped (line {_some(cut + 1)})")
    kept = tegra[complete]
    if not len(kept):
        raise InputError(f"every tegrastats line is cut; expected complete lines like {EXAMPLE}", path=name,
                         place=f"line {tegra[0] + 1}")

    dated = head[0].notna().to_numpy()[kept]
    if dated.any() and not dated.all():
        i = int(np.flatnonzero(dated != dated[0])[0])
        raise InputError(
            f"{'has a' if dated[i] else 'has no'} date stamp, unlike line {kept[0] + 1}; expected one form throughout",
            path=name, place=f"line {kept[i] + 1}")
    interval_ns = None if interval_ms is None else int(round(interval_ms * 1e6))
    if dated[0]:
        t_ns, update_ms = _dated_times(head.iloc[kept], kept, interval_ns, year, utc_offset_minutes, name, notes)
        base = "utc"
    else:
        if interval_ns is None:
            raise InputError("lines have no date stamp; pass interval_ms (tegrastats --interval, default 1000)",
                             path=name, place=f"line {kept[0] + 1}")
        # Every tegrastats line (cut ones too) stands for one interval; other output does not.
        t_ns = np.searchsorted(tegra, kept).astype("int64") * interval_ns
        update_ms = float(interval_ms)
        base = "relative"

    chosen = fields[complete[row]]
    samples = pd.DataFrame({
        "t_ns": pd.Series(t_ns, index=kept).reindex(chosen.index).to_numpy(dtype="int64"),
        "rail": chosen[0].to_numpy(dtype=object),
        "power_mw": chosen[1].astype("float64").to_numpy(),
        "voltage_mv": np.nan,
        "current_ma": np.nan,
        "power_avg_mw": chosen[2].astype("float64").to_numpy(),
        "power_third_mw": pd.to_numeric(chosen[3].replace("", np.nan)).astype("float64").to_numpy(),
    })
    samples["rail"] = samples["rail"].astype("str")
    if samples.empty:
        samples = empty_samples(("power_avg_mw", "power_third_mw"))
    if samples["power_third_mw"].notna().any():
        notes.append("power fields carry a third value (meaning UNKNOWN): kept as power_third_mw")
    totals = [r for r in rail_names if r in WHOLE_INPUT_RAILS]
    if not totals:
        notes.append(f"no whole-input rail ({', '.join(WHOLE_INPUT_RAILS)}) in this log (an AGX Xavier has none): "
                     "no rail is marked total")
    notes.append(f"rails: {', '.join(rail_names)}; update interval {update_ms:g} ms (tegrastats prints values "
                 "averaged over its interval)" if update_ms is not None else f"rails: {', '.join(rail_names)}")
    return SourceData(
        kind="tegrastats", path=path, content_sha256=digest, time_base=base, samples=samples,
        rails=[RailInfo(name=r, unit="mW", total=r in WHOLE_INPUT_RAILS, update_interval_ms=update_ms)
               for r in rail_names],
        notes=notes,
    )


def _dated_times(head: pd.DataFrame, kept: np.ndarray, interval_ns: int | None, year: int | None,
                 utc_offset_minutes: float, name: str, notes: list[str]) -> tuple[np.ndarray, float | None]:
    """UTC nanoseconds of dated lines. Stamps have a 1 s resolution: lines sharing a stamp are spaced by the
    interval after it (closer when more lines share the second than the interval allows)."""
    dates = head[0].astype("str")
    no_year = ~dates.str.contains(r"-\d{4}$", regex=True)
    if no_year.any():
        if year is None:
            i = int(np.flatnonzero(no_year.to_numpy())[0])
            raise InputError(f"date stamp {dates.iloc[i]!r} has no year; pass year=", path=name,
                             place=f"line {kept[i] + 1}")
        dates = dates.where(~no_year, dates + f"-{int(year)}")
    stamps = pd.to_datetime(dates + " " + head[1].astype("str"), format="%m-%d-%Y %H:%M:%S", errors="coerce")
    bad = stamps.isna().to_numpy()
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InputError(f"date stamp {dates.iloc[i]} {head[1].iloc[i]} is not a date; expected MM-DD-YYYY HH:MM:SS",
                         path=name, place=f"line {kept[i] + 1}")
    d = stamps.dt.as_unit("ns").astype("int64").to_numpy() - int(round(utc_offset_minutes * 60e9))
    back = np.flatnonzero(np.diff(d) < 0)
    if len(back):
        i = int(back[0]) + 1
        raise InputError("date stamp is before the previous line's; expected stamps in order", path=name,
                         place=f"line {kept[i] + 1}")
    new = np.concatenate([[True], d[1:] != d[:-1]])
    starts = np.flatnonzero(new)
    group = np.cumsum(new) - 1
    sizes = np.diff(np.concatenate([starts, [len(d)]]))[group]
    if (sizes > 1).any():
        if interval_ns is None:
            i = int(np.flatnonzero(~new)[0])
            raise InputError("shares its date stamp with the line before (tegrastats --interval below 1000 ms?); "
                             "pass interval_ms", path=name, place=f"line {kept[i] + 1}")
        notes.append("several lines share a date stamp (1 s resolution): spaced by interval_ms after it")
    if utc_offset_minutes:
        notes.append(f"board local time moved to UTC with utc_offset_minutes={utc_offset_minutes:g}")
    else:
        notes.append("date stamps are the board's local time, taken as UTC (utc_offset_minutes=0)")
    if interval_ns is None:
        update_ms = float(np.median(np.diff(d)) / 1e6) if len(d) > 1 else None
        notes.append(f"interval_ms not given: inferred {update_ms:g} ms from the date stamps" if update_ms is not None
                     else "interval_ms not given and one line only: update interval unknown")
        return d, update_ms
    k = np.arange(len(d)) - starts[group]
    spacing = np.minimum(interval_ns, 10**9 // sizes)
    return d + k * spacing, interval_ns / 1e6
