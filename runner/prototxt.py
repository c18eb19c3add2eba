"""A small reader of Caffe network definitions (.prototxt, protobuf text format).

It is not a protobuf parser: it tokenises the text format well enough to walk the nested blocks, and reads
what the runner needs from the top level: the layer list (name and type, in order) and the input shape.

Both formats are understood:
- ``layer { name: "conv1" type: "Convolution" ... }`` (current Caffe),
- ``layers { name: "conv1" type: CONVOLUTION ... }`` (legacy V1, enum types mapped to current names), and the
  older V0 form ``layers { layer { name: "conv1" type: "conv" } }``.
Nested blocks (``convolution_param { ... }``) are skipped as a whole, ``#`` comments are ignored, and
top-level ``input:`` fields are not layers. Layers whose ``include`` names only the TRAIN phase are left out,
as Caffe leaves them out of a deploy (TEST) net.
"""

import collections
import re

Layer = collections.namedtuple("Layer", ["index", "name", "type"])

# Caffe's V1LayerParameter.LayerType enum -> the type names of current Caffe (upgrade_proto.cpp).
V1_TYPES = {
    "ABSVAL": "AbsVal",
    "ACCURACY": "Accuracy",
    "ARGMAX": "ArgMax",
    "BNLL": "BNLL",
    "CONCAT": "Concat",
    "CONTRASTIVE_LOSS": "ContrastiveLoss",
    "CONVOLUTION": "Convolution",
    "DATA": "Data",
    "DECONVOLUTION": "Deconvolution",
    "DROPOUT": "Dropout",
    "DUMMY_DATA": "DummyData",
    "EUCLIDEAN_LOSS": "EuclideanLoss",
    "ELTWISE": "Eltwise",
    "EXP": "Exp",
    "FLATTEN": "Flatten",
    "HDF5_DATA": "HDF5Data",
    "HDF5_OUTPUT": "HDF5Output",
    "HINGE_LOSS": "HingeLoss",
    "IM2COL": "Im2col",
    "IMAGE_DATA": "ImageData",
    "INFOGAIN_LOSS": "InfogainLoss",
    "INNER_PRODUCT": "InnerProduct",
    "LRN": "LRN",
    "MEMORY_DATA": "MemoryData",
    "MULTINOMIAL_LOGISTIC_LOSS": "MultinomialLogisticLoss",
    "MVN": "MVN",
    "POOLING": "Pooling",
    "POWER": "Power",
    "RELU": "ReLU",
    "SIGMOID": "Sigmoid",
    "SIGMOID_CROSS_ENTROPY_LOSS": "SigmoidCrossEntropyLoss",
    "SILENCE": "Silence",
    "SOFTMAX": "Softmax",
    "SOFTMAX_LOSS": "SoftmaxWithLoss",
    "SPLIT": "Split",
    "SLICE": "Slice",
    "TANH": "TanH",
    "WINDOW_DATA": "WindowData",
    "THRESHOLD": "Threshold",
}

# V0 (pre-2014) string types -> current names (upgrade_proto.cpp, UpgradeV0LayerType).
V0_TYPES = {
    "accuracy": "Accuracy",
    "bnll": "BNLL",
    "concat": "Concat",
    "conv": "Convolution",
    "data": "Data",
    "dropout": "Dropout",
    "euclidean_loss": "EuclideanLoss",
    "flatten": "Flatten",
    "hdf5_data": "HDF5Data",
    "hdf5_output": "HDF5Output",
    "im2col": "Im2col",
    "images": "ImageData",
    "infogain_loss": "InfogainLoss",
    "innerproduct": "InnerProduct",
    "lrn": "LRN",
    "multinomial_logistic_loss": "MultinomialLogisticLoss",
    "pool": "Pooling",
    "relu": "ReLU",
    "sigmoid": "Sigmoid",
    "softmax": "Softmax",
    "softmax_loss": "SoftmaxWithLoss",
    "split": "Split",
    "tanh": "TanH",
    "window_data": "WindowData",
}


class PrototxtError(ValueError):
    """The text cannot be read as a network definition."""


_TOKEN = re.compile(
    r"""\s+|\#[^\n]*                # whitespace, comment (skipped)
      |(?P<str>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')
      |(?P<punct>[{}<>:;,\[\]])
      |(?P<word>[^\s{}<>:;,\[\]"'\#]+)""",
    re.VERBOSE,
)

_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "'": "'", "\\": "\\"}


def _unquote(text):
    body = text[1:-1]
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(1)), body)


def _tokens(text):
    pos = 0
    end = len(text)
    while pos < end:
        m = _TOKEN.match(text, pos)
        if m is None:
            line = text.count("\n", 0, pos) + 1
            raise PrototxtError(f"line {line}: cannot read {text[pos:pos + 20]!r}")
        pos = m.end()
        if m.group("str") is not None:
            yield ("str", _unquote(m.group("str")))
        elif m.group("punct") is not None:
            yield ("punct", m.group("punct"))
        elif m.group("word") is not None:
            yield ("word", m.group("word"))


def parse(text):
    """Parse protobuf text format into nested lists of (field, value) pairs.

    A scalar value is a string (quotes removed); a message value is again a list of (field, value) pairs.
    Repeated fields simply occur more than once. List values (``dim: [1, 3]``) become several pairs.
    """
    root = []
    stack = [root]
    closers = []
    toks = list(_tokens(text))
    i = 0
    n = len(toks)
    while i < n:
        kind, val = toks[i]
        if kind == "punct" and val in "}>":
            if not closers or closers[-1] != val:
                raise PrototxtError(f"unbalanced {val!r}")
            closers.pop()
            stack.pop()
            i += 1
            continue
        if kind == "punct" and val in ";,":
            i += 1
            continue
        if kind != "word":
            raise PrototxtError(f"expected a field name, found {val!r}")
        field = val
        i += 1
        if i < n and toks[i] == ("punct", ":"):
            i += 1
        if i >= n:
            raise PrototxtError(f"field {field!r} has no value")
        kind, val = toks[i]
        if kind == "punct" and val in "{<":
            child = []
            stack[-1].append((field, child))
            stack.append(child)
            closers.append("}" if val == "{" else ">")
            i += 1
        elif kind == "punct" and val == "[":
            i += 1
            while i < n and toks[i] != ("punct", "]"):
                if toks[i] != ("punct", ","):
                    stack[-1].append((field, toks[i][1]))
                i += 1
            i += 1
        elif kind in ("str", "word"):
            value = val
            i += 1
            # adjacent string literals are concatenated, as protobuf does
            while kind == "str" and i < n and toks[i][0] == "str":
                value += toks[i][1]
                i += 1
            stack[-1].append((field, value))
        else:
            raise PrototxtError(f"field {field!r}: unexpected {val!r}")
    if closers:
        raise PrototxtError(f"a block is not closed (missing {closers[-1]!r})")
    return root


def _first(fields, name):
    for key, value in fields:
        if key == name:
            return value
    return None


def _all(fields, name):
    return [value for key, value in fields if key == name]


def _train_only(fields):
    includes = [v for v in _all(fields, "include") if isinstance(v, list)]
    if not includes:
        return False
    phases = [_first(inc, "phase") for inc in includes]
    return all(p == "TRAIN" for p in phases)


def _layer_name_type(key, fields):
    if key == "layers":
        inner = _first(fields, "layer")
        if isinstance(inner, list):  # V0: layers { layer { name type } }
            name = _first(inner, "name")
            raw = _first(inner, "type")
            return name, V0_TYPES.get(str(raw).lower(), raw)
        name = _first(fields, "name")
        raw = _first(fields, "type")
        return name, V1_TYPES.get(raw, raw)
    return _first(fields, "name"), _first(fields, "type")


def layers_from_tree(tree):
    """The layers of a parsed definition, in order, as Layer(index, name, type)."""
    out = []
    for key, value in tree:
        if key not in ("layer", "layers") or not isinstance(value, list):
            continue
        if _train_only(value):
            continue
        name, type_ = _layer_name_type(key, value)
        if isinstance(type_, list):
            type_ = None
        if not name or isinstance(name, list):
            name = f"layer{len(out)}"
        out.append(Layer(len(out), name, type_ or "Unknown"))
    return out


def _ints(values):
    try:
        return [int(v) for v in values if not isinstance(v, list)]
    except ValueError:
        return None


def input_shape_from_tree(tree):
    """The first input's shape, from top-level input_shape / input_dim, or an Input layer; else None."""
    shape = _first(tree, "input_shape")
    if isinstance(shape, list):
        dims = _ints(_all(shape, "dim"))
        if dims:
            return dims
    dims = _ints(_all(tree, "input_dim"))
    if dims and len(dims) >= 4:
        return dims[:4]
    if dims:
        return dims
    for key, value in tree:
        if key != "layer" or not isinstance(value, list) or _first(value, "type") != "Input":
            continue
        param = _first(value, "input_param")
        shape = _first(param, "shape") if isinstance(param, list) else None
        if isinstance(shape, list):
            dims = _ints(_all(shape, "dim"))
            if dims:
                return dims
    return None


class NetDefinition:
    """What the runner reads from a .prototxt: network name, layers, input shape."""

    def __init__(self, name, layers, input_shape):
        self.name = name
        self.layers = layers
        self.input_shape = input_shape


def read_text(text):
    tree = parse(text)
    name = _first(tree, "name")
    return NetDefinition(name if isinstance(name, str) else None, layers_from_tree(tree),
                         input_shape_from_tree(tree))


def read_file(path):
    """Read a .prototxt file. Raises OSError when unreadable, PrototxtError when not understood."""
    with open(path, "rb") as f:
        data = f.read()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    return read_text(text)
