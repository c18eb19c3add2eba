"""Efficiency page: per layer across runs, the model's arithmetic intensity (FLOP/byte) against achieved GFLOP/s
and against GFLOP/J, log-log and roofline-style, so a user sees which layers are memory- or compute-bound on
which device. A roofline is drawn when the user enters the device's peak GFLOP/s and memory bandwidth.

The view is in the URL: network=NAME|all, ?run=A&run=B..., color=run|device, peak=GFLOP/s, bandwidth=GB/s.
"""

from __future__ import annotations

import streamlit as st

from app import charts, export, queries, state, tables

NETWORK_KEY = "efficiency_network"
RUNS_KEY = "efficiency_runs"
MAX_DEFAULT_RUNS = 10  # a network's newest runs chosen on a first visit; more can be added
COLOR_BY = {"run": "run", "device": "device"}
ROOFLINE_HELP = (
    "Both figures draw the roofline min(peak, bandwidth x intensity) and its ridge point; empty: no roofline. "
    "For example the Jetson TX1's GPU: about 512 GFLOP/s (FP32) and 25.6 GB/s (LPDDR4), its vendor's figures."
)


def _network_changed(publish, args) -> None:
    """Another network: its own default runs, not the previous network's (which it would not offer)."""
    publish(*args)
    st.session_state.pop(RUNS_KEY, None)
    if "run" in st.query_params:
        del st.query_params["run"]


st.title("Efficiency")
runs = queries.list_runs()
if runs.empty:
    st.info("No runs yet: import one with `layerjoule import BUNDLE`")
    st.stop()

networks = sorted(runs["network"].dropna().astype(str).unique())
network_options = [tables.ALL_NETWORKS, *networks]
# First visit: the newest run's network; a link naming runs but no network: theirs (all, for several).
linked = runs[runs["run_id"].isin(state.url_list("run"))]["network"].dropna().unique()
if len(linked):
    default_network = linked[0] if len(linked) == 1 else tables.ALL_NETWORKS
else:
    default_network = runs["network"].dropna().iloc[0] if runs["network"].notna().any() else tables.ALL_NETWORKS
network_binding = state.bind("network", NETWORK_KEY, options=network_options, default=default_network)
network_binding.update(on_change=_network_changed, args=(network_binding["on_change"], network_binding["args"]))
net_col, runs_col = st.columns([1, 3])
network = net_col.selectbox(
    "Network", network_options, format_func=lambda n: "all networks" if n == tables.ALL_NETWORKS else n,
    **network_binding,
)
state.publish("network", NETWORK_KEY)

offered = runs if network == tables.ALL_NETWORKS else runs[runs["network"] == network]
labels_all = {row.run_id: tables.run_label(row._asdict()) for row in offered.itertuples(index=False)}
runs_binding = state.bind("run", RUNS_KEY, options=list(labels_all), multi=True,
                          default=list(labels_all)[:MAX_DEFAULT_RUNS])
if runs_binding.invalid:
    st.warning(f"Not among this network's runs, left out: {', '.join(runs_binding.invalid)}")
chosen = runs_col.multiselect("Runs", list(labels_all), format_func=labels_all.__getitem__,
                              placeholder="choose runs", **runs_binding)
state.publish("run", RUNS_KEY, multi=True)

color_col, peak_col, bw_col = st.columns([1, 1, 1])
color_by = color_col.radio("Colour by", list(COLOR_BY), horizontal=True,
                           **state.bind("color", "efficiency_color", options=list(COLOR_BY), default="run"))
state.publish("color", "efficiency_color")
peak = peak_col.number_input("Peak compute (GFLOP/s)", min_value=0.0, value=None, step=1.0, help=ROOFLINE_HELP,
                             placeholder="no roofline", **state.bind("peak", "efficiency_peak", convert=float))
state.publish("peak", "efficiency_peak")
bandwidth = bw_col.number_input("Memory bandwidth (GB/s)", min_value=0.0, value=None, step=0.1, help=ROOFLINE_HELP,
                                placeholder="no roofline",
                                **state.bind("bandwidth", "efficiency_bandwidth", convert=float))
state.publish("bandwidth", "efficiency_bandwidth")
roofline = (peak, bandwidth) if peak and bandwidth else None
if bool(peak) != bool(bandwidth):
    st.caption("Enter both the peak compute and the memory bandwidth to draw the roofline.")

if not chosen:
    st.info("Choose one or more runs to see their layers' efficiency.")
    st.stop()

labels = tables.numbered_labels(runs, chosen)
rows = queries.efficiency_layers(chosen)
simulated = runs.set_index("run_id").loc[chosen, "simulated"].astype(bool)
if simulated.any():
    st.warning(f"{int(simulated.sum())} of {len(chosen)} runs hold SIMULATED data (hollow points, marked "
               "[SIMULATED]): their time and energy figures are not measurements.")
if rows.empty:
    st.info("These runs have no per-layer statistics.")
    st.stop()
if rows["flops"].isna().all():
    st.info("These runs have no model cost (FLOPs, bytes): import them with their prototxt to see their efficiency.")
    st.stop()

st.subheader("Achieved GFLOP/s")
points = charts.efficiency_points(rows, "gflops_per_s")
st.caption(f"{len(points)} of {len(rows)} layers drawn; left out: layers without FLOPs or memory traffic in the "
           "model (concatenations, layers an engine adds, layers without a model cost).")
export.show_chart(charts.efficiency_chart(rows, labels, "gflops_per_s", color_by, roofline),
                  "efficiency_gflops_per_s", "efficiency_gflops_chart")

st.subheader("GFLOP per joule")
has_energy = rows["energy_mj"].notna()
unresolved = int((has_energy & ~rows["resolved"].eq(True) & rows["flops"].gt(0)).sum())
if not has_energy.any():
    st.info("None of these runs has power data (timing only): no energy efficiency to show.")
else:
    if unresolved:
        st.caption(f"{unresolved} layers whose energy the sensor could not resolve are left out (indicative only, "
                   "not a measurement); see the table.")
    if (~has_energy).any():
        st.caption("Runs without power data (timing only) have no points here.")
    export.show_chart(charts.efficiency_chart(rows, labels, "gflop_per_j", color_by),
                      "efficiency_gflop_per_j", "efficiency_gflop_per_j_chart")

st.subheader("Per layer")
table = tables.efficiency_table(rows, labels, *(roofline or (None, None)))
if roofline is not None:
    ridge = tables.ridge_point(*roofline)
    st.caption(f"Ridge point {ridge:.3g} FLOP/byte: layers of lower intensity are memory-bound, the others "
               "compute-bound (by the model's minimum traffic); roof_fraction = achieved / attainable GFLOP/s.")
    export.show_table(tables.bound_summary(table), "efficiency_bound_summary", "efficiency_summary_table",
                      hide_index=True)
export.show_table(table, "efficiency_per_layer", "efficiency_layer_table", hide_index=True)
