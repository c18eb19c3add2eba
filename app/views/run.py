"""Run page: one run's totals, per-layer energy and time charts, per-layer and per-phase tables.

The run is the `run` query parameter (so a URL names a run) or the select box; the two are kept in sync.
"""

from __future__ import annotations

import streamlit as st

from app import charts, queries, tables

RUN_KEY = "run_select"
SIMULATED_WARNING = "Simulated data: not a measurement"
NO_POWER = "n/a (no power data)"
NO_ENERGY_MESSAGE = (
    "This run has no power data (timing only): per-layer times are shown, energy figures are empty, not zero."
)


def _url_to_widget(run_ids: list[str]) -> None:
    """Before the select box exists: a valid `run` in the URL decides what it shows."""
    wanted = st.query_params.get("run")
    if wanted is None:
        return
    if wanted in run_ids:
        if st.session_state.get(RUN_KEY) != wanted:
            st.session_state[RUN_KEY] = wanted
    else:
        st.error(f"No run {wanted!r} in the store; showing another one.")


def _widget_to_url() -> None:
    st.query_params["run"] = st.session_state[RUN_KEY]


def _fmt(value: float | None, digits: int = 3) -> str | None:
    return None if value is None else f"{value:.{digits}f}"


runs = queries.list_runs()
if runs.empty:
    st.title("Run")
    st.info("No runs yet: import one with `layerjoule import BUNDLE`")
    st.stop()

labels = {row.run_id: tables.run_label(row._asdict()) for row in runs.itertuples(index=False)}
_url_to_widget(list(labels))
run_id = st.selectbox(
    "Run", list(labels), format_func=labels.__getitem__, key=RUN_KEY, on_change=_widget_to_url
)
if st.query_params.get("run") != run_id:
    st.query_params["run"] = run_id

run = queries.get_run(run_id)
if run is None:
    st.error(f"Run {run_id!r} has gone from the store (deleted or re-imported): reload the page.")
    st.stop()

st.title(run["name"])
st.markdown(
    " · ".join(
        f"**{key}** {run[key] if run[key] is not None else '-'}"
        for key in ("network", "device", "engine", "mode")
    )
)
if run["simulated"]:
    st.warning(SIMULATED_WARNING, icon="⚠️")

rail_frame = queries.rails(run_id)
rail_names = rail_frame["rail"].tolist()
rail = None
if len(rail_names) > 1:
    default = rail_names.index(run["primary_rail"]) if run["primary_rail"] in rail_names else 0
    rail = st.selectbox("Rail", rail_names, index=default, key=f"rail_select:{run_id}")
elif rail_names:
    rail = rail_names[0]

time_col, energy_col, iter_col = st.columns(3)
time_col.metric("Time per inference (ms)", _fmt(run["time_ms_per_inference"]) or "n/a")
energy = run["energy_mj_per_inference"]
energy_label = "Energy per inference"
if run["primary_rail"]:
    energy_label += f" (mJ, {run['primary_rail']})"
energy_col.metric(energy_label, _fmt(energy) if energy is not None else NO_POWER)
iter_col.metric("Iterations", run["iterations"] if run["iterations"] is not None else "n/a")

stats = queries.layer_stats(run_id)
rail_stats = tables.rail_rows(stats, rail)
if rail is not None and rail_stats.empty:
    # A rail sampled but without per-layer stats: fall back to the timing-only rows.
    rail_stats = tables.rail_rows(stats, None)

st.subheader("Energy per layer")
if charts.has_energy(rail_stats):
    st.caption(tables.estimator_summary(rail_stats))
    st.altair_chart(charts.layer_energy_chart(rail_stats, rail=rail, simulated=run["simulated"]))
else:
    st.info(NO_ENERGY_MESSAGE)

st.subheader("Time per layer")
if stats.empty:
    st.info("No per-layer statistics stored for this run.")
else:
    st.altair_chart(charts.layer_time_chart(rail_stats if not rail_stats.empty else stats, run["simulated"]))

st.subheader("Layers")
st.dataframe(tables.layer_table(rail_stats), hide_index=True)

st.subheader("Phases")
st.dataframe(tables.phase_table(queries.phase_stats(run_id), rail), hide_index=True)
