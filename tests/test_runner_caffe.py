"""The caffe engine's logic, against a stand-in for pycaffe (tests/standin/caffe: it records calls, computes
nothing), because Caffe's GPU mode cannot run on this machine. Real pycaffe comes with its own issue."""

import sys
from pathlib import Path

import numpy as np
import pytest

from runner.engine import EngineError, run_measurement
from runner.engines.caffe import CaffeEngine

ROOT = Path(__file__).resolve().parent.parent
SQUEEZENET = str(ROOT / "sample_traces" / "models" / "squeezenet_v1.1.prototxt")
sys.path.insert(0, str(ROOT / "tests" / "standin"))
import caffe as standin  # noqa: E402  (the stand-in, found through the path above)


@pytest.fixture(autouse=True)
def fresh_calls():
    standin.CALLS.clear()


def forwards():
    return [call for call in standin.CALLS if call[0] == "forward"]


def test_cpu_mode_runs_each_layer_on_its_own_in_caffe_order():
    engine = CaffeEngine(SQUEEZENET, seed=3, caffe_module=standin)
    events = run_measurement(engine, iterations=2, warmup=1, idle_s=0)
    assert ("set_mode_cpu",) in standin.CALLS and ("set_mode_gpu",) not in standin.CALLS
    assert ("Net", SQUEEZENET, standin.TEST, None) in standin.CALLS
    names = [layer.name for layer in engine.layers]
    assert names[0] == "input" and names[1] == "conv1" and len(names) == 67  # Caffe's own input layer first
    layer_calls = [c for c in forwards() if c[1] is not None]
    assert layer_calls == [("forward", n, n) for n in names] * 3  # warm-up + 2 iterations, in order
    assert forwards()[0] == ("forward", None, None)  # setup's full pass before any single layer
    inference = [e for e in events if e.kind == "layer" and e.phase == "inference"]
    assert [e.layer_name for e in inference] == names * 2
    assert engine.info()["name"] == "caffe" and engine.info()["weights_generated"] is True
    assert engine.info()["added_layers"] == ["input"]  # what Caffe adds is recorded as such


def test_generated_weights_are_seeded_and_shaped_like_caffe_blobs():
    first = CaffeEngine(SQUEEZENET, seed=3, caffe_module=standin)
    first.setup()
    again = CaffeEngine(SQUEEZENET, seed=3, caffe_module=standin)
    again.setup()
    other = CaffeEngine(SQUEEZENET, seed=4, caffe_module=standin)
    other.setup()
    weight = first.net.params["conv1"][0].data
    assert weight.shape == (8, 3, 3, 3) and np.std(weight) == pytest.approx(np.sqrt(2 / 27), rel=0.35)
    assert np.array_equal(weight, again.net.params["conv1"][0].data)
    assert not np.array_equal(weight, other.net.params["conv1"][0].data)
    assert np.abs(first.net.blobs["data"].data).sum() > 0  # random input, seeded


def test_gpu_mode_synchronises_after_every_layer():
    syncs = []
    engine = CaffeEngine(SQUEEZENET, device="gpu", gpu_id=1, caffe_module=standin,
                         synchronize=lambda: syncs.append(1) or 0)
    run_measurement(engine, iterations=1, warmup=0, idle_s=0)
    assert ("set_device", 1) in standin.CALLS and ("set_mode_gpu",) in standin.CALLS
    assert len(syncs) == len(forwards())  # one device synchronisation per forward, layer or whole
    assert engine.info()["device"] == "gpu" and engine.info()["gpu_id"] == 1


def test_a_failed_synchronisation_stops_the_run():
    engine = CaffeEngine(SQUEEZENET, device="gpu", caffe_module=standin, synchronize=lambda: 700)
    with pytest.raises(EngineError, match="CUDA error 700"):
        engine.setup()


def test_batch_and_weights_options():
    engine = CaffeEngine(SQUEEZENET, batch=4, weights_path="trained.caffemodel", caffe_module=standin)
    engine.setup()
    assert engine.input_shape == [4, 3, 227, 227] and ("reshape",) in standin.CALLS
    assert ("Net", SQUEEZENET, standin.TEST, "trained.caffemodel") in standin.CALLS
    assert engine.weights_generated is False and not engine.net.params["conv1"][0].data.any()
