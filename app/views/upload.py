"""Upload page: the files of one run (a run bundle, Streamline captures and reports, rail logs, a prototxt) into
the store, as `layerjoule import` does.

The files are written to a temporary folder under their own names and imported by importer.ingest.import_sources,
which reads and checks every source before it opens the store and writes the run in one transaction: a bad file
writes nothing. Messages name the uploaded files (app.tables.UploadPlan.words), not the temporary paths. The store
is opened for writing only during that transaction; the dashboard's caches are cleared afterwards so that every
page shows the new run.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import duckdb
import streamlit as st

from app import state, tables
from importer import limits, store
from importer.assemble import ImportOptions
from importer.errors import InputError
from importer.ingest import import_sources

KINDS = list(tables.UPLOAD_KINDS)
OUTCOME_KEY = "upload_outcome"
DETECTED_KEY = "upload_detected"
INTRO = (
    "Upload the files of **one run**: a run bundle (its folder zipped, or the files inside it: manifest.json, "
    "events.csv.gz, ...), and with it, if you have them, a Streamline capture (.apc zip), Streamline reports "
    "(CSV exports), rail logs (tegrastats, power CSVs, energy probe CSVs, PTDaemon logs). A run without a bundle is "
    "made from one Streamline capture, with its prototxt for the model cost. Every file is checked before anything "
    "is written; uploading a run again changes nothing."
)


def _size(n_bytes: int) -> str:
    for unit, scale in (("GiB", limits.GIB), ("MiB", limits.MIB), ("KiB", 1024)):
        if n_bytes >= scale:
            return f"{n_bytes / scale:,.3g} {unit}"
    return f"{n_bytes} bytes"


def _limits_text() -> str:
    return (
        f"Up to **{st.get_option('server.maxUploadSize')} MB per file** (the dashboard's `server.maxUploadSize`). "
        f"The importer refuses zip archives of more than {limits.ARCHIVE_MEMBERS.get():,} members, "
        f"unpacking to more than {_size(limits.UNPACKED_BYTES.get())} or expanding more than "
        f"{limits.COMPRESSION_RATIO.get()} times; text logs over {_size(limits.LOG_BYTES.get())}; capture XML files "
        f"over {_size(limits.XML_BYTES.get())} or nested deeper than {limits.XML_DEPTH.get()} (docs/limits.md "
        "names the environment variables that change them). Tar archives are not read: zip the bundle's folder, "
        "or upload the files inside it."
    )


def _plain(text: str) -> str:
    """A message shown as written: file names may hold characters that Markdown would format."""
    return re.sub(r"([\\`*_\[\]$~#|<>])", r"\\\1", text)


def _detect(file, has_manifest: bool) -> tuple[str | None, str | None]:
    """The detected kind of an uploaded file, once per file (the uploader keeps its id while it holds the file)."""
    cache = st.session_state.setdefault(DETECTED_KEY, {})
    key = (file.file_id, has_manifest)
    if key not in cache:
        cache[key] = tables.detect_upload_kind(file.name, file.getvalue(),
                                               ["manifest.json"] if has_manifest else [])
    return cache[key]


def _publish_text(param: str, key: str) -> None:
    """A filled box goes into the URL (a link can pre-fill team and tags for a colleague); an empty one does not."""
    if st.session_state.get(key):
        state.publish(param, key)
    elif param in st.query_params:
        del st.query_params[param]


def _options() -> ImportOptions:
    """The log options of `layerjoule import` that a file may need (the error says which)."""
    with st.expander("Log options (as `layerjoule import`; only where a file needs them)"):
        a, b, c, d = st.columns(4)
        offset_ms = a.number_input("offset_ms", value=None, key="upload_offset_ms", placeholder="automatic",
                                   help="--offset-ms: where a log with relative times starts, in ms after the run's "
                                        "first event; a correction on top of automatic alignment")
        interval_ms = b.number_input("interval_ms", value=None, min_value=1.0, key="upload_interval_ms",
                                     placeholder="from the stamps",
                                     help="--interval-ms: tegrastats --interval of a log without time stamps")
        utc_offset = c.number_input("utc_offset_minutes", value=0.0, step=30.0, key="upload_utc_offset",
                                    help="--utc-offset-minutes: board local time minus UTC, for logs stamped with "
                                         "local time")
        rate = d.number_input("sample_rate_hz", value=None, min_value=0.001, key="upload_rate",
                              placeholder="from the time column",
                              help="--sample-rate-hz: energy probe CSV without a time column")
        e, f, g, h = st.columns(4)
        time_column = e.text_input("time_column", key="upload_time_column", placeholder="detected",
                                   help="--time-column: power CSV, the time column")
        power_columns = f.text_input("power_columns", key="upload_power_columns", placeholder="detected",
                                     help="--power-columns: power CSV, comma-separated power columns")
        unit = g.selectbox("unit", [None, "mW", "W"], key="upload_unit",
                           format_func=lambda u: "from the header" if u is None else u,
                           help="--unit: power CSV / energy probe, the power unit")
        network = h.text_input("network", key="upload_network", placeholder="the capture's name",
                               help="--network: a run made from a capture alone, the network's name")
    return ImportOptions(
        offset_ms=offset_ms, interval_ms=interval_ms, utc_offset_minutes=utc_offset or 0.0,
        time_column=time_column or None,
        power_columns=[c.strip() for c in power_columns.split(",") if c.strip()] or None,
        unit=unit, sample_rate_hz=rate, network=network or None,
    )


def _import(files, kinds: list[str | None], fields: dict, options: ImportOptions) -> dict:
    """Plan, check and import; returns the outcome to show (kept in the session until the files change)."""
    with tempfile.TemporaryDirectory(prefix="layerjoule-upload-") as folder:
        status = st.status("Checking the files…", expanded=True)
        bar = status.progress(0.0, text="writing the uploaded files")
        plan = None
        try:
            plan = tables.plan_upload([(f.name, f.getvalue()) for f in files], kinds, Path(folder), options)
            steps = len(plan.arguments) + 2  # each source read, then attribution and the write
            done = [0]

            def progress(message: str) -> None:
                done[0] += 1
                bar.progress(min(done[0] / steps, 0.99), text=plan.words(message))

            results = import_sources(plan.arguments, progress=progress, options=plan.options, **fields)
        except InputError as error:
            status.update(label="Nothing was imported", state="error", expanded=False)
            return {"error": plan.words(error.one_line()) if plan else error.one_line()}
        except duckdb.IOException as error:
            status.update(label="Nothing was imported", state="error", expanded=False)
            return {"error": f"the store could not be opened for writing ({error}); nothing was imported: try "
                             "again when the other import has finished"}
        except duckdb.Error as error:
            status.update(label="Nothing was imported", state="error", expanded=False)
            return {"error": f"the store refused the run ({error}); nothing was imported (a bug: please report it "
                             "with the files)"}
    bar.progress(1.0, text="done")
    new = [r for r in results if r.status == "imported"]
    status.update(label="Imported" if new else "Already in the store", state="complete", expanded=False)
    if new:
        st.cache_data.clear()  # every page's cached queries: the new run shows everywhere at once
    return {"results": [{"run_id": r.run_id, "name": r.name, "status": r.status,
                         "warnings": [plan.words(w) for w in r.warnings]} for r in results]}


def _show(outcome: dict) -> None:
    if "error" in outcome:
        st.error(_plain(outcome["error"]), icon=":material/error:")
        st.caption("Nothing was written to the store. Fix or leave out the file named above and import again.")
        return
    for result in outcome["results"]:
        name, run_id = result["name"], result["run_id"]
        if result["status"] == "imported":
            st.success(f"Imported {_plain(name)} (run {_plain(run_id)})", icon=":material/check_circle:")
        else:
            st.info(f"Already in the store: {_plain(name)} (run {_plain(run_id)}); nothing new was written.",
                    icon=":material/info:")
        st.page_link("views/run.py", label=f"Open {name} on the Run page", query_params={"run": run_id},
                     icon=":material/bar_chart:")
        if result["warnings"]:
            with st.expander(f"Importer notes on {name} ({len(result['warnings'])})"):
                for warning in result["warnings"]:
                    st.caption(_plain(warning))


st.title("Upload")
st.markdown(INTRO)
try:
    st.caption(_limits_text())
except InputError as error:
    st.error(_plain(error.one_line()))

files = st.file_uploader("Files of one run", accept_multiple_files=True, key="upload_files",
                         help="Several files at once: select them together, or drop them here")
if not files:
    st.info("Choose the files of a run to see what each one is taken for; nothing is imported before you press "
            "Import.")
    st.stop()

has_manifest = any(tables.upload_basename(f.name) == "manifest.json" for f in files)
kinds: list[str | None] = []
st.markdown("**What each file is** (detected; change it where it is wrong)")
for file in files:
    detected, reason = _detect(file, has_manifest)
    name_col, size_col, kind_col = st.columns([4, 1, 4], vertical_alignment="center")
    name_col.markdown(f"`{file.name.replace('`', '')}`")
    size_col.markdown(_size(file.size))
    kinds.append(kind_col.selectbox(
        f"Kind of {file.name}", KINDS, index=KINDS.index(detected) if detected else None,
        format_func=tables.UPLOAD_KINDS.get, placeholder="choose what this file is",
        key=f"upload_kind:{file.file_id}:{detected}", label_visibility="collapsed",
    ))
    if reason:
        kind_col.caption(f"Not detected: {_plain(reason)}")

st.markdown("**The run**")
name_col, owner_col, team_col, tags_col = st.columns(4)
run_name = name_col.text_input("Run name", key="upload_name", placeholder="the bundle's folder or file name")
owner = owner_col.text_input("Owner", value=st.session_state.get("dashboard_user") or store.current_user(),
                             key="upload_owner",
                             help="Who made the run (default: 'You are' in the sidebar: LAYERJOULE_USER, else the "
                                  "user the dashboard runs as)")
team = team_col.text_input("Team", placeholder="none", help="The team the run belongs to (default: LAYERJOULE_TEAM)",
                           **state.bind("team", "upload_team", default=store.current_team()))
_publish_text("team", "upload_team")
tags = tags_col.text_input("Tags", placeholder="comma-separated, e.g. tx1, nightly",
                           **state.bind("tags", "upload_tags"))
_publish_text("tags", "upload_tags")
options = _options()

file_ids = [f.file_id for f in files]
if st.button("Import", type="primary", key="upload_import", icon=":material/upload:"):
    fields = {"name": run_name.strip() or None, "owner": owner.strip() or None, "team": team.strip() or None,
              "tags": tables.parse_tags(tags)}
    st.session_state[OUTCOME_KEY] = {"files": file_ids, **_import(files, kinds, fields, options)}
outcome = st.session_state.get(OUTCOME_KEY)
if outcome and outcome["files"] == file_ids:
    _show(outcome)
