"""The OpenCV engine: OpenCV's dnn module (4.x) runs a Caffe network layer by layer, each layer on its own.

OpenCV's ``Net.forward(name)`` always computes from the network's start, so a layer cannot be run alone in the
whole net. Instead ``setup()`` builds one small OpenCV net per prototxt layer: a prototxt with one
``input: "<bottom>"`` + ``input_shape { dim: ... }`` per bottom of the layer (the shapes of the arrays the
earlier layers actually produced) followed by the layer's own block, copied verbatim from the prototxt text,
and a caffemodel holding that layer's weights only (runner/caffemodel.py; OpenCV refuses a Convolution without
blobs, and blobs cannot be added to a loaded net). Layer fusion is off in every net (``enableFusion(False)``),
so that each timed interval is exactly one prototxt layer.

The engine keeps every blob of the network as a numpy array (by blob name). ``forward_layer(i)`` feeds
layer i's net with its bottoms' current arrays (``setInput`` copies them in) and stores its tops (``forward``
copies them out): those copies are part of each timed interval, the price of running layers separately; the
whole-network forward (``forward_network()``, a separate full net over the same prototxt and weights) is there
to measure that overhead. ``run_layer`` captures a layer's inputs once before repeating it, so that an in-place
layer (ReLU, BatchNorm, Scale with top == bottom) repeated many times never feeds on its own output.

The layer list is the prototxt's layers in order, without Input layers (and ``input:`` declarations), which are
data, not computation; layer indices count the executed layers from 0. Layers that only the TRAIN phase
includes are left out, as runner/prototxt.py does. Split layers are computed and timed like any other.

Without ``weights_path`` the weights are generated (runner/engines/weights.py, seeded); with it, each layer's
blobs are read from the caffemodel (runner/caffemodel.py) and must have the shapes the prototxt implies.
A ``DepthwiseConvolution`` layer (a Caffe fork's type OpenCV does not know) runs as a Convolution with
``group`` = its input channels.

cv2 is imported when an engine is made, not when this module is imported; OpenCV 5 removed the Caffe importer,
so cv2 >= 5 is refused.
"""

import collections
import os
import re
import shutil
import tempfile

import numpy as np

from runner import caffemodel, prototxt
from runner.bundle import monotonic_ns
from runner.engine import Engine, EngineError
from runner.engines import weights as weights_mod
from runner.prototxt import Layer

# device -> (backend, target) attribute names in cv2.dnn
DEVICES = collections.OrderedDict([
    ("cpu", ("DNN_BACKEND_OPENCV", "DNN_TARGET_CPU")),
    ("cuda", ("DNN_BACKEND_CUDA", "DNN_TARGET_CUDA")),
    ("cuda_fp16", ("DNN_BACKEND_CUDA", "DNN_TARGET_CUDA_FP16")),
    ("opencl", ("DNN_BACKEND_OPENCV", "DNN_TARGET_OPENCL")),
    ("opencl_fp16", ("DNN_BACKEND_OPENCV", "DNN_TARGET_OPENCL_FP16")),
])
DEVICE_ALIASES = {"gpu": "cuda"}

# Layer types that read training data: not in a deploy net, and nothing the engine can feed.
DATA_TYPES = ("Data", "ImageData", "MemoryData", "HDF5Data", "WindowData", "DummyData", "Python")


class OpenCVEngineError(EngineError):
    """The OpenCV engine cannot run this network (cv2 missing or too new, unsupported prototxt, a layer OpenCV
    cannot build, weights that do not fit)."""


def load_cv2():
    """cv2, checked to be OpenCV 3.4 or 4.x (whose dnn module still has the Caffe importer)."""
    try:
        import cv2
    except ImportError as e:
        raise OpenCVEngineError(f"the opencv engine needs OpenCV's Python module (cv2), 4.x: {e}") from None
    version = getattr(cv2, "__version__", "0")
    try:
        major_minor = tuple(int(p) for p in re.findall(r"\d+", version)[:2])
    except ValueError:
        major_minor = (0, 0)
    if major_minor >= (5, 0):
        raise OpenCVEngineError(f"OpenCV {version} has no Caffe importer (removed in OpenCV 5); the opencv engine "
                                "needs OpenCV 4.x")
    if major_minor < (3, 4) or not hasattr(cv2, "dnn"):
        raise OpenCVEngineError(f"OpenCV {version} is too old for the opencv engine (needs 4.x with the dnn module)")
    return cv2


# ----------------------------------------------------------------------------------------------------
# the prototxt: layer blocks with their text


def _top_level_blocks(text):
    """(field, start, end) of each top-level field whose value is a block, in order; text[start:end] is the
    field with its block, as written."""
    blocks = []
    depth = 0
    pos = 0
    end = len(text)
    last_word = None
    start = None
    name = None
    while pos < end:
        m = prototxt._TOKEN.match(text, pos)
        if m is None:
            raise prototxt.PrototxtError(f"line {text.count(chr(10), 0, pos) + 1}: cannot read "
                                         f"{text[pos:pos + 20]!r}")
        pos = m.end()
        punct = m.group("punct")
        if m.group("word") is not None and depth == 0:
            last_word = (m.group("word"), m.start())
        elif punct in ("{", "<"):
            if depth == 0:
                if last_word is None:
                    raise prototxt.PrototxtError("a block without a field name")
                name, start = last_word
            depth += 1
        elif punct in ("}", ">"):
            depth -= 1
            if depth == 0:
                blocks.append((name, start, m.end()))
                last_word = None
    return blocks


def _quote(text):
    return '"' + str(text).replace("\\", "\\\\").replace('"', '\\"') + '"'


def _input_text(name, shape):
    dims = " ".join(f"dim: {int(d)}" for d in shape)
    return f"input: {_quote(name)}\ninput_shape {{ {dims} }}\n"


def _ints(values):
    return [int(v) for v in values if not isinstance(v, list)]


Step = collections.namedtuple("Step", ["index", "name", "type", "fields", "text", "bottoms", "tops"])


def read_network(text):
    """The network's inputs (name -> declared shape or None) and its computing layers (Step, index 0..n-1)."""
    tree = prototxt.parse(text)
    inputs = collections.OrderedDict()
    names = [v for k, v in tree if k == "input" and not isinstance(v, list)]
    shapes = [_ints(prototxt._all(v, "dim")) for k, v in tree if k == "input_shape" and isinstance(v, list)]
    dims = _ints([v for k, v in tree if k == "input_dim"])
    for i, name in enumerate(names):
        if i < len(shapes):
            inputs[name] = shapes[i]
        elif len(names) == 1 and dims:
            inputs[name] = dims
        elif len(dims) >= 4 * (i + 1):
            inputs[name] = dims[4 * i:4 * i + 4]
        else:
            inputs[name] = None

    entries = [(k, v) for k, v in tree if isinstance(v, list)]
    blocks = _top_level_blocks(text)
    if [k for k, _ in entries] != [b[0] for b in blocks]:
        raise prototxt.PrototxtError("the prototxt's blocks could not be located in its text")
    named = iter(prototxt.layers_from_tree(tree))
    steps = []
    for (key, fields), (_, start, end) in zip(entries, blocks):
        if key not in ("layer", "layers") or prototxt._train_only(fields):
            continue
        listed = next(named)
        if key == "layers" and isinstance(prototxt._first(fields, "layer"), list):
            raise OpenCVEngineError("a V0 prototxt (layers { layer { ... } }) is not supported by the opencv "
                                    "engine; upgrade it with Caffe's upgrade_net_proto_text")
        if not isinstance(prototxt._first(fields, "name"), str):
            raise OpenCVEngineError(f"layer {listed.index} ({listed.type}) has no name; the opencv engine runs "
                                    "layers by name")
        bottoms = [b for b in prototxt._all(fields, "bottom") if not isinstance(b, list)]
        tops = [t for t in prototxt._all(fields, "top") if not isinstance(t, list)]
        if listed.type == "Input":
            param = prototxt._first(fields, "input_param")
            shapes = [_ints(prototxt._all(s, "dim")) for s in prototxt._all(param or [], "shape")
                      if isinstance(s, list)]
            for i, top in enumerate(tops):
                inputs[top] = shapes[i] if i < len(shapes) else (shapes[0] if len(shapes) == 1 else None)
            continue
        steps.append(Step(len(steps), listed.name, listed.type, fields, text[start:end], bottoms, tops))
    return inputs, steps


def _depthwise_as_convolution(step, channels):
    """A DepthwiseConvolution block rewritten as a Convolution with group = input channels."""
    text = re.sub(r'\btype\s*:\s*"DepthwiseConvolution"', 'type: "Convolution"', step.text, count=1)
    param = prototxt._first(step.fields, "convolution_param")
    group = prototxt._first(param, "group") if isinstance(param, list) else None
    if group is None:
        text, count = re.subn(r"\bconvolution_param\s*:?\s*\{", f"convolution_param {{ group: {channels}", text,
                              count=1)
        if not count:
            raise OpenCVEngineError(f"layer {step.name!r}: DepthwiseConvolution without convolution_param")
    elif int(group) != channels:
        raise OpenCVEngineError(f"layer {step.name!r}: DepthwiseConvolution with group {group} on "
                                f"{channels} input channels")
    return text


# ----------------------------------------------------------------------------------------------------
# the engine


class _LayerNet:
    """One prototxt layer as its own OpenCV net."""

    def __init__(self, step, net, inputs, split):
        self.step = step
        self.net = net
        self.inputs = inputs  # unique bottom names, in order
        self.split = split  # a Split layer: OpenCV computes one output, every top is that blob

    def run(self, arrays):
        net = self.net
        for name, array in zip(self.inputs, arrays):
            net.setInput(array, name)
        tops = self.step.tops
        if len(tops) <= 1 or self.split:
            out = net.forward(self.step.name)
            return [out] * max(len(tops), 1)
        return list(net.forwardAndRetrieve([self.step.name])[0])


class OpenCVEngine(Engine):
    """OpenCV dnn, one net per layer (module docstring).

    ``OpenCVEngine(prototxt_path, weights_path=None, batch=None, input_array=None, seed=0, device="cpu")``:
    ``batch`` overrides the input's first dimension; ``input_array`` (float32, the input shape with the batch)
    replaces the seeded random input of the first network input; ``seed`` seeds generated weights and input;
    ``device`` is one of DEVICES ("gpu" means "cuda").
    """

    name = "opencv"
    simulated = False

    def __init__(self, prototxt_path, weights_path=None, batch=None, input_array=None, seed=0, device="cpu"):
        self.cv2 = load_cv2()
        Engine.__init__(self, [])
        self.version = self.cv2.__version__
        device = DEVICE_ALIASES.get(device, device)
        if device not in DEVICES:
            raise OpenCVEngineError(f"device {device!r}: the opencv engine knows {', '.join(DEVICES)}")
        self.device = device
        self.backend_name, self.target_name = DEVICES[device]
        self._check_device()
        self.prototxt_path = prototxt_path
        self.weights_path = weights_path
        self.weights_generated = weights_path is None
        self.seed = int(seed)
        try:
            with open(prototxt_path, "rb") as f:
                data = f.read()
        except OSError as e:
            raise OpenCVEngineError(f"cannot read {prototxt_path}: {e}") from None
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = data.decode("latin-1")
        self.text = text
        try:
            self.inputs, self.steps = read_network(text)
        except prototxt.PrototxtError as e:
            raise OpenCVEngineError(f"cannot read {prototxt_path}: {e}") from None
        if not self.steps:
            raise OpenCVEngineError(f"{prototxt_path} has no layers to run")
        self.layers = [Layer(s.index, s.name, s.type) for s in self.steps]
        self.input_shapes = self._input_shapes(batch, input_array)
        self.input_name = next(iter(self.input_shapes))
        self.input_shape = list(self.input_shapes[self.input_name])
        self.batch = self.input_shape[0] if self.input_shape else None
        self.input_array = input_array
        self.weights = collections.OrderedDict()  # layer name -> [float32 arrays], layers with weights only
        self.blobs = {}  # blob name -> its current array (the per-layer chain's state)
        self.inputs_data = collections.OrderedDict()
        self._layer_nets = []
        self._full_net = None
        self._tmpdir = None

    # -- construction helpers
    def _check_device(self):
        dnn = self.cv2.dnn
        for attr in (self.backend_name, self.target_name):
            if not hasattr(dnn, attr):
                raise OpenCVEngineError(f"OpenCV {self.version} has no {attr} (device {self.device!r})")
        if self.device.startswith("cuda"):
            cuda = getattr(self.cv2, "cuda", None)
            count = cuda.getCudaEnabledDeviceCount() if cuda is not None else 0
            if count < 1:
                raise OpenCVEngineError(f"device {self.device!r}: this OpenCV ({self.version}) was built without "
                                        "CUDA or sees no CUDA device")
        if self.device.startswith("opencl") and not self.cv2.ocl.haveOpenCL():
            raise OpenCVEngineError(f"device {self.device!r}: OpenCV sees no OpenCL")

    def _input_shapes(self, batch, input_array):
        shapes = collections.OrderedDict((k, list(v) if v else None) for k, v in self.inputs.items())
        if not shapes:
            raise OpenCVEngineError(f"{self.prototxt_path} declares no input (input: or an Input layer)")
        first = next(iter(shapes))
        if input_array is not None:
            array_shape = [int(d) for d in np.shape(input_array)]
            declared = shapes[first]
            if declared is not None and (len(declared) != len(array_shape) or declared[1:] != array_shape[1:]):
                raise OpenCVEngineError(f"the input array's shape {array_shape} does not fit the prototxt's input "
                                        f"{first!r} of shape {declared} (only the batch may differ)")
            if batch is not None and int(batch) != array_shape[0]:
                raise OpenCVEngineError(f"the input array holds a batch of {array_shape[0]}, not {batch}")
            batch = array_shape[0]
            shapes[first] = array_shape
        for name, shape in shapes.items():
            if not shape:
                raise OpenCVEngineError(f"{self.prototxt_path}: input {name!r} has no shape")
            if batch is not None:
                shape[0] = int(batch)
        return shapes

    def info(self):
        info = Engine.info(self)
        info["fused"] = False
        info["backend"] = self.backend_name
        info["target"] = self.target_name
        info["weights_generated"] = self.weights_generated
        info["execution"] = "one OpenCV net per prototxt layer"
        try:
            info["threads"] = int(self.cv2.getNumThreads())
        except Exception:  # informative only
            info["threads"] = None
        return info

    # -- OpenCV nets
    def _read_net(self, proto_text, model_bytes, what):
        cv2 = self.cv2
        proto = proto_text.encode("utf-8")
        try:
            try:
                if self._tmpdir is not None:
                    raise TypeError("files")
                net = cv2.dnn.readNetFromCaffe(np.frombuffer(proto, dtype=np.uint8),
                                               np.frombuffer(model_bytes, dtype=np.uint8))
            except (TypeError, cv2.error) as e:
                if not isinstance(e, TypeError) and "overload" not in str(e).lower():
                    raise
                # an OpenCV without the in-memory overload: go through files from now on
                if self._tmpdir is None:
                    self._tmpdir = tempfile.mkdtemp(prefix="layerjoule-opencv-")
                net = self._read_net_from_files(proto, model_bytes)
        except cv2.error as e:
            raise OpenCVEngineError(f"{what}: OpenCV cannot build it: {_short(e)}") from None
        net.enableFusion(False)
        net.setPreferableBackend(getattr(cv2.dnn, self.backend_name))
        net.setPreferableTarget(getattr(cv2.dnn, self.target_name))
        return net

    def _read_net_from_files(self, proto, model_bytes):
        proto_path = os.path.join(self._tmpdir, "net.prototxt")
        with open(proto_path, "wb") as f:
            f.write(proto)
        if not model_bytes:
            return self.cv2.dnn.readNetFromCaffe(proto_path)
        model_path = os.path.join(self._tmpdir, "net.caffemodel")
        with open(model_path, "wb") as f:
            f.write(model_bytes)
        return self.cv2.dnn.readNetFromCaffe(proto_path, model_path)

    def _layer_text(self, step, shapes):
        text = step.text
        if step.type == "DepthwiseConvolution":
            text = _depthwise_as_convolution(step, int(shapes[step.bottoms[0]][1]))
        return text

    # -- Engine interface
    def setup(self):
        """Read the weights, make the input, build every layer's net while running the chain once (each net's
        input shapes are the arrays the previous layers produced), then the whole-network net."""
        try:
            self._setup()
        finally:
            if self._tmpdir is not None:
                shutil.rmtree(self._tmpdir, ignore_errors=True)
                self._tmpdir = None

    def _setup(self):
        given = self._read_weights() if self.weights_path else None
        self._make_inputs()
        self.blobs = dict(self.inputs_data)
        shapes = {name: list(a.shape) for name, a in self.blobs.items()}
        texts = []
        models = []
        ordinal = 0
        self._layer_nets = []
        self.weights = collections.OrderedDict()
        for step in self.steps:
            missing = [b for b in step.bottoms if b not in shapes]
            if step.type in DATA_TYPES or missing or not step.bottoms:
                raise OpenCVEngineError(
                    f"layer {step.name!r} ({step.type}) reads "
                    + (f"blob {missing[0]!r}, which no input or earlier layer produces" if missing
                       else "no input") + ": not a deploy network the opencv engine can run")
            input_shapes = [shapes[b] for b in step.bottoms]
            blobs = self._layer_weights(step, input_shapes, given, ordinal)
            if blobs:
                ordinal += 1
                self.weights[step.name] = blobs
            unique = list(collections.OrderedDict.fromkeys(step.bottoms))
            layer_text = self._layer_text(step, shapes)
            texts.append(layer_text)
            proto = "".join(_input_text(b, shapes[b]) for b in unique) + layer_text + "\n"
            model = caffemodel.write_bytes([(step.name, step.type, blobs)]) if blobs else b""
            models.append(model)
            net = self._read_net(proto, model, f"layer {step.name!r} ({step.type})")
            layer_net = _LayerNet(step, net, unique, step.type == "Split")
            self._layer_nets.append(layer_net)
            try:
                self.forward_layer(step.index)  # the one chain pass: every blob exists afterwards
            except self.cv2.error as e:
                raise OpenCVEngineError(f"layer {step.name!r} ({step.type}): OpenCV cannot run it: {_short(e)}") \
                    from None
            for top in step.tops:
                shapes[top] = list(self.blobs[top].shape)
        proto = "".join(_input_text(n, a.shape) for n, a in self.inputs_data.items()) + "\n".join(texts) + "\n"
        model = b"".join(models)  # the layers' caffemodels, concatenated, are one caffemodel with every layer
        del models
        self._full_net = self._read_net(proto, model, "the whole network")
        self._full_output = self.steps[-1].name

    def _read_weights(self):
        try:
            net = caffemodel.read_file(self.weights_path)
        except OSError as e:
            raise OpenCVEngineError(f"cannot read weights {self.weights_path}: {e}") from None
        except caffemodel.CaffemodelError as e:
            raise OpenCVEngineError(f"weights {self.weights_path}: not a caffemodel this runner can read: {e}") \
                from None
        return net.blobs_by_layer()

    def _layer_weights(self, step, input_shapes, given, ordinal):
        try:
            expected = weights_mod.blob_shapes(step.name, step.type, step.fields, input_shapes)
            if given is None:
                rng = weights_mod.layer_rng(self.seed, ordinal)
                return weights_mod.generate(step.type, expected, rng, len(step.bottoms)) if expected else []
            blobs = given.get(step.name)
            if not expected:  # a layer this runner does not know to have weights: OpenCV gets what the file has
                return [np.ascontiguousarray(b.data, dtype=np.float32) for b in blobs or []]
            if not blobs:
                raise weights_mod.WeightsError(f"weights {self.weights_path}: no blobs for layer {step.name!r} "
                                               f"({step.type}), which needs {len(expected)}")
            return weights_mod.check_shapes(step.name, expected, blobs)
        except weights_mod.WeightsError as e:
            prefix = f"{self.weights_path}: " if given is not None else ""
            raise OpenCVEngineError(prefix + str(e)) from None

    def _make_inputs(self):
        self.inputs_data = collections.OrderedDict()
        for i, (name, shape) in enumerate(self.input_shapes.items()):
            if i == 0 and self.input_array is not None:
                data = np.ascontiguousarray(self.input_array, dtype=np.float32)
            else:
                rng = np.random.RandomState([self.seed, 1] if i == 0 else [self.seed, 1, i])
                data = rng.standard_normal(shape).astype(np.float32)
            self.inputs_data[name] = data

    def _inputs_of(self, layer_net):
        return [self.blobs[name] for name in layer_net.inputs]

    def _store(self, layer_net, outputs):
        tops = layer_net.step.tops
        if len(outputs) < len(tops):
            raise OpenCVEngineError(f"layer {layer_net.step.name!r}: OpenCV gave {len(outputs)} outputs for "
                                    f"{len(tops)} tops")
        for name, array in zip(tops, outputs):
            self.blobs[name] = array

    def forward_layer(self, index):
        """Run layer ``index``'s net once on its bottoms' current arrays and store its tops."""
        layer_net = self._layer_nets[index]
        self._store(layer_net, layer_net.run(self._inputs_of(layer_net)))

    def run_layer(self, index, min_ns=0):
        """Layer ``index`` once, or back to back until the interval lasts at least ``min_ns``; its inputs are
        taken once, before the first run, so an in-place layer never runs on its own output. Returns
        (t_start_ns, t_end_ns, repeats)."""
        layer_net = self._layer_nets[index]
        arrays = self._inputs_of(layer_net)
        run = layer_net.run
        t0 = monotonic_ns()
        outputs = run(arrays)
        t1 = monotonic_ns()
        repeats = 1
        while t1 - t0 < min_ns:
            outputs = run(arrays)
            t1 = monotonic_ns()
            repeats += 1
        self._store(layer_net, outputs)
        return t0, t1, repeats

    def forward_network(self):
        """One plain forward of the whole network (its own OpenCV net, same weights and input, fusion off);
        returns the last layer's first output."""
        net = self._full_net
        for name, array in self.inputs_data.items():
            net.setInput(array, name)
        return net.forward(self._full_output)

    def output(self):
        """The per-layer chain's final output: the last layer's first top."""
        return self.blobs[self.steps[-1].tops[0]]

    def write_weights(self, path):
        """Write the weights in use (generated or read) as a caffemodel (runner/caffemodel.py)."""
        types = {s.name: s.type for s in self.steps}
        return caffemodel.write_file(path, [(n, types.get(n), b) for n, b in self.weights.items()])


def _short(error):
    """The informative line of a cv2.error."""
    text = str(error).strip()
    lines = [line for line in text.splitlines() if line.strip()]
    for line in reversed(lines):
        if "error:" in line:
            return line.split("error:", 1)[1].strip()
    return lines[-1] if lines else text
