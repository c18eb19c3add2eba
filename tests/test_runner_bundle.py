"""runner/bundle.py (the run bundle writer) and the runner's command line, end to end."""

import csv
import datetime
import gzip
import hashlib
import io
import json
import os
import re
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from runner import bundle, cli
from runner.bundle import BundleError, BundleWriter, RailSample, layer_event, phase_event

REPO = Path(__file__).resolve().parents[1]

TINY_NET = """
name: "tiny"
input: "data"
input_shape { dim: 1 dim: 3 dim: 32 dim: 32 }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
        convolution_param { num_output: 8 kernel_size: 3 } }
layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }
layer { name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1"
        pooling_param { pool: MAX kernel_size: 2 } }
layer { name: "prob" type: "Softmax" bottom: "pool1" top: "prob" }
"""
TINY_LAYERS = [("conv1", "Convolution"), ("relu1", "ReLU"), ("pool1", "Pooling"), ("prob", "Softmax")]


def _rows(path):
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8", newline="") as f:
        return list(csv.reader(f))


def _manifest(run_id="20261201T213000Z-tx1-tiny-3f9a2c", **extra):
    m = {
        "run_id": run_id,
        "created_utc": "2026-12-01T21:30:00.123456Z",
        "simulated": True,
        "engine": {"name": "synthetic", "version": "1", "device": "none"},
        "model": {"network": "tiny", "prototxt": {"file": "model.prototxt"}, "weights": None},
        "iterations": 1,
        "mode": "network",
        "power_sources": [{"name": "s", "kind": "simulate", "simulated": True, "update_interval_ms": 54.0,
                           "rails": [{"name": "VDD_IN", "unit": "mW", "total": True}]}],
        "clock": {"monotonic_ns": 5, "realtime_utc_ns": 7, "realtime_utc": "1970-01-01T00:00:00.000000Z"},
        "options": {},
    }
    m.update(extra)
    return m


def _events():
    return [
        phase_event("setup", 100, 200),
        phase_event("inference", 200, 400),
        layer_event("inference", 0, 0, "conv1", "Convolution", 1, 210, 300),
        layer_event("inference", 0, 1, "relu1", "ReLU", 1, 310, 390),
    ]


@pytest.fixture
def model(tmp_path):
    path = tmp_path / "tiny.prototxt"
    path.write_text(TINY_NET)
    return path


def _write(path, model, compress=False, as_zip=False, rails=True):
    with BundleWriter(path, compress=compress, as_zip=as_zip) as w:
        w.add_model(model)
        w.write_events(_events())
        if rails:
            w.write_rails([RailSample(150, "VDD_IN", 2000, None, None),
                           RailSample(204, "VDD_IN", 2500, 5000.0, 500.0)])
            w.write_ground_truth([("inference", 0, 0, "VDD_IN", 0.25), ("inference", 0, 1, "VDD_IN", 1.5e-7)])
        w.write_manifest(_manifest())
    return w.final_path


def _leftovers(folder, keep):
    return sorted(n for n in os.listdir(folder) if n not in keep)


# -- helpers ------------------------------------------------------------------------------------------


def test_sha256_file(tmp_path):
    data = os.urandom(3 << 20) + b"tail"
    path = tmp_path / "blob"
    path.write_bytes(data)
    assert bundle.sha256_file(path) == hashlib.sha256(data).hexdigest()


def test_clock_pair_is_monotonic_and_utc_read_back_to_back():
    before_m = time.clock_gettime(time.CLOCK_MONOTONIC)
    before_r = time.time()
    clock = bundle.clock_pair()
    after_m = time.clock_gettime(time.CLOCK_MONOTONIC)
    after_r = time.time()
    assert isinstance(clock["monotonic_ns"], int) and isinstance(clock["realtime_utc_ns"], int)
    assert before_m * 1e9 - 1e3 <= clock["monotonic_ns"] <= after_m * 1e9 + 1e3
    assert before_r * 1e9 - 1e6 <= clock["realtime_utc_ns"] <= after_r * 1e9 + 1e6
    assert 0 <= clock["uncertainty_ns"] < 1e6
    parsed = datetime.datetime.strptime(clock["realtime_utc"], "%Y-%m-%dT%H:%M:%S.%fZ")
    epoch_us = (parsed - datetime.datetime(1970, 1, 1)) // datetime.timedelta(microseconds=1)
    assert epoch_us == clock["realtime_utc_ns"] // 1000


def test_utc_iso_and_run_id():
    ns = 1796160600123456789  # 2026-12-01T21:30:00.123456789Z
    assert bundle.utc_iso(ns) == "2026-12-01T21:30:00.123456Z"
    assert bundle.make_run_id("squeezenet_v1.1", ns, host="tx1", suffix="3f9a2c") == \
        "20261201T213000Z-tx1-squeezenet_v1.1-3f9a2c"
    odd = bundle.make_run_id("my net/v2", ns, host="lab host (tx1)" * 20)
    assert re.match(r"^[A-Za-z0-9._-]{1,128}$", odd)
    assert re.match(r"^20261201T213000Z-lab-host-tx1.*-my-net-v2-[0-9a-f]{6}$", odd)
    assert bundle.make_run_id("n", ns, host="h") != bundle.make_run_id("n", ns, host="h")


# -- writer -------------------------------------------------------------------------------------------


def test_folder_bundle_exact_files_and_values(tmp_path, model):
    path = _write(tmp_path / "b", model)
    assert path == str(tmp_path / "b")
    assert sorted(os.listdir(path)) == ["events.csv", "ground_truth.csv", "manifest.json", "model.prototxt",
                                        "rails.csv"]
    assert _leftovers(tmp_path, {"b", "tiny.prototxt"}) == []  # no temporary folder left

    manifest = json.loads((Path(path) / "manifest.json").read_text())
    assert manifest["format"] == "layerjoule-run-bundle"
    assert manifest["format_version"] == "1.0"
    assert manifest["model"]["prototxt"] == {"file": "model.prototxt",
                                             "sha256": hashlib.sha256(model.read_bytes()).hexdigest()}
    assert (Path(path) / "model.prototxt").read_bytes() == model.read_bytes()

    events = _rows(Path(path) / "events.csv")
    assert events[0] == list(bundle.EVENT_COLUMNS)
    assert events[1] == ["phase", "setup", "", "", "", "", "", "100", "200"]
    assert events[3] == ["layer", "inference", "0", "0", "conv1", "Convolution", "1", "210", "300"]
    assert len(events) == 5
    rails = _rows(Path(path) / "rails.csv")
    assert rails == [list(bundle.RAIL_COLUMNS), ["150", "VDD_IN", "2000", "", ""],
                     ["204", "VDD_IN", "2500", "5000.0", "500.0"]]
    truth = _rows(Path(path) / "ground_truth.csv")
    assert truth[0] == list(bundle.GROUND_TRUTH_COLUMNS)
    assert [float(r[4]) for r in truth[1:]] == [0.25, 1.5e-7]  # floats written exactly (repr)
    raw = (Path(path) / "events.csv").read_bytes()
    assert b"\r" not in raw and raw.endswith(b"\n")


def test_gzip_bundle_has_same_tables(tmp_path, model):
    plain = _write(tmp_path / "plain", model)
    packed = _write(tmp_path / "packed", model, compress=True)
    assert sorted(os.listdir(packed)) == ["events.csv.gz", "ground_truth.csv.gz", "manifest.json",
                                          "model.prototxt", "rails.csv.gz"]
    for name in ("events.csv", "rails.csv", "ground_truth.csv"):
        assert _rows(Path(packed) / (name + ".gz")) == _rows(Path(plain) / name)
    # deterministic gzip: no time stamp or file name in the header
    with open(Path(packed) / "events.csv.gz", "rb") as f:
        header = f.read(10)
    assert header[4:8] == b"\0\0\0\0"


@pytest.mark.parametrize("compress", [False, True])
def test_zip_bundle_members_at_root(tmp_path, model, compress):
    path = _write(tmp_path / "z", model, compress=compress, as_zip=True)
    assert path == str(tmp_path / "z.zip")
    assert _leftovers(tmp_path, {"z.zip", "tiny.prototxt"}) == []
    ext = ".gz" if compress else ""
    with zipfile.ZipFile(path) as zf:
        assert sorted(zf.namelist()) == sorted(["manifest.json", "model.prototxt", "events.csv" + ext,
                                                "rails.csv" + ext, "ground_truth.csv" + ext])
        manifest = json.loads(zf.read("manifest.json"))
        assert manifest["model"]["prototxt"]["sha256"] == hashlib.sha256(model.read_bytes()).hexdigest()
        data = zf.read("events.csv" + ext)
        text = gzip.decompress(data) if compress else data
        expected = [list(bundle.EVENT_COLUMNS)]
        expected += [["" if v is None else str(v) for v in e] for e in _events()]
        assert list(csv.reader(io.StringIO(text.decode()))) == expected


def test_error_inside_writer_leaves_nothing(tmp_path, model):
    with pytest.raises(RuntimeError):
        with BundleWriter(tmp_path / "b") as w:
            w.add_model(model)
            w.write_events(_events())
            raise RuntimeError("crash in the middle")
    assert _leftovers(tmp_path, {"tiny.prototxt"}) == []


@pytest.mark.parametrize("breakage", ["no_manifest", "no_events", "missing_field", "bad_run_id", "bad_mode",
                                      "duplicate_rail", "sha_mismatch"])
def test_invalid_bundle_is_refused_and_leaves_nothing(tmp_path, model, breakage):
    manifest = _manifest()
    if breakage == "missing_field":
        del manifest["clock"]
    elif breakage == "bad_run_id":
        manifest["run_id"] = "has space"
    elif breakage == "bad_mode":
        manifest["mode"] = "loop"
    elif breakage == "duplicate_rail":
        manifest["power_sources"][0]["rails"].append({"name": "VDD_IN", "unit": "mW"})
    elif breakage == "sha_mismatch":
        manifest["model"]["prototxt"]["sha256"] = "0" * 64
    with pytest.raises(BundleError):
        with BundleWriter(tmp_path / "b") as w:
            w.add_model(model)
            if breakage != "no_events":
                w.write_events(_events())
            if breakage != "no_manifest":
                w.write_manifest(manifest)
    assert _leftovers(tmp_path, {"tiny.prototxt"}) == []


def test_rows_are_checked(tmp_path, model):
    with BundleWriter(tmp_path / "b") as w:
        with pytest.raises(BundleError, match="strictly increase"):
            w.write_rails([RailSample(10, "VDD_IN", 1, None, None), RailSample(10, "VDD_IN", 2, None, None)])
        with pytest.raises(BundleError, match="ends before it starts"):
            w.write_events([phase_event("idle", 10, 9)])
        with pytest.raises(BundleError, match="phase"):
            w.write_events([phase_event("run", 1, 2)])
        w.abort()
    assert _leftovers(tmp_path, {"tiny.prototxt"}) == []


def test_existing_target_is_refused(tmp_path, model):
    _write(tmp_path / "b", model)
    with pytest.raises(BundleError, match="already exists"):
        BundleWriter(tmp_path / "b")


# -- command line -------------------------------------------------------------------------------------


def _run_cli(*args):
    code = cli.main([str(a) for a in args])
    assert code == 0
    return code


def _cli_bundle(tmp_path, model, *extra):
    out = tmp_path / "run"
    _run_cli("--engine", "synthetic", "--model", model, "--iterations", 3, "--warmup", 2, "--idle-s", 0.2,
             "--seed", 4, "--out", out, *extra)
    return out


def test_cli_network_bundle(tmp_path, model, capsys):
    out = _cli_bundle(tmp_path, model)
    printed = capsys.readouterr().out.strip().splitlines()
    assert len(printed) == 1 and str(out) in printed[0]

    m = json.loads((out / "manifest.json").read_text())
    assert m["simulated"] is True
    assert m["engine"] == {"name": "synthetic", "version": "1", "device": "none"}
    assert m["model"]["network"] == "tiny"
    assert m["model"]["prototxt"]["sha256"] == hashlib.sha256(model.read_bytes()).hexdigest()
    assert m["model"]["weights"] is None
    assert m["input_shape"] == [1, 3, 32, 32] and m["batch"] == 1
    assert (m["iterations"], m["warmup"], m["mode"]) == (3, 2, "network")
    assert re.match(r"^\d{8}T\d{6}Z-[A-Za-z0-9._-]+-tiny-[0-9a-f]{6}$", m["run_id"])
    assert m["host"]["python"] and "numpy" in m["host"] and "kernel" in m["board"]
    [source] = m["power_sources"]
    assert source["kind"] == "simulate" and source["simulated"] is True
    assert source["update_interval_ms"] == 54.0
    assert [(r["name"], r["total"]) for r in source["rails"]] == [("VDD_IN", True), ("VDD_GPU", False),
                                                                  ("VDD_CPU", False)]
    dests = {a.dest for a in cli.build_parser()._actions if a.dest != "help"}
    assert set(m["options"]) == dests
    assert m["options"]["iterations"] == 3 and m["options"]["seed"] == 4
    assert m["options"]["min_layer_ms"] == 540.0
    assert set(m["clock"]) >= {"monotonic_ns", "realtime_utc_ns", "realtime_utc"}

    events = _rows(out / "events.csv")
    assert events[0] == list(bundle.EVENT_COLUMNS)
    body = events[1:]
    phases = [r[1] for r in body if r[0] == "phase"]
    assert phases == ["setup", "idle", "warmup", "inference", "idle"]
    layers = [r for r in body if r[0] == "layer"]
    assert len(body) == 5 + (3 + 2) * len(TINY_LAYERS)
    for phase, count in (("warmup", 2), ("inference", 3)):
        rows = [r for r in layers if r[1] == phase]
        assert [(int(r[2]), int(r[3]), r[4], r[5], r[6]) for r in rows] == [
            (it, i, name, type_, "1") for it in range(count) for i, (name, type_) in enumerate(TINY_LAYERS)]
    starts = [int(r[7]) for r in body]
    ends = [int(r[8]) for r in body]
    assert all(e >= s for s, e in zip(starts, ends, strict=True))
    idle = [r for r in body if r[1] == "idle"]
    assert all(int(r[8]) - int(r[7]) == 200_000_000 for r in idle)
    assert abs(int(body[0][7]) - m["clock"]["monotonic_ns"]) < 60e9  # same clock, virtual time from the start

    rails = _rows(out / "rails.csv")[1:]
    for rail in ("VDD_IN", "VDD_GPU", "VDD_CPU"):
        times = [int(r[0]) for r in rails if r[1] == rail]
        assert len(times) >= 10 and set(np.diff(times)) == {54_000_000}
    truth = _rows(out / "ground_truth.csv")
    assert len(truth) - 1 == len(layers) * 3
    assert all(float(r[4]) > 0 for r in truth[1:])


def test_cli_without_rails_writes_timing_only(tmp_path, model):
    out = _cli_bundle(tmp_path, model, "--rails", "none", "--network", "tiny-net", "--batch", "4")
    assert sorted(os.listdir(out)) == ["events.csv", "manifest.json", "model.prototxt"]
    m = json.loads((out / "manifest.json").read_text())
    assert m["power_sources"] == [] and m["simulated"] is True  # the timings themselves are synthetic
    assert m["model"]["network"] == "tiny-net"
    assert m["batch"] == 4 and m["input_shape"] == [4, 3, 32, 32]


def test_cli_layer_loop_intervals_reach_min_layer_ms(tmp_path, model):
    out = _cli_bundle(tmp_path, model, "--mode", "layer-loop", "--min-layer-ms", 30,
                      "--update-interval-ms", 5)
    body = _rows(out / "events.csv")[1:]
    inference = [r for r in body if r[0] == "layer" and r[1] == "inference"]
    assert len(inference) == 3 * len(TINY_LAYERS)
    assert all(int(r[8]) - int(r[7]) >= 30_000_000 for r in inference)
    assert all(int(r[6]) > 1 for r in inference)
    assert all(r[6] == "1" for r in body if r[0] == "layer" and r[1] == "warmup")
    m = json.loads((out / "manifest.json").read_text())
    assert m["mode"] == "layer-loop" and m["options"]["min_layer_ms"] == 30.0


def test_cli_zip_gzip_and_existing_directory(tmp_path, model):
    runs = tmp_path / "runs"
    runs.mkdir()
    _run_cli("--engine", "synthetic", "--model", model, "--iterations", 2, "--warmup", 0, "--idle-s", 0,
             "--zip", "--gzip", "--out", runs)
    [name] = os.listdir(runs)
    assert re.match(r"^\d{8}T\d{6}Z-.*-tiny-[0-9a-f]{6}\.zip$", name)
    with zipfile.ZipFile(runs / name) as zf:
        assert sorted(zf.namelist()) == ["events.csv.gz", "ground_truth.csv.gz", "manifest.json",
                                         "model.prototxt", "rails.csv.gz"]
        m = json.loads(zf.read("manifest.json"))
        assert m["run_id"] + ".zip" == name and m["warmup"] == 0


def _subprocess(*args):
    return subprocess.run([sys.executable, "-m", "runner", *[str(a) for a in args]], cwd=str(REPO),
                          capture_output=True, text=True, timeout=60)


def test_cli_missing_prototxt_one_line_exit_2(tmp_path):
    proc = _subprocess("--engine", "synthetic", "--model", tmp_path / "nope.prototxt",
                       "--out", tmp_path / "o")
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert "nope.prototxt" in proc.stderr
    assert not (tmp_path / "o").exists()


def test_cli_no_layers_and_bad_option_exit_2(tmp_path, capsys):
    empty = tmp_path / "empty.prototxt"
    empty.write_text('name: "x"\ninput: "data"\ninput_dim: 1\n# layer { name: "c" type: "ReLU" }\n')
    assert cli.main(["--engine", "synthetic", "--model", str(empty), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no layers" in err
    with pytest.raises(SystemExit) as exc:
        cli.main(["--engine", "tensorrt", "--model", str(empty), "--out", str(tmp_path / "o")])
    assert exc.value.code == 2
    assert capsys.readouterr().err.count("\n") == 1
    assert cli.main(["--engine", "synthetic", "--model", str(empty), "--iterations", "0",
                     "--out", str(tmp_path / "o")]) == 2
    assert not (tmp_path / "o").exists()


def test_cli_refuses_existing_bundle(tmp_path, model, capsys):
    out = _cli_bundle(tmp_path, model)
    assert cli.main(["--engine", "synthetic", "--model", str(model), "--out", str(out)]) == 2
    assert "already" in capsys.readouterr().err


def test_importer_reads_runner_bundle(tmp_path, model):
    """The contract from the other side: the workstation's reader accepts what the runner writes."""
    pytest.importorskip("duckdb")
    from importer.readers.bundle import read_bundle

    out = _cli_bundle(tmp_path, model, "--gzip")
    b = read_bundle(out)
    assert b.manifest["simulated"] is True
    assert len(b.layer_events) == (3 + 2) * len(TINY_LAYERS)
    assert list(b.layers["name"]) == [n for n, _ in TINY_LAYERS]
    assert sorted(r.name for r in b.rails) == ["VDD_CPU", "VDD_GPU", "VDD_IN"]
