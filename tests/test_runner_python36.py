"""runner/ on the board's Python: 3.6 with numpy 1.19.5 (`make board-python` makes .venv36 where python3.6 exists)."""

import subprocess
from pathlib import Path

import pytest

from importer.ingest import import_sources
from importer.report import run_report

ROOT = Path(__file__).resolve().parent.parent
PYTHON36 = ROOT / ".venv36" / "bin" / "python"
MODEL = ROOT / "sample_traces" / "models" / "squeezenet_v1.1.prototxt"

pytestmark = pytest.mark.skipif(not PYTHON36.exists(), reason="no .venv36 (python3.6 not on this machine)")


def test_runner_on_python36_writes_a_bundle_the_importer_accepts(tmp_path):
    version = subprocess.run([str(PYTHON36), "-c", "import sys, numpy; print(sys.version_info[:2], numpy.__version__)"],
                             capture_output=True, text=True, check=True).stdout
    assert version.startswith("(3, 6)")
    out = tmp_path / "bundle"
    done = subprocess.run(
        [str(PYTHON36), "-m", "runner", "--engine", "synthetic", "--model", str(MODEL), "--iterations", "20",
         "--warmup", "2", "--rails", "simulate", "--gzip", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    [result] = import_sources([out], db=tmp_path / "store.duckdb")
    run, layers = run_report(result.run_id, tmp_path / "store.duckdb")
    assert run["simulated"] is True and run["iterations"] == 20
    assert layers["name"].nunique() == 66 and (layers["n_iterations"] == 20).all()
