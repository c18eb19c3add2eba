"""Compare page: two to six runs side by side (any devices, engines and owners: the team's results), layers
aligned by name or by module, absolute and ratio-to-baseline charts of energy and time, and totals.

The view is in the URL: ?run=A&run=B... (the chosen runs, in order), by=layer|module, baseline=RUN_ID.
"""

from __future__ import annotations

import streamlit as st

from app import charts, export, queries, state, tables

MAX_RUNS = 6
RUNS_KEY = "compare_runs"
BASELINE_KEY = "compare_baseline"
TOO_FEW_MESSAGE = (
    "Choose two to six runs above to compare them layer by layer: any networks, devices, engines or owners. "
    "The Overview's filters lead here too ('Compare these runs')."
)

st.title("Compare")
runs = queries.list_runs()
if runs.empty:
    st.info("No runs yet: import one with `layerjoule import BUNDLE`")
    st.stop()

run_ids = runs["run_id"].tolist()
labels_all = {row.run_id: tables.run_label(row._asdict()) for row in runs.itertuples(index=False)}
binding = state.bind("run", RUNS_KEY, options=run_ids, multi=True)
if binding.invalid:
    st.warning(f"Not in the store, left out: {', '.join(binding.invalid)}")
if len(st.session_state.get(RUNS_KEY) or []) > MAX_RUNS:
    st.warning(f"At most {MAX_RUNS} runs: the first {MAX_RUNS} of the link are shown.")
    st.session_state[RUNS_KEY] = st.session_state[RUNS_KEY][:MAX_RUNS]
chosen = st.multiselect("Runs (two to six, in order: the first is the default baseline)", run_ids,
                        format_func=labels_all.__getitem__, max_selections=MAX_RUNS, placeholder="choose runs",
                        **binding)
state.publish("run", RUNS_KEY, multi=True)
if len(chosen) < 2:
    st.info(TOO_FEW_MESSAGE)
    st.stop()

labels = tables.numbered_labels(runs, chosen)  # short names for charts and tables; run_id columns say which
by_col, base_col = st.columns([1, 2])
by = by_col.radio("Align layers by", list(tables.COMPARE_BY), format_func=tables.COMPARE_BY.__getitem__,
                  horizontal=True, **state.bind("by", "compare_by", options=list(tables.COMPARE_BY), default="layer"))
state.publish("by", "compare_by")
base_binding = state.bind("baseline", BASELINE_KEY, options=chosen, default=chosen[0])
if st.session_state.get(BASELINE_KEY) not in chosen:  # the baseline run was taken out of the choice
    st.session_state[BASELINE_KEY] = chosen[0]
baseline = base_col.selectbox("Baseline (ratios are run / baseline)", chosen, format_func=labels_all.__getitem__,
                              **base_binding)
state.publish("baseline", BASELINE_KEY)

totals = queries.compare_totals(chosen)
totals_table = tables.compare_totals_table(totals, labels, chosen, baseline)
simulated = totals_table["data"].eq(tables.SIMULATED_LABEL)
if simulated.any():
    st.warning(f"{int(simulated.sum())} of {len(chosen)} runs hold SIMULATED data (marked [SIMULATED]): "
               "their energy figures are not measurements.")
for column, what in [("network", "networks"), ("rail", "primary rails")]:
    if totals_table[column].nunique(dropna=False) > 1:
        st.caption(f"These runs have different {what}: "
                   + ", ".join(f"{labels[r]}: {v}" for r, v in zip(chosen, totals_table[column], strict=True)))

st.subheader("Totals")
st.caption("Per inference, and the setup and inference phases (all iterations) on each run's primary rail; "
           "ratios are run / baseline. Energy is empty for a run without power data.")
export.show_table(totals_table, "compare_totals", "compare_totals_table", hide_index=True)

layers = queries.compare_layers(chosen, by)
if layers.empty:
    st.info("None of these runs has per-layer statistics.")
    st.stop()
rows = tables.compare_rows(layers, chosen, baseline)
missing = rows.loc[~rows["present"]]
if not missing.empty:
    st.caption(f"{missing['key'].nunique()} {by}s are missing from some runs: their bars are left out (a gap, "
               "not a zero) and their cells empty.")

st.subheader("Energy")
no_energy = [labels[r] for r in chosen if not layers.loc[layers["run_id"] == r, "energy_mj"].notna().any()]
if len(no_energy) == len(chosen):
    st.info("None of these runs has power data (timing only): no energy to compare.")
else:
    if no_energy:
        st.caption(f"No power data (timing only), so no energy bars: {', '.join(no_energy)}.")
    if not rows.loc[rows["present"] & rows["energy_mj"].notna(), "resolved"].eq(True).all():
        st.caption("Faint dashed bars: energy the sensor could not resolve (indicative only, not a measurement).")
    export.show_chart(charts.compare_chart(rows, labels, "energy", by, simulated=simulated),
                      f"compare_energy_per_{by}", "compare_energy_chart")
    export.show_chart(charts.compare_chart(rows, labels, "energy", by, ratio_to=baseline, simulated=simulated),
                      f"compare_energy_ratio_per_{by}", "compare_energy_ratio_chart")

st.subheader("Time")
export.show_chart(charts.compare_chart(rows, labels, "time", by, simulated=simulated),
                  f"compare_time_per_{by}", "compare_time_chart")
export.show_chart(charts.compare_chart(rows, labels, "time", by, ratio_to=baseline, simulated=simulated),
                  f"compare_time_ratio_per_{by}", "compare_time_ratio_chart")

st.subheader(f"Per {by}")
export.show_table(tables.compare_layer_table(rows, labels, by), f"compare_per_{by}", "compare_layer_table",
                  hide_index=True)
