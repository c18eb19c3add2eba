"""app/state.py (a page's view in its URL) and app/export.py (downloads), through a tiny page run by AppTest."""

from __future__ import annotations

import io
from pathlib import Path

import altair as alt
import pandas as pd
from streamlit.testing.v1 import AppTest

from app import export

PAGE = Path(__file__).resolve().parent / "apps" / "state_and_export.py"


def _run(query: dict | None = None) -> AppTest:
    at = AppTest.from_file(str(PAGE), default_timeout=30)
    for key, value in (query or {}).items():
        at.query_params[key] = value
    at.run()
    assert not at.exception
    return at


def _param(at: AppTest, key: str) -> list[str]:
    value = at.query_params[key]  # AppTest gives a str after a widget callback, a list after a script's write
    return value if isinstance(value, list) else [value]


def test_first_visit_shows_defaults_and_puts_them_in_the_url():
    at = _run()
    assert at.markdown[0].value == "x=b m= r=10-20 invalid="
    assert _param(at, "x") == ["b"] and _param(at, "r") == ["10", "20"]
    assert "m" not in at.query_params  # an empty list is no parameter


def test_a_url_restores_every_widget_and_drops_invalid_values():
    at = _run({"x": "c", "m": ["c", "a", "zz"], "r": ["5", "70"]})
    assert at.markdown[0].value == "x=c m=c,a r=5-70 invalid="
    assert _param(at, "m") == ["c", "a"]
    at = _run({"x": "nope"})
    assert at.markdown[0].value == "x=b m= r=10-20 invalid=nope"  # the default, and the bad value reported


def test_a_changed_widget_goes_into_the_url_and_stays():
    at = _run({"x": "a"})
    at.selectbox(key="x_key").select("c").run()
    assert at.markdown[0].value.startswith("x=c ")
    assert _param(at, "x") == ["c"]
    at.multiselect(key="m_key").select("b").run()
    assert _param(at, "m") == ["b"] and at.markdown[0].value.startswith("x=c m=b ")


def test_every_chart_and_table_gets_its_download_buttons():
    at = _run()
    buttons = at.get("download_button")
    assert [b.proto.label for b in buttons] == ["SVG", "PNG", "CSV", "Parquet"]


def test_exported_bytes_hold_the_chart_and_the_table():
    frame = pd.DataFrame({"layer": ["conv1", "fire2"], "energy_mj": [1.5, 0.25]})
    chart = alt.Chart(frame).mark_bar().encode(x="energy_mj", y="layer").properties(title="Energy: SIMULATED")
    svg = export.chart_svg(chart)
    assert svg.startswith("<svg") and "conv1" in svg and "Energy: SIMULATED" in svg
    png = export.chart_png(chart)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert export.csv_bytes(frame).decode().splitlines() == ["layer,energy_mj", "conv1,1.5", "fire2,0.25"]
    assert pd.read_parquet(io.BytesIO(export.parquet_bytes(frame))).equals(frame)
    assert export.file_stem("Energy per layer: fire2/3 (mJ)") == "Energy_per_layer_fire2_3_mJ"
