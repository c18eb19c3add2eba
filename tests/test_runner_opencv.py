"""runner/engines/opencv.py (real OpenCV dnn, real networks) and runner/engines/weights.py.

Tolerance: the per-layer chain and the whole-network net run the same OpenCV kernels on the same float32 data,
so their outputs are compared with np.allclose(rtol=1e-5, atol=1e-6) (in practice they are bit-identical).
"""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from importer.model import caffe_pb2
from runner import caffemodel, prototxt
from runner.engine import EngineError, run_measurement
from runner.engines import weights

cv2 = pytest.importorskip("cv2")
from runner.engines.opencv import OpenCVEngine, OpenCVEngineError  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
MODELS = REPO / "sample_traces" / "models"
SQUEEZENET = MODELS / "squeezenet_v1.1.prototxt"
LENET = MODELS / "legacy_v1_lenet.prototxt"
GOOGLENET = MODELS / "googlenet.prototxt"
RESNET50 = MODELS / "resnet50.prototxt"
PYTHON36 = REPO / ".venv36" / "bin" / "python"
RTOL, ATOL = 1e-5, 1e-6

# An Input layer, a Split and a Slice (several tops), in-place layers that are not idempotent (Power doubles,
# Scale multiplies by gamma, BatchNorm shifts by its mean), a DepthwiseConvolution, Eltwise and Concat.
SMALL = """
name: "small"
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 4 dim: 9 dim: 9 } } }
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"
        convolution_param { num_output: 6 kernel_size: 3 pad: 1 } }
layer { name: "double" type: "Power" bottom: "conv" top: "conv" power_param { scale: 2 shift: 0.5 } }
layer { name: "bn" type: "BatchNorm" bottom: "conv" top: "conv" }
layer { name: "scale" type: "Scale" bottom: "conv" top: "conv" scale_param { bias_term: true } }
layer { name: "relu" type: "ReLU" bottom: "conv" top: "conv" }
layer { name: "split" type: "Split" bottom: "conv" top: "a" top: "b" }
layer { name: "slice" type: "Slice" bottom: "a" top: "s1" top: "s2" slice_param { axis: 1 slice_point: 2 } }
layer { name: "dw" type: "DepthwiseConvolution" bottom: "s2" top: "dw"
        convolution_param { num_output: 4 kernel_size: 3 pad: 1 bias_term: false } }
layer { name: "cat" type: "Concat" bottom: "s1" bottom: "dw" top: "cat" }
layer { name: "sum" type: "Eltwise" bottom: "cat" bottom: "b" top: "sum" }
layer { name: "prelu" type: "PReLU" bottom: "sum" top: "sum" }
layer { name: "fc" type: "InnerProduct" bottom: "sum" top: "fc" inner_product_param { num_output: 5 } }
"""
IN_PLACE = ("double", "bn", "scale", "relu", "prelu")


@pytest.fixture(scope="module")
def squeezenet():
    engine = OpenCVEngine(str(SQUEEZENET), seed=3)
    engine.setup()
    return engine


@pytest.fixture(scope="module")
def small_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("small") / "small.prototxt"
    path.write_text(SMALL)
    return path


def _ready(path, **kwargs):
    engine = OpenCVEngine(str(path), **kwargs)
    engine.setup()
    return engine


def _same(a, b):
    return a.shape == b.shape and np.allclose(a, b, rtol=RTOL, atol=ATOL)


# ----------------------------------------------------------------------------------------------------
# the chain against the whole network


@pytest.mark.parametrize("model", [SQUEEZENET, LENET, GOOGLENET, RESNET50], ids=lambda p: p.stem)
def test_per_layer_chain_equals_whole_network(model):
    engine = _ready(model)
    chain = engine.output()
    whole = engine.forward_network()
    assert np.isfinite(chain).all() and np.isfinite(whole).all()
    assert _same(chain, whole), float(np.abs(chain - whole).max())
    assert engine.weights_generated and engine.weights
    assert all(np.isfinite(a).all() for a in engine.blobs.values())


def test_small_net_with_several_tops_in_place_layers_and_depthwise(small_path):
    engine = _ready(small_path, seed=1)
    assert [layer.name for layer in engine.layers] == ["conv", "double", "bn", "scale", "relu", "split", "slice",
                                                       "dw", "cat", "sum", "prelu", "fc"]
    assert engine.input_shape == [1, 4, 9, 9]
    assert _same(engine.output(), engine.forward_network())
    assert [list(w.shape) for w in engine.weights["dw"]] == [[4, 1, 3, 3]]  # group = input channels
    assert np.array_equal(engine.blobs["a"], engine.blobs["b"])
    assert engine.blobs["s1"].shape == (1, 2, 9, 9) and engine.blobs["s2"].shape == (1, 4, 9, 9)
    # the depthwise layer really is depthwise: channel c of its output only sees channel c of its input
    x = np.pad(engine.blobs["s2"][0], ((0, 0), (1, 1), (1, 1)))
    k = engine.weights["dw"][0][:, 0]
    expected = np.zeros((4, 9, 9), np.float32)
    for c in range(4):
        for i in range(3):
            for j in range(3):
                expected[c] += k[c, i, j] * x[c, i:i + 9, j:j + 9]
    assert np.allclose(engine.blobs["dw"][0], expected, rtol=1e-4, atol=1e-5)


def test_layer_list_is_the_prototxts_without_input_layers(small_path):
    for path in (SQUEEZENET, LENET, small_path):
        engine = OpenCVEngine(str(path))
        listed = [(la.name, la.type) for la in prototxt.read_file(str(path)).layers if la.type != "Input"]
        assert [(la.name, la.type) for la in engine.layers] == listed
        assert [la.index for la in engine.layers] == list(range(len(listed)))
    engine = OpenCVEngine(str(LENET))
    assert engine.input_shape == [1, 1, 28, 28] and engine.layers[0].type == "Convolution"


def test_info(squeezenet):
    info = squeezenet.info()
    assert info["name"] == "opencv" and info["version"] == cv2.__version__ and info["device"] == "cpu"
    assert info["fused"] is False and info["weights_generated"] is True
    assert info["backend"] == "DNN_BACKEND_OPENCV" and info["target"] == "DNN_TARGET_CPU"
    assert squeezenet.simulated is False


# ----------------------------------------------------------------------------------------------------
# measurements


def test_network_mode_measurement(squeezenet):
    events = run_measurement(squeezenet, mode="network", iterations=3, warmup=1, idle_s=0)
    layers = [e for e in events if e.kind == "layer"]
    n = len(squeezenet.layers)
    for phase, count in (("warmup", 1), ("inference", 3)):
        rows = [e for e in layers if e.phase == phase]
        assert [(e.iteration, e.layer_index) for e in rows] == [(i, j) for i in range(count) for j in range(n)]
        assert all(e.repeats == 1 and e.t_end_ns >= e.t_start_ns for e in rows)
    for before, after in zip(layers[:-1], layers[1:], strict=True):
        assert after.t_start_ns > before.t_start_ns and after.t_start_ns >= before.t_end_ns
    assert _same(squeezenet.output(), squeezenet.forward_network())


def test_layer_loop_mode_repeats_in_place_layers_on_their_inputs(small_path):
    engine = OpenCVEngine(str(small_path), seed=1)
    events = run_measurement(engine, mode="layer-loop", iterations=1, warmup=1, idle_s=0, min_layer_ns=2000000)
    rows = [e for e in events if e.kind == "layer" and e.phase == "inference"]
    assert len(rows) == len(engine.layers)
    assert all(e.repeats >= 1 and e.t_end_ns - e.t_start_ns >= 2000000 for e in rows)
    assert max(e.repeats for e in rows) > 10
    # a doubling in-place layer repeated many times on its own output would have overflowed or drifted
    assert all(np.isfinite(engine.blobs[name]).all() for name in engine.blobs)
    assert _same(engine.output(), engine.forward_network())
    single = _ready(small_path, seed=1)
    for name in engine.blobs:
        assert _same(engine.blobs[name], single.blobs[name]), name


def test_layer_loop_on_squeezenet(squeezenet):
    in_place = [la.index for la in squeezenet.layers if la.type == "ReLU"]
    for index in in_place[:3] + [len(squeezenet.layers) - 1]:
        t0, t1, repeats = squeezenet.run_layer(index, 2000000)
        assert repeats >= 1 and t1 - t0 >= 2000000
    assert np.isfinite(squeezenet.output()).all()
    assert _same(squeezenet.output(), squeezenet.forward_network())


# ----------------------------------------------------------------------------------------------------
# weights and inputs


def test_same_seed_same_weights_other_seed_different():
    a, b, c = _ready(LENET, seed=5), _ready(LENET, seed=5), _ready(LENET, seed=6)
    assert list(a.weights) == ["conv1", "conv2", "ip1", "ip2"]
    for name in a.weights:
        assert all(np.array_equal(x, y) for x, y in zip(a.weights[name], b.weights[name], strict=True))
        assert not np.array_equal(a.weights[name][0], c.weights[name][0])
    assert np.array_equal(a.output(), b.output())
    assert not np.array_equal(a.blobs["ip2"], c.blobs["ip2"])


def test_caffemodel_written_from_generated_weights_gives_the_same_output(tmp_path, small_path):
    for path in (LENET, SQUEEZENET, small_path):
        generated = _ready(path, seed=2)
        model = tmp_path / (path.stem + ".caffemodel")
        caffemodel.write_file(str(model), [(n, None, b) for n, b in generated.weights.items()])
        # another seed (it only picks the input now) with the same input array
        loaded = _ready(path, weights_path=str(model), seed=99, input_array=generated.inputs_data["data"])
        assert loaded.weights_generated is False and loaded.info()["weights_generated"] is False
        assert np.array_equal(loaded.output(), generated.output())
        assert _same(loaded.forward_network(), generated.forward_network())


def test_legacy_v1_caffemodel_with_4d_blobs(tmp_path):
    generated = _ready(LENET, seed=4)
    message = caffe_pb2.NetParameter(name="LeNet")
    for name, blobs in generated.weights.items():
        layer = message.layers.add(name=name)
        for array in blobs:
            legacy = [1] * (4 - array.ndim) + list(array.shape)
            blob = layer.blobs.add(num=legacy[0], channels=legacy[1], height=legacy[2], width=legacy[3])
            blob.data.extend(array.ravel().tolist())
    model = tmp_path / "lenet_v1.caffemodel"
    model.write_bytes(message.SerializeToString())
    loaded = _ready(LENET, weights_path=str(model), seed=4)
    assert [list(b.shape) for b in loaded.weights["ip1"]] == [[500, 800], [500]]
    assert np.array_equal(loaded.output(), generated.output())


def test_wrong_blob_shape_is_a_clear_error(tmp_path):
    generated = _ready(LENET)
    layers = [(n, None, list(b)) for n, b in generated.weights.items()]
    layers[1][2][0] = layers[1][2][0].reshape(25, 20, 5, 10)  # conv2's weights, right size, wrong shape
    model = tmp_path / "bad.caffemodel"
    caffemodel.write_file(str(model), layers)
    with pytest.raises(OpenCVEngineError, match=r"layer 'conv2'.*blob 0 has shape \[25, 20, 5, 10\].*\[50, 20, 5, 5\]"):
        _ready(LENET, weights_path=str(model))
    caffemodel.write_file(str(model), layers[:1])
    with pytest.raises(OpenCVEngineError, match=r"no blobs for layer 'conv2'"):
        _ready(LENET, weights_path=str(model))
    model.write_bytes(b"\x0a\x05ab")
    with pytest.raises(EngineError, match="not a caffemodel"):
        _ready(LENET, weights_path=str(model))


def test_batch_two():
    engine = _ready(LENET, batch=2)
    assert engine.input_shape == [2, 1, 28, 28] and engine.batch == 2
    out = engine.output()
    assert out.shape == (2, 10) and not np.array_equal(out[0], out[1])
    assert _same(out, engine.forward_network())


def test_input_array_is_used(tmp_path):
    x = np.random.RandomState(7).uniform(0, 255, size=(1, 1, 28, 28)).astype(np.float32)
    np.save(str(tmp_path / "x.npy"), x)
    engine = _ready(LENET, input_array=np.load(str(tmp_path / "x.npy")))
    assert np.array_equal(engine.blobs["data"], x)
    default = _ready(LENET)
    assert not np.array_equal(engine.output(), default.output())
    assert _same(engine.output(), engine.forward_network())
    pair = np.concatenate([x, x])
    engine = _ready(LENET, input_array=pair)
    assert engine.input_shape == [2, 1, 28, 28] and np.allclose(engine.output()[0], engine.output()[1])
    with pytest.raises(OpenCVEngineError, match="does not fit"):
        OpenCVEngine(str(LENET), input_array=np.zeros((1, 3, 28, 28), np.float32))
    with pytest.raises(OpenCVEngineError, match="batch of 2"):
        OpenCVEngine(str(LENET), input_array=pair, batch=3)


def test_files_instead_of_buffers(monkeypatch):
    """An OpenCV without readNetFromCaffe(buffer, buffer) gets the per-layer nets through temporary files."""
    import runner.engines.opencv as opencv_engine

    class Dnn:
        def __getattr__(self, name):
            return getattr(cv2.dnn, name)

        @staticmethod
        def readNetFromCaffe(proto, model=None):
            if not isinstance(proto, str):
                raise TypeError("no buffer overload here")
            return cv2.dnn.readNetFromCaffe(proto, model) if model else cv2.dnn.readNetFromCaffe(proto)

    class Cv2:
        dnn = Dnn()

        def __getattr__(self, name):
            return getattr(cv2, name)

    monkeypatch.setattr(opencv_engine, "load_cv2", lambda: Cv2())
    engine = _ready(LENET, seed=2)
    assert engine._tmpdir is None  # cleaned up
    assert np.array_equal(engine.output(), _ready_real(LENET, seed=2).output())


def _ready_real(path, **kwargs):
    import runner.engines.opencv as opencv_engine

    engine = opencv_engine.OpenCVEngine(str(path), **kwargs)
    engine.setup()
    return engine


def test_refuses_opencv_5(monkeypatch):
    monkeypatch.setattr(cv2, "__version__", "5.0.0")
    with pytest.raises(OpenCVEngineError, match="OpenCV 5"):
        OpenCVEngine(str(LENET))


def test_unrunnable_networks(tmp_path):
    path = tmp_path / "train.prototxt"
    path.write_text('layer { name: "data" type: "Data" top: "data" top: "label" }\n'
                    'layer { name: "ip" type: "InnerProduct" bottom: "data" top: "ip" '
                    'inner_product_param { num_output: 2 } }\n')
    with pytest.raises(OpenCVEngineError, match="declares no input"):
        OpenCVEngine(str(path))
    path.write_text('input: "data"\ninput_shape { dim: 1 dim: 3 }\n'
                    'layer { name: "loss" type: "SoftmaxWithLoss" bottom: "data" bottom: "label" top: "loss" }\n')
    with pytest.raises(OpenCVEngineError, match="blob 'label', which no input or earlier layer produces"):
        _ready(path)
    with pytest.raises(OpenCVEngineError, match="device"):
        OpenCVEngine(str(LENET), device="tpu")


def test_importing_the_engine_does_not_import_cv2():
    code = "import sys, runner.engines.opencv, runner.caffemodel; print('cv2' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=str(REPO), capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.skipif(not PYTHON36.exists(), reason="no .venv36 (python3.6 not on this machine)")
def test_python36_caffemodel_weights_and_missing_cv2():
    code = """
import numpy as np
from runner import caffemodel
from runner.engines import weights
from runner.engines.opencv import OpenCVEngine, OpenCVEngineError
w = weights.generate("Convolution", weights.blob_shapes("c", "Convolution",
                     [("convolution_param", [("num_output", "4"), ("kernel_size", "3")])], [[1, 2, 8, 8]]),
                     weights.layer_rng(0, 0))
net = caffemodel.read_bytes(caffemodel.write_bytes([("c", "Convolution", w)]))
assert [b.shape for b in net.layers[0].blobs] == [[4, 2, 3, 3], [4]]
assert np.array_equal(net.layers[0].blobs[0].data, w[0])
try:
    import cv2  # noqa
except ImportError:
    try:
        OpenCVEngine("sample_traces/models/legacy_v1_lenet.prototxt")
    except OpenCVEngineError as e:
        assert "cv2" in str(e)
    else:
        raise SystemExit("no error without cv2")
print("ok")
"""
    out = subprocess.run([str(PYTHON36), "-c", code], cwd=str(REPO), capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


# ----------------------------------------------------------------------------------------------------
# weight shapes


def _fields(text):
    return prototxt.parse(text)[0][1]


@pytest.mark.parametrize("layer_type, block, inputs, expected", [
    ("Convolution", "convolution_param { num_output: 8 kernel_size: 3 group: 2 }", [[1, 4, 9, 9]],
     [[8, 2, 3, 3], [8]]),
    ("Convolution", "convolution_param { num_output: 8 kernel_h: 1 kernel_w: 7 bias_term: false }",
     [[1, 4, 9, 9]], [[8, 4, 1, 7]]),
    ("Convolution", "convolution_param { num_output: 8 kernel_size: 3 kernel_size: 5 }", [[1, 4, 9, 9]],
     [[8, 4, 3, 5], [8]]),
    ("DepthwiseConvolution", "convolution_param { num_output: 32 kernel_size: 3 }", [[1, 32, 9, 9]],
     [[32, 1, 3, 3], [32]]),
    ("Deconvolution", "convolution_param { num_output: 6 kernel_size: 4 group: 2 }", [[1, 4, 9, 9]],
     [[4, 3, 4, 4], [6]]),
    ("InnerProduct", "inner_product_param { num_output: 10 }", [[2, 50, 4, 4]], [[10, 800], [10]]),
    ("InnerProduct", "inner_product_param { num_output: 10 axis: 2 bias_term: false }", [[2, 50, 4, 4]],
     [[10, 16]]),
    ("InnerProduct", "inner_product_param { num_output: 10 transpose: true }", [[2, 50]], [[50, 10], [10]]),
    ("BatchNorm", "", [[1, 16, 5, 5]], [[16], [16], [1]]),
    ("Scale", "scale_param { bias_term: true }", [[1, 16, 5, 5]], [[16], [16]]),
    ("Scale", "", [[1, 16, 5, 5]], [[16]]),
    ("Scale", "scale_param { axis: 1 num_axes: 2 }", [[1, 16, 5, 5]], [[16, 5]]),
    ("Scale", "scale_param { bias_term: true }", [[1, 16, 5, 5], [16]], [[16]]),
    ("Bias", "", [[1, 16, 5, 5]], [[16]]),
    ("PReLU", "", [[1, 16, 5, 5]], [[16]]),
    ("PReLU", "prelu_param { channel_shared: true }", [[1, 16, 5, 5]], [[1]]),
    ("ReLU", "", [[1, 16, 5, 5]], []),
    ("Pooling", "pooling_param { kernel_size: 2 }", [[1, 16, 5, 5]], []),
])
def test_blob_shapes(layer_type, block, inputs, expected):
    fields = _fields(f'layer {{ name: "x" type: "{layer_type}" {block} }}')
    assert weights.blob_shapes("x", layer_type, fields, inputs) == expected


def test_generated_values():
    rng = weights.layer_rng(0, 0)
    conv, bias = weights.generate("Convolution", [[64, 128, 3, 3], [64]], rng)
    assert conv.dtype == np.float32 and abs(conv.std() - np.sqrt(2.0 / (128 * 9))) < 0.002
    assert abs(bias.std() - 0.01) < 0.005
    mean, var, factor = weights.generate("BatchNorm", [[4], [4], [1]], rng)
    assert (mean == 0).all() and (var == 1).all() and (factor == 1).all()
    gamma, beta = weights.generate("Scale", [[4], [4]], rng)
    assert (gamma == 1).all() and np.abs(beta).max() < 0.1
    assert (weights.generate("PReLU", [[4]], rng)[0] == 0.25).all()
    with pytest.raises(weights.WeightsError, match="group"):
        weights.blob_shapes("x", "Convolution", _fields('l { convolution_param { num_output: 5 kernel_size: 1 '
                                                        'group: 2 } }'), [[1, 4, 3, 3]])
