"""A minimal writer and reader of Caffe's binary weights (.caffemodel, a serialised ``NetParameter``).

Python 3.6, standard library + numpy; no protobuf. Only the protobuf wire format of the few fields that carry
weights is written and read; every other field is skipped by its wire type when reading.

Field numbers, from BVLC Caffe's src/caffe/proto/caffe.proto:

    NetParameter       name = 1 (string); layers = 2 (V1LayerParameter, legacy); layer = 100 (LayerParameter)
    LayerParameter     name = 1 (string); type = 2 (string); blobs = 7 (BlobProto)
    V1LayerParameter   layer = 1 (V0LayerParameter); name = 4 (string); type = 5 (enum LayerType); blobs = 6
    V0LayerParameter   name = 1 (string); type = 2 (string); blobs = 50 (BlobProto)
    BlobProto          num = 1, channels = 2, height = 3, width = 4 (int32, legacy 4-D shape);
                       data = 5 (packed float); diff = 6 (packed float); shape = 7 (BlobShape);
                       double_data = 8 (packed double); double_diff = 9 (packed double)
    BlobShape          dim = 1 (packed int64)

Wire types: 0 varint, 1 fixed 64 bits, 2 length-delimited, 5 fixed 32 bits (3 and 4, groups, are not used by
caffe.proto and are refused). The writer emits ``layer`` entries (field 100) with name, type and blobs; each
blob with ``shape`` and ``data`` (float32, little-endian). The reader accepts both packed and unpacked repeated
fields, the legacy ``num/channels/height/width`` shape, ``double_data``, and legacy V1 ``layers``.
"""

import collections

import numpy as np

# Wire types.
VARINT = 0
FIXED64 = 1
LENGTH = 2
FIXED32 = 5

# NetParameter
NET_NAME = 1
NET_LAYERS_V1 = 2
NET_LAYER = 100
# LayerParameter
LAYER_NAME = 1
LAYER_TYPE = 2
LAYER_BLOBS = 7
# V1LayerParameter
V1_LAYER_V0 = 1
V1_NAME = 4
V1_TYPE = 5
V1_BLOBS = 6
# V0LayerParameter
V0_NAME = 1
V0_TYPE = 2
V0_BLOBS = 50
# BlobProto
BLOB_NUM = 1
BLOB_CHANNELS = 2
BLOB_HEIGHT = 3
BLOB_WIDTH = 4
BLOB_DATA = 5
BLOB_SHAPE = 7
BLOB_DOUBLE_DATA = 8
# BlobShape
SHAPE_DIM = 1

# V1LayerParameter.LayerType enum numbers -> current type names (caffe.proto, upgrade_proto.cpp).
V1_TYPE_NUMBERS = {
    0: "None", 35: "AbsVal", 1: "Accuracy", 30: "ArgMax", 2: "BNLL", 3: "Concat", 37: "ContrastiveLoss",
    4: "Convolution", 5: "Data", 39: "Deconvolution", 6: "Dropout", 32: "DummyData", 7: "EuclideanLoss",
    25: "Eltwise", 38: "Exp", 8: "Flatten", 9: "HDF5Data", 10: "HDF5Output", 28: "HingeLoss", 11: "Im2col",
    12: "ImageData", 13: "InfogainLoss", 14: "InnerProduct", 15: "LRN", 29: "MemoryData",
    16: "MultinomialLogisticLoss", 34: "MVN", 17: "Pooling", 26: "Power", 18: "ReLU", 19: "Sigmoid",
    27: "SigmoidCrossEntropyLoss", 36: "Silence", 20: "Softmax", 21: "SoftmaxWithLoss", 22: "Split", 33: "Slice",
    23: "TanH", 24: "WindowData", 31: "Threshold",
}


class CaffemodelError(ValueError):
    """The bytes are not a caffemodel this reader understands (truncated, bad wire type)."""


# One layer's weights: name, type (a string; V1 enum numbers are mapped to current names) and blobs.
CaffeLayer = collections.namedtuple("CaffeLayer", ["name", "type", "blobs"])


class Blob:
    """One BlobProto: ``data`` (float32 numpy array, shaped), ``shape`` (list of ints) and ``legacy`` (True when
    the shape came from the legacy num/channels/height/width fields rather than BlobShape)."""

    def __init__(self, data, shape, legacy=False):
        self.data = data
        self.shape = list(shape)
        self.legacy = bool(legacy)

    def __repr__(self):
        return "Blob(shape={}{})".format(self.shape, ", legacy" if self.legacy else "")


class CaffeNet:
    """A read caffemodel: ``name`` and ``layers`` (CaffeLayer, in file order)."""

    def __init__(self, name, layers):
        self.name = name
        self.layers = layers

    def blobs_by_layer(self):
        """Layer name -> its blobs, for the layers that have blobs (the first such layer of a name wins, as in
        OpenCV's importer)."""
        out = collections.OrderedDict()
        for layer in self.layers:
            if layer.blobs and layer.name not in out:
                out[layer.name] = layer.blobs
        return out


# ----------------------------------------------------------------------------------------------------
# writing


def encode_varint(value):
    """A protobuf varint; negative numbers as 64-bit two's complement (ten bytes), as int32/int64 fields do."""
    value = int(value)
    if value < 0:
        value += 1 << 64
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _key(field, wire_type):
    return encode_varint((field << 3) | wire_type)


def _length_delimited(field, payload):
    return _key(field, LENGTH) + encode_varint(len(payload)) + payload


def _string(field, text):
    return _length_delimited(field, text.encode("utf-8"))


def _wrapped(field, parts):
    """A length-delimited field around ``parts`` (a list of bytes), as a list of bytes: large payloads are
    copied once, when the whole message is joined."""
    size = sum(len(p) for p in parts)
    return [_key(field, LENGTH) + encode_varint(size)] + parts


def _blob_parts(array):
    array = np.asarray(array, dtype=np.float32)
    packed_dims = b"".join(encode_varint(d) for d in array.shape)
    blob_shape = _length_delimited(SHAPE_DIM, packed_dims) if array.ndim else b""
    data = np.ascontiguousarray(array, dtype="<f4").tobytes()
    return [_length_delimited(BLOB_SHAPE, blob_shape)] + _wrapped(BLOB_DATA, [data])


def _layer_parts(name, layer_type, blobs):
    parts = [_string(LAYER_NAME, name)]
    if layer_type:
        parts.append(_string(LAYER_TYPE, layer_type))
    for blob in blobs:
        parts.extend(_wrapped(LAYER_BLOBS, _blob_parts(blob)))
    return parts


def encode_blob(array):
    """A BlobProto with ``shape`` (BlobShape, packed dims) and ``data`` (packed little-endian float32)."""
    return b"".join(_blob_parts(array))


def encode_layer(name, layer_type, blobs):
    """A LayerParameter with name, type and blobs (numpy arrays, their own shapes)."""
    return b"".join(_layer_parts(name, layer_type, blobs))


def write_bytes(layers, name=None):
    """A caffemodel (NetParameter bytes) from ``layers``: (name, type or None, [numpy arrays]) in order.

    NetParameter messages concatenate: the bytes of two nets joined are one net with both layer lists."""
    parts = []
    if name:
        parts.append(_string(NET_NAME, name))
    for layer_name, layer_type, blobs in layers:
        parts.extend(_wrapped(NET_LAYER, _layer_parts(layer_name, layer_type, blobs)))
    return b"".join(parts)


def write_file(path, layers, name=None):
    data = write_bytes(layers, name)
    with open(path, "wb") as f:
        f.write(data)
    return len(data)


# ----------------------------------------------------------------------------------------------------
# reading


def decode_varint(buf, pos):
    """(value, new position); ``buf`` is bytes or a memoryview."""
    result = 0
    shift = 0
    end = len(buf)
    while True:
        if pos >= end:
            raise CaffemodelError("truncated varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise CaffemodelError("varint longer than ten bytes")


def _signed64(value):
    return value - (1 << 64) if value >= 1 << 63 else value


def iter_fields(buf):
    """(field number, wire type, value) for each field of a message: value is an int for varints, a memoryview
    for length-delimited and fixed-size fields."""
    buf = memoryview(buf)
    pos = 0
    end = len(buf)
    while pos < end:
        key, pos = decode_varint(buf, pos)
        field, wire_type = key >> 3, key & 7
        if field == 0:
            raise CaffemodelError("field number 0")
        if wire_type == VARINT:
            value, pos = decode_varint(buf, pos)
        elif wire_type == LENGTH:
            size, pos = decode_varint(buf, pos)
            if pos + size > end:
                raise CaffemodelError(f"field {field}: truncated ({size} bytes announced, {end - pos} left)")
            value = buf[pos:pos + size]
            pos += size
        elif wire_type == FIXED32:
            if pos + 4 > end:
                raise CaffemodelError("truncated fixed32")
            value = buf[pos:pos + 4]
            pos += 4
        elif wire_type == FIXED64:
            if pos + 8 > end:
                raise CaffemodelError("truncated fixed64")
            value = buf[pos:pos + 8]
            pos += 8
        else:
            raise CaffemodelError(f"field {field}: wire type {wire_type} is not used by caffe.proto")
        yield field, wire_type, value


def _varints(view):
    values = []
    pos = 0
    while pos < len(view):
        value, pos = decode_varint(view, pos)
        values.append(value)
    return values


def _text(view):
    return bytes(view).decode("utf-8", "replace")


def decode_blob(buf):
    """A Blob from BlobProto bytes."""
    dims = None
    legacy = [None, None, None, None]
    floats = []
    doubles = []
    for field, wire_type, value in iter_fields(buf):
        if field == BLOB_SHAPE and wire_type == LENGTH:
            dims = []
            for f2, w2, v2 in iter_fields(value):
                if f2 != SHAPE_DIM:
                    continue
                if w2 == LENGTH:
                    dims.extend(_signed64(v) for v in _varints(v2))
                elif w2 == VARINT:
                    dims.append(_signed64(v2))
        elif field in (BLOB_NUM, BLOB_CHANNELS, BLOB_HEIGHT, BLOB_WIDTH) and wire_type == VARINT:
            legacy[field - 1] = _signed64(value)
        elif field == BLOB_DATA:
            if wire_type == LENGTH:
                if len(value) % 4:
                    raise CaffemodelError("BlobProto.data is not a whole number of floats")
                floats.append(np.frombuffer(value, dtype="<f4"))
            elif wire_type == FIXED32:
                floats.append(np.frombuffer(value, dtype="<f4"))
        elif field == BLOB_DOUBLE_DATA:
            if wire_type == LENGTH:
                if len(value) % 8:
                    raise CaffemodelError("BlobProto.double_data is not a whole number of doubles")
                doubles.append(np.frombuffer(value, dtype="<f8"))
            elif wire_type == FIXED64:
                doubles.append(np.frombuffer(value, dtype="<f8"))
    parts = floats if floats else doubles
    data = np.concatenate(parts).astype(np.float32) if parts else np.zeros(0, dtype=np.float32)
    is_legacy = False
    if dims is None:
        if any(v is not None for v in legacy):
            dims = [v if v is not None else 0 for v in legacy]
            is_legacy = True
        else:
            dims = [data.size] if data.size else [0]
    count = int(np.prod(dims, dtype=np.int64)) if dims else 1
    if count != data.size:
        raise CaffemodelError(f"a blob of shape {dims} holds {data.size} values")
    return Blob(data.reshape(dims), dims, is_legacy)


def _decode_layer(buf, name_field=LAYER_NAME, type_field=LAYER_TYPE, blobs_field=LAYER_BLOBS):
    """A LayerParameter, or (with V0's field numbers) a V0LayerParameter: name, type string and blobs."""
    name = None
    layer_type = None
    blobs = []
    for field, wire_type, value in iter_fields(buf):
        if wire_type != LENGTH:
            continue
        if field == name_field:
            name = _text(value)
        elif field == type_field:
            layer_type = _text(value)
        elif field == blobs_field:
            blobs.append(decode_blob(value))
    return CaffeLayer(name, layer_type, blobs)


def _decode_v0_layer(buf):
    return _decode_layer(buf, V0_NAME, V0_TYPE, V0_BLOBS)


def _decode_v1_layer(buf):
    name = None
    layer_type = None
    blobs = []
    v0 = None
    for field, wire_type, value in iter_fields(buf):
        if field == V1_NAME and wire_type == LENGTH:
            name = _text(value)
        elif field == V1_TYPE and wire_type == VARINT:
            layer_type = V1_TYPE_NUMBERS.get(value, str(value))
        elif field == V1_BLOBS and wire_type == LENGTH:
            blobs.append(decode_blob(value))
        elif field == V1_LAYER_V0 and wire_type == LENGTH:
            v0 = _decode_v0_layer(value)
    if v0 is not None and name is None and not blobs:  # V0: layers { layer { name type blobs } }
        return v0
    return CaffeLayer(name, layer_type, blobs)


def read_bytes(data):
    """A CaffeNet from caffemodel bytes: current ``layer`` entries, legacy V1 ``layers`` (and V0 inside them)."""
    name = None
    layers = []
    v1_layers = []
    for field, wire_type, value in iter_fields(data):
        if wire_type != LENGTH:
            continue
        if field == NET_NAME:
            name = _text(value)
        elif field == NET_LAYER:
            layers.append(_decode_layer(value))
        elif field == NET_LAYERS_V1:
            v1_layers.append(_decode_v1_layer(value))
    return CaffeNet(name, layers + v1_layers)


def read_file(path):
    """Read a .caffemodel. Raises OSError when unreadable, CaffemodelError when not understood."""
    with open(path, "rb") as f:
        data = f.read()
    return read_bytes(data)


def shape_matches(expected, blob):
    """Whether a read blob fits an expected shape, as Caffe checks it (Blob::ShapeEquals): exactly, or for a
    legacy 4-D blob, the expected shape padded with leading 1s to four axes."""
    expected = [int(d) for d in expected]
    if not blob.legacy:
        return expected == list(blob.shape)
    if len(expected) > 4:
        return False
    return [1] * (4 - len(expected)) + expected == list(blob.shape)
