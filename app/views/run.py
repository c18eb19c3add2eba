"""Run page: one run's totals, energy and time per layer, module or layer type, the per-layer table, energy per
phase ("setup + inference"), the power timeline with the layer intervals under it, and the run's manifest and
sources.

Every control that shapes the view is bound to a query parameter (app/state.py): run, rail, group (layer,
module, type), order (network, sorted), timeline (iteration, window), iteration, t_from/t_to (seconds since the
run's start) and rails (chosen, all). So a URL names the view.
"""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from app import charts, export, queries, state, tables
from importer import store
from importer.errors import InputError

RUN_KEY = "run_select"
SIMULATED_WARNING = "Simulated data: not a measurement"
NO_POWER = "n/a (no power data)"
NO_ENERGY_MESSAGE = (
    "This run has no power data (timing only): per-layer times are shown, energy figures are empty, not zero."
)
NO_SAMPLES_MESSAGE = "This run has no power samples (timing only): the timeline shows its layer intervals alone."
GROUPS = {"layer": "per layer", "module": "per module", "type": "per layer type"}
ORDERS = {"network": "network order", "sorted": "largest first"}
TIMELINE_MODES = {"iteration": "one iteration", "window": "time window"}
TIMELINE_RAILS = {"chosen": "chosen rail", "all": "all rails"}
GROUP_CAPTION = (
    "A {by}'s figures are the sums of its layers' means; its 95% interval combines the layers' intervals as the "
    "root of the sum of their squares (independent layers), and is empty when a layer has none. A {by} is "
    "resolved only if all its layers are: one unresolved layer makes the whole {by} indicative only."
)
MODULE_NOTE = "Modules follow docs/model-cost.md (fire, inception, res blocks); a layer without one is its own."


def _fmt(value: float | None, digits: int = 3) -> str | None:
    return None if value is None else f"{value:,.{digits}f}"


def _bounded(kind: Callable[[str], float], low: float, high: float) -> Callable[[str], float]:
    """URL text to a number within [low, high]; anything else is refused (ValueError), so bind() drops it."""

    def convert(text: str) -> float:
        value = kind(text)
        if not low <= value <= high:
            raise ValueError(text)
        return value

    return convert


def _segmented(container, label: str, options: dict[str, str], param: str, default: str) -> str:
    key = f"{param}_select"
    value = container.segmented_control(
        label, list(options), format_func=options.__getitem__, required=True,
        **state.bind(param, key, options=list(options), default=default),
    )
    state.publish(param, key)
    return value


runs = queries.list_runs()
if runs.empty:
    st.title("Run")
    st.info("No runs yet: import one with `layerjoule import BUNDLE`")
    st.stop()

labels = {row.run_id: tables.run_label(row._asdict()) for row in runs.itertuples(index=False)}
run_binding = state.bind("run", RUN_KEY, options=list(labels))
for wanted in run_binding.invalid:
    st.error(f"No run {wanted!r} in the store; showing another one.")
run_id = st.selectbox("Run", list(labels), format_func=labels.__getitem__, **run_binding)
state.publish("run", RUN_KEY)

details = queries.run_details(run_id)
run = details["run"]
if run is None:
    st.error(f"Run {run_id!r} has gone from the store (deleted or re-imported): reload the page.")
    st.stop()
simulated = bool(run["simulated"])
stem = run["name"]

st.title(run["name"])
st.markdown(
    " · ".join(
        f"**{key}** {run[key] if run[key] is not None else '-'}"
        for key in ("network", "device", "engine", "mode", "owner", "team")
    )
)
if simulated:
    st.warning(SIMULATED_WARNING, icon="⚠️")

rail_frame = details["rails"]
rail_names = rail_frame["rail"].tolist()
rail = None
if len(rail_names) > 1:
    rail_key = f"rail_select:{run_id}"  # one per run: the rails differ between runs
    default_rail = run["primary_rail"] if run["primary_rail"] in rail_names else rail_names[0]
    rail = st.selectbox("Rail", rail_names, **state.bind("rail", rail_key, options=rail_names, default=default_rail))
    state.publish("rail", rail_key)
else:
    if "rail" in st.query_params:
        del st.query_params["rail"]
    if rail_names:
        rail = rail_names[0]

time_col, energy_col, iter_col = st.columns(3)
time_col.metric("Time per inference (ms)", _fmt(run["time_ms_per_inference"]) or "n/a")
energy = run["energy_mj_per_inference"]
energy_label = "Energy per inference"
if run["primary_rail"]:
    energy_label += f" (mJ, {run['primary_rail']})"
energy_col.metric(energy_label, _fmt(energy) if energy is not None else NO_POWER)
iter_col.metric("Iterations", run["iterations"] if run["iterations"] is not None else "n/a")

stats = details["layer_stats"]
stats_rail = rail
rail_stats = tables.rail_rows(stats, rail)
if rail is not None and rail_stats.empty:
    # A rail sampled but without per-layer stats: fall back to the timing-only rows.
    stats_rail = None
    rail_stats = tables.rail_rows(stats, None)
types = sorted(stats["type"].dropna().astype(str).unique())

# Energy and time per layer, module or type

st.subheader("Energy and time")
group_col, order_col = st.columns(2)
group = _segmented(group_col, "Show", GROUPS, "group", "layer")
order = _segmented(order_col, "Order", ORDERS, "order", "network")
has_energy = charts.has_energy(rail_stats)
if stats.empty:
    st.info("No per-layer statistics stored for this run.")
elif group == "layer":
    if has_energy:
        st.caption(tables.estimator_summary(rail_stats))
        export.show_chart(
            charts.layer_energy_chart(rail_stats, rail=stats_rail, simulated=simulated, order=order),
            f"{stem}-energy-per-layer", "run_energy_chart",
        )
    else:
        st.info(NO_ENERGY_MESSAGE)
    export.show_chart(
        charts.layer_time_chart(rail_stats if not rail_stats.empty else stats, simulated, order=order),
        f"{stem}-time-per-layer", "run_time_chart",
    )
else:
    groups = queries.layer_groups(run_id, stats_rail, group)
    st.caption(GROUP_CAPTION.format(by=group) + (" " + MODULE_NOTE if group == "module" else ""))
    if has_energy:
        export.show_chart(
            charts.group_energy_chart(groups, group, stats_rail, simulated=simulated, order=order),
            f"{stem}-energy-per-{group}", "run_energy_chart",
        )
    else:
        st.info(NO_ENERGY_MESSAGE)
    export.show_chart(
        charts.group_time_chart(groups, group, simulated=simulated, order=order),
        f"{stem}-time-per-{group}", "run_time_chart",
    )
    if group == "type":
        export.show_chart(
            charts.type_share_chart(groups, simulated=simulated, types=types),
            f"{stem}-share-per-type", "run_type_share_chart",
        )
    export.show_table(
        tables.group_table(groups, group, simulated), f"{stem}-per-{group}", "run_group_table", hide_index=True
    )

# The per-layer table

st.subheader("Layers")
layer_table = tables.layer_table(rail_stats, simulated=simulated)
added = int(layer_table["added_by_engine"].eq(True).sum())
if added:
    st.caption(
        f"{added} layers were added by the engine (added_by_engine: Caffe's input and split layers): they are "
        "not in the prototxt, so they have no model cost."
    )
st.caption(
    "macs, flops, params, weight_bytes and traffic_bytes (the modelled minimum traffic: inputs + weights + "
    "outputs) come from the prototxt (docs/model-cost.md); achieved_gflop_per_s = flops / time, gflop_per_j = "
    "flops / energy (empty where the energy is unresolved), min_traffic_bytes_per_s = minimum traffic / time; "
    "measured_bytes_per_s only where hardware counters were captured."
)
export.show_table(
    layer_table, f"{stem}-layers", "run_layer_table", hide_index=True,
    column_config={
        "added_by_engine": st.column_config.CheckboxColumn("added_by_engine", help="added by the engine"),
        "achieved_gflop_per_s": st.column_config.NumberColumn(format="%.3f"),
        "gflop_per_j": st.column_config.NumberColumn(format="%.3f"),
        "min_traffic_bytes_per_s": st.column_config.NumberColumn(format="%.4g"),
        "measured_bytes_per_s": st.column_config.NumberColumn(format="%.4g"),
    },
)

# Energy per phase: setup + inference

st.subheader("Phases: setup + inference")
phase_rows = tables.phase_table(details["phase_stats"], rail)
if phase_rows.empty and rail is not None:
    phase_rows = tables.phase_table(details["phase_stats"], None)
if phase_rows.empty:
    st.info("No phases stored for this run.")
else:
    figures = tables.setup_and_inference(phase_rows, run["iterations"])
    has_phase_energy = figures["setup_mj"] is not None or figures["inference_mj"] is not None
    units = [("mj", "mJ"), ("ms", "ms")] if has_phase_energy else [("ms", "ms")]
    for unit, shown in units:
        setup_m, inference_m, per_m, total_m = st.columns(4)
        setup_m.metric(f"Setup ({shown})", _fmt(figures[f"setup_{unit}"], 1) or "n/a")
        inference_m.metric(f"Inference phase ({shown})", _fmt(figures[f"inference_{unit}"], 1) or "n/a")
        per_m.metric(f"Inference per iteration ({shown})", _fmt(figures[f"per_iteration_{unit}"]) or "n/a")
        total_m.metric(f"Setup + inference ({shown})", _fmt(figures[f"setup_plus_inference_{unit}"], 1) or "n/a")
    st.caption(
        (f"Energy on rail {rail}. " if rail else "No power data: times only. ")
        + "Per iteration = the inference phase / its iterations (layers and the gaps between them; in layer-loop "
        "mode an iteration repeats every layer). An empty energy is unknown (outside the power samples), not zero."
    )
    export.show_chart(charts.phase_chart(phase_rows, rail, simulated), f"{stem}-phases", "run_phase_chart")
    st.dataframe(phase_rows, hide_index=True, key="run_phase_table")

# Power timeline with the layer intervals under it

st.subheader("Power timeline")
span = details["span"]
if span is None:
    st.info("This run has no time stamps (no phases, layer intervals or power samples).")
else:
    t0_ns, t1_ns = span
    duration_s = round((t1_ns - t0_ns) / 1e9, 6)
    mode_col, where_col, rails_col = st.columns(3)
    mode = _segmented(mode_col, "Timeline", TIMELINE_MODES, "timeline", "iteration")
    which = "chosen"
    if len(rail_names) > 1:
        which = _segmented(rails_col, "Rails", TIMELINE_RAILS, "rails", "chosen")
    elif "rails" in st.query_params:
        del st.query_params["rails"]
    shown_rails = rail_names if which == "all" else [rail] if rail is not None else []
    shown = rail_frame[rail_frame["rail"].isin(shown_rails)]
    # One sensor period either side: the values covering the window's edges are drawn too (then clipped).
    pad_ns = int(shown["update_interval_ns"].max()) if shown["update_interval_ns"].notna().any() else 0
    found = None
    if mode == "iteration":
        last = max(0, int(run["iterations"] or 1) - 1)
        key = f"iteration_input:{run_id}"
        iteration = int(where_col.number_input(
            "Inference iteration", min_value=0, max_value=last, step=1,
            **state.bind("iteration", key, convert=_bounded(int, 0, last), default=0),
        ))
        state.publish("iteration", key)
        where = f"inference iteration {iteration}"
        found = queries.timeline(run_id, shown_rails, t0_ns, iteration=iteration, pad_ns=pad_ns)
        if found["window_ns"] is None:
            st.info(f"No layer intervals for inference iteration {iteration}: choose a time window instead.")
    else:
        from_key, to_key = f"t_from_input:{run_id}", f"t_to_input:{run_id}"
        from_s = where_col.number_input(
            "From (s since run start)", min_value=0.0, max_value=duration_s, step=0.001, format="%.6f",
            **state.bind("t_from", from_key, convert=_bounded(float, 0.0, duration_s), default=0.0),
        )
        state.publish("t_from", from_key)
        to_s = where_col.number_input(
            "To (s since run start)", min_value=0.0, max_value=duration_s, step=0.001, format="%.6f",
            **state.bind("t_to", to_key, convert=_bounded(float, 0.0, duration_s), default=duration_s),
        )
        state.publish("t_to", to_key)
        where = f"{from_s:.6g} s to {to_s:.6g} s"
        if to_s <= from_s:
            st.error("The window's end must come after its start.")
        else:
            window_ns = (t0_ns + round(from_s * 1e9), t0_ns + round(to_s * 1e9))
            found = queries.timeline(run_id, shown_rails, t0_ns, window_ns=window_ns, pad_ns=pad_ns)
    if found is not None and found["window_ns"] is not None:
        lo_ns, hi_ns = found["window_ns"]
        power, intervals = found["power"], found["intervals"]
        if not rail_names:
            st.info(NO_SAMPLES_MESSAGE)
        elif power.empty:
            st.info("No power samples in this window.")
        if power.empty and intervals.empty:
            st.info("Nothing recorded in this window.")
        else:
            window_s = ((lo_ns - t0_ns) / 1e9, (hi_ns - t0_ns) / 1e9)
            step = bool(len(shown)) and bool(shown["update_interval_ns"].notna().all())
            what = f"Power ({', '.join(shown_rails)}) and layer intervals" if shown_rails else "Layer intervals"
            export.show_chart(
                charts.power_timeline_chart(
                    power, intervals, window_s, f"{what}, {where}",
                    simulated=simulated, step=step, types=types,
                ),
                f"{stem}-timeline", "run_timeline_chart",
            )
            n_samples = int(power["n_samples"].sum()) if not power.empty else 0
            merged = bool(intervals["n_layers"].gt(1).any()) if not intervals.empty else False
            notes = [f"{n_samples:,} power samples drawn as {len(power):,} points (per rail and time bucket; "
                     "line: mean, band: min to max, so peaks survive)."]
            if merged:
                notes.append(
                    f"{int(intervals['n_layers'].sum()):,} layer intervals merged into {len(intervals):,} bars "
                    "(coloured by the type that ran longest in each): narrow the window to see single layers."
                )
            if step:
                notes.append("A sensor value is the average over the time before it: drawn as steps.")
            st.caption(" ".join(notes))

# The run's manifest, sources and rails

with st.expander("Manifest, sources, alignments and rails"):
    if run.get("import_notes"):
        st.markdown("**Import notes**")
        st.code(run["import_notes"], language=None)
    if run.get("model_cost_note"):
        st.markdown(f"**Model cost**: {run['model_cost_note']}")
    st.markdown("**Rails**")
    if rail_frame.empty:
        st.caption("No power rails (timing only).")
    else:
        st.dataframe(rail_frame, hide_index=True, key="run_rails_table")
    st.markdown("**Sources**")
    sources = details["sources"]
    if sources.empty:
        st.caption("No sources recorded.")
    else:
        st.dataframe(sources, hide_index=True, key="run_sources_table")
    alignments = details["alignments"]
    if not alignments.empty:
        st.markdown("**Alignments** (docs/alignment.md)")
        st.dataframe(alignments, hide_index=True, key="run_alignments_table")
    st.markdown("**Manifest**")
    if run["manifest"]:
        st.json(run["manifest"], expanded=1)
    else:
        st.caption("No manifest stored.")
    st.caption(f"Run id `{run_id}`; imported {run.get('imported_utc')}.")

# Deleting: only the owner or an admin (importer.store enforces it; the page only says so in advance).
user = st.session_state.get("dashboard_user") or ""
with st.expander("Delete this run"):
    if not store.may_delete(run["owner"], user, details["admins"]):
        st.caption(f"Only its owner ({run['owner'] or 'nobody'}) or an admin may delete this run; you are "
                   f"{user or 'nobody'} ('You are' in the sidebar).")
    else:
        confirmed = st.checkbox(f"Delete {run['name']} and all its data from the store", key=f"delete_confirm:{run_id}")
        if st.button("Delete run", type="primary", disabled=not confirmed, key=f"delete_button:{run_id}"):
            try:
                queries.delete_run(run_id, user)
            except InputError as error:
                st.error(str(error))
            else:
                st.session_state["flash"] = f"Deleted {run['name']} ({run_id})."
                st.query_params.clear()
                st.switch_page("views/overview.py")
