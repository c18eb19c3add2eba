"""The caffe engine's GPU mode, against a stand-in for pycaffe (tests/standin/caffe: it records calls, computes
nothing), because Caffe's GPU mode and its device synchronisation cannot run on this machine. Everything that
can run on the CPU is tested with real pycaffe in test_pycaffe_real.py."""

import sys
from pathlib import Path

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


def test_gpu_mode_synchronises_after_every_layer():
    syncs = []
    engine = CaffeEngine(SQUEEZENET, device="gpu", gpu_id=1, caffe_module=standin,
                         synchronize=lambda: syncs.append(1) or 0)
    run_measurement(engine, iterations=1, warmup=0, idle_s=0)
    assert ("set_device", 1) in standin.CALLS and ("set_mode_gpu",) in standin.CALLS
    assert len(syncs) == len(forwards())  # one device synchronisation per forward, layer or whole
    assert engine.info()["device"] == "gpu" and engine.info()["gpu_id"] == 1
    assert engine.info()["added_layers"] == ["input"]  # what Caffe adds is recorded as such


def test_a_failed_synchronisation_stops_the_run():
    engine = CaffeEngine(SQUEEZENET, device="gpu", caffe_module=standin, synchronize=lambda: 700)
    with pytest.raises(EngineError, match="CUDA error 700"):
        engine.setup()
