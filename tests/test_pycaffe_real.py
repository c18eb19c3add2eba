"""The caffe engine and the model analyzer against REAL pycaffe (BVLC Caffe built from PyPI's brocolli-caffe by
`make pycaffe`; `make test` builds it once and passes its location in PYCAFFE_PATH)."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "sample_traces" / "models"
SAMPLE_MODELS = ["squeezenet_v1.1", "squeezenet_v1.0", "alexnet", "googlenet", "resnet50", "mobilenet_v1",
                 "legacy_v1_lenet"]
PYCAFFE_PATH = os.environ.get("PYCAFFE_PATH")

pytestmark = pytest.mark.skipif(not PYCAFFE_PATH, reason="no PYCAFFE_PATH: `make test` builds pycaffe and sets it")


@pytest.fixture(scope="module")
def caffe():
    # test_runner_caffe.py imports the stand-in under the same name: set it aside while the real one is in use.
    saved = {name: module for name, module in sys.modules.items() if name == "caffe" or name.startswith("caffe.")}
    for name in saved:
        del sys.modules[name]
    sys.path.insert(0, PYCAFFE_PATH)
    try:
        import caffe as real_caffe

        assert not hasattr(real_caffe, "CALLS"), "the stand-in was imported instead of real pycaffe"
        yield real_caffe
    finally:
        sys.path.remove(PYCAFFE_PATH)
        for name in [n for n in sys.modules if n == "caffe" or n.startswith("caffe.")]:
            del sys.modules[name]
        sys.modules.update(saved)


def engine_for(caffe, model, **options):
    from runner.engines.caffe import CaffeEngine

    return CaffeEngine(str(MODELS / f"{model}.prototxt"), caffe_module=caffe, **options)


@pytest.mark.parametrize("model", SAMPLE_MODELS)
def test_network_and_layer_loop_runs_on_real_caffe(caffe, model):
    from runner.engine import run_measurement

    engine = engine_for(caffe, model, seed=5)
    events = run_measurement(engine, iterations=2, warmup=1, idle_s=0)
    names = [layer.name for layer in engine.layers]
    inference = [e for e in events if e.kind == "layer" and e.phase == "inference"]
    assert [e.layer_name for e in inference] == names * 2
    assert all(e.t_end_ns >= e.t_start_ns for e in inference)
    # What Caffe adds itself is recorded as such: its input layer and split layers where a blob feeds several.
    assert set(engine.info()["added_layers"]) == {n for n in names if n == "input" or n.endswith("_split")}
    if model.startswith("squeezenet"):
        assert "input" in names and any(n.endswith("_split") for n in names)
    loop = run_measurement(engine, mode="layer-loop", iterations=1, warmup=0, idle_s=0, min_layer_ns=2_000_000)
    intervals = [e for e in loop if e.kind == "layer" and e.phase == "inference"]
    assert len(intervals) == len(names) and all(e.t_end_ns - e.t_start_ns >= 2_000_000 for e in intervals)
    assert np.isfinite(engine.output()).all()


@pytest.mark.parametrize("model", ["squeezenet_v1.1", "googlenet", "resnet50"])
def test_layer_by_layer_output_equals_a_plain_forward(caffe, model):
    engine = engine_for(caffe, model, seed=2)
    engine.setup()
    for layer in engine.layers:
        engine.forward_layer(layer.index)
    layered = engine.output().copy()
    assert np.array_equal(layered, engine.forward_network())


@pytest.mark.parametrize("model", SAMPLE_MODELS)
def test_the_analyzer_agrees_with_caffes_own_shapes_and_parameter_counts(caffe, model):
    from importer.model.cost import analyze
    from importer.model.net import read_prototxt

    net = caffe.Net(str(MODELS / f"{model}.prototxt"), caffe.TEST)
    analysis = analyze(read_prototxt(MODELS / f"{model}.prototxt"))
    for cost in analysis.layers:
        if cost.type == "Input":
            continue
        for top, shape in zip(cost.tops, cost.output_shapes, strict=True):
            assert list(net.blobs[top].data.shape) == shape, (cost.name, top)
        blobs = net.params[cost.name] if cost.name in net.params else []
        learnable = 0 if cost.type == "BatchNorm" else sum(b.data.size for b in blobs)  # BN blobs are statistics
        assert cost.params == learnable, cost.name
        assert sum(int(np.prod(s)) for s in cost.param_shapes) == sum(b.data.size for b in blobs), cost.name


def test_caffe_and_opencv_give_the_same_output_from_the_same_weights_and_store_comparable_runs(caffe, tmp_path):
    from importer.ingest import import_sources
    from importer.report import run_report
    from runner.engines.opencv import OpenCVEngine

    prototxt = str(MODELS / "squeezenet_v1.1.prototxt")
    opencv = OpenCVEngine(prototxt, seed=9)
    opencv.setup()
    weights = tmp_path / "generated.caffemodel"
    opencv.write_weights(str(weights))
    data = np.random.RandomState(3).standard_normal(opencv.input_shape).astype(np.float32)
    np.save(tmp_path / "input.npy", data)
    opencv = OpenCVEngine(prototxt, weights_path=str(weights), input_array=data)
    opencv.setup()
    caffe_engine = engine_for(caffe, "squeezenet_v1.1", weights_path=str(weights), input_array=data)
    caffe_engine.setup()
    # Both libraries compute in float32 with different summation orders.
    np.testing.assert_allclose(caffe_engine.forward_network().ravel(), opencv.forward_network().ravel(),
                               rtol=1e-4, atol=1e-6)

    env = dict(os.environ, PYTHONPATH=PYCAFFE_PATH)
    db = tmp_path / "store.duckdb"
    for engine in ("caffe", "opencv"):
        out = tmp_path / engine
        subprocess.run([sys.executable, "-m", "runner", "--engine", engine, "--model", prototxt, "--weights",
                        str(weights), "--input", str(tmp_path / "input.npy"), "--iterations", "3", "--warmup", "1",
                        "--rails", "none", "--streamline", "off", "--idle-s", "0", "--out", str(out)],
                       cwd=ROOT, env=env, check=True, capture_output=True, timeout=300)
        import_sources([out], db=db)
    from importer.report import list_runs

    runs = list_runs(db)
    assert sorted(runs["engine"]) == ["caffe", "opencv"]
    layers = {engine: run_report(run_id, db)[1].set_index("name")["time_ms_mean"]
              for engine, run_id in zip(runs["engine"], runs["run_id"], strict=True)}
    common = layers["caffe"].index.intersection(layers["opencv"].index)
    assert "conv1" in common and len(common) == 66  # every prototxt layer timed by both engines
    caffe_run = runs.loc[runs["engine"] == "caffe", "run_id"].iloc[0]
    report = run_report(caffe_run, db)[1].set_index("name")
    added = set(report.index[report["added_by_engine"].astype(bool)])
    assert "input" in added and all(n == "input" or n.endswith("_split") for n in added)  # shown as Caffe's own


def test_generated_weights_are_seeded_and_batch_reshapes_the_net(caffe):
    first = engine_for(caffe, "squeezenet_v1.1", seed=3)
    first.setup()
    again = engine_for(caffe, "squeezenet_v1.1", seed=3, batch=2)
    again.setup()
    other = engine_for(caffe, "squeezenet_v1.1", seed=4)
    other.setup()
    weight = first.net.params["conv1"][0].data
    assert weight.shape == (64, 3, 3, 3) and np.std(weight) == pytest.approx(np.sqrt(2 / 27), rel=0.1)
    assert np.array_equal(weight, again.net.params["conv1"][0].data)
    assert not np.array_equal(weight, other.net.params["conv1"][0].data)
    assert again.input_shape == [2, 3, 227, 227] and again.output().shape[0] == 2
    assert first.info()["weights_generated"] is True and first.info()["device"] == "cpu"
