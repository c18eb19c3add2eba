"""Fixtures shared by the dashboard tests: a store holding real imported sample runs.

sample_store_file imports shipped sample traces once per test session (real bundles recorded by the runner with
the opencv engine and simulated rails, one with its Streamline capture and tegrastats log); sample_store gives each
test its own copy of that DuckDB file, with LAYERJOULE_DB pointing at it and the dashboard's caches cleared.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from importer.ingest import import_sources
from importer.store import ENV_DB

SAMPLES = Path(__file__).resolve().parent.parent / "sample_traces"
# (sources of one run) per run: SqueezeNet v1.1 with its capture and log, then three more networks and modes.
SAMPLE_RUNS = [
    [SAMPLES / "squeezenet_v1.1-network", *sorted((SAMPLES / "extras").glob("*.apc.zip")),
     *sorted((SAMPLES / "extras").glob("*.tegrastats.log"))],
    [SAMPLES / "squeezenet_v1.1-layerloop"],
    [SAMPLES / "alexnet-layerloop"],
    [SAMPLES / "googlenet-network"],
]


@pytest.fixture(scope="session")
def sample_store_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("sample_store") / "samples.duckdb"
    for sources in SAMPLE_RUNS:
        import_sources(sources, db=path)
    return path


@pytest.fixture
def sample_store(sample_store_file, tmp_path, monkeypatch) -> Path:
    import streamlit as st

    path = tmp_path / "store.duckdb"
    shutil.copyfile(sample_store_file, path)
    monkeypatch.setenv(ENV_DB, str(path))
    st.cache_data.clear()
    yield path
    st.cache_data.clear()
