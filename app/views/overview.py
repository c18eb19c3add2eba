"""Runs page: every imported run, simulated ones marked, and a way to open one on the Run page."""

from __future__ import annotations

import streamlit as st

from app import queries, tables

EMPTY_MESSAGE = "No runs yet: import one with `layerjoule import BUNDLE`"

st.title("Runs")
runs = queries.list_runs()
if runs.empty:
    st.info(EMPTY_MESSAGE)
    st.stop()

n_simulated = int(runs["simulated"].sum())
if n_simulated:
    st.warning(
        f"{n_simulated} of {len(runs)} runs hold SIMULATED data (marked in the 'data' column): "
        "their power and energy figures are not measurements."
    )

st.dataframe(
    tables.runs_table(runs),
    hide_index=True,
    column_config={
        "data": st.column_config.TextColumn("data", help="SIMULATED: produced by the simulated power source"),
        "time_ms_per_inference": st.column_config.NumberColumn("time_ms_per_inference", format="%.3f"),
        "energy_mj_per_inference": st.column_config.NumberColumn("energy_mj_per_inference", format="%.3f"),
    },
)

labels = {row.run_id: tables.run_label(row._asdict()) for row in runs.itertuples(index=False)}
chosen = st.selectbox("Run", list(labels), format_func=labels.__getitem__, key="runs_open_select")
if st.button("Open run", key="runs_open_button", type="primary"):
    st.switch_page("views/run.py", query_params={"run": chosen})
