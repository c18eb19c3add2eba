"""runner/prototxt.py (the layer scanner), runner/synthetic.py and the phase loop of runner/engine.py."""

import itertools
import time
from pathlib import Path

import numpy as np
import pytest

from runner import prototxt
from runner.bundle import monotonic_ns
from runner.engine import Engine, run_measurement
from runner.synthetic import SyntheticEngine, VirtualClock

REPO = Path(__file__).resolve().parents[1]
SQUEEZENET = REPO / "sample_traces" / "models" / "squeezenet_v1.1.prototxt"

MODERN = """
# a comment with a brace { and a layer { name: "fake" type: "ReLU" }
name: "Modern"
input: "data"
input_shape {
  dim: 2  # batch
  dim: 3
  dim: 224
  dim: 224
}
layer {
  name: "conv1"   # first
  type: "Convolution"
  bottom: "data"
  top: "conv1"
  convolution_param {
    num_output: 96
    kernel_size: 11
    stride: 4
    weight_filler { type: "gaussian" std: 0.01 }
    bias_filler { type: "constant" value: 0 }
  }
  param { lr_mult: 1 } param { lr_mult: 2 }
}
layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }
layer {
  name: "norm1"
  type: "LRN"
  lrn_param: { local_size: 5 alpha: 0.0001 beta: 0.75 }
}
layer { name: "loss" type: "SoftmaxWithLoss" include { phase: TRAIN } }
layer { name: "name with # hash" type: 'Pooling' pooling_param < pool: MAX kernel_size: [3] > }
layer { name: "fc" type: "InnerProduct" inner_product_param { num_output: 10 } }
"""

LEGACY = """
name: "CaffeNet"
input: "data"
input_dim: 10
input_dim: 3
input_dim: 227
input_dim: 227
layers {
  name: "conv1"
  type: CONVOLUTION
  bottom: "data"
  top: "conv1"
  blobs_lr: 1
  convolution_param { num_output: 96 kernel_size: 11 stride: 4 }
}
layers { name: "relu1" type: RELU bottom: "conv1" top: "conv1" }
layers { name: "pool1" type: POOLING pooling_param { pool: MAX kernel_size: 3 stride: 2 } }
layers { name: "norm1" type: LRN lrn_param { local_size: 5 } }
layers { name: "fire/concat" type: CONCAT }
layers { name: "fc6" type: INNER_PRODUCT inner_product_param { num_output: 4096 } }
layers { name: "drop6" type: DROPOUT dropout_param { dropout_ratio: 0.5 } }
layers { name: "prob" type: SOFTMAX }
"""


def _scan(tmp_path, text):
    path = tmp_path / "net.prototxt"
    path.write_text(text)
    return prototxt.read_file(str(path))


def test_scanner_modern_format(tmp_path):
    net = _scan(tmp_path, MODERN)
    assert net.name == "Modern"
    assert [(layer.index, layer.name, layer.type) for layer in net.layers] == [
        (0, "conv1", "Convolution"),
        (1, "relu1", "ReLU"),
        (2, "norm1", "LRN"),
        (3, "name with # hash", "Pooling"),
        (4, "fc", "InnerProduct"),
    ]
    assert net.input_shape == [2, 3, 224, 224]


def test_scanner_legacy_v1_format(tmp_path):
    net = _scan(tmp_path, LEGACY)
    assert [(layer.name, layer.type) for layer in net.layers] == [
        ("conv1", "Convolution"), ("relu1", "ReLU"), ("pool1", "Pooling"), ("norm1", "LRN"),
        ("fire/concat", "Concat"), ("fc6", "InnerProduct"), ("drop6", "Dropout"), ("prob", "Softmax")]
    assert net.input_shape == [10, 3, 227, 227]


def test_scanner_v0_format_and_input_layer(tmp_path):
    v0 = 'layers { layer { name: "conv1" type: "conv" num_output: 96 } bottom: "data" top: "conv1" }\n' \
         'layers { layer { name: "relu1" type: "relu" } bottom: "conv1" top: "conv1" }\n'
    layers = _scan(tmp_path, v0).layers
    assert [(x.name, x.type) for x in layers] == [("conv1", "Convolution"), ("relu1", "ReLU")]
    with_input = ('layer { name: "data" type: "Input" top: "data" '
                  'input_param { shape: { dim: 1 dim: 3 dim: 64 dim: 64 } } }\n'
                  'layer { name: "c" type: "Convolution" }\n')
    net = _scan(tmp_path, with_input)
    assert [(x.name, x.type) for x in net.layers] == [("data", "Input"), ("c", "Convolution")]
    assert net.input_shape == [1, 3, 64, 64]
    assert _scan(tmp_path, 'layer { name: "c" type: "ReLU" }').input_shape is None


@pytest.mark.parametrize("text", ['layer { name: "a" type: "ReLU" ', 'layer { name: "a" } }',
                                  'layer { name: }'])
def test_scanner_rejects_broken_text(tmp_path, text):
    with pytest.raises(prototxt.PrototxtError):
        _scan(tmp_path, text)


def test_squeezenet_sample_model():
    net = prototxt.read_file(str(SQUEEZENET))
    assert net.input_shape == [1, 3, 227, 227]
    names = [x.name for x in net.layers]
    types = [x.type for x in net.layers]
    assert len(names) == 66
    assert names[:10] == ["conv1", "relu_conv1", "pool1", "fire2/squeeze1x1", "fire2/relu_squeeze1x1",
                          "fire2/expand1x1", "fire2/relu_expand1x1", "fire2/expand3x3",
                          "fire2/relu_expand3x3", "fire2/concat"]
    assert names[-5:] == ["drop9", "conv10", "relu_conv10", "pool10", "prob"]
    assert names.index("pool3") == names.index("fire3/concat") + 1
    assert names.index("pool5") == names.index("fire5/concat") + 1
    counts = {t: types.count(t) for t in set(types)}
    assert counts == {"Convolution": 26, "ReLU": 26, "Pooling": 4, "Concat": 8, "Dropout": 1, "Softmax": 1}


def _layers(n=6):
    types = ["Convolution", "ReLU", "Pooling", "Concat", "InnerProduct", "Softmax"]
    return [prototxt.Layer(i, f"l{i}", types[i % len(types)]) for i in range(n)]


def test_virtual_clock_starts_at_the_real_clock_and_never_sleeps():
    before = monotonic_ns()
    engine = SyntheticEngine(_layers(), seed=1)
    assert before <= engine.now_ns() <= monotonic_ns()
    wall = time.perf_counter()
    events = run_measurement(engine, iterations=20, warmup=2, idle_s=100.0)
    assert time.perf_counter() - wall < 2.0
    idle = [e for e in events if e.kind == "phase" and e.phase == "idle"]
    assert [e.t_end_ns - e.t_start_ns for e in idle] == [100 * 10**9, 100 * 10**9]


def test_network_mode_events():
    layers = _layers()
    events = run_measurement(SyntheticEngine(layers, seed=2), iterations=4, warmup=3, idle_s=0.5)
    assert [e.phase for e in events if e.kind == "phase"] == ["setup", "idle", "warmup", "inference", "idle"]
    rows = [e for e in events if e.kind == "layer"]
    assert [(e.phase, e.iteration, e.layer_index, e.layer_name, e.layer_type, e.repeats) for e in rows] == [
        (phase, it, x.index, x.name, x.type, 1)
        for phase, count in (("warmup", 3), ("inference", 4)) for it in range(count) for x in layers]
    # in the order they happened; each phase row encloses its layer rows
    starts = [e.t_start_ns for e in events]
    assert starts == sorted(starts)
    for p in (e for e in events if e.kind == "phase"):
        inner = [e for e in rows if e.phase == p.phase]
        assert all(p.t_start_ns <= e.t_start_ns <= e.t_end_ns <= p.t_end_ns for e in inner)
    gaps = np.array([b.t_start_ns - a.t_end_ns for a, b in itertools.pairwise(rows) if a.phase == b.phase])
    assert gaps.min() >= 15_000 and gaps.max() <= 60_000  # tens of microseconds between layers
    durations = np.array([e.t_end_ns - e.t_start_ns for e in rows if e.phase == "inference"]).reshape(4, -1)
    assert (durations > 0).all()
    assert not (durations[0] == durations[1]).all()  # jitter between iterations
    per_iteration_ms = (rows[-1].t_end_ns - rows[-len(layers)].t_start_ns) / 1e6
    assert 0.5 < per_iteration_ms < 20


def test_seeded_and_reproducible():
    def relative(seed):
        events = run_measurement(SyntheticEngine(_layers(), seed=seed, clock=VirtualClock(0)), iterations=3,
                                 warmup=1, idle_s=0.1)
        return [(e.t_start_ns, e.t_end_ns) for e in events]
    assert relative(5) == relative(5)
    assert relative(5) != relative(6)


def test_squeezenet_timing_is_board_like():
    net = prototxt.read_file(str(SQUEEZENET))
    events = run_measurement(SyntheticEngine(net.layers, seed=1), iterations=20, warmup=2, idle_s=0)
    rows = [e for e in events if e.kind == "layer" and e.phase == "inference"]
    per_iteration = [(rows[i + 65].t_end_ns - rows[i].t_start_ns) / 1e6 for i in range(0, len(rows), 66)]
    assert 10 < np.mean(per_iteration) < 30  # ms, like SqueezeNet v1.1 on a TX1 GPU


def test_layer_loop_repeats_until_min_layer_ms():
    min_ns = 7 * 10**6
    engine = SyntheticEngine(_layers(), seed=3)
    events = run_measurement(engine, mode="layer-loop", iterations=3, warmup=1, idle_s=0, min_layer_ns=min_ns)
    loop = [e for e in events if e.kind == "layer" and e.phase == "inference"]
    assert len(loop) == 3 * 6
    for e in loop:
        assert e.t_end_ns - e.t_start_ns >= min_ns
        mean = engine.mean_ns[e.layer_index]
        assert e.repeats == pytest.approx(min_ns / mean, rel=0.15)  # back to back: count ~ min / duration
        # not many more repeats than needed: one repetition less would be too short
        assert (e.t_end_ns - e.t_start_ns) - mean * 1.2 < min_ns
    assert all(e.repeats == 1 for e in events if e.kind == "layer" and e.phase == "warmup")


class _CountingEngine(Engine):
    """A stand-in for a real engine: each forward_layer takes 1 ms of a fake clock."""

    name = "counting"

    def __init__(self, layers):
        Engine.__init__(self, layers)
        self.t = 0
        self.calls = 0

    def now_ns(self):
        return self.t

    def idle(self, seconds):
        self.t += int(seconds * 1e9)

    def forward_layer(self, index):
        self.calls += 1
        self.t += 10**6


def test_default_run_layer_of_a_real_engine_loops_forward_layer():
    engine = _CountingEngine(_layers(2))
    events = run_measurement(engine, mode="layer-loop", iterations=2, warmup=1, idle_s=0,
                             min_layer_ns=5 * 10**6)
    loop = [e for e in events if e.kind == "layer" and e.phase == "inference"]
    assert [e.repeats for e in loop] == [5, 5, 5, 5]
    assert all(e.t_end_ns - e.t_start_ns == 5 * 10**6 for e in loop)
    assert engine.calls == 2 + 4 * 5
    assert engine.info() == {"name": "counting", "version": None, "device": None}
