"""Charts of the dashboard: pure functions from a data frame (as app.queries returns it) to an Altair chart.

No streamlit here, so every chart can be built and inspected in a test (chart.to_dict()).

Measurement honesty: a layer whose energy the sensor could not resolve (resolved is not True) is never
drawn as a measured bar. It gets a hollow, dashed, faint grey bar of its indicative value, its own legend
entry (UNRESOLVED) and a tooltip saying the value is indicative only; only measured bars carry error bars.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

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
P = ParamSpec("P")
R = TypeVar("R")

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


def _y(order: list[str], title: str = "layer (network order)", field: str = "layer") -> alt.Y:
    """The label axis: its scale's domain fixes the order. Given once, on the layered chart: Altair validates
    every label of every copy, which made most of a page's chart time with a hundred layers."""
    return alt.Y(
        f"{field}:N",
        scale=alt.Scale(domain=order),
        title=title,
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


def _bars_with_ci(
    data: pd.DataFrame, y: alt.Y | None, quantity: str, axis_title: str, color,
    about: list[alt.Tooltip] | None = None,
) -> tuple[alt.Chart, alt.Chart]:
    """Bars of `<quantity>_mean` and error bars from `<quantity>_low` to `<quantity>_high` (mean +- 95% CI).

    y: the label axis (None: the layered chart holding them gives it). about: the tooltips naming a bar
    (default: a layer's index, name and type).
    """
    on_y = {} if y is None else {"y": y}
    if about is None:
        about = [alt.Tooltip("layer_index:Q", title="index"), alt.Tooltip("layer:N"), alt.Tooltip("type:N")]
    bars = (
        alt.Chart(data)
        .mark_bar()
        .encode(
            **on_y,
            x=alt.X(f"{quantity}_mean:Q", title=axis_title),
            color=color,
            tooltip=[
                *about,
                alt.Tooltip(f"{quantity}_mean:Q", title=f"{quantity} (mean)", format=".4f"),
                alt.Tooltip(f"{quantity}_ci95:Q", title=f"{quantity} (95% CI +-)", format=".4f"),
                alt.Tooltip("n_iterations:Q", title="iterations"),
                *([alt.Tooltip("method:N", title="estimator")] if "method" in data else []),
                *([alt.Tooltip("share:Q", format=".1%")] if "share" in data else []),
            ],
        )
    )
    error_bars = (
        alt.Chart(data)
        .mark_errorbar(ticks=True, color="black")
        .encode(**on_y, x=alt.X(f"{quantity}_low:Q", title=axis_title), x2=alt.X2(f"{quantity}_high"))
    )
    return bars, error_bars


def _unchecked(build: Callable[P, R]) -> Callable[P, R]:
    """Build a chart without Altair validating every object as it is made (most of a page's chart time): the
    finished spec is still validated when Streamlit or the export converts it."""

    @functools.wraps(build)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with alt.utils.schemapi.debug_mode(False):
            return build(*args, **kwargs)

    return wrapper


@_unchecked
def layer_energy_chart(
    stats: pd.DataFrame, rail: str | None = None, simulated: bool = False, order: str = "network"
) -> alt.LayerChart:
    """Energy per layer (energy_mj_mean, error bars +- energy_mj_ci95) of one rail, layers in network order
    (order="network") or largest first (order="sorted").

    stats: rows of app.queries.layer_stats; with several rails, rail says which one to chart.
    Raises ValueError for a run without energy data (see has_energy): such a run gets a message, not a chart.
    """
    if not has_energy(stats):
        raise ValueError("no energy data (timing-only run): nothing to chart")
    stats = _one_rail(stats[stats["rail"].notna()], rail)
    rail_name = rail if rail is not None else str(stats["rail"].iloc[0])
    frame = _with_share(_layer_frame(stats, "energy_mj_mean", "energy_mj_ci95"), "energy_mj_mean")
    labels = layer_order(frame) if order == "network" else sorted_labels(frame, "energy_mj_mean", "layer")
    title = f"Energy per layer, rail {rail_name} (mJ, mean +- 95% CI)"
    return _energy_chart(
        frame.assign(note=UNRESOLVED_NOTE), _y(labels, order_title("layer", order, "energy")), labels,
        _layer_about(frame), title + (SIMULATED_SUFFIX if simulated else ""),
    )


@_unchecked
def layer_time_chart(stats: pd.DataFrame, simulated: bool = False, order: str = "network") -> alt.LayerChart:
    """Time per layer (time_ms_mean, error bars of +- time_ms_ci95), layers in network order (order="network")
    or longest first (order="sorted").

    stats: rows of app.queries.layer_stats; timing is the same on every rail, so one row per layer is kept.
    """
    per_layer = stats.sort_values("layer_index", kind="stable").drop_duplicates("layer_index")
    frame = _with_share(_layer_frame(per_layer, "time_ms_mean", "time_ms_ci95"), "time_ms_mean")
    labels = layer_order(frame) if order == "network" else sorted_labels(frame, "time_ms_mean", "layer")
    about = _layer_about(frame)
    data = _records(
        frame,
        [*_fields(about), "time_ms_mean", "time_ms_ci95", "time_ms_low", "time_ms_high", "n_iterations", "share"],
    )
    y = _y(labels, order_title("layer", order, "time"))
    bars, error_bars = _bars_with_ci(
        data, None, "time_ms", "time per layer (ms)", alt.ColorValue(MEASURED_COLOR), _tips(about)
    )
    title = "Time per layer (ms, mean +- 95% CI)"
    return _labelled_layers([bars, error_bars], y, title + (SIMULATED_SUFFIX if simulated else ""), labels)


# --- overview page ---

# Simulated points are hollow everywhere (fill opacity 0), measured ones filled; the title says so (Vega-Lite
# draws no legend for an opacity channel beside a colour legend).
DATA_FIELD_DOMAIN = ["measured", "SIMULATED"]
HOLLOW = "hollow points"
OPEN_RUN_SELECTION = "open_run"  # the scatter's point selection: a click names the run to open


def _data_fill_opacity() -> alt.FillOpacity:
    return alt.FillOpacity("data:N", scale=alt.Scale(domain=DATA_FIELD_DOMAIN, range=[0.85, 0.0]), legend=None)


def _data_labels(simulated: pd.Series) -> list[str]:
    return [DATA_FIELD_DOMAIN[1] if bool(s) else DATA_FIELD_DOMAIN[0] for s in simulated]


def simulated_title(title: str, simulated: pd.Series, some: str = HOLLOW) -> str:
    """The title with SIMULATED_SUFFIX (and how the chart marks them: `some`) when every run is simulated, or
    a note on the simulated `some` when some are.
    """
    if len(simulated) and simulated.astype(bool).all():
        return title + SIMULATED_SUFFIX + f" ({some})"
    if simulated.astype(bool).any():
        return title + f" ({some}: SIMULATED data, not a measurement)"
    return title


def plottable_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """The runs the energy/time scatter can draw: both figures per inference known (not timing-only runs)."""
    return runs[runs["energy_mj_per_inference"].notna() & runs["time_ms_per_inference"].notna()]


def runs_scatter(runs: pd.DataFrame) -> alt.Chart:
    """The poster's scatter: energy per inference (mJ) against time per inference (ms), one point per run of
    plottable_runs(runs), colour by network, shape by device / engine, simulated runs hollow. A click selects
    the run (point selection OPEN_RUN_SELECTION on run_id; see selected_run_id).
    """
    data = plottable_runs(runs).assign(
        data=lambda f: _data_labels(f["simulated"]),
        device_engine=lambda f: f["device"].fillna("?").astype(str) + " / " + f["engine"].fillna("?").astype(str),
    )
    data = _records(data, ["run_id", "name", "network", "device", "engine", "mode", "owner", "team", "data",
                           "device_engine", "time_ms_per_inference", "energy_mj_per_inference"])
    networks = sorted(data["network"].dropna().astype(str).unique())
    network_scale = alt.Scale(domain=networks, scheme="tableau10")
    pick = alt.selection_point(name=OPEN_RUN_SELECTION, fields=["run_id"], on="click", toggle=False)
    return (
        alt.Chart(data)
        .mark_point(filled=True, size=120, strokeWidth=2, cursor="pointer")
        .encode(
            x=alt.X("time_ms_per_inference:Q", title="time per inference (ms)"),
            y=alt.Y("energy_mj_per_inference:Q", title="energy per inference (mJ)"),
            # Fill and outline share the field, so Vega-Lite draws one legend for both.
            fill=alt.Fill("network:N", scale=network_scale, title="network"),
            stroke=alt.Stroke("network:N", scale=network_scale, title="network"),
            fillOpacity=_data_fill_opacity(),
            shape=alt.Shape("device_engine:N", title="device / engine"),
            tooltip=[
                alt.Tooltip("name:N", title="run"),
                alt.Tooltip("data:N"),
                alt.Tooltip("owner:N"),
                alt.Tooltip("team:N"),
                alt.Tooltip("network:N"),
                alt.Tooltip("device:N"),
                alt.Tooltip("engine:N"),
                alt.Tooltip("mode:N"),
                alt.Tooltip("time_ms_per_inference:Q", title="time per inference (ms)", format=".3f"),
                alt.Tooltip("energy_mj_per_inference:Q", title="energy per inference (mJ)", format=".3f"),
                alt.Tooltip("run_id:N"),
            ],
        )
        .add_params(pick)
        .properties(
            title=simulated_title("Energy against time per inference", plottable_runs(runs)["simulated"]),
            height=420,
        )
    )


def selected_run_id(event: object) -> str | None:
    """The run a click on runs_scatter chose: st.altair_chart's selection state -> run id (None: no choice)."""
    try:
        points = event["selection"][OPEN_RUN_SELECTION]  # type: ignore[index]
    except (KeyError, TypeError):
        return None
    if not points:
        return None
    run_id = points[0].get("run_id") if isinstance(points[0], dict) else None
    return str(run_id) if run_id else None


# --- run page ---

ORDERS = ["network", "sorted"]
PHASE_ORDER = ["setup", "warmup", "inference", "idle"]
TIMELINE_WIDTH_PX = 720
# Tableau's 20 colours, the 10 strong ones first: neighbouring layer types (Concat, Convolution) get distinct hues.
TYPE_COLORS = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f",
               "#bab0ac", "#a0cbe8", "#ffbe7d", "#ff9d9a", "#86bcb6", "#8cd17d", "#f1ce63", "#d4a6c8", "#fabfd2",
               "#d7b5a6", "#79706e"]
RAIL_SCHEME = "tableau10"
PHASE_COLORS = ["#4c78a8", "#f58518", "#54a24b", "#bab0ac"]  # setup, warmup, inference, idle


def _labelled_layers(layers: list[alt.Chart], y: alt.Y, title: str, labels: list[str]) -> alt.LayerChart:
    """Layers sharing one label axis y; all in one constructor call (every .encode()/.properties() on a layered
    chart deep-copies it)."""
    return alt.layer(*layers, encoding=alt.SharedEncoding(y=y), title=title, height=_fit_height(labels))


def _fit_height(labels: list[str]) -> alt.Step:
    """A fixed height per row (Vega-Lite's step): Streamlit would otherwise fit title, legend and axes into one
    total height, squeezing the rows of a short chart."""
    return alt.Step(ROW_HEIGHT_PX)


def order_title(what: str, order: str, by: str) -> str:
    """The y axis title: `what` in network order, or sorted by energy/time (largest first)."""
    return f"{what} (network order)" if order == "network" else f"{what} (by {by}, largest first)"


def sorted_labels(frame: pd.DataFrame, value: str, label: str) -> list[str]:
    """Labels largest `value` first; rows without a value last, in their given order."""
    ordered = frame.sort_values(value, ascending=False, na_position="last", kind="stable")
    return ordered[label].astype(str).drop_duplicates().tolist()


def type_scale(types: list[str] | None) -> alt.Scale:
    """One colour per layer type; give the run's types so every chart of the page colours a type alike."""
    return alt.Scale(domain=sorted(set(types)), range=TYPE_COLORS) if types else alt.Scale(range=TYPE_COLORS)


def _with_share(frame: pd.DataFrame, value: str) -> pd.DataFrame:
    """A `share` column: each row's part of the sum of `value` (indicative figures included, as in the total)."""
    total = frame[value].sum(min_count=1)
    return frame.assign(share=frame[value] / total if pd.notna(total) and total else float("nan"))


def _bounds(frame: pd.DataFrame, quantity: str) -> pd.DataFrame:
    # A missing interval stays missing (no error bar), never a zero-width one that would look exact.
    return frame.assign(**{
        f"{quantity}_low": frame[f"{quantity}_mean"] - frame[f"{quantity}_ci95"],
        f"{quantity}_high": frame[f"{quantity}_mean"] + frame[f"{quantity}_ci95"],
    })


def _tips(about: list[tuple[str, str, str | None]]) -> list[alt.Tooltip]:
    return [alt.Tooltip(f"{field}:{kind}", **({"title": title} if title else {})) for field, kind, title in about]


def _fields(about: list[tuple[str, str, str | None]]) -> list[str]:
    return [field for field, _, _ in about]


def _layer_about(frame: pd.DataFrame) -> list[tuple[str, str, str | None]]:
    about = [("layer_index", "Q", "index"), ("layer", "N", None), ("type", "N", None)]
    if "added_by_engine" in frame:
        about.append(("added_by_engine", "N", "added by engine"))
    return about


def _energy_chart(
    frame: pd.DataFrame,
    y: alt.Y,
    labels: list[str],
    about: list[tuple[str, str, str | None]],
    title: str,
    axis_title: str = "energy per layer (mJ)",
) -> alt.LayerChart:
    """Measured bars with error bars, and unresolved rows as hollow dashed bars with their `note` (see the
    module docstring). frame: energy_mj_mean/_ci95/_low/_high, resolved, note, share and the `about` fields."""
    is_resolved = frame["resolved"].eq(True).fillna(False).astype(bool)
    measured = frame[is_resolved].assign(status=MEASURED)
    unresolved = frame[~is_resolved].assign(status=UNRESOLVED)
    fields = _fields(about)
    measured_data = _records(
        measured,
        [*fields, "status", "energy_mj_mean", "energy_mj_ci95", "energy_mj_low", "energy_mj_high", "n_iterations",
         "method", "share"],
    )
    unresolved_data = _records(unresolved, [*fields, "status", "energy_mj_mean", "note", "share"])
    bars, error_bars = _bars_with_ci(measured_data, None, "energy_mj", axis_title, _status_color(), _tips(about))
    unresolved_bars = (
        alt.Chart(unresolved_data)
        .mark_bar(fillOpacity=0.15, stroke=UNRESOLVED_COLOR, strokeDash=[4, 3], strokeWidth=1.5)
        .encode(
            x=alt.X("energy_mj_mean:Q", title=axis_title),
            color=_status_color(),
            tooltip=[
                *_tips(about),
                alt.Tooltip("energy_mj_mean:Q", title="energy_mj (indicative only)", format=".4f"),
                alt.Tooltip("share:Q", format=".1%"),
                alt.Tooltip("note:N", title="unresolved"),
            ],
        )
    )
    return _labelled_layers([bars, error_bars, unresolved_bars], y, title, labels)


def _group_about(by: str) -> list[tuple[str, str, str | None]]:
    about = [(by, "N", None), ("n_layers", "Q", "layers")]
    if by == "module":
        about.append(("layers", "N", "layer names"))
    return about


def _group_labels(frame: pd.DataFrame, by: str, value: str, order: str) -> list[str]:
    if order == "network":
        return frame.sort_values("first_index", kind="stable")[by].astype(str).tolist()
    return sorted_labels(frame, value, by)


@_unchecked
def group_energy_chart(
    groups: pd.DataFrame, by: str, rail: str, simulated: bool = False, order: str = "network"
) -> alt.LayerChart:
    """Energy per module or layer type (by) of one rail: rows of app.queries.layer_groups. A group with any
    unresolved layer is drawn as unresolved (indicative), its tooltip says how many layers were."""
    if groups.empty or groups["energy_mj_mean"].isna().all():
        raise ValueError("no energy data (timing-only run): nothing to chart")
    frame = _with_share(_bounds(groups.rename(columns={"group": by}), "energy_mj"), "energy_mj_mean")
    frame = frame.assign(
        note=[f"indicative only: {u} of {n} layers unresolved (sensor too slow)"
              for u, n in zip(frame["n_unresolved"], frame["n_layers"], strict=True)]
    )
    labels = _group_labels(frame, by, "energy_mj_mean", order)
    title = f"Energy per {by}, rail {rail} (mJ, sum of layer means +- 95% CI)"
    return _energy_chart(
        frame, _y(labels, order_title(by, order, "energy"), field=by), labels, _group_about(by),
        title + (SIMULATED_SUFFIX if simulated else ""), axis_title=f"energy per {by} (mJ)",
    )


@_unchecked
def group_time_chart(
    groups: pd.DataFrame, by: str, simulated: bool = False, order: str = "network"
) -> alt.LayerChart:
    """Time per module or layer type (by): rows of app.queries.layer_groups."""
    frame = _with_share(_bounds(groups.rename(columns={"group": by}), "time_ms"), "time_ms_mean")
    labels = _group_labels(frame, by, "time_ms_mean", order)
    about = _group_about(by)
    data = _records(frame, [*_fields(about), "time_ms_mean", "time_ms_ci95", "time_ms_low", "time_ms_high",
                            "n_iterations", "share"])
    y = _y(labels, order_title(by, order, "time"), field=by)
    bars, error_bars = _bars_with_ci(
        data, None, "time_ms", f"time per {by} (ms)", alt.ColorValue(MEASURED_COLOR), _tips(about)
    )
    title = f"Time per {by} (ms, sum of layer means +- 95% CI)"
    return _labelled_layers([bars, error_bars], y, title + (SIMULATED_SUFFIX if simulated else ""), labels)


@_unchecked
def type_share_chart(groups: pd.DataFrame, simulated: bool = False, types: list[str] | None = None) -> alt.Chart:
    """Each layer type's share of the time and (where measured) the energy per inference: one 100% stacked bar
    per quantity. groups: app.queries.layer_groups(..., by="type"). A type with an unresolved layer is faint."""
    shares = groups.rename(columns={"group": "type"}).melt(
        id_vars=["type", "resolved"], value_vars=["time_ms_mean", "energy_mj_mean"],
        var_name="quantity", value_name="value",
    ).dropna(subset=["value"])
    shares["quantity"] = shares["quantity"].map({"time_ms_mean": "time", "energy_mj_mean": "energy"})
    shares["share"] = shares["value"] / shares.groupby("quantity")["value"].transform("sum")
    is_energy = shares["quantity"].eq("energy")
    resolved = shares["resolved"].eq(True).fillna(False).astype(bool)
    shares["status"] = [UNRESOLVED if e and not r else MEASURED for e, r in zip(is_energy, resolved, strict=True)]
    data = _records(shares, ["type", "quantity", "value", "share", "status"])
    title = "Share of time and energy per layer type"
    return (
        alt.Chart(data)
        .mark_bar()
        .encode(
            y=alt.Y("quantity:N", sort=["energy", "time"], title=None),
            x=alt.X("value:Q", stack="normalize", axis=alt.Axis(format="%"), title="share of the network's total"),
            color=alt.Color("type:N", scale=type_scale(types), title="layer type"),
            opacity=alt.Opacity("status:N", scale=alt.Scale(domain=STATUS_DOMAIN, range=[1.0, 0.35]),
                                legend=alt.Legend(title="energy")),
            order=alt.Order("value:Q", sort="descending"),
            tooltip=[
                alt.Tooltip("type:N"),
                alt.Tooltip("quantity:N"),
                alt.Tooltip("value:Q", title="ms or mJ", format=".4f"),
                alt.Tooltip("share:Q", format=".1%"),
                alt.Tooltip("status:N"),
            ],
        )
        .properties(title=title + (SIMULATED_SUFFIX if simulated else ""), height=alt.Step(30))
    )


@_unchecked
def phase_chart(phases: pd.DataFrame, rail: str | None = None, simulated: bool = False) -> alt.VConcatChart:
    """The poster's "setup + inference": one stacked bar of energy (when the rail has energy) and one of time,
    a segment per phase (setup, warmup, inference, idle). phases: app.tables.phase_table rows of one rail."""
    rank = {phase: i for i, phase in enumerate(PHASE_ORDER)}
    others = sorted(set(phases["phase"]) - set(PHASE_ORDER))
    domain = [*PHASE_ORDER, *others]
    bars = []
    quantities = [("energy_mj", f"energy (mJ, rail {rail})"), ("time_ms", "time (ms)")]
    for column, axis_title in quantities:  # two bars at most
        data = phases[phases[column].notna()]
        if data.empty:
            continue
        data = data.assign(
            share=data[column] / data[column].sum(),
            rank=[rank.get(p, len(rank)) for p in data["phase"]],
        )
        bars.append(
            alt.Chart(_records(data, ["phase", "occurrences", column, "share", "rank"]))
            .mark_bar()
            .encode(
                x=alt.X(f"{column}:Q", stack="zero", title=axis_title),
                color=alt.Color("phase:N", scale=alt.Scale(domain=domain, range=PHASE_COLORS + TYPE_COLORS[4:]),
                                sort=domain, title="phase"),
                order=alt.Order("rank:Q"),
                tooltip=[alt.Tooltip("phase:N"), alt.Tooltip("occurrences:Q"),
                         alt.Tooltip(f"{column}:Q", format=",.3f"), alt.Tooltip("share:Q", format=".1%")],
            )
            .properties(height=36, width=TIMELINE_WIDTH_PX - 100)
        )
    if not bars:
        raise ValueError("no phase figures: nothing to chart")
    title = ("Energy and time per phase: setup + inference" if len(bars) == 2
             else "Time per phase: setup + inference (no power data)")
    scales = alt.Resolve(scale=alt.ScaleResolveMap(x="independent"))
    return alt.vconcat(*bars, resolve=scales, title=title + (SIMULATED_SUFFIX if simulated else ""))


@_unchecked
def power_timeline_chart(
    power: pd.DataFrame,
    intervals: pd.DataFrame,
    window_s: tuple[float, float],
    title: str,
    simulated: bool = False,
    step: bool = True,
    types: list[str] | None = None,
) -> alt.TopLevelMixin:
    """Power per rail over a time window with the layer intervals drawn under it.

    power: app.queries.power_timeline (per rail and bucket: mean line, min-max band, so peaks survive
    downsampling); step=True for sensors whose value is the average since the previous one (drawn as steps).
    intervals: app.queries.layer_intervals (a bar per interval, or per merged bucket, coloured by layer type).
    window_s: the x range (seconds since the run's start); marks outside it are clipped.
    """
    if power.empty and intervals.empty:
        raise ValueError("no power samples and no layer intervals in this window: nothing to chart")
    x_scale = alt.Scale(domain=list(window_s), nice=False, zero=False)
    x_title = "time since run start (s)"
    interpolate = "step-before" if step else "linear"
    parts = []
    if not power.empty:
        base = alt.Chart(_records(power, ["rail", "t_s", "power_mw_min", "power_mw_max", "power_mw_mean",
                                          "n_samples"]))
        x = alt.X("t_s:Q", scale=x_scale, title=None if not intervals.empty else x_title)
        color = alt.Color("rail:N", scale=alt.Scale(scheme=RAIL_SCHEME),
                          legend=alt.Legend(title="rail", symbolType="stroke", symbolOpacity=1, symbolStrokeWidth=2))
        band = base.mark_area(opacity=0.25, interpolate=interpolate, clip=True).encode(
            x=x, y=alt.Y("power_mw_min:Q", title="power (mW)", stack=None), y2=alt.Y2("power_mw_max"), color=color
        )
        line = base.mark_line(interpolate=interpolate, clip=True, strokeWidth=1.2).encode(
            x=x, y=alt.Y("power_mw_mean:Q", title="power (mW)"), color=color
        )
        # Invisible points carry the tooltips (a line's tooltip would name only its first point).
        hover = base.mark_circle(opacity=0, size=40, clip=True).encode(
            x=x, y=alt.Y("power_mw_mean:Q"), color=color,
            tooltip=[alt.Tooltip("rail:N"), alt.Tooltip("t_s:Q", title="t (s)", format=".6f"),
                     alt.Tooltip("power_mw_mean:Q", title="mean power (mW)", format=".1f"),
                     alt.Tooltip("power_mw_min:Q", title="min (mW)", format=".1f"),
                     alt.Tooltip("power_mw_max:Q", title="max (mW)", format=".1f"),
                     alt.Tooltip("n_samples:Q", title="samples")],
        )
        parts.append(alt.layer(band, line, hover, width=TIMELINE_WIDTH_PX, height=240))
    if not intervals.empty:
        data = _records(intervals, ["t_start_s", "t_end_s", "duration_ms", "name", "type", "phase", "iteration",
                                    "n_layers"])
        parts.append(
            alt.Chart(data)
            .mark_rect(clip=True)
            .encode(
                x=alt.X("t_start_s:Q", scale=x_scale, title=x_title),
                x2=alt.X2("t_end_s"),
                color=alt.Color("type:N", scale=type_scale(types), title="layer type"),
                tooltip=[alt.Tooltip("name:N", title="layer"), alt.Tooltip("type:N"), alt.Tooltip("phase:N"),
                         alt.Tooltip("iteration:Q"), alt.Tooltip("duration_ms:Q", title="ms", format=".3f"),
                         alt.Tooltip("t_start_s:Q", title="start (s)", format=".6f"),
                         alt.Tooltip("n_layers:Q", title="intervals")],
            )
            .properties(width=TIMELINE_WIDTH_PX, height=36)
        )
    title += SIMULATED_SUFFIX if simulated else ""
    if len(parts) == 1:
        return parts[0].properties(title=title)
    scales = alt.Resolve(scale=alt.ScaleResolveMap(x="shared", color="independent"))
    return alt.vconcat(*parts, resolve=scales, title=title)


# --- compare page ---

COMPARE_QUANTITIES = {"time": ("time_ms", "Time", "ms"), "energy": ("energy_mj", "Energy", "mJ")}
SIMULATED_RUNS = "runs marked [SIMULATED]"
BAR_GAP_PX = 6
# Streamlit fits the whole chart (title, axis) into its height: room for them besides the bars.
FRAME_PX = 80


def _run_scale(run_labels: list[str]) -> alt.Scale:
    return alt.Scale(domain=run_labels, scheme="tableau10")


def _status_marks(run_labels: list[str]) -> dict:
    """Encodings of a bar whose energy may be unresolved: filled and solid when measured, faint and dashed
    (legend UNRESOLVED) when not; the outline keeps the run's colour. Vega-Lite draws no legend for an opacity
    beside a colour legend, so the legend is the outline's: solid for measured, dashed for unresolved."""
    return {
        "fillOpacity": alt.FillOpacity("status:N", scale=alt.Scale(domain=STATUS_DOMAIN, range=[0.9, 0.15]),
                                       legend=None),
        "strokeDash": alt.StrokeDash(
            "status:N", scale=alt.Scale(domain=STATUS_DOMAIN, range=[[1, 0], [4, 3]]),
            legend=alt.Legend(title=None, orient="right", symbolType="square", symbolFillColor="#dddddd",
                              symbolStrokeColor="#555555", symbolStrokeWidth=1.5, symbolSize=200),
        ),
        "stroke": alt.Stroke("run:N", scale=_run_scale(run_labels), legend=None),
    }


def compare_chart(rows: pd.DataFrame, labels: dict[str, str], quantity: str = "energy", by: str = "layer",
                  ratio_to: str | None = None, simulated: pd.Series | None = None) -> alt.LayerChart:
    """Grouped horizontal bars: per layer (or module) in aligned order, one bar per run (colour), from
    tables.compare_rows. quantity "time" or "energy"; labels: run id -> label, in the chosen order.
    ratio_to: a run id: bars are each other run's value / that run's (a rule marks 1), else absolute values.
    A run lacking a layer has no bar in its slot (a gap, never a zero); energy the sensor could not resolve is
    a faint dashed bar (legend UNRESOLVED, tooltip "indicative only"); a run without energy has no bars.
    simulated: per chosen run (same order as labels), whether it is simulated, for the title.
    """
    value, word, unit = COMPARE_QUANTITIES[quantity]
    run_labels = list(labels.values())
    n_keys = rows["key"].nunique()
    data = rows[rows["present"]].assign(run=lambda f: f["run_id"].map(labels))
    if ratio_to is not None:
        data = data[data["run_id"] != ratio_to]
        value = f"{quantity}_ratio"
        resolved = data["energy_ratio_resolved"] if quantity == "energy" else pd.Series(True, index=data.index)
    else:
        resolved = data["resolved"].eq(True) if quantity == "energy" else pd.Series(True, index=data.index)
    data = data.assign(status=[MEASURED if r else UNRESOLVED for r in resolved.fillna(False).astype(bool)],
                       note=[None if r else UNRESOLVED_NOTE for r in resolved.fillna(False).astype(bool)])
    data = data[data[value].notna()]
    n_runs = max(1, len(run_labels) - (ratio_to is not None))
    band_px = max(ROW_HEIGHT_PX, BAR_GAP_PX * n_runs + BAR_GAP_PX)
    axis_title = (f"{word.lower()}: run / baseline {labels[ratio_to]}" if ratio_to is not None
                  else f"{word.lower()} ({unit})")
    tooltip = [alt.Tooltip("key:N", title=by), alt.Tooltip("run:N"),
               alt.Tooltip(f"{value}:Q", title=axis_title, format=".4f")]
    if ratio_to is None and by == "layer":
        tooltip.append(alt.Tooltip(f"{value}_ci95:Q", title=f"{unit} (95% CI +-)", format=".4f"))
    if by == "module":
        tooltip.append(alt.Tooltip("n_layers:Q", title="layers"))
    encoding = {
        # Sorted by a field, not by a list of keys: Streamlit validates every item of a list in the spec,
        # which for a few hundred layers costs more than the rest of the page.
        "y": alt.Y("key:N", sort=alt.EncodingSortField("order", op="min"), title=f"{by} (network order)",
                   axis=alt.Axis(labelLimit=220, labelOverlap=False)),
        "yOffset": alt.YOffset("run:N", scale=alt.Scale(domain=[r for r in run_labels if r != labels.get(ratio_to)])),
        "x": alt.X(f"{value}:Q", title=axis_title),
        "color": alt.Color("run:N", scale=_run_scale(run_labels),
                           legend=alt.Legend(title="run", orient="right", labelLimit=400)),
        "tooltip": tooltip,
    }
    if quantity == "energy":
        encoding.update(_status_marks(run_labels))
        tooltip.append(alt.Tooltip("note:N", title="unresolved"))
    columns = ["key", "order", "run", "status", "note", value, f"{value}_ci95", "n_layers"]
    bars = alt.Chart(_records(data, columns)).mark_bar(strokeWidth=1).encode(**encoding)
    if ratio_to is None:
        title = f"{word} per {by} ({unit}), each run on its primary rail"
        layers = [bars]
    else:
        title = f"{word} per {by}, run / baseline"  # short: the SIMULATED note must not be cut off
        layers = [bars, alt.Chart(pd.DataFrame({"one": [1.0]})).mark_rule(color="black").encode(x="one:Q")]
    if simulated is None:
        simulated = pd.Series([False] * len(run_labels))
    return alt.layer(*layers).properties(
        title=simulated_title(title, simulated, SIMULATED_RUNS), height=max(MIN_HEIGHT_PX, band_px * n_keys) + FRAME_PX
    )


# --- efficiency page ---

EFFICIENCY_METRICS = {
    "gflops_per_s": "achieved GFLOP/s (FLOPs / time)",
    "gflop_per_j": "GFLOP/J (FLOPs / energy)",
}
EFFICIENCY_TITLES = {"gflops_per_s": "Achieved GFLOP/s per layer", "gflop_per_j": "GFLOP per joule per layer"}
ROOF_COLOR = "#444444"


def efficiency_points(rows: pd.DataFrame, metric: str) -> pd.DataFrame:
    """The layers a log-log efficiency chart can draw: positive FLOPs, intensity and metric; for GFLOP/J only
    layers whose energy the sensor resolved (an unresolved energy is not a measurement: left out, not drawn).
    """
    keep = rows["flops"].gt(0) & rows["arithmetic_intensity"].gt(0) & rows[metric].gt(0)
    if metric == "gflop_per_j":
        keep &= rows["resolved"].eq(True)
    return rows[keep.fillna(False).astype(bool)]


def roofline_frame(peak_gflops_per_s: float, bandwidth_gb_per_s: float, intensity_min: float,
                   intensity_max: float) -> pd.DataFrame:
    """The roof min(peak, bandwidth x intensity) at the ends of the intensity range and at the ridge point."""
    ridge = peak_gflops_per_s / bandwidth_gb_per_s
    low, high = min(intensity_min, ridge / 4), max(intensity_max, ridge * 4)
    intensity = [low, ridge, high]
    return pd.DataFrame({
        "arithmetic_intensity": intensity,
        "attainable_gflops_per_s": [min(peak_gflops_per_s, bandwidth_gb_per_s * i) for i in intensity],
    })


def efficiency_chart(rows: pd.DataFrame, labels: dict[str, str], metric: str = "gflops_per_s",
                     color_by: str = "run", roofline: tuple[float, float] | None = None) -> alt.LayerChart:
    """Log-log, roofline-style: arithmetic intensity (FLOP/byte, model) against `metric` (gflops_per_s or
    gflop_per_j) per layer of app.queries.efficiency_layers rows; colour by run (labels: run id -> label) or
    device, shape by layer type, simulated runs hollow. Only efficiency_points(rows, metric) are drawn.
    roofline: (peak GFLOP/s, bandwidth GB/s) draws the roof and its ridge point (GFLOP/s chart only).
    """
    points = efficiency_points(rows, metric).assign(
        run=lambda f: f["run_id"].map(labels),
        data=lambda f: _data_labels(f["simulated"]),
    )
    color_field = "run" if color_by == "run" else "device"
    domain = [label for run_id, label in labels.items() if run_id in set(points["run_id"])] if color_by == "run" \
        else sorted(points["device"].dropna().astype(str).unique())
    color_scale = alt.Scale(domain=domain, scheme="tableau10")
    x = alt.X("arithmetic_intensity:Q", scale=alt.Scale(type="log"), title="arithmetic intensity (FLOP/byte, model)")
    y = alt.Y(f"{metric}:Q", scale=alt.Scale(type="log"), title=EFFICIENCY_METRICS[metric])
    chart_points = (
        alt.Chart(_records(points, ["run", "device", "engine", "data", "name", "type", "module", "flops",
                                    "traffic_bytes", "arithmetic_intensity", "time_ms", "energy_mj",
                                    "gflops_per_s", "gflop_per_j"]))
        .mark_point(filled=True, size=70, strokeWidth=1.5)
        .encode(
            x=x, y=y,
            fill=alt.Fill(f"{color_field}:N", scale=color_scale, legend=alt.Legend(title=color_field, labelLimit=500)),
            stroke=alt.Stroke(f"{color_field}:N", scale=color_scale, legend=alt.Legend(title=color_field,
                                                                                   labelLimit=500)),
            fillOpacity=_data_fill_opacity(),
            shape=alt.Shape("type:N", title="layer type"),
            tooltip=[
                alt.Tooltip("run:N"), alt.Tooltip("data:N"), alt.Tooltip("device:N"), alt.Tooltip("engine:N"),
                alt.Tooltip("name:N", title="layer"), alt.Tooltip("type:N"), alt.Tooltip("module:N"),
                alt.Tooltip("arithmetic_intensity:Q", title="FLOP/byte", format=".3g"),
                alt.Tooltip("gflops_per_s:Q", title="GFLOP/s", format=".3g"),
                alt.Tooltip("gflop_per_j:Q", title="GFLOP/J", format=".3g"),
                alt.Tooltip("time_ms:Q", title="time (ms)", format=".4f"),
                alt.Tooltip("energy_mj:Q", title="energy (mJ)", format=".4f"),
                alt.Tooltip("flops:Q", format=",d"), alt.Tooltip("traffic_bytes:Q", title="bytes", format=",d"),
            ],
        )
    )
    layers = [chart_points]
    title = EFFICIENCY_TITLES[metric]
    if roofline is not None and metric == "gflops_per_s" and not points.empty:
        peak, bandwidth = roofline
        roof = roofline_frame(peak, bandwidth, float(points["arithmetic_intensity"].min()),
                              float(points["arithmetic_intensity"].max()))
        ridge = roof.iloc[[1]].assign(label=f"ridge {peak / bandwidth:.3g} FLOP/byte")
        roof_y = alt.Y("attainable_gflops_per_s:Q", scale=alt.Scale(type="log"))
        layers += [
            alt.Chart(roof).mark_line(color=ROOF_COLOR, strokeDash=[6, 3]).encode(x=x, y=roof_y),
            alt.Chart(ridge).mark_point(shape="diamond", size=90, color=ROOF_COLOR, filled=True).encode(x=x, y=roof_y),
            alt.Chart(ridge).mark_text(align="left", dx=8, dy=-8, color=ROOF_COLOR).encode(x=x, y=roof_y,
                                                                                         text="label:N"),
        ]
        title += f"; roofline {peak:g} GFLOP/s, {bandwidth:g} GB/s"
    simulated = rows.drop_duplicates("run_id")["simulated"] if not rows.empty else pd.Series(dtype=bool)
    return alt.layer(*layers).properties(title=simulated_title(title, simulated), height=420)


# --- models page ---

MODEL_NOTE = "modelled from the prototxt, not measured"


def model_bar_chart(frame: pd.DataFrame, value: str, title: str, axis_title: str, by: str = "layer") -> alt.Chart:
    """One bar per layer (or module) in network order: the model cost `value` column of
    tables.model_layer_table (by="layer") or tables.model_module_table (by="module"), coloured by layer type
    (by layer) and labelled as modelled, not measured, in the tooltip.
    """
    data = frame.rename(columns={"index": "layer_index"}) if by == "layer" else frame
    if by == "layer":
        data = data.assign(label=layer_labels(data))
        color = alt.Color("type:N", title="layer type", legend=alt.Legend(orient="top", columns=6))
        details = {"layer_index": "index", "type": "type", "module": "module"}
    else:
        data = data.assign(label=data["module"])
        color = alt.value(MEASURED_COLOR)
        details = {"layers": "layers"}
    data = data.assign(note=MODEL_NOTE)
    order = data["label"].tolist()
    y = alt.Y("label:N", sort=order, scale=alt.Scale(domain=order),
              title=f"{by} (network order)", axis=alt.Axis(labelLimit=220, labelOverlap=False))
    return (
        alt.Chart(_records(data, ["label", value, "note", *details]))
        .mark_bar()
        .encode(
            y=y,
            x=alt.X(f"{value}:Q", title=axis_title),
            color=color,
            tooltip=[alt.Tooltip("label:N", title=by), *(alt.Tooltip(c, title=t) for c, t in details.items()),
                     alt.Tooltip(f"{value}:Q", title=axis_title, format=",.6~g"), alt.Tooltip("note:N", title="")],
        )
        .properties(title=title, height=_height(order))
    )
