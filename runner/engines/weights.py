"""Blob shapes each layer's weights must have, and generated (seeded) weights of those shapes.

Python 3.6, standard library + numpy (as old as 1.13: ``np.random.RandomState`` only).

A layer's blob shapes follow from its parameters (the ``*_param`` blocks of the prototxt, as parsed by
runner/prototxt.py's ``parse``) and the shapes of its inputs, as Caffe's layers set them up:

    Convolution            [num_output, C / group, kh, kw] (+ [num_output] if bias_term, default true)
    DepthwiseConvolution   the same with group = C (the input channels)
    Deconvolution          [C, num_output / group, kh, kw] (+ [num_output])
    InnerProduct           [num_output, K], K = product of the input dims from ``axis`` (default 1); [K, num_output]
                           with ``transpose: true`` (+ [num_output])
    BatchNorm              [C] mean, [C] variance, [1] moving-average factor
    Scale                  [C] gamma (the input dims from ``axis``, ``num_axes`` of them, default 1 and 1) unless
                           a second bottom gives it (+ beta, the same shape, if bias_term, default false)
    Bias                   [C] unless a second bottom gives it
    PReLU                  [C], or [1] with channel_shared
Other layer types have no weights. Kernel sizes come from ``kernel_h``/``kernel_w`` or ``kernel_size`` (one
value for every spatial axis, or one per axis).

Generated values are He-scaled so activations stay finite through deep nets: weights ~ N(0, 2 / fan_in) with
fan_in = the product of a weight blob's dims after the first; biases ~ N(0, 0.01^2); BatchNorm mean 0, variance
1, factor 1 (an identity but for eps); Scale gamma 1 and beta ~ N(0, 0.01^2); PReLU slopes 0.25. The k-th layer
that has weights (in prototxt order) draws from ``RandomState([seed, 2, k])``, blob after blob, as the pycaffe
engine's generator (runner/engines/caffe.py) does: for the layer types above, both engines put the same numbers
into the same network for the same seed.
"""

import numpy as np

from runner.engine import EngineError

WEIGHTED_TYPES = ("Convolution", "DepthwiseConvolution", "Deconvolution", "InnerProduct", "BatchNorm", "Scale",
                  "Bias", "PReLU")


class WeightsError(EngineError):
    """A layer's parameters or inputs do not give consistent weight shapes, or given weights do not fit."""


def _first(fields, name):
    for key, value in fields or []:
        if key == name:
            return value
    return None


def _all(fields, name):
    return [value for key, value in fields or [] if key == name]


def _int(fields, name, default, layer):
    value = _first(fields, name)
    if value is None or isinstance(value, list):
        return default
    try:
        return int(value)
    except ValueError:
        raise WeightsError(f"layer {layer!r}: {name} {value!r} is not an integer") from None


def _bool(fields, name, default):
    value = _first(fields, name)
    if value is None or isinstance(value, list):
        return default
    return str(value).lower() in ("true", "t", "1")


def _axis(axis, rank, layer):
    if axis < 0:
        axis += rank
    if not 0 <= axis < rank:
        raise WeightsError(f"layer {layer!r}: axis out of range for an input of {rank} axes")
    return axis


def _param(fields, name):
    value = _first(fields, name)
    return value if isinstance(value, list) else []


def _kernel(param, spatial, layer):
    kh = _first(param, "kernel_h")
    kw = _first(param, "kernel_w")
    if kh is not None or kw is not None:
        if kh is None or kw is None or spatial != 2:
            raise WeightsError(f"layer {layer!r}: kernel_h and kernel_w need each other and a 2-D input")
        return [_int(param, "kernel_h", 0, layer), _int(param, "kernel_w", 0, layer)]
    try:
        sizes = [int(v) for v in _all(param, "kernel_size") if not isinstance(v, list)]
    except ValueError:
        raise WeightsError(f"layer {layer!r}: kernel_size is not an integer") from None
    if len(sizes) == 1:
        return sizes * spatial
    if len(sizes) == spatial:
        return sizes
    raise WeightsError(f"layer {layer!r}: kernel_size gives {len(sizes)} values for {spatial} spatial axes")


def _convolution(layer, layer_type, fields, shapes):
    param = _param(fields, "convolution_param")
    x = shapes[0]
    axis = _axis(_int(param, "axis", 1, layer), len(x), layer)
    channels = int(x[axis])
    spatial = len(x) - axis - 1
    num_output = _int(param, "num_output", 0, layer)
    if num_output < 1:
        raise WeightsError(f"layer {layer!r}: convolution_param has no num_output")
    group = _int(param, "group", 1, layer)
    if layer_type == "DepthwiseConvolution":
        group = channels
    if group < 1 or channels % group or num_output % group:
        raise WeightsError(f"layer {layer!r}: group {group} divides neither {channels} input channels nor "
                           f"{num_output} outputs")
    kernel = _kernel(param, spatial, layer)
    if layer_type == "Deconvolution":
        weight = [channels, num_output // group] + kernel
    else:
        weight = [num_output, channels // group] + kernel
    out = [weight]
    if _bool(param, "bias_term", True):
        out.append([num_output])
    return out


def _inner_product(layer, fields, shapes):
    param = _param(fields, "inner_product_param")
    x = shapes[0]
    axis = _axis(_int(param, "axis", 1, layer), len(x), layer)
    k = int(np.prod(x[axis:], dtype=np.int64))
    num_output = _int(param, "num_output", 0, layer)
    if num_output < 1:
        raise WeightsError(f"layer {layer!r}: inner_product_param has no num_output")
    out = [[k, num_output] if _bool(param, "transpose", False) else [num_output, k]]
    if _bool(param, "bias_term", True):
        out.append([num_output])
    return out


def _scale_shape(layer, param, x):
    axis = _axis(_int(param, "axis", 1, layer), len(x), layer) if x else 0
    num_axes = _int(param, "num_axes", 1, layer)
    end = len(x) if num_axes == -1 else axis + num_axes
    if num_axes < -1 or end > len(x):
        raise WeightsError(f"layer {layer!r}: num_axes {num_axes} goes past the input's {len(x)} axes")
    return [int(d) for d in x[axis:end]]


def blob_shapes(layer, layer_type, fields, input_shapes):
    """The shapes of the layer's weight blobs, in Caffe's order ([] for a layer without weights).

    ``layer`` is the layer's name (for messages), ``fields`` its parsed block (runner.prototxt.parse),
    ``input_shapes`` the shapes of its bottoms, in order.
    """
    if layer_type not in WEIGHTED_TYPES:
        return []
    shapes = [list(s) for s in input_shapes]
    if not shapes:
        raise WeightsError(f"layer {layer!r} ({layer_type}) has no input")
    x = shapes[0]
    if layer_type in ("Convolution", "DepthwiseConvolution", "Deconvolution"):
        return _convolution(layer, layer_type, fields, shapes)
    if layer_type == "InnerProduct":
        return _inner_product(layer, fields, shapes)
    channels = int(x[1]) if len(x) > 1 else 1
    if layer_type == "BatchNorm":
        return [[channels], [channels], [1]]
    if layer_type == "PReLU":
        return [[1] if _bool(_param(fields, "prelu_param"), "channel_shared", False) else [channels]]
    if layer_type == "Scale":
        param = _param(fields, "scale_param")
        if len(shapes) > 1:  # the second bottom is the scale; only the bias is a blob
            return [list(shapes[1])] if _bool(param, "bias_term", False) else []
        shape = _scale_shape(layer, param, x)
        return [shape, shape] if _bool(param, "bias_term", False) else [shape]
    if layer_type == "Bias":
        if len(shapes) > 1:
            return []
        return [_scale_shape(layer, _param(fields, "bias_param"), x)]
    return []


def he_normal(shape, rng):
    """He-scaled normal values (std sqrt(2 / fan_in), fan_in = product of the dims after the first)."""
    fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else 1
    return (rng.standard_normal(shape) * np.sqrt(2.0 / max(fan_in, 1))).astype(np.float32)


def generate(layer_type, shapes, rng, input_count=1):
    """Values for blobs of these shapes (module docstring), drawn from ``rng`` blob after blob."""
    out = []
    for i, shape in enumerate(shapes):
        shape = tuple(int(d) for d in shape)
        if layer_type == "BatchNorm":
            blob = np.full(shape, 0.0 if i == 0 else 1.0, dtype=np.float32)
        elif len(shape) > 1 and layer_type not in ("Scale", "Bias", "PReLU"):
            blob = he_normal(shape, rng)
        elif i == 0 and layer_type == "Scale" and input_count == 1:
            blob = np.ones(shape, dtype=np.float32)
        elif i == 0 and layer_type == "PReLU":
            blob = np.full(shape, 0.25, dtype=np.float32)
        else:
            blob = (0.01 * rng.standard_normal(shape)).astype(np.float32)
        out.append(blob)
    return out


def layer_rng(seed, ordinal):
    """The random state of the ``ordinal``-th layer with weights (0-based, prototxt order)."""
    return np.random.RandomState([int(seed) & 0xFFFFFFFF, 2, int(ordinal)])


def check_shapes(layer, expected, blobs):
    """Raise WeightsError unless ``blobs`` (runner.caffemodel.Blob) fit the expected shapes; returns the blobs'
    data reshaped to the expected shapes (a legacy 4-D blob becomes, say, [out, K])."""
    from runner.caffemodel import shape_matches

    if len(blobs) != len(expected):
        raise WeightsError(f"weights for layer {layer!r}: {len(blobs)} blobs, the prototxt implies "
                           f"{len(expected)} ({', '.join(str(s) for s in expected) or 'none'})")
    out = []
    for i, (shape, blob) in enumerate(zip(expected, blobs)):
        if not shape_matches(shape, blob):
            raise WeightsError(f"weights for layer {layer!r}: blob {i} has shape {list(blob.shape)}, "
                               f"the prototxt and input shapes imply {list(shape)}")
        out.append(np.ascontiguousarray(blob.data.reshape(shape), dtype=np.float32))
    return out
