"""Dashboard speed with a big team store: server-side run time of each page with 1,000 runs in the store.

    .venv/bin/python bench/dashboard.py [--runs 1000] [--repeats 5] [--db PATH]

The store is made from real imports: four shipped sample runs are imported, then copied in SQL (every table that
holds a run_id) until the store holds --runs runs, spread over devices, engines and owners so that the Overview
filters and the Compare page have something to do. Each page is then run through Streamlit's AppTest (the
script run on the server, which is what a page load waits for, without the browser's drawing) with its view
in the URL: once with cold caches ("first load": the query cache empty, the process already warm, as in a running
server), then --repeats times warm (within the 2 s cache). Goal: under 0.5 s per page.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import duckdb  # noqa: E402

from importer.ingest import import_sources  # noqa: E402
from importer.store import ENV_DB  # noqa: E402

SAMPLES = ROOT / "sample_traces"
SOURCES = [
    [SAMPLES / "squeezenet_v1.1-network", *sorted((SAMPLES / "extras").glob("*.apc.zip")),
     *sorted((SAMPLES / "extras").glob("*.tegrastats.log"))],
    [SAMPLES / "resnet50-layerloop"],
    [SAMPLES / "alexnet-layerloop"],
    [SAMPLES / "googlenet-network"],
]
DEVICES = ["NVIDIA Jetson TX1", "NVIDIA Jetson TX2", "NVIDIA Jetson Nano", "NVIDIA Jetson AGX Xavier"]
ENGINES = ["opencv", "caffe"]
OWNERS = ["ana", "bo", "chen", "dara", "eli"]
GOAL_S = 0.5


def build_store(path: Path, n_runs: int) -> dict[str, str]:
    """Import the samples, then copy them until the store holds n_runs runs; returns network -> original run id."""
    for sources in SOURCES:
        import_sources(sources, db=path)
    con = duckdb.connect(str(path))
    originals = dict(con.execute("SELECT network, run_id FROM runs ORDER BY run_id").fetchall())
    copies = -(-n_runs // len(originals)) - 1  # copies of each original beyond itself
    tables = [row[0] for row in con.execute(
        "SELECT DISTINCT table_name FROM information_schema.columns WHERE column_name = 'run_id' "
        "AND table_name <> 'runs'").fetchall()]
    started = time.perf_counter()
    con.execute("BEGIN")
    con.execute(f"CREATE TEMP TABLE copy_no AS SELECT range AS k FROM range(1, {copies + 1})")
    # The copies differ in run id, name, device, engine and owner; their measurements are the originals'.
    con.execute(
        """
        INSERT INTO runs SELECT * EXCLUDE (k) REPLACE (
            run_id || '~' || k AS run_id, name || ' #' || k AS name,
            list_extract(?, 1 + k % 4) AS device, list_extract(?, 1 + k % 2) AS engine,
            list_extract(?, 1 + k % 5) AS owner, imported_utc + to_seconds(k) AS imported_utc)
        FROM runs CROSS JOIN copy_no
        """,
        [DEVICES, ENGINES, OWNERS],
    )
    for table in tables:
        columns = [row[0] for row in con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = ? ORDER BY ordinal_position",
            [table]).fetchall()]
        replace = "run_id || '~' || k AS run_id"
        if "content_sha256" in columns:
            replace += ", content_sha256 || '~' || k AS content_sha256"
        con.execute(f"INSERT INTO {table} SELECT * EXCLUDE (k) REPLACE ({replace}) "
                    f"FROM {table} CROSS JOIN copy_no")
    con.execute("COMMIT")
    total = con.execute("SELECT count(*) FROM runs").fetchone()[0]
    samples = con.execute("SELECT count(*) FROM power_samples").fetchone()[0]
    con.close()
    print(f"store: {total} runs, {samples:,} power samples, {path.stat().st_size / 2**20:.0f} MiB "
          f"(copies made in {time.perf_counter() - started:.1f} s)")
    return originals


_COMPONENTS = None


def _components():
    """Streamlit's registry of installed components, made once as a server makes it once at start. (AppTest makes
    its own on each new instance by reading the metadata of every installed package: 0.25 s that no page load
    of a running server pays.)"""
    global _COMPONENTS
    if _COMPONENTS is None:
        from streamlit.components.v2.component_manager import BidiComponentManager

        _COMPONENTS = BidiComponentManager()
        _COMPONENTS.discover_and_register_components(start_file_watching=False)
    return _COMPONENTS


def time_page(page: str, query: dict[str, str | list[str]], repeats: int) -> tuple[float, list[float]]:
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    st.cache_data.clear()
    timings = []
    for attempt in range(repeats + 1):
        at = AppTest.from_file(str(ROOT / "app" / "main.py"), default_timeout=120)
        at._bidi_component_manager = _components()
        if page != "views/overview.py":
            at.switch_page(page)
        for key, value in query.items():
            at.query_params[key] = value
        started = time.perf_counter()
        at.run()
        timings.append(time.perf_counter() - started)
        if at.exception:
            raise RuntimeError(f"{page}: {at.exception[0].message}")
        errors = [e.value for e in at.error]
        if errors and attempt == 0:
            print(f"  note: {page} shows an error: {errors[0]}")
    return timings[0], timings[1:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--db", type=Path, help="keep the store here (default: a temporary folder)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = args.db or Path(folder) / "bench.duckdb"
        if path.exists():
            path.unlink()
        originals = build_store(path, args.runs)
        os.environ[ENV_DB] = str(path)
        squeezenet, resnet, alexnet, googlenet = (originals[n] for n in
                                                  ("squeezenet_v1.1", "resnet50", "alexnet", "googlenet"))
        pages = [
            ("views/overview.py", {}),
            ("views/overview.py", {"device": "NVIDIA Jetson TX2", "network": "squeezenet_v1.1"}),
            ("views/run.py", {"run": squeezenet}),
            ("views/run.py", {"run": resnet}),
            ("views/compare.py", {"run": [squeezenet, squeezenet + "~1", squeezenet + "~2",
                                          resnet, alexnet, googlenet]}),
            ("views/efficiency.py", {"run": [squeezenet, squeezenet + "~1", squeezenet + "~2"]}),
            ("views/models.py", {"model": "resnet50"}),
            ("views/upload.py", {}),
        ]
        # A server imports its modules once: one untimed pass over the pages, so that "first load" is a page's
        # first run on cold caches (queries not cached yet), not Python importing Altair or vl-convert.
        for page, query in pages:
            time_page(page, query, 0)
        print(f"{'page':22} {'view':58} {'first load':>10} {'warm median':>12}  goal {GOAL_S} s")
        for page, query in pages:
            first_s, warm_s = time_page(page, query, args.repeats)
            view = "&".join(f"{k}={v if isinstance(v, str) else ','.join(v)}" for k, v in query.items())
            warm = statistics.median(warm_s) if warm_s else float("nan")
            verdict = "ok" if max(first_s, warm) < GOAL_S else "OVER"
            print(f"{page:22} {view[:58]:58} {first_s:9.3f}s {warm:11.3f}s  {verdict}")


if __name__ == "__main__":
    main()
