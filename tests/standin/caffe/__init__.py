"""A STAND-IN for pycaffe, for testing the runner's caffe engine where Caffe cannot run (GPU mode here).

It is not Caffe: it computes nothing. It mimics the parts of pycaffe's API the engine uses (set_mode_cpu/gpu,
set_device, TEST, Net(prototxt, phase[, weights=]) with inputs, outputs, blobs, params, layers, _layer_names,
layer_dict, reshape() and forward(start=, end=)) and records every call in CALLS so that tests can check the
order of what the engine did. Layer lists follow Caffe's behaviour: an `input` layer first for `input:` fields.
Parameter blobs get small made-up shapes (the stand-in infers no shapes).
"""

import collections

import numpy as np

from runner import prototxt

__version__ = "stand-in"
TEST = 1
CALLS = []
PARAM_SHAPES = {
    "Convolution": [(8, 3, 3, 3), (8,)],
    "InnerProduct": [(10, 32), (10,)],
    "BatchNorm": [(8,), (8,), (1,)],
    "Scale": [(8,), (8,)],
    "PReLU": [(8,)],
}


def set_mode_cpu():
    CALLS.append(("set_mode_cpu",))


def set_mode_gpu():
    CALLS.append(("set_mode_gpu",))


def set_device(gpu_id):
    CALLS.append(("set_device", gpu_id))


class Blob:
    def __init__(self, shape):
        self.data = np.zeros(shape, dtype=np.float32)

    def reshape(self, *shape):
        self.data = np.zeros(shape, dtype=np.float32)


class _LayerObject:
    def __init__(self, layer_type):
        self.type = layer_type


class Net:
    def __init__(self, network_file, phase, weights=None):
        CALLS.append(("Net", network_file, phase, weights))
        definition = prototxt.read_file(network_file)
        shape = list(definition.input_shape or [1, 3, 8, 8])
        names = ["input"] + [layer.name for layer in definition.layers]
        types = ["Input"] + [layer.type for layer in definition.layers]
        self._layer_names = names
        self.layers = [_LayerObject(t) for t in types]
        self.layer_dict = collections.OrderedDict((n, layer) for n, layer in zip(names, self.layers, strict=True))
        self.inputs = ["data"]
        self.outputs = ["output"]
        self.blobs = collections.OrderedDict([("data", Blob(shape)), ("output", Blob((shape[0], 10)))])
        self.params = collections.OrderedDict(
            (n, [Blob(s) for s in PARAM_SHAPES[t]]) for n, t in zip(names, types, strict=True) if t in PARAM_SHAPES)
        self.weights = weights

    def reshape(self):
        CALLS.append(("reshape",))
        self.blobs["output"].reshape(self.blobs["data"].data.shape[0], 10)

    def forward(self, start=None, end=None):
        CALLS.append(("forward", start, end))
        return {"output": self.blobs["output"].data}
