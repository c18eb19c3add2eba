"""Helpers of the dashboard's AppTest tests: open a page with a URL's query parameters, read what it shows."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from streamlit.dataframe_util import convert_arrow_bytes_to_pandas_df
from streamlit.testing.v1 import AppTest

from importer.store import connect

APP_MAIN = Path(__file__).resolve().parent.parent / "app" / "main.py"
TIMEOUT_S = 60


def vega_charts(at: AppTest) -> list[tuple[dict, dict[str, pd.DataFrame]]]:
    """Every Altair chart the page shows: its Vega-Lite spec and its data sets as frames (AppTest has no chart
    accessor: the elements are read from their protos)."""
    shown = []
    for element in at.get("vega_lite_chart"):
        spec = json.loads(element.proto.spec)
        frames = {dataset.name: convert_arrow_bytes_to_pandas_df(dataset.data.data)
                  for dataset in element.proto.datasets}
        shown.append((spec, frames))
    return shown


def chart_rows(spec: dict, frames: dict[str, pd.DataFrame], layer: int | None = None) -> pd.DataFrame:
    """The data of a chart (or of one layer of a layered chart)."""
    part = spec if layer is None else spec["layer"][layer]
    name = part.get("data", spec.get("data"))["name"]
    return frames[name]


def texts(elements) -> list[str]:
    return [element.value for element in elements]


def no_exception(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def run_ids_by_name(db: Path) -> dict[str, str]:
    with connect(db, read_only=True) as con:
        return dict(con.execute("SELECT name, run_id FROM runs").fetchall())


def app_test() -> AppTest:
    return AppTest.from_file(APP_MAIN, default_timeout=TIMEOUT_S)


def open_page(view: str, params: dict[str, str | list[str]] | None = None, timeout_s: float = TIMEOUT_S) -> AppTest:
    """Run the app on a page (e.g. "views/run.py") with the query parameters a shared link would carry."""
    at = AppTest.from_file(APP_MAIN, default_timeout=timeout_s)
    at.switch_page(view)
    for key, value in (params or {}).items():
        at.query_params[key] = value
    return at.run()
