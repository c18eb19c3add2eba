"""Reader of Caffe network definitions: a deploy prototxt (text format) and, optionally, a .caffemodel's blob shapes.

Both Caffe formats are read with protobuf against caffe.proto: current `layer { type: "Convolution" }` and legacy
V1 `layers { type: CONVOLUTION }`. The result is a plain list of layers in prototxt order, with the network inputs
and their shapes, whichever way the prototxt declares them (`input:` with `input_shape` or `input_dim`, or Input
layers).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from google.protobuf import message as protobuf_message
from google.protobuf import text_format

from importer.errors import InputError
from importer.model import caffe_pb2

# Legacy V1 enum names -> current type names.
V1_TYPES = {
    "ABSVAL": "AbsVal", "ACCURACY": "Accuracy", "ARGMAX": "ArgMax", "BNLL": "BNLL", "CONCAT": "Concat",
    "CONTRASTIVE_LOSS": "ContrastiveLoss", "CONVOLUTION": "Convolution", "DATA": "Data",
    "DECONVOLUTION": "Deconvolution", "DROPOUT": "Dropout", "DUMMY_DATA": "DummyData",
    "EUCLIDEAN_LOSS": "EuclideanLoss", "ELTWISE": "Eltwise", "EXP": "Exp", "FLATTEN": "Flatten",
    "HDF5_DATA": "HDF5Data", "HDF5_OUTPUT": "HDF5Output", "HINGE_LOSS": "HingeLoss", "IM2COL": "Im2col",
    "IMAGE_DATA": "ImageData", "INFOGAIN_LOSS": "InfogainLoss", "INNER_PRODUCT": "InnerProduct", "LRN": "LRN",
    "MEMORY_DATA": "MemoryData", "MULTINOMIAL_LOGISTIC_LOSS": "MultinomialLogisticLoss", "MVN": "MVN",
    "POOLING": "Pooling", "POWER": "Power", "RELU": "ReLU", "SIGMOID": "Sigmoid",
    "SIGMOID_CROSS_ENTROPY_LOSS": "SigmoidCrossEntropyLoss", "SILENCE": "Silence", "SOFTMAX": "Softmax",
    "SOFTMAX_LOSS": "SoftmaxWithLoss", "SPLIT": "Split", "SLICE": "Slice", "TANH": "TanH",
    "WINDOW_DATA": "WindowData", "THRESHOLD": "Threshold",
}
# Messages whose fields decide a layer's shape or cost: an unknown field in one of them is an error, because
# skipping it could silently change the result. Unknown fields elsewhere (training settings, data layers) are
# skipped with a warning.
COST_MESSAGES = {
    d.full_name for d in caffe_pb2.DESCRIPTOR.message_types_by_name.values()
    if d.name.endswith("Parameter") and d.name not in {"NetParameter", "LayerParameter", "V1LayerParameter",
                                                       "FillerParameter"}
} | {"layerjoule.caffe.BlobShape"}
UNKNOWN_FIELD = re.compile(r'Message type "([\w.]+)" has no field named "(\w+)"')


@dataclass
class Layer:
    name: str
    type: str
    bottoms: list[str]
    tops: list[str]
    proto: protobuf_message.Message  # LayerParameter or V1LayerParameter: the *_param fields are read from it

    def param(self, name: str):
        """The layer's `<name>_param` message (its defaults when the prototxt leaves it out)."""
        return getattr(self.proto, f"{name}_param")

    def has_param(self, name: str) -> bool:
        return self.proto.HasField(f"{name}_param")


@dataclass
class Network:
    name: str
    path: str
    inputs: dict[str, list[int]]  # blobs declared with `input:` (Input layers are layers)
    layers: list[Layer]
    warnings: list[str] = field(default_factory=list)


def read_prototxt(path: str | Path) -> Network:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")  # a byte order mark (some editors write one) is dropped
    except FileNotFoundError:
        raise InputError("no such file", path=str(path)) from None
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(f"cannot be read as UTF-8 text ({error})", path=str(path)) from None
    return parse_prototxt(text, str(path))


def parse_prototxt(text: str, name: str = "<prototxt>") -> Network:
    warnings: list[str] = []
    net = caffe_pb2.NetParameter()
    try:
        text_format.Parse(text, net)
    except text_format.ParseError as error:
        unknown = UNKNOWN_FIELD.search(str(error))
        if not unknown or unknown.group(1) in COST_MESSAGES:
            raise _parse_error(error, name) from None
        warnings.append(
            f"line {error.GetLine()}: field {unknown.group(2)!r} of {unknown.group(1).split('.')[-1]} skipped "
            "(not needed for the cost analysis); other such fields may be skipped too"
        )
        net = caffe_pb2.NetParameter()
        try:
            text_format.Parse(text, net, allow_unknown_field=True)
        except text_format.ParseError as second:
            raise _parse_error(second, name) from None
    if net.layer and net.layers:
        raise InputError("mixes `layer {}` and legacy `layers {}` blocks; expected one format", path=name)
    return Network(
        name=net.name or Path(name).stem,
        path=name,
        inputs=_declared_inputs(net, name),
        layers=[_layer(proto) for proto in (net.layer or net.layers) if _in_test_phase(proto)],
        warnings=warnings,
    )


def _parse_error(error: text_format.ParseError, name: str) -> InputError:
    message = str(error)
    message = re.sub(r"^\d+:\d+ : ", "", message)
    return InputError(f"{message}; expected Caffe prototxt text", path=name,
                      place=f"line {error.GetLine()} column {error.GetColumn()}")


def _declared_inputs(net, name: str) -> dict[str, list[int]]:
    inputs: dict[str, list[int]] = {}
    dims = list(net.input_dim)
    if net.input_shape and dims:
        raise InputError("declares input shapes with both input_shape and input_dim; expected one of them", path=name)
    for i, blob in enumerate(net.input):
        if i < len(net.input_shape):
            inputs[blob] = [int(d) for d in net.input_shape[i].dim]
        elif len(dims) >= 4 * (i + 1):
            inputs[blob] = [int(d) for d in dims[4 * i: 4 * i + 4]]
        else:
            raise InputError(f"input {blob!r} has no shape; expected an input_shape {{ dim: ... }} or four input_dim",
                             path=name)
        if any(d <= 0 for d in inputs[blob]):
            raise InputError(f"input {blob!r} has shape {inputs[blob]}; expected positive dimensions", path=name)
    return inputs


def _in_test_phase(proto) -> bool:
    """Deploy analysis: keep layers that a TEST-phase net includes."""
    test = caffe_pb2.TEST
    if any(rule.HasField("phase") and rule.phase == test for rule in proto.exclude):
        return False
    if proto.include:
        return any(not rule.HasField("phase") or rule.phase == test for rule in proto.include)
    return True


def _layer(proto) -> Layer:
    if isinstance(proto, caffe_pb2.V1LayerParameter):
        layer_type = V1_TYPES.get(caffe_pb2.V1LayerParameter.LayerType.Name(proto.type), "None")
    else:
        layer_type = proto.type
    return Layer(name=proto.name, type=layer_type, bottoms=list(proto.bottom), tops=list(proto.top), proto=proto)


def read_caffemodel_shapes(path: str | Path) -> dict[str, list[list[int]]]:
    """Shapes of every layer's blobs in a binary .caffemodel, by layer name (legacy 4-D shapes as 4 dims)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError("no such file", path=str(path)) from None
    except OSError as error:  # a folder, no permission
        raise InputError(f"cannot be read ({error.strerror}); expected a .caffemodel file", path=str(path)) from None
    net = caffe_pb2.NetParameter()
    try:
        net.ParseFromString(data)
    except protobuf_message.DecodeError as error:
        raise InputError(f"not a Caffe binary model ({error}); expected a .caffemodel", path=str(path)) from None
    shapes: dict[str, list[list[int]]] = {}
    for layer in list(net.layer) + list(net.layers):
        if layer.blobs:
            shapes[layer.name] = [
                [int(d) for d in blob.shape.dim] if blob.HasField("shape")
                else [blob.num, blob.channels, blob.height, blob.width]
                for blob in layer.blobs
            ]
    if not shapes:
        raise InputError("holds no layer blobs; expected a trained .caffemodel", path=str(path))
    return shapes
