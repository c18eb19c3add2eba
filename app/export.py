"""Downloads: every per-layer table as CSV and Parquet, every chart as SVG and PNG (for papers).

The bytes are made only when a user presses a button (st.download_button's deferred data: a callable), so a
page that shows ten charts does not render ten PNGs on every run. Charts are rendered on the server by
vl-convert, which carries the Vega-Lite compiler and renderer in its wheel (no network, no browser), so the
exported figure is the chart the page shows: same spec, same title (simulated runs keep their SIMULATED title).
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable

import altair as alt
import pandas as pd
import streamlit as st
import vl_convert

PNG_SCALE = 2  # twice the on-screen size: sharp enough for a printed figure


def file_stem(text: str) -> str:
    """A file name stem from a title or run name: letters, digits, dot, dash and underscore only."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._")
    return stem[:120] or "layerjoule"


def csv_bytes(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False).encode("utf-8")


def parquet_bytes(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


def chart_svg(chart: alt.TopLevelMixin) -> str:
    return vl_convert.vegalite_to_svg(chart.to_dict(), vl_version=_vl_version(chart))


def chart_png(chart: alt.TopLevelMixin, scale: float = PNG_SCALE) -> bytes:
    return vl_convert.vegalite_to_png(chart.to_dict(), vl_version=_vl_version(chart), scale=scale)


def _vl_version(chart: alt.TopLevelMixin) -> str:
    # The spec's $schema names the Vega-Lite release Altair wrote it for, e.g. .../vega-lite/v6.1.0.json.
    match = re.search(r"/v(\d+\.\d+)", chart.to_dict().get("$schema", ""))
    supported = vl_convert.get_vegalite_versions()
    if match and match.group(1) in supported:
        return match.group(1)
    return supported[-1]


def _buttons(stem: str, key: str, icon: str, formats: list[tuple[str, str, str, Callable[[], bytes | str]]]) -> None:
    """One row of download buttons, one per (label, extension, MIME type, maker); each file is made when pressed."""
    stem = file_stem(stem)
    row = st.container(horizontal=True)
    for label, extension, mime, make in formats:
        row.download_button(label, make, file_name=f"{stem}.{extension}", mime=mime, key=f"{key}:{extension}",
                            icon=icon, on_click="ignore")


def table_downloads(frame: pd.DataFrame, stem: str, key: str) -> None:
    """CSV and Parquet buttons for a table (the frame as shown, unresolved energy cells empty as on screen)."""
    _buttons(stem, key, ":material/download:", [
        ("CSV", "csv", "text/csv", lambda: csv_bytes(frame)),
        ("Parquet", "parquet", "application/vnd.apache.parquet", lambda: parquet_bytes(frame)),
    ])


def chart_downloads(chart: alt.TopLevelMixin, stem: str, key: str) -> None:
    """SVG and PNG buttons for a chart, rendered from the same spec when pressed."""
    _buttons(stem, key, ":material/image:", [
        ("SVG", "svg", "image/svg+xml", lambda: chart_svg(chart)),
        ("PNG", "png", "image/png", lambda: chart_png(chart)),
    ])


def show_chart(chart: alt.TopLevelMixin, stem: str, key: str, **kwargs) -> None:
    """The chart, with its SVG and PNG buttons under it."""
    st.altair_chart(chart, key=key, **kwargs)
    chart_downloads(chart, stem, key)


def show_table(frame: pd.DataFrame, stem: str, key: str, **kwargs) -> None:
    """The table, with its CSV and Parquet buttons under it."""
    st.dataframe(frame, key=key, **kwargs)
    table_downloads(frame, stem, key)
