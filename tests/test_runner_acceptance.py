"""The runner end to end, as a user runs it: real OpenCV dnn on a sample network, simulated rails, then import."""

import json
import os
import subprocess
import sys
from pathlib import Path

from importer.ingest import import_sources
from importer.report import run_report

ROOT = Path(__file__).resolve().parent.parent
SQUEEZENET = ROOT / "sample_traces" / "models" / "squeezenet_v1.1.prototxt"


def runner(*args, env=None):
    return subprocess.run([sys.executable, "-m", "runner", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, env=env)


def test_opencv_run_with_simulated_rails_imports_with_every_layer_in_every_iteration(tmp_path):
    out = tmp_path / "bundles"
    out.mkdir()
    done = runner("--engine", "opencv", "--model", str(SQUEEZENET), "--iterations", "20", "--rails", "simulate",
                  "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert "wrote bundle" in done.stdout and "66 layers, 20 iterations, SIMULATED" in done.stdout
    assert "per-layer bracketing" in done.stderr and "no gatord" in done.stderr
    [bundle] = list(out.iterdir())
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["engine"]["name"] == "opencv" and manifest["engine"]["fused"] is False
    assert manifest["model"]["weights"]["generated"] is True
    assert manifest["whole_network"]["iterations"] == 20 and manifest["whole_network"]["time_ms_mean"] > 0
    assert "overhead_pct" in manifest["bracketing_overhead"]
    assert manifest["streamline"]["connected"] is False

    db = tmp_path / "store.duckdb"
    [result] = import_sources([bundle], db=db)
    run, layers = run_report(result.run_id, db)
    assert run["simulated"] is True and run["engine"] == "opencv" and run["iterations"] == 20
    prototxt_layers = [line.split('"')[1] for line in SQUEEZENET.read_text().splitlines()
                       if line.strip().startswith("name:") and "SqueezeNet" not in line]
    per_layer = layers[layers["rail"] == "VDD_IN"]
    assert list(per_layer["name"]) == prototxt_layers
    assert (per_layer["n_iterations"] == 20).all() and (per_layer["time_ms_mean"] > 0).all()
    assert per_layer["macs"].notna().all()  # the model cost joins every measured layer by name


def test_caffe_engine_through_the_command_line_with_the_pycaffe_stand_in(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT / "tests" / "standin"))
    out = tmp_path / "bundle"
    done = runner("--engine", "auto", "--model", str(SQUEEZENET), "--iterations", "3", "--warmup", "1",
                  "--rails", "none", "--streamline", "off", "--idle-s", "0", "--out", str(out), env=env)
    assert done.returncode == 0, done.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["engine"]["name"] == "caffe" and "auto: using pycaffe" in manifest["notes"]
    assert manifest["power_sources"] == [] and not (out / "rails.csv").exists()


def test_missing_engine_or_sensor_is_one_line_exit_2(tmp_path):
    done = runner("--engine", "caffe", "--model", str(SQUEEZENET), "--out", str(tmp_path / "x"))
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "needs pycaffe" in done.stderr
    done = runner("--engine", "opencv", "--model", str(SQUEEZENET), "--rails", "ina3221", "--out",
                  str(tmp_path / "y"), env=dict(os.environ, LAYERJOULE_SYSFS_ROOT=str(tmp_path)))
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "ina3221" in done.stderr
    done = runner("--engine", "synthetic", "--model", str(SQUEEZENET), "--rails", "auto", "--out",
                  str(tmp_path / "z"))
    assert done.returncode == 2 and "virtual clock" in done.stderr
    assert not any(tmp_path.iterdir())
