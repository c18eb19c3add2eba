"""Per-layer cost of a Caffe network: output shapes, MACs, FLOPs, parameters and memory traffic.

Conventions (docs/model-cost.md): MACs are the multiply-accumulates of Convolution (groups, dilation),
Deconvolution and InnerProduct, and FLOPs = 2 x MACs for them; other layers count their element-wise operations
(OPS_PER_ELEMENT). Parameters are learnable values; weight bytes also hold what is stored but not learned
(BatchNorm's statistics). Minimum memory traffic = read inputs + read weights + write outputs.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd

from importer.errors import InputError
from importer.model import caffe_pb2
from importer.model.net import Layer, Network, parse_prototxt

DTYPE_BYTES = {"fp32": 4, "fp16": 2}
INT64_MAX = 2**63 - 1  # the store keeps counts as BIGINT
# Layers whose MACs make the published totals (Conv + InnerProduct convention).
MAC_LAYERS = {"Convolution", "DepthwiseConvolution", "Deconvolution", "InnerProduct"}
# Operations per output element of element-wise layers (model-analysis conventions, and ours for the rest).
OPS_PER_ELEMENT = {"ReLU": 1, "PReLU": 2, "ELU": 3, "Sigmoid": 3, "TanH": 3, "BatchNorm": 2, "Bias": 1,
                   "Softmax": 3, "Power": 3}
ZERO_COST = {"Dropout", "Split", "Flatten", "Reshape", "Concat", "Slice", "Crop", "ShuffleChannel", "Permute"}


@dataclass
class LayerCost:
    index: int
    name: str
    type: str
    module: str
    bottoms: list[str]
    tops: list[str]
    input_shapes: list[list[int]]
    output_shapes: list[list[int]]
    macs: int = 0
    flops: int = 0
    params: int = 0
    weight_bytes: int = 0
    input_bytes: int = 0
    output_bytes: int = 0
    known: bool = True  # False: an unknown type treated as shape-preserving and free (--allow-unknown)
    param_shapes: list[list[int]] = field(default_factory=list)  # learnable/stored blobs, as Caffe shapes them

    @property
    def traffic_bytes(self) -> int:
        return self.input_bytes + self.weight_bytes + self.output_bytes

    @property
    def arithmetic_intensity(self) -> float | None:
        """FLOPs per byte of minimum memory traffic."""
        return self.flops / self.traffic_bytes if self.traffic_bytes else None


@dataclass
class Analysis:
    model: str
    dtype: str
    input_shapes: dict[str, list[int]]
    layers: list[LayerCost]
    warnings: list[str]

    def totals(self) -> dict:
        return {
            "macs": sum(c.macs for c in self.layers if c.type in MAC_LAYERS),
            "flops": sum(c.flops for c in self.layers),
            "params": sum(c.params for c in self.layers),
            "weight_bytes": sum(c.weight_bytes for c in self.layers),
            "input_bytes": sum(c.input_bytes for c in self.layers),
            "output_bytes": sum(c.output_bytes for c in self.layers),
            "traffic_bytes": sum(c.traffic_bytes for c in self.layers),
        }


def analyze(
    network: Network,
    input_shape: list[int] | None = None,
    batch: int | None = None,
    dtype: str = "fp32",
    allow_unknown: bool = False,
    weight_shapes: dict[str, list[list[int]]] | None = None,
) -> Analysis:
    """Shapes and costs of every layer, in prototxt order.

    input_shape replaces the shape of the network's first input; batch replaces dimension 0 of every input.
    weight_shapes (from a .caffemodel) are checked against the blob shapes the prototxt implies.
    """
    if dtype not in DTYPE_BYTES:
        raise InputError(f"data type {dtype!r} is not known; expected one of {', '.join(DTYPE_BYTES)}")
    if not network.layers:
        raise InputError("holds no layers; expected a Caffe network definition", path=network.path)
    element_bytes = DTYPE_BYTES[dtype]
    warnings = list(network.warnings)
    blobs: dict[str, list[int]] = {name: list(shape) for name, shape in network.inputs.items()}
    first_input_seen = False

    def override(shape: list[int]) -> list[int]:
        nonlocal first_input_seen
        if input_shape is not None and not first_input_seen:
            shape = list(input_shape)
        first_input_seen = True
        if batch is not None and shape:
            shape = [batch, *shape[1:]]
        return shape

    for name in list(blobs):
        blobs[name] = override(blobs[name])

    producer: dict[str, str] = {}  # blob -> module of the layer that last wrote it (for in-place layers)
    layers: list[LayerCost] = []
    for index, layer in enumerate(network.layers):
        where = f"layer {layer.name!r} ({layer.type})"
        missing = [b for b in layer.bottoms if b not in blobs]
        if missing:
            raise InputError(f"{where} reads blob {missing[0]!r}, which no earlier layer or input produces",
                             path=network.path)
        inputs = [blobs[b] for b in layer.bottoms]
        handler = HANDLERS.get(layer.type)
        cost = LayerCost(index, layer.name, layer.type, "", layer.bottoms, layer.tops, inputs, [])
        if handler is None:
            if not allow_unknown:
                raise InputError(
                    f"{where}: layer type {layer.type!r} is not known to the cost analysis; "
                    "expected a supported type (--allow-unknown treats it as shape-preserving and free)",
                    path=network.path,
                )
            if not inputs:
                raise InputError(f"{where}: unknown layer type without inputs; its output shape cannot be inferred",
                                 path=network.path)
            warnings.append(f"{where}: unknown type, treated as shape-preserving and zero-cost")
            cost.output_shapes = [list(inputs[0]) for _ in layer.tops]
            cost.known = False
        else:
            try:
                handler(layer, cost)
            except _ShapeError as error:
                raise InputError(f"{where}: {error}", path=network.path) from None
            if layer.type == "Input":
                cost.output_shapes = [override(s) for s in cost.output_shapes]
        if len(cost.output_shapes) != len(layer.tops):
            raise InputError(f"{where} has {len(layer.tops)} tops; expected {len(cost.output_shapes)}",
                             path=network.path)
        for top, shape in zip(layer.tops, cost.output_shapes, strict=True):
            if any(d <= 0 for d in shape):
                raise InputError(f"{where}: output {top!r} would have shape {shape}; the input is too small",
                                 path=network.path)
            blobs[top] = shape
        cost.input_bytes = sum(_count(s) for s in inputs) * element_bytes
        cost.output_bytes = sum(_count(s) for s in cost.output_shapes) * element_bytes
        cost.weight_bytes = sum(_count(s) for s in cost.param_shapes) * element_bytes
        if max(cost.macs, cost.flops, cost.params, cost.traffic_bytes) > INT64_MAX:
            raise InputError(f"{where}: its counts exceed 64 bits (output shapes {cost.output_shapes}); expected a "
                             "network of realistic size", path=network.path)
        cost.module = module_of(layer, producer)
        for top in layer.tops:
            producer[top] = cost.module
        layers.append(cost)

    if weight_shapes is not None:
        warnings += _check_weights(layers, weight_shapes, network.path)
    return Analysis(network.name, dtype, {n: blobs[n] for n in network.inputs}, layers, warnings)


class _ShapeError(Exception):
    """A layer that cannot be computed: becomes an InputError naming the layer."""


def _count(shape: list[int]) -> int:
    return math.prod(shape) if shape else 1


def _axis(axis: int, rank: int) -> int:
    if not -rank <= axis < rank:
        raise _ShapeError(f"axis {axis} is out of range for a {rank}-D input")
    return axis % rank


def _one_input(cost: LayerCost) -> list[int]:
    if len(cost.input_shapes) != 1:
        raise _ShapeError(f"takes one input; it has {len(cost.input_shapes)}")
    return cost.input_shapes[0]


def _spatial(values, h: int | None, w: int | None, n: int, default: int, what: str) -> list[int]:
    """Caffe's kernel/stride/pad/dilation: _h/_w (2-D), one value for all dimensions, or one per dimension."""
    if h is not None or w is not None:
        if n != 2 or h is None or w is None:
            raise _ShapeError(f"{what}_h and {what}_w need both, and a 2-D input")
        return [h, w]
    values = list(values)
    if not values:
        return [default] * n
    if len(values) == 1:
        return values * n
    if len(values) != n:
        raise _ShapeError(f"{what} has {len(values)} values; expected 1 or {n}")
    return values


def _optional(message, name: str) -> int | None:
    return getattr(message, name) if message.HasField(name) else None


def _conv_geometry(p, x: list[int]) -> tuple[int, list[int], list[int], list[int], list[int]]:
    axis = _axis(p.axis, len(x))
    n = len(x) - axis - 1
    kernel = _spatial(p.kernel_size, _optional(p, "kernel_h"), _optional(p, "kernel_w"), n, 0, "kernel")
    if any(k <= 0 for k in kernel):
        raise _ShapeError("kernel size is missing; expected kernel_size or kernel_h/kernel_w")
    stride = _spatial(p.stride, _optional(p, "stride_h"), _optional(p, "stride_w"), n, 1, "stride")
    has_pad_hw = p.HasField("pad_h") or p.HasField("pad_w")
    pad = _spatial(p.pad, p.pad_h if has_pad_hw else None, p.pad_w if has_pad_hw else None, n, 0, "pad")
    dilation = _spatial(p.dilation, None, None, n, 1, "dilation")
    if min(stride, default=1) <= 0 or min(dilation, default=1) <= 0:
        raise _ShapeError(f"stride {stride} and dilation {dilation} must be at least 1")
    return axis, kernel, stride, pad, dilation


def _convolution(layer: Layer, cost: LayerCost) -> None:
    p = layer.param("convolution")
    x = _one_input(cost)
    axis, kernel, stride, pad, dilation = _conv_geometry(p, x)
    channels_in, channels_out = x[axis], p.num_output
    # DepthwiseConvolution (MobileNet ports) filters each input channel on its own, whatever group says.
    group = channels_in if layer.type == "DepthwiseConvolution" else p.group
    if not channels_out or not group or channels_in % group or channels_out % group:
        raise _ShapeError(f"{channels_in} input and {channels_out} output channels do not divide into {group} groups")
    out_spatial = [
        (size + 2 * pad_size - (d * (k - 1) + 1)) // s + 1
        for size, k, s, pad_size, d in zip(x[axis + 1:], kernel, stride, pad, dilation, strict=True)
    ]
    cost.output_shapes = [[*x[:axis], channels_out, *out_spatial]]
    cost.param_shapes = [[channels_out, channels_in // group, *kernel]] + ([[channels_out]] if p.bias_term else [])
    cost.params = sum(_count(s) for s in cost.param_shapes)
    cost.macs = _count(x[:axis]) * channels_out * _count(out_spatial) * (channels_in // group) * _count(kernel)
    cost.flops = 2 * cost.macs


def _deconvolution(layer: Layer, cost: LayerCost) -> None:
    p = layer.param("convolution")
    x = _one_input(cost)
    axis, kernel, stride, pad, dilation = _conv_geometry(p, x)
    channels_in, channels_out, group = x[axis], p.num_output, p.group
    if not channels_out or not group or channels_in % group or channels_out % group:
        raise _ShapeError(f"{channels_in} input and {channels_out} output channels do not divide into {group} groups")
    in_spatial = x[axis + 1:]
    out_spatial = [
        s * (size - 1) + d * (k - 1) + 1 - 2 * pad_size
        for size, k, s, pad_size, d in zip(in_spatial, kernel, stride, pad, dilation, strict=True)
    ]
    cost.output_shapes = [[*x[:axis], channels_out, *out_spatial]]
    cost.param_shapes = [[channels_in, channels_out // group, *kernel]] + ([[channels_out]] if p.bias_term else [])
    cost.params = sum(_count(s) for s in cost.param_shapes)
    cost.macs = _count(x[:axis]) * channels_in * _count(in_spatial) * (channels_out // group) * _count(kernel)
    cost.flops = 2 * cost.macs


def _inner_product(layer: Layer, cost: LayerCost) -> None:
    p = layer.param("inner_product")
    x = _one_input(cost)
    axis = _axis(p.axis, len(x))
    rows, inputs, outputs = _count(x[:axis]), _count(x[axis:]), p.num_output
    if not outputs:
        raise _ShapeError("num_output is missing")
    cost.output_shapes = [[*x[:axis], outputs]]
    weight = [inputs, outputs] if p.transpose else [outputs, inputs]
    cost.param_shapes = [weight] + ([[outputs]] if p.bias_term else [])
    cost.params = sum(_count(s) for s in cost.param_shapes)
    cost.macs = rows * inputs * outputs
    cost.flops = 2 * cost.macs


def _pooling(layer: Layer, cost: LayerCost) -> None:
    p = layer.param("pooling")
    x = _one_input(cost)
    if len(x) != 4:
        raise _ShapeError(f"pools 4-D inputs (N, C, H, W); the input is {x}")
    height, width = x[2], x[3]
    if p.global_pooling:
        kernel, stride, pad = [height, width], [1, 1], [0, 0]
    else:
        kernel = [p.kernel_h, p.kernel_w] if p.HasField("kernel_h") else [p.kernel_size, p.kernel_size]
        stride = [p.stride_h, p.stride_w] if p.HasField("stride_h") else [p.stride, p.stride]
        pad = [p.pad_h, p.pad_w] if (p.HasField("pad_h") or p.HasField("pad_w")) else [p.pad, p.pad]
        if min(kernel) <= 0:
            raise _ShapeError("kernel size is missing; expected kernel_size, kernel_h/kernel_w or global_pooling")
        if min(stride) <= 0:
            raise _ShapeError(f"stride {stride} must be at least 1")
    round_up = p.round_mode == caffe_pb2.PoolingParameter.CEIL
    out = []
    for size, k, s, pad_size in zip([height, width], kernel, stride, pad, strict=True):
        extent = size + 2 * pad_size - k
        n = (-(-extent // s) if round_up else extent // s) + 1
        # Caffe clips so that the last window starts inside the (left-)padded input.
        if pad_size and (n - 1) * s >= size + pad_size:
            n -= 1
        out.append(n)
    cost.output_shapes = [[x[0], x[1], *out]]
    cost.flops = _count(cost.output_shapes[0]) * kernel[0] * kernel[1]


def _elementwise(layer: Layer, cost: LayerCost) -> None:
    x = _one_input(cost)
    cost.output_shapes = [list(x) for _ in layer.tops] if layer.type == "Split" else [list(x)]
    ops = OPS_PER_ELEMENT.get(layer.type, 0)
    if layer.type == "ReLU" and layer.param("relu").negative_slope:
        ops = 2  # leaky: compare and multiply
    cost.flops = ops * _count(x)
    if layer.type == "PReLU":
        cost.param_shapes = [[1] if layer.param("prelu").channel_shared else [x[1]]]
        cost.params = _count(cost.param_shapes[0])
    elif layer.type == "BatchNorm":
        # Mean, variance and the moving-average factor: stored, not learned.
        cost.param_shapes = [[x[1]], [x[1]], [1]]


def _lrn(layer: Layer, cost: LayerCost) -> None:
    p = layer.param("lrn")
    x = _one_input(cost)
    cost.output_shapes = [list(x)]
    window = p.local_size if p.norm_region == caffe_pb2.LRNParameter.ACROSS_CHANNELS else p.local_size**2
    cost.macs = window * _count(x)  # squares summed over the window
    cost.flops = 2 * cost.macs + 3 * _count(x)  # plus scale, power and divide per element


def _scale_or_bias(layer: Layer, cost: LayerCost) -> None:
    x = cost.input_shapes[0]
    is_scale = layer.type == "Scale"
    p = layer.param("scale" if is_scale else "bias")
    cost.output_shapes = [list(x)]
    axis = _axis(p.axis, len(x))
    if len(cost.input_shapes) == 1:
        end = len(x) if p.num_axes == -1 else axis + p.num_axes
        learned = x[axis:end]
        cost.param_shapes = [learned]
    else:
        learned = cost.input_shapes[1]  # the factor comes from a second input; only a bias can be learned
        cost.param_shapes = []
    if is_scale and p.bias_term:
        cost.param_shapes.append(learned)
    cost.params = sum(_count(s) for s in cost.param_shapes)
    elements = _count(x)
    if is_scale:
        cost.macs = elements
        cost.flops = elements * (2 if p.bias_term else 1)
    else:
        cost.flops = elements


def _eltwise(layer: Layer, cost: LayerCost) -> None:
    p = layer.param("eltwise")
    shapes = cost.input_shapes
    if len(shapes) < 2 or any(s != shapes[0] for s in shapes):
        raise _ShapeError(f"needs two or more inputs of one shape; got {shapes}")
    if p.coeff and len(p.coeff) != len(shapes):
        raise _ShapeError(f"has {len(p.coeff)} coefficients for {len(shapes)} inputs")
    cost.output_shapes = [list(shapes[0])]
    ops = len(shapes) - 1
    if p.operation == caffe_pb2.EltwiseParameter.SUM and any(c != 1 for c in p.coeff):
        ops += len(shapes)  # one multiply per input for the coefficients
    cost.flops = ops * _count(shapes[0])


def _concat(layer: Layer, cost: LayerCost) -> None:
    p = layer.param("concat")
    shapes = cost.input_shapes
    if not shapes:
        raise _ShapeError("has no inputs")
    axis_value = p.concat_dim if (p.HasField("concat_dim") and not p.HasField("axis")) else p.axis
    axis = _axis(axis_value, len(shapes[0]))
    for s in shapes[1:]:
        if len(s) != len(shapes[0]) or s[:axis] + s[axis + 1:] != shapes[0][:axis] + shapes[0][axis + 1:]:
            raise _ShapeError(f"inputs {shapes} differ outside the concatenation axis {axis}")
    cost.output_shapes = [[*shapes[0][:axis], sum(s[axis] for s in shapes), *shapes[0][axis + 1:]]]


def _slice(layer: Layer, cost: LayerCost) -> None:
    p = layer.param("slice")
    x = _one_input(cost)
    axis = _axis(p.slice_dim if (p.HasField("slice_dim") and not p.HasField("axis")) else p.axis, len(x))
    points = list(p.slice_point)
    if points:
        if len(points) != len(layer.tops) - 1:
            raise _ShapeError(f"{len(points)} slice points for {len(layer.tops)} outputs")
        edges = [0, *points, x[axis]]
    else:
        if x[axis] % len(layer.tops):
            raise _ShapeError(f"{x[axis]} cannot be split evenly into {len(layer.tops)} outputs")
        step = x[axis] // len(layer.tops)
        edges = list(range(0, x[axis] + 1, step))
    sizes = [b - a for a, b in zip(edges, edges[1:], strict=False)]
    if any(s <= 0 for s in sizes):
        raise _ShapeError(f"slice points {points} do not increase within {x[axis]}")
    cost.output_shapes = [[*x[:axis], s, *x[axis + 1:]] for s in sizes]


def _flatten(layer: Layer, cost: LayerCost) -> None:
    p = layer.param("flatten")
    x = _one_input(cost)
    start, end = _axis(p.axis, len(x)), _axis(p.end_axis, len(x))
    cost.output_shapes = [[*x[:start], _count(x[start:end + 1]), *x[end + 1:]]]


def _reshape(layer: Layer, cost: LayerCost) -> None:
    p = layer.param("reshape")
    x = _one_input(cost)
    start = p.axis if p.axis >= 0 else len(x) + p.axis + 1
    end = len(x) if p.num_axes == -1 else start + p.num_axes
    if not 0 <= start <= end <= len(x):
        raise _ShapeError(f"axis {p.axis} and num_axes {p.num_axes} do not fit a {len(x)}-D input")
    dims = [x[start + i] if d == 0 else int(d) for i, d in enumerate(p.shape.dim)]
    if dims.count(-1) > 1:
        raise _ShapeError("more than one -1 in the shape")
    shape = [*x[:start], *dims, *x[end:]]
    if -1 in dims:
        known = _count([d for d in shape if d != -1])
        if _count(x) % known:
            raise _ShapeError(f"{x} cannot be reshaped to {shape}")
        shape = [_count(x) // known if d == -1 else d for d in shape]
    if _count(shape) != _count(x):
        raise _ShapeError(f"{x} ({_count(x)} elements) cannot be reshaped to {shape}")
    cost.output_shapes = [shape]


def _softmax_like(layer: Layer, cost: LayerCost) -> None:
    x = _one_input(cost)
    if layer.type == "Softmax":
        _axis(layer.param("softmax").axis, len(x))
    cost.output_shapes = [list(x)]
    cost.flops = OPS_PER_ELEMENT.get(layer.type, 0) * _count(x)


def _crop(layer: Layer, cost: LayerCost) -> None:
    p = layer.param("crop")
    if len(cost.input_shapes) != 2:
        raise _ShapeError("needs two inputs: the blob to crop and the reference")
    x, reference = cost.input_shapes
    axis = _axis(p.axis, len(x))
    offsets = list(p.offset) or [0]
    offsets = offsets * (len(x) - axis) if len(offsets) == 1 else offsets
    shape = [*x[:axis], *reference[axis:]]
    for i, (size, off) in enumerate(zip(x[axis:], offsets, strict=False)):
        if off + shape[axis + i] > size:
            raise _ShapeError(f"crop of {shape} at offset {offsets} does not fit inside {x}")
    cost.output_shapes = [shape]


def _shuffle_channel(layer: Layer, cost: LayerCost) -> None:
    x = _one_input(cost)
    group = layer.param("shuffle_channel").group
    if group <= 0 or x[1] % group:
        raise _ShapeError(f"{x[1]} channels do not divide into {group} groups")
    cost.output_shapes = [list(x)]


def _permute(layer: Layer, cost: LayerCost) -> None:
    x = _one_input(cost)
    order = list(layer.param("permute").order)
    order += [a for a in range(len(x)) if a not in order]
    if sorted(order) != list(range(len(x))):
        raise _ShapeError(f"order {list(layer.param('permute').order)} is not a permutation of {len(x)} axes")
    cost.output_shapes = [[x[a] for a in order]]


def _input(layer: Layer, cost: LayerCost) -> None:
    shapes = [[int(d) for d in s.dim] for s in layer.param("input").shape]
    if not shapes:
        raise _ShapeError("declares no shape; expected input_param { shape { dim: ... } }")
    if len(shapes) == 1:
        shapes = shapes * len(layer.tops)
    if len(shapes) != len(layer.tops):
        raise _ShapeError(f"{len(shapes)} shapes for {len(layer.tops)} outputs")
    cost.output_shapes = shapes


def _identity(layer: Layer, cost: LayerCost) -> None:
    cost.output_shapes = [list(_one_input(cost))]


HANDLERS: dict[str, Callable[[Layer, LayerCost], None]] = {
    "Input": _input,
    "Convolution": _convolution,
    "DepthwiseConvolution": _convolution,
    "Deconvolution": _deconvolution,
    "InnerProduct": _inner_product,
    "Pooling": _pooling,
    "LRN": _lrn,
    "ReLU": _elementwise,
    "PReLU": _elementwise,
    "ELU": _elementwise,
    "Sigmoid": _elementwise,
    "TanH": _elementwise,
    "BatchNorm": _elementwise,
    "Power": _elementwise,
    "Split": _elementwise,
    "Dropout": _identity,
    "Scale": _scale_or_bias,
    "Bias": _scale_or_bias,
    "Eltwise": _eltwise,
    "Concat": _concat,
    "Slice": _slice,
    "Flatten": _flatten,
    "Reshape": _reshape,
    "Softmax": _softmax_like,
    "Crop": _crop,
    "ShuffleChannel": _shuffle_channel,
    "Permute": _permute,
}

RESNET_NAME = re.compile(r"^(?:res|bn|scale)(\d+[a-z]+\d*)(?:_branch\w*|_relu)?$")


def module_of(layer: Layer, producer: dict[str, str]) -> str:
    """The block a layer belongs to, for per-module totals (docs/model-cost.md):

    1. a name with '/' belongs to what comes before the first '/': fire2/squeeze1x1 -> fire2,
       inception_3a/1x1 -> inception_3a, conv2_1/dw -> conv2_1;
    2. ResNet names: res2a_branch2a, bn2a_branch2a, scale2a_branch1, res2a_relu, res2a -> res2a;
    3. an in-place layer (top == bottom, e.g. relu1 on conv1) joins the module of the layer that wrote the blob;
    4. anything else is a module of its own.
    """
    if "/" in layer.name.strip("/"):
        return layer.name.strip("/").split("/")[0]
    resnet = RESNET_NAME.match(layer.name)
    if resnet:
        return "res" + resnet.group(1)
    if layer.tops and layer.tops == layer.bottoms[:1] and layer.tops[0] in producer:
        return producer[layer.tops[0]]
    return layer.name


def _check_weights(layers: list[LayerCost], weight_shapes: dict[str, list[list[int]]], path: str) -> list[str]:
    """Compare the caffemodel's blob shapes with those the prototxt implies; returns warnings."""
    warnings = []
    for cost in layers:
        expected = cost.param_shapes
        found = weight_shapes.get(cost.name)
        if not expected:
            continue
        if found is None:
            warnings.append(f"layer {cost.name!r}: no blobs in the caffemodel")
            continue
        if len(found) != len(expected):
            raise InputError(
                f"layer {cost.name!r} has {len(found)} blobs in the caffemodel; the prototxt implies "
                f"{len(expected)} ({expected})", path=path
            )
        for i, (want, have) in enumerate(zip(expected, found, strict=True)):
            # Legacy blobs are 4-D with leading ones (an InnerProduct weight is 1 x 1 x N x K): compare counts.
            legacy = len(have) == 4 and len(want) != 4
            if (legacy and _count(have) != _count(want)) or (not legacy and have != want):
                raise InputError(
                    f"layer {cost.name!r} blob {i} has shape {have} in the caffemodel; the prototxt implies {want}",
                    path=path)
    return warnings


def run_layer_costs(prototxt_text: str, manifest: dict) -> tuple[list[LayerCost], list[str]]:
    """The per-layer cost of a run's network at the run's input shape and batch (fp32, as Caffe computes).

    Never fails: an import keeps its measurements when the analysis cannot be done; the reason is returned as
    a warning instead, and unknown layer types are treated as free (their cost is stored as unknown).
    """
    try:
        network = parse_prototxt(prototxt_text, "model.prototxt")
        shape = manifest.get("input_shape")
        input_shape = [int(d) for d in shape] if isinstance(shape, list) and shape else None
        batch = manifest.get("batch") if isinstance(manifest.get("batch"), int) else None
        analysis = analyze(network, input_shape=input_shape, batch=batch, allow_unknown=True)
    except InputError as error:
        return [], [f"model cost not computed: {error.one_line()}"]
    return analysis.layers, analysis.warnings


def cost_frame(layers: list[LayerCost]) -> pd.DataFrame:
    """Rows for the store's layer_costs table."""
    return pd.DataFrame({
        "layer_name": [c.name for c in layers],
        "prototxt_index": [c.index for c in layers],
        "type": [c.type for c in layers],
        "module": [c.module for c in layers],
        "output_shape": [c.output_shapes[0] if c.output_shapes else None for c in layers],
        "macs": pd.array([c.macs for c in layers], dtype="Int64"),
        "flops": pd.array([c.flops for c in layers], dtype="Int64"),
        "params": pd.array([c.params for c in layers], dtype="Int64"),
        "weight_bytes": pd.array([c.weight_bytes for c in layers], dtype="Int64"),
        "input_bytes": pd.array([c.input_bytes for c in layers], dtype="Int64"),
        "output_bytes": pd.array([c.output_bytes for c in layers], dtype="Int64"),
        "traffic_bytes": pd.array([c.traffic_bytes for c in layers], dtype="Int64"),
        "arithmetic_intensity": [c.arithmetic_intensity for c in layers],
        "known": [c.known for c in layers],
    })
