"""Charts of the dashboard: pure functions from a data frame (as app.queries returns it) to an Altair chart.

No streamlit here, so every chart can be built and inspected in a test (chart.to_dict()).

Measurement honesty: a layer whose energy the sensor could not resolve (resolved is not True) is never
drawn as a measured bar. It gets a hollow, dashed, faint grey bar of its indicative value, its own legend
entry (UNRESOLVED) and a tooltip saying the value is indicative only; only measured bars carry error bars.
"""

from __future__ import annotations

import altair as alt
import pandas as pd

MEASURED = "measured"
UNRESOLVED = "unresolved (sensor too slow)"
STATUS_DOMAIN = [MEASURED, UNRESOLVED]
MEASURED_COLOR = "#4c78a8"
UNRESOLVED_COLOR = "#9e9e9e"
STATUS_RANGE = [MEASURED_COLOR, UNRESOLVED_COLOR]
UNRESOLVED_NOTE = (
    "indicative only, not a measurement: the power sensor updates too slowly to resolve this layer"
)
SIMULATED_SUFFIX = ": SIMULATED data, not a measurement"

ROW_HEIGHT_PX = 18
MIN_HEIGHT_PX = 120


def has_energy(stats: pd.DataFrame) -> bool:
    """Whether per-layer stats hold any energy figure (False for a timing-only run: rail and energy NULL)."""
    if stats.empty or "energy_mj_mean" not in stats:
        return False
    return bool(stats["rail"].notna().any() and stats["energy_mj_mean"].notna().any())


def layer_labels(stats: pd.DataFrame) -> pd.Series:
    """Axis label of each row: the layer name, prefixed by its index where two layers share a name."""
    names = stats["name"].fillna("").astype(str)
    by_layer = stats.drop_duplicates("layer_index")
    duplicated = set(by_layer.loc[by_layer["name"].duplicated(keep=False), "name"])
    return pd.Series(
        [
            f"{i}: {n}" if (n in duplicated or not n) else n
            for i, n in zip(stats["layer_index"], names, strict=True)
        ],
        index=stats.index,
        dtype=object,
    )


def layer_order(stats: pd.DataFrame) -> list[str]:
    """Layer labels in network order (by layer_index)."""
    ordered = stats.sort_values("layer_index", kind="stable").drop_duplicates("layer_index")
    return layer_labels(ordered).tolist()


def _one_rail(stats: pd.DataFrame, rail: str | None) -> pd.DataFrame:
    if rail is not None:
        stats = stats[stats["rail"] == rail]
    if stats["layer_index"].duplicated().any():
        raise ValueError("per-layer stats hold several rails: pass rail= to chart one of them")
    return stats


def _layer_frame(stats: pd.DataFrame, value: str, ci: str) -> pd.DataFrame:
    frame = stats.sort_values("layer_index", kind="stable").copy()
    frame["layer"] = layer_labels(frame)
    # A missing interval stays missing (no error bar), never a zero-width one that would look exact.
    frame[f"{value.removesuffix('_mean')}_low"] = frame[value] - frame[ci]
    frame[f"{value.removesuffix('_mean')}_high"] = frame[value] + frame[ci]
    return frame


def _records(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Only the columns a chart needs, so the spec stays small (Altair writes NaN as null)."""
    return frame[[c for c in columns if c in frame]].reset_index(drop=True)  # optional ones (method) may be absent


def _y(order: list[str]) -> alt.Y:
    return alt.Y(
        "layer:N",
        sort=order,
        scale=alt.Scale(domain=order),
        title="layer (network order)",
        axis=alt.Axis(labelLimit=220, labelOverlap=False),
    )


def _status_color() -> alt.Color:
    return alt.Color(
        "status:N",
        scale=alt.Scale(domain=STATUS_DOMAIN, range=STATUS_RANGE),
        legend=alt.Legend(title=None, orient="top"),
    )


def _height(order: list[str]) -> int:
    return max(MIN_HEIGHT_PX, ROW_HEIGHT_PX * len(order))


def _bars_with_ci(data: pd.DataFrame, y: alt.Y, quantity: str, axis_title: str, color) -> tuple[alt.Chart, alt.Chart]:
    """Bars of `<quantity>_mean` and error bars from `<quantity>_low` to `<quantity>_high` (mean +- 95% CI)."""
    bars = (
        alt.Chart(data)
        .mark_bar()
        .encode(
            y=y,
            x=alt.X(f"{quantity}_mean:Q", title=axis_title),
            color=color,
            tooltip=[
                alt.Tooltip("layer_index:Q", title="index"),
                alt.Tooltip("layer:N"),
                alt.Tooltip("type:N"),
                alt.Tooltip(f"{quantity}_mean:Q", title=f"{quantity} (mean)", format=".4f"),
                alt.Tooltip(f"{quantity}_ci95:Q", title=f"{quantity} (95% CI +-)", format=".4f"),
                alt.Tooltip("n_iterations:Q", title="iterations"),
                *([alt.Tooltip("method:N", title="estimator")] if "method" in data else []),
            ],
        )
    )
    error_bars = (
        alt.Chart(data)
        .mark_errorbar(ticks=True, color="black")
        .encode(y=y, x=alt.X(f"{quantity}_low:Q", title=axis_title), x2=f"{quantity}_high:Q")
    )
    return bars, error_bars


def layer_energy_chart(
    stats: pd.DataFrame, rail: str | None = None, simulated: bool = False
) -> alt.LayerChart:
    """Energy per layer (energy_mj_mean, error bars +- energy_mj_ci95) of one rail, layers in network order.

    stats: rows of app.queries.layer_stats; with several rails, rail says which one to chart.
    Raises ValueError for a run without energy data (see has_energy): such a run gets a message, not a chart.
    """
    if not has_energy(stats):
        raise ValueError("no energy data (timing-only run): nothing to chart")
    stats = _one_rail(stats[stats["rail"].notna()], rail)
    rail_name = rail if rail is not None else str(stats["rail"].iloc[0])
    frame = _layer_frame(stats, "energy_mj_mean", "energy_mj_ci95")
    order = layer_order(frame)
    is_resolved = frame["resolved"].eq(True).fillna(False).astype(bool)
    measured = frame[is_resolved].assign(status=MEASURED)
    unresolved = frame[~is_resolved].assign(status=UNRESOLVED, note=UNRESOLVED_NOTE)

    measured_data = _records(
        measured,
        ["layer_index", "layer", "type", "status", "energy_mj_mean", "energy_mj_ci95",
         "energy_mj_low", "energy_mj_high", "n_iterations", "method"],
    )
    unresolved_data = _records(
        unresolved,
        ["layer_index", "layer", "type", "status", "energy_mj_mean", "note"],
    )
    y = _y(order)
    bars, error_bars = _bars_with_ci(measured_data, y, "energy_mj", "energy per layer (mJ)", _status_color())
    unresolved_bars = (
        alt.Chart(unresolved_data)
        .mark_bar(fillOpacity=0.15, stroke=UNRESOLVED_COLOR, strokeDash=[4, 3], strokeWidth=1.5)
        .encode(
            y=y,
            x=alt.X("energy_mj_mean:Q", title="energy per layer (mJ)"),
            color=_status_color(),
            tooltip=[
                alt.Tooltip("layer_index:Q", title="index"),
                alt.Tooltip("layer:N"),
                alt.Tooltip("type:N"),
                alt.Tooltip("energy_mj_mean:Q", title="energy_mj (indicative only)", format=".4f"),
                alt.Tooltip("note:N", title="unresolved"),
            ],
        )
    )
    title = f"Energy per layer, rail {rail_name} (mJ, mean +- 95% CI)"
    return (
        alt.layer(bars, error_bars, unresolved_bars)
        .properties(title=title + (SIMULATED_SUFFIX if simulated else ""), height=_height(order))
    )


def layer_time_chart(stats: pd.DataFrame, simulated: bool = False) -> alt.LayerChart:
    """Time per layer (time_ms_mean, error bars of +- time_ms_ci95), layers in network order.

    stats: rows of app.queries.layer_stats; timing is the same on every rail, so one row per layer is kept.
    """
    per_layer = stats.sort_values("layer_index", kind="stable").drop_duplicates("layer_index")
    frame = _layer_frame(per_layer, "time_ms_mean", "time_ms_ci95")
    order = layer_order(frame)
    data = _records(
        frame,
        ["layer_index", "layer", "type", "time_ms_mean", "time_ms_ci95",
         "time_ms_low", "time_ms_high", "n_iterations"],
    )
    bars, error_bars = _bars_with_ci(data, _y(order), "time_ms", "time per layer (ms)", alt.value(MEASURED_COLOR))
    title = "Time per layer (ms, mean +- 95% CI)"
    return alt.layer(bars, error_bars).properties(
        title=title + (SIMULATED_SUFFIX if simulated else ""), height=_height(order)
    )


# --- overview page ---


# --- run page ---


# --- compare page ---


# --- efficiency page ---


# --- models page ---
