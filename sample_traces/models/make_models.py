#!/usr/bin/env python3
"""Write the Caffe deploy definitions (.prototxt) in this folder, and check their cost against published figures.

    python3 make_models.py          writes the files next to this script
    python3 make_models.py --check  writes them, then prints each network's layer count, MACs and parameters
                                    and exits 1 if a total differs from its reference

Each network is built with small functions, one per building block (conv(), relu(), fire(), inception(),
bottleneck(), dw_separable(), ...). While a layer is written, the shape of every blob is followed with Caffe's
own rules (Convolution output floor((W + 2p - k) / s) + 1, Pooling output ceil((W + 2p - k) / s) + 1), so that
the Convolution + InnerProduct multiply-accumulates (MACs) and the learnable parameters can be counted from
the shapes that were written. Conventions are those of shared/docs/model-analysis.md: params are Convolution /
InnerProduct weights and biases plus Scale gamma and beta; BatchNorm's running statistics are not counted.

Only what inference needs is written: the training-only fields of the originals (weight fillers, lr_mult and
decay_mult) are left out, and every input has batch 1. Standard library only (Python 3.11).
"""

import math
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


class Enum(str):
    """A protobuf enum value, written bare (pool: MAX) where a plain str is written quoted."""


def format_value(value):
    if isinstance(value, Enum):
        return str(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return repr(value)  # int or float


def format_fields(fields, indent):
    """protobuf text format for a list of (key, value) pairs; a value that is a list is a nested message."""
    pad = "  " * indent
    lines = []
    for key, value in fields:
        if isinstance(value, list):
            lines.append(f"{pad}{key} {{")
            lines.extend(format_fields(value, indent + 1))
            lines.append(f"{pad}}}")
        else:
            lines.append(f"{pad}{key}: {format_value(value)}")
    return lines


# current Caffe layer type -> the enum of the legacy V1 format, for the types that the legacy file uses
V1_TYPES = {"Convolution": "CONVOLUTION", "InnerProduct": "INNER_PRODUCT", "Pooling": "POOLING", "ReLU": "RELU",
            "Softmax": "SOFTMAX"}


class Net:
    """A network being written: its text, the (channels, height, width) of each blob, and its cost per layer."""

    def __init__(self, header, name=None, input_shape=(3, 224, 224), legacy=False):
        self.legacy = legacy  # V1 format: `layers { type: CONVOLUTION }` and input_dim lines
        self.lines = [f"# {line}" if line else "#" for line in header]
        if name:
            self.lines.append(f"name: {format_value(name)}")
        self.lines.append('input: "data"')
        dims = (1, *input_shape)
        if legacy:
            self.lines.extend(f"input_dim: {d}" for d in dims)
        else:
            self.lines.extend(format_fields([("input_shape", [("dim", d) for d in dims])], 0))
        self.shapes = {"data": tuple(input_shape)}
        self.layer_types = []  # one entry per layer written
        self.costs = {}  # layer name -> (MACs, params), for layers that have either

    def add(self, name, type_, bottoms, tops, fields=(), macs=0, params=0):
        body = [("name", name), ("type", Enum(V1_TYPES[type_]) if self.legacy else type_)]
        body += [("bottom", b) for b in bottoms] + [("top", t) for t in tops]
        body += list(fields)
        self.lines.extend(format_fields([("layers" if self.legacy else "layer", body)], 0))
        self.layer_types.append(type_)
        if macs or params:
            self.costs[name] = (macs, params)

    def text(self):
        return "\n".join(self.lines) + "\n"

    def total_macs(self):
        return sum(m for m, _ in self.costs.values())

    def total_params(self):
        return sum(p for _, p in self.costs.values())


# --- shape rules (Caffe) ---------------------------------------------------------------------------------------

def conv_out(size, kernel, stride, pad):
    return (size + 2 * pad - kernel) // stride + 1


def pool_out(size, kernel, stride, pad):
    out = math.ceil((size + 2 * pad - kernel) / stride) + 1
    if pad and (out - 1) * stride >= size + pad:  # Caffe clips a last window that would start in the padding
        out -= 1
    return out


# --- layers ----------------------------------------------------------------------------------------------------

def conv(net, name, bottom, num_output, kernel, stride=1, pad=0, group=1, bias=True, top=None, engine=None):
    """Convolution; returns its top blob."""
    top = top or name
    c, h, w = net.shapes[bottom]
    oh, ow = conv_out(h, kernel, stride, pad), conv_out(w, kernel, stride, pad)
    per_output = (c // group) * kernel * kernel
    param = [("num_output", num_output)]
    if not bias:
        param.append(("bias_term", False))
    if pad:
        param.append(("pad", pad))
    param.append(("kernel_size", kernel))
    if stride != 1:
        param.append(("stride", stride))
    if group != 1:
        param.append(("group", group))
    if engine:
        param.append(("engine", Enum(engine)))
    net.add(name, "Convolution", [bottom], [top], [("convolution_param", param)],
            macs=num_output * oh * ow * per_output,
            params=num_output * per_output + (num_output if bias else 0))
    net.shapes[top] = (num_output, oh, ow)
    return top


def inner_product(net, name, bottom, num_output):
    c, h, w = net.shapes[bottom]
    inputs = c * h * w
    net.add(name, "InnerProduct", [bottom], [name], [("inner_product_param", [("num_output", num_output)])],
            macs=inputs * num_output, params=inputs * num_output + num_output)
    net.shapes[name] = (num_output, 1, 1)
    return name


def relu(net, name, blob):
    """ReLU in place."""
    net.add(name, "ReLU", [blob], [blob])
    return blob


def pool(net, name, bottom, method, kernel=None, stride=1, pad=0, top=None):
    """Pooling, MAX or AVE; kernel=None means global pooling."""
    top = top or name
    c, h, w = net.shapes[bottom]
    param = [("pool", Enum(method))]
    if kernel is None:
        param.append(("global_pooling", True))
        oh = ow = 1
    else:
        param.append(("kernel_size", kernel))
        if stride != 1:
            param.append(("stride", stride))
        if pad:
            param.append(("pad", pad))
        oh, ow = pool_out(h, kernel, stride, pad), pool_out(w, kernel, stride, pad)
    net.add(name, "Pooling", [bottom], [top], [("pooling_param", param)])
    net.shapes[top] = (c, oh, ow)
    return top


def lrn(net, name, bottom):
    """Local response normalisation as in AlexNet and GoogLeNet (across channels)."""
    param = [("local_size", 5), ("alpha", 0.0001), ("beta", 0.75)]
    net.add(name, "LRN", [bottom], [name], [("lrn_param", param)])
    net.shapes[name] = net.shapes[bottom]
    return name


def dropout(net, name, blob, ratio):
    """Dropout in place (an identity at inference)."""
    net.add(name, "Dropout", [blob], [blob], [("dropout_param", [("dropout_ratio", ratio)])])
    return blob


def concat(net, name, bottoms):
    """Concat along channels."""
    shapes = [net.shapes[b] for b in bottoms]
    assert len({s[1:] for s in shapes}) == 1, f"{name}: inputs differ in height or width: {shapes}"
    net.add(name, "Concat", bottoms, [name])
    net.shapes[name] = (sum(s[0] for s in shapes), *shapes[0][1:])
    return name


def eltwise_sum(net, name, bottoms):
    assert len({net.shapes[b] for b in bottoms}) == 1, f"{name}: inputs differ in shape"
    net.add(name, "Eltwise", bottoms, [name], [("eltwise_param", [("operation", Enum("SUM"))])])
    net.shapes[name] = net.shapes[bottoms[0]]
    return name


def batch_norm(net, name, bottom, top=None):
    """BatchNorm with the stored statistics (use_global_stats); its blobs are not learnable parameters."""
    top = top or bottom
    net.add(name, "BatchNorm", [bottom], [top], [("batch_norm_param", [("use_global_stats", True)])])
    net.shapes[top] = net.shapes[bottom]
    return top


def scale(net, name, blob):
    """Scale with a bias, in place: the learnable gamma and beta that follow a BatchNorm."""
    channels = net.shapes[blob][0]
    net.add(name, "Scale", [blob], [blob], [("scale_param", [("bias_term", True)])], params=2 * channels)
    return blob


def softmax(net, name, bottom):
    net.add(name, "Softmax", [bottom], [name])
    net.shapes[name] = net.shapes[bottom]
    return name


# --- building blocks -------------------------------------------------------------------------------------------

def fire(net, name, bottom, squeeze, expand1x1, expand3x3):
    """SqueezeNet fire module: 1x1 squeeze, then 1x1 and 3x3 expands side by side, concatenated."""
    s = conv(net, f"{name}/squeeze1x1", bottom, squeeze, 1)
    relu(net, f"{name}/relu_squeeze1x1", s)
    e1 = conv(net, f"{name}/expand1x1", s, expand1x1, 1)
    relu(net, f"{name}/relu_expand1x1", e1)
    e3 = conv(net, f"{name}/expand3x3", s, expand3x3, 3, pad=1)
    relu(net, f"{name}/relu_expand3x3", e3)
    return concat(net, f"{name}/concat", [e1, e3])


def inception(net, name, bottom, n1x1, n3x3_reduce, n3x3, n5x5_reduce, n5x5, pool_proj):
    """GoogLeNet inception module (BVLC names): four branches concatenated in the order 1x1, 3x3, 5x5, pool."""
    b1 = conv(net, f"{name}/1x1", bottom, n1x1, 1)
    relu(net, f"{name}/relu_1x1", b1)
    r3 = conv(net, f"{name}/3x3_reduce", bottom, n3x3_reduce, 1)
    relu(net, f"{name}/relu_3x3_reduce", r3)
    b3 = conv(net, f"{name}/3x3", r3, n3x3, 3, pad=1)
    relu(net, f"{name}/relu_3x3", b3)
    r5 = conv(net, f"{name}/5x5_reduce", bottom, n5x5_reduce, 1)
    relu(net, f"{name}/relu_5x5_reduce", r5)
    b5 = conv(net, f"{name}/5x5", r5, n5x5, 5, pad=2)
    relu(net, f"{name}/relu_5x5", b5)
    p = pool(net, f"{name}/pool", bottom, "MAX", 3, stride=1, pad=1)
    bp = conv(net, f"{name}/pool_proj", p, pool_proj, 1)
    relu(net, f"{name}/relu_pool_proj", bp)
    return concat(net, f"{name}/output", [b1, b3, b5, bp])


def conv_bn(net, conv_name, bn_name, scale_name, bottom, num_output, kernel, stride=1, pad=0):
    """MSRA ResNet unit: Convolution without bias, BatchNorm and Scale in place (names as in the MSRA files)."""
    top = conv(net, conv_name, bottom, num_output, kernel, stride=stride, pad=pad, bias=False)
    batch_norm(net, bn_name, top)
    return scale(net, scale_name, top)


def bottleneck(net, block, bottom, width, stride=1, project=False):
    """MSRA ResNet bottleneck block (block "2a" -> layers res2a_branch2a, bn2a_branch2a, scale2a_branch2a, ...):
    1x1 (width, carrying the stride), 3x3 (width), 1x1 (4 x width), added to the block input, or on the first
    block of a stage to a 1x1 projection of it (branch1, same stride)."""

    def unit(branch, x, num_output, kernel, stride=1, pad=0):
        return conv_bn(net, f"res{block}_{branch}", f"bn{block}_{branch}", f"scale{block}_{branch}",
                       x, num_output, kernel, stride=stride, pad=pad)

    shortcut = unit("branch1", bottom, 4 * width, 1, stride=stride) if project else bottom
    x = unit("branch2a", bottom, width, 1, stride=stride)
    relu(net, f"res{block}_branch2a_relu", x)
    x = unit("branch2b", x, width, 3, pad=1)
    relu(net, f"res{block}_branch2b_relu", x)
    x = unit("branch2c", x, 4 * width, 1)
    out = eltwise_sum(net, f"res{block}", [shortcut, x])
    return relu(net, f"res{block}_relu", out)


def conv_bn_mobilenet(net, name, relu_name, bottom, num_output, kernel, stride=1, pad=0, group=1, engine=None):
    """shicai/MobileNet-Caffe unit: Convolution without bias -> NAME/bn (new blob) -> NAME/scale and ReLU in place."""
    x = conv(net, name, bottom, num_output, kernel, stride=stride, pad=pad, group=group, bias=False, engine=engine)
    x = batch_norm(net, f"{name}/bn", x, top=f"{name}/bn")
    scale(net, f"{name}/scale", x)
    return relu(net, relu_name, x)


def dw_separable(net, name, bottom, num_output, stride):
    """MobileNet depthwise-separable block: 3x3 depthwise (group = channels) then 1x1 pointwise, each + BN + ReLU."""
    channels = net.shapes[bottom][0]
    relu_name = "relu" + name[len("conv"):]  # conv5_3 -> relu5_3
    x = conv_bn_mobilenet(net, f"{name}/dw", f"{relu_name}/dw", bottom, channels, 3, stride=stride, pad=1,
                          group=channels, engine="CAFFE")
    return conv_bn_mobilenet(net, f"{name}/sep", f"{relu_name}/sep", x, num_output, 1)


# --- networks --------------------------------------------------------------------------------------------------

def squeezenet_v1_0():
    net = Net([
        "Written by make_models.py: SqueezeNet v1.0, as in DeepScale's SqueezeNet repository on GitHub",
        "(file SqueezeNet_v1.0/deploy.prototxt; BSD licence, see LICENSE-SqueezeNet.txt). Differences: batch 1",
        "(the original has 10) and no weight fillers. conv10 keeps the original's pad: 1 (a 15x15 output before",
        "pool10); SqueezeNet v1.1 dropped it.",
    ], input_shape=(3, 227, 227))
    x = conv(net, "conv1", "data", 96, 7, stride=2)
    relu(net, "relu_conv1", x)
    x = pool(net, "pool1", x, "MAX", 3, stride=2)
    x = fire(net, "fire2", x, 16, 64, 64)
    x = fire(net, "fire3", x, 16, 64, 64)
    x = fire(net, "fire4", x, 32, 128, 128)
    x = pool(net, "pool4", x, "MAX", 3, stride=2)
    x = fire(net, "fire5", x, 32, 128, 128)
    x = fire(net, "fire6", x, 48, 192, 192)
    x = fire(net, "fire7", x, 48, 192, 192)
    x = fire(net, "fire8", x, 64, 256, 256)
    x = pool(net, "pool8", x, "MAX", 3, stride=2)
    x = fire(net, "fire9", x, 64, 256, 256)
    dropout(net, "drop9", x, 0.5)
    x = conv(net, "conv10", x, 1000, 1, pad=1)
    relu(net, "relu_conv10", x)
    x = pool(net, "pool10", x, "AVE")
    softmax(net, "prob", x)
    return net


def alexnet():
    net = Net([
        "Written by make_models.py: AlexNet as released by BVLC with Caffe (BVLC/caffe on GitHub,",
        "models/bvlc_alexnet/deploy.prototxt): two-group conv2/conv4/conv5, LRN before pooling.",
        "Differences: batch 1 (the original has 10) and no weight fillers or learning-rate multipliers.",
    ], name="AlexNet", input_shape=(3, 227, 227))
    x = conv(net, "conv1", "data", 96, 11, stride=4)
    relu(net, "relu1", x)
    x = lrn(net, "norm1", x)
    x = pool(net, "pool1", x, "MAX", 3, stride=2)
    x = conv(net, "conv2", x, 256, 5, pad=2, group=2)
    relu(net, "relu2", x)
    x = lrn(net, "norm2", x)
    x = pool(net, "pool2", x, "MAX", 3, stride=2)
    x = conv(net, "conv3", x, 384, 3, pad=1)
    relu(net, "relu3", x)
    x = conv(net, "conv4", x, 384, 3, pad=1, group=2)
    relu(net, "relu4", x)
    x = conv(net, "conv5", x, 256, 3, pad=1, group=2)
    relu(net, "relu5", x)
    x = pool(net, "pool5", x, "MAX", 3, stride=2)
    x = inner_product(net, "fc6", x, 4096)
    relu(net, "relu6", x)
    dropout(net, "drop6", x, 0.5)
    x = inner_product(net, "fc7", x, 4096)
    relu(net, "relu7", x)
    dropout(net, "drop7", x, 0.5)
    x = inner_product(net, "fc8", x, 1000)
    softmax(net, "prob", x)
    return net


# (1x1, 3x3 reduce, 3x3, 5x5 reduce, 5x5, pool proj) of each BVLC GoogLeNet inception module
GOOGLENET_INCEPTIONS = {
    "3a": (64, 96, 128, 16, 32, 32),
    "3b": (128, 128, 192, 32, 96, 64),
    "4a": (192, 96, 208, 16, 48, 64),
    "4b": (160, 112, 224, 24, 64, 64),
    "4c": (128, 128, 256, 24, 64, 64),
    "4d": (112, 144, 288, 32, 64, 64),
    "4e": (256, 160, 320, 32, 128, 128),
    "5a": (256, 160, 320, 32, 128, 128),
    "5b": (384, 192, 384, 48, 128, 128),
}


def googlenet():
    net = Net([
        "Written by make_models.py: GoogLeNet (Inception v1) as released by BVLC with Caffe (BVLC/caffe on GitHub,",
        "models/bvlc_googlenet/deploy.prototxt), layer names as there. That deploy file already leaves out the two",
        "training-only auxiliary classifiers (loss1/*, loss2/*); so does this one. Differences: batch 1 (the",
        "original has 10) and no weight fillers or learning-rate multipliers.",
    ], name="GoogleNet", input_shape=(3, 224, 224))
    x = conv(net, "conv1/7x7_s2", "data", 64, 7, stride=2, pad=3)
    relu(net, "conv1/relu_7x7", x)
    x = pool(net, "pool1/3x3_s2", x, "MAX", 3, stride=2)
    x = lrn(net, "pool1/norm1", x)
    x = conv(net, "conv2/3x3_reduce", x, 64, 1)
    relu(net, "conv2/relu_3x3_reduce", x)
    x = conv(net, "conv2/3x3", x, 192, 3, pad=1)
    relu(net, "conv2/relu_3x3", x)
    x = lrn(net, "conv2/norm2", x)
    x = pool(net, "pool2/3x3_s2", x, "MAX", 3, stride=2)
    for stage in "3a", "3b", "4a", "4b", "4c", "4d", "4e", "5a", "5b":
        x = inception(net, f"inception_{stage}", x, *GOOGLENET_INCEPTIONS[stage])
        if stage == "3b":
            x = pool(net, "pool3/3x3_s2", x, "MAX", 3, stride=2)
        elif stage == "4e":
            x = pool(net, "pool4/3x3_s2", x, "MAX", 3, stride=2)
    x = pool(net, "pool5/7x7_s1", x, "AVE", 7, stride=1)
    dropout(net, "pool5/drop_7x7_s1", x, 0.4)
    x = inner_product(net, "loss3/classifier", x, 1000)
    softmax(net, "prob", x)
    return net


# (stage number, bottleneck width, number of blocks) of ResNet-50; outputs are 4 x width channels
RESNET50_STAGES = [(2, 64, 3), (3, 128, 4), (4, 256, 6), (5, 512, 3)]


def resnet50():
    net = Net([
        "Written by make_models.py: ResNet-50 as released by Microsoft Research (KaimingHe/deep-residual-networks",
        "on GitHub, prototxt/ResNet-50-deploy.prototxt), layer names as there: conv1 with a bias, the stride of",
        "each stage's first block on its 1x1 branch2a and branch1 convolutions, BatchNorm + Scale after every",
        "convolution. Differences: input_shape instead of input_dim lines, an explicit eltwise operation: SUM",
        "(Caffe's default), layers indented with spaces.",
    ], name="ResNet-50", input_shape=(3, 224, 224))
    x = conv(net, "conv1", "data", 64, 7, stride=2, pad=3)
    batch_norm(net, "bn_conv1", x)
    scale(net, "scale_conv1", x)
    relu(net, "conv1_relu", x)
    x = pool(net, "pool1", x, "MAX", 3, stride=2)
    for stage, width, blocks in RESNET50_STAGES:
        for i in range(blocks):
            first = i == 0
            stride = 2 if first and stage > 2 else 1
            x = bottleneck(net, f"{stage}{'abcdef'[i]}", x, width, stride=stride, project=first)
    x = pool(net, "pool5", x, "AVE", 7, stride=1)
    x = inner_product(net, "fc1000", x, 1000)
    softmax(net, "prob", x)
    return net


# (block name, pointwise output channels, depthwise stride) of MobileNet v1 1.0, names as in shicai/MobileNet-Caffe
MOBILENET_BLOCKS = [
    ("conv2_1", 64, 1), ("conv2_2", 128, 2),
    ("conv3_1", 128, 1), ("conv3_2", 256, 2),
    ("conv4_1", 256, 1), ("conv4_2", 512, 2),
    ("conv5_1", 512, 1), ("conv5_2", 512, 1), ("conv5_3", 512, 1), ("conv5_4", 512, 1), ("conv5_5", 512, 1),
    ("conv5_6", 1024, 2),
    ("conv6", 1024, 1),
]


def mobilenet_v1():
    net = Net([
        "Written by make_models.py: MobileNet v1 (width 1.0, 224x224) as in the Caffe port shicai/MobileNet-Caffe",
        "on GitHub (mobilenet_deploy.prototxt), layer and blob names as there: BatchNorm writes NAME/bn, Scale and",
        "ReLU work in place on it, depthwise convolutions are grouped convolutions with engine: CAFFE, and the",
        "classifier fc7 is a 1x1 Convolution. Differences: input_shape instead of input_dim lines, no fillers or",
        "learning-rate multipliers, BatchNorm with an explicit use_global_stats: true (Caffe's default at test",
        "time, which that file leaves implicit), and a final Softmax \"prob\" (that file ends at fc7).",
    ], name="MOBILENET", input_shape=(3, 224, 224))
    x = conv_bn_mobilenet(net, "conv1", "relu1", "data", 32, 3, stride=2, pad=1)
    for name, channels, stride in MOBILENET_BLOCKS:
        x = dw_separable(net, name, x, channels, stride)
    x = pool(net, "pool6", x, "AVE")
    x = conv(net, "fc7", x, 1000, 1)
    softmax(net, "prob", x)
    return net


def legacy_v1_lenet():
    net = Net([
        "Written by make_models.py: LeNet for 28x28 MNIST digits, as in BVLC Caffe's examples/mnist/lenet.prototxt,",
        "here in the legacy V1 format (`layers { type: CONVOLUTION }`, four input_dim lines) that Caffe upgrades",
        "when it reads it: a small fixture for parser tests. Batch 1 (the original has 64); no fillers or",
        "learning-rate fields.",
    ], name="LeNet", input_shape=(1, 28, 28), legacy=True)
    x = conv(net, "conv1", "data", 20, 5)
    x = pool(net, "pool1", x, "MAX", 2, stride=2)
    x = conv(net, "conv2", x, 50, 5)
    x = pool(net, "pool2", x, "MAX", 2, stride=2)
    x = inner_product(net, "ip1", x, 500)
    relu(net, "relu1", x)
    x = inner_product(net, "ip2", x, 10)
    softmax(net, "prob", x)
    return net


# file name -> (builder, reference MACs, reference params); None where no exact reference is held
NETWORKS = {
    "squeezenet_v1.0.prototxt": (squeezenet_v1_0, 861_339_936, 1_248_424),
    "alexnet.prototxt": (alexnet, 724_406_816, 60_965_224),
    "googlenet.prototxt": (googlenet, None, None),
    "resnet50.prototxt": (resnet50, 3_857_973_248, 25_557_096),
    "mobilenet_v1.prototxt": (mobilenet_v1, None, None),
    "legacy_v1_lenet.prototxt": (legacy_v1_lenet, None, None),
}


def write_all(folder=HERE):
    nets = {}
    for filename, (build, _, _) in NETWORKS.items():
        net = build()
        (folder / filename).write_text(net.text(), encoding="utf-8")
        nets[filename] = net
    return nets


def number(value):
    return "-" if value is None else f"{value:,d}"


def check(nets):
    """Print each network's layer count, MACs and params; return the names whose totals differ from a reference."""
    bad = []
    print(f"{'file':28} {'layers':>6} {'MACs':>15} {'reference':>15} {'params':>12} {'reference':>12}")
    for filename, net in nets.items():
        _, ref_macs, ref_params = NETWORKS[filename]
        macs, params = net.total_macs(), net.total_params()
        print(f"{filename:28} {len(net.layer_types):6d} {macs:15,d} {number(ref_macs):>15} "
              f"{params:12,d} {number(ref_params):>12}")
        if (ref_macs is not None and macs != ref_macs) or (ref_params is not None and params != ref_params):
            bad.append(filename)
    return bad


def main(argv):
    nets = write_all()
    if "--check" in argv:
        bad = check(nets)
        if bad:
            print("differs from the reference:", ", ".join(bad))
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
