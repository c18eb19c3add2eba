"""The pycaffe engine: Caffe itself runs the network, one layer at a time (Net.forward(start=L, end=L)).

Caffe's layer list is the one the net really runs: it includes layers Caffe adds on its own (an ``input`` layer
for ``input:`` fields, ``*_split`` layers where one blob feeds several layers); they are timed like the others.
On the GPU, Caffe returns before its kernels finish, so after each layer the runner waits for the device with
the CUDA runtime's cudaDeviceSynchronize (through ctypes), and the interval covers the layer's work.
"""

import ctypes
import ctypes.util
import importlib

import numpy as np

from runner import prototxt
from runner.engine import Engine, EngineError
from runner.engines import weights

CUDART_NAMES = ("libcudart.so", "libcudart.so.10.2", "libcudart.so.11.0", "libcudart.so.12")


def load_cuda_synchronize():
    """cudaDeviceSynchronize from the CUDA runtime, as a function returning the CUDA error code."""
    names = list(CUDART_NAMES)
    found = ctypes.util.find_library("cudart")
    if found:
        names.insert(0, found)
    for name in names:
        try:
            library = ctypes.CDLL(name)
        except OSError:
            continue
        synchronize = library.cudaDeviceSynchronize
        synchronize.restype = ctypes.c_int
        return synchronize
    raise EngineError("GPU mode needs the CUDA runtime (libcudart.so) to synchronise after each layer; not found")


class CaffeEngine(Engine):
    name = "caffe"

    def __init__(self, prototxt_path, weights_path=None, batch=None, input_array=None, seed=0, device="cpu",
                 gpu_id=0, caffe_module=None, synchronize=None):
        self.caffe = caffe_module if caffe_module is not None else importlib.import_module("caffe")
        Engine.__init__(self, [])
        self.prototxt_path = prototxt_path
        self.weights_path = weights_path
        self.batch = batch
        self.input_array = input_array
        self.seed = int(seed)
        self.device = device
        self.gpu_id = int(gpu_id)
        self.version = getattr(self.caffe, "__version__", None)
        self.weights_generated = weights_path is None
        self.input_shape = None
        self._synchronize = synchronize
        self.net = None

    def info(self):
        info = Engine.info(self)
        info["gpu_id"] = self.gpu_id if self.device == "gpu" else None
        info["weights_generated"] = self.weights_generated
        info["added_layers"] = list(getattr(self, "added_layers", []))
        return info

    def setup(self):
        caffe = self.caffe
        if self.device == "gpu":
            if self._synchronize is None:
                self._synchronize = load_cuda_synchronize()
            caffe.set_device(self.gpu_id)
            caffe.set_mode_gpu()
        else:
            caffe.set_mode_cpu()
        if self.weights_path:
            net = caffe.Net(self.prototxt_path, caffe.TEST, weights=self.weights_path)
        else:
            net = caffe.Net(self.prototxt_path, caffe.TEST)
        self.net = net
        input_name = net.inputs[0]
        shape = list(net.blobs[input_name].data.shape)
        if self.batch:
            shape[0] = self.batch
            net.blobs[input_name].reshape(*shape)
            net.reshape()
        self.input_shape = shape
        if self.weights_generated:
            self._generate_weights()
        data = self.input_array
        if data is None:
            data = np.random.RandomState([self.seed, 1]).standard_normal(shape).astype(np.float32)
        net.blobs[input_name].data[...] = data
        self.layers = [prototxt.Layer(i, name, net.layers[i].type) for i, name in enumerate(net._layer_names)]
        declared = set(layer.name for layer in prototxt.read_file(self.prototxt_path).layers)
        # Layers Caffe adds on its own (`input` for input: fields, `*_split` where a blob feeds several layers).
        self.added_layers = [layer.name for layer in self.layers if layer.name not in declared]
        self.forward_network()  # every blob exists before layers run on their own (layer-loop mode)

    def _generate_weights(self):
        # The same values as the opencv engine gives for the same seed (runner/engines/weights.py).
        for ordinal, (layer_name, blobs) in enumerate(self.net.params.items()):
            layer_type = self.net.layer_dict[layer_name].type
            values = weights.generate(layer_type, [blob.data.shape for blob in blobs],
                                      weights.layer_rng(self.seed, ordinal))
            for blob, value in zip(blobs, values):
                blob.data[...] = value

    def _wait(self):
        if self.device == "gpu":
            status = self._synchronize()
            if status != 0:
                raise EngineError(f"cudaDeviceSynchronize failed with CUDA error {status}")

    def forward_layer(self, index):
        name = self.layers[index].name
        self.net.forward(start=name, end=name)
        self._wait()

    def forward_network(self):
        outputs = self.net.forward()
        self._wait()
        return outputs[self.net.outputs[0]]

    def output(self):
        return self.net.blobs[self.net.outputs[0]].data
