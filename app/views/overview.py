"""Overview page: every run, filtered by the URL's query parameters; the poster's energy/time scatter (a click
opens a run on the Run page), the runs table and a select box to open a run.
"""

from __future__ import annotations

import streamlit as st

from app import charts, export, queries, state, tables

EMPTY_MESSAGE = "No runs yet: import one with `layerjoule import BUNDLE`"
NO_MATCH_MESSAGE = "No run matches these filters: widen or clear them."
CHART_KEY = "overview_scatter"
MAX_COMPARE = 6  # the Compare page takes two to six runs
MAX_EFFICIENCY = 20


def _clear_filters() -> None:
    for param in [*tables.RUN_FILTERS.values(), "data"]:
        if param in st.query_params:
            del st.query_params[param]
        st.session_state.pop(f"overview_{param}", None)


st.title("Overview")
runs = queries.list_runs()
if runs.empty:
    st.info(EMPTY_MESSAGE)
    st.stop()

# Filters: one multiselect per run column (empty: no filter), tags, and measured/simulated; all in the URL.
chosen: dict[str, list[str]] = {}
unknown: list[str] = []
filter_columns = st.columns(4)
for i, (column, param) in enumerate(tables.RUN_FILTERS.items()):
    options = tables.filter_options(runs, column)
    key = f"overview_{param}"
    binding = state.bind(param, key, options=options, multi=True)
    unknown += [f"{param}={value}" for value in binding.invalid]
    with filter_columns[i % 4]:
        chosen[column] = st.multiselect(param, options, placeholder="all", **binding)
    state.publish(param, key, multi=True)
data_col, count_col, clear_col = st.columns([2, 4, 1], vertical_alignment="center")
data_choice = data_col.segmented_control(
    "data", tables.DATA_CHOICES, required=True, label_visibility="collapsed",
    **state.bind("data", "overview_data", options=tables.DATA_CHOICES, default="all"),
)
state.publish("data", "overview_data")

if unknown:
    st.warning(f"No run has {', '.join(unknown)} (from the link): that filter value is left out.")
shown = tables.filter_runs(runs, chosen, data_choice or "all")
count_col.markdown(f"**{tables.count_text(len(shown), len(runs))}**")
if len(shown) < len(runs):
    clear_col.button("Clear filters", key="overview_clear", on_click=_clear_filters)
if shown.empty:
    st.info(NO_MATCH_MESSAGE)
    st.stop()

n_simulated = int(shown["simulated"].sum())
if n_simulated:
    st.warning(
        f"{n_simulated} of {len(shown)} runs hold SIMULATED data (hollow points; 'data' column): "
        "their power and energy figures are not measurements."
    )

plotted = charts.plottable_runs(shown)
if plotted.empty:
    st.info("None of these runs has power data (timing only): nothing to plot; they are listed below.")
else:
    st.caption("Click a point to open its run.")
    export.show_chart(charts.runs_scatter(shown), "overview_energy_time", CHART_KEY, on_select="rerun",
                      selection_mode=charts.OPEN_RUN_SELECTION)
    if len(plotted) < len(shown):
        st.caption(f"{len(shown) - len(plotted)} of these runs have no power data (timing only): "
                   "listed in the table, not plotted.")
    picked = charts.selected_run_id(st.session_state.get(CHART_KEY))
    if picked is not None:
        st.switch_page("views/run.py", query_params={"run": picked})

st.subheader("Runs")
export.show_table(
    tables.runs_table(shown), "runs", "overview_runs_table", hide_index=True,
    column_config={
        "data": st.column_config.TextColumn("data", help="SIMULATED: produced by the simulated power source"),
        "time_ms_per_inference": st.column_config.NumberColumn("time_ms_per_inference", format="%.3f"),
        "energy_mj_per_inference": st.column_config.NumberColumn("energy_mj_per_inference", format="%.3f"),
    },
)

labels = {row.run_id: tables.run_label(row._asdict()) for row in shown.itertuples(index=False)}
open_col, links_col = st.columns([3, 2], vertical_alignment="bottom")
chosen_run = open_col.selectbox("Run", list(labels), format_func=labels.__getitem__, key="runs_open_select")
if open_col.button("Open run", key="runs_open_button", type="primary"):
    st.switch_page("views/run.py", query_params={"run": chosen_run})
# The shown runs, newest first, on the Compare and Efficiency pages.
if 2 <= len(shown) <= MAX_COMPARE:
    links_col.page_link("views/compare.py", label=f"Compare these {len(shown)} runs",
                        icon=":material/compare_arrows:", query_params={"run": list(labels)})
if len(shown) <= MAX_EFFICIENCY:
    networks = shown["network"].dropna().unique()
    links_col.page_link("views/efficiency.py", label=f"Efficiency of these {len(shown)} runs", icon=":material/speed:",
                        query_params={"network": networks[0] if len(networks) == 1 else tables.ALL_NETWORKS,
                                      "run": list(labels)})
