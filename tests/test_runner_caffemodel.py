"""runner/caffemodel.py: the hand-written protobuf writer/reader of caffemodel weights, against real protobuf
(importer/model/caffe_pb2.py, package layerjoule.caffe)."""

import numpy as np
import pytest

from importer.model import caffe_pb2
from runner import caffemodel


def _layers():
    rng = np.random.RandomState(0)
    return [
        ("conv1", "Convolution", [rng.standard_normal((8, 3, 3, 3)).astype(np.float32),
                                  rng.standard_normal(8).astype(np.float32)]),
        ("relu1", "ReLU", []),
        ("fc", "InnerProduct", [rng.standard_normal((10, 200)).astype(np.float32)]),
        ("bn", "BatchNorm", [np.zeros(4, np.float32), np.ones(4, np.float32), np.ones(1, np.float32)]),
        ("scalar", "Scale", [np.array(2.5, dtype=np.float32)]),  # a 0-d blob (num_axes: 0)
    ]


@pytest.mark.parametrize("value", [0, 1, 127, 128, 300, 2 ** 31, 2 ** 63 - 1, -1, -(2 ** 63)])
def test_varint_round_trip(value):
    encoded = caffemodel.encode_varint(value)
    decoded, end = caffemodel.decode_varint(encoded, 0)
    assert end == len(encoded)
    assert caffemodel._signed64(decoded) == value


def test_round_trip():
    layers = _layers()
    data = caffemodel.write_bytes(layers, name="tiny")
    net = caffemodel.read_bytes(data)
    assert net.name == "tiny"
    assert [(la.name, la.type) for la in net.layers] == [(n, t) for n, t, _ in layers]
    for (_, _, blobs), read in zip(layers, net.layers, strict=True):
        assert len(read.blobs) == len(blobs)
        for blob, got in zip(blobs, read.blobs, strict=True):
            assert got.shape == list(blob.shape) and not got.legacy
            assert got.data.dtype == np.float32 and np.array_equal(got.data, blob)
    assert list(net.blobs_by_layer()) == ["conv1", "fc", "bn", "scalar"]


def test_real_protobuf_parses_what_the_writer_wrote():
    layers = _layers()
    message = caffe_pb2.NetParameter()
    message.ParseFromString(caffemodel.write_bytes(layers, name="tiny"))
    assert message.name == "tiny"
    assert [la.name for la in message.layer] == [n for n, _, _ in layers]
    assert [la.type for la in message.layer] == [t for _, t, _ in layers]
    for (_, _, blobs), layer in zip(layers, message.layer, strict=True):
        assert len(layer.blobs) == len(blobs)
        for blob, proto in zip(blobs, layer.blobs, strict=True):
            assert list(proto.shape.dim) == list(blob.shape)
            assert np.array_equal(np.array(proto.data, dtype=np.float32), blob.ravel())


def test_reader_reads_what_real_protobuf_wrote():
    rng = np.random.RandomState(1)
    weight = rng.standard_normal((4, 2, 3, 3)).astype(np.float32)
    bias = rng.standard_normal(4).astype(np.float32)
    message = caffe_pb2.NetParameter(name="pb")
    layer = message.layer.add(name="conv", type="Convolution", bottom=["data"], top=["conv"])
    layer.convolution_param.num_output = 4  # a field the reader skips
    for array in (weight, bias):
        blob = layer.blobs.add()
        blob.shape.dim.extend(array.shape)
        blob.data.extend(array.ravel().tolist())
    blob = message.layer.add(name="dbl", type="Scale").blobs.add()  # double_data instead of data
    blob.shape.dim.extend([3])
    blob.double_data.extend([1.5, -2.0, 3.25])
    net = caffemodel.read_bytes(message.SerializeToString())
    assert net.name == "pb"
    assert [(la.name, la.type) for la in net.layers] == [("conv", "Convolution"), ("dbl", "Scale")]
    conv = net.layers[0]
    assert [b.shape for b in conv.blobs] == [[4, 2, 3, 3], [4]]
    assert np.array_equal(conv.blobs[0].data, weight) and np.array_equal(conv.blobs[1].data, bias)
    assert np.array_equal(net.layers[1].blobs[0].data, np.array([1.5, -2.0, 3.25], np.float32))


def test_reader_reads_a_v1_net_with_legacy_4d_blobs():
    rng = np.random.RandomState(2)
    weight = rng.standard_normal((10, 50)).astype(np.float32)
    message = caffe_pb2.NetParameter(name="LeNet")
    layer = message.layers.add(name="ip2", type=caffe_pb2.V1LayerParameter.INNER_PRODUCT,
                               bottom=["ip1"], top=["ip2"])
    layer.blobs_lr.extend([1.0, 2.0])  # skipped
    blob = layer.blobs.add(num=1, channels=1, height=10, width=50)  # legacy 4-D: [1, 1, out, K]
    blob.data.extend(weight.ravel().tolist())
    blob = layer.blobs.add(num=1, channels=1, height=1, width=10)
    blob.data.extend([0.5] * 10)
    message.layers.add(name="relu", type=caffe_pb2.V1LayerParameter.RELU)
    net = caffemodel.read_bytes(message.SerializeToString())
    assert [(la.name, la.type) for la in net.layers] == [("ip2", "InnerProduct"), ("relu", "ReLU")]
    w, b = net.layers[0].blobs
    assert w.legacy and w.shape == [1, 1, 10, 50]
    assert np.array_equal(w.data.reshape(10, 50), weight)
    assert caffemodel.shape_matches([10, 50], w) and caffemodel.shape_matches([10], b)
    assert not caffemodel.shape_matches([50, 10], w)
    assert caffemodel.shape_matches([1, 10], b)  # as Caffe: legacy shapes are padded with leading 1s


def test_shape_matches_is_exact_for_blob_shapes():
    blob = caffemodel.Blob(np.zeros((1, 10), np.float32), [1, 10])
    assert caffemodel.shape_matches([1, 10], blob)
    assert not caffemodel.shape_matches([10], blob)


def test_reader_accepts_unpacked_repeated_fields():
    # data as separate fixed32 fields (key 0x2d) and dims as separate varints (key 0x08), as old writers did
    dims = b"".join(caffemodel._key(1, caffemodel.VARINT) + caffemodel.encode_varint(d) for d in (2, 2))
    values = np.arange(4, dtype="<f4")
    data = b"".join(caffemodel._key(5, caffemodel.FIXED32) + v.tobytes() for v in values)
    blob = caffemodel._length_delimited(7, dims) + data
    layer = caffemodel._string(1, "x") + caffemodel._length_delimited(7, blob)
    net = caffemodel.read_bytes(caffemodel._length_delimited(100, layer))
    assert net.layers[0].blobs[0].shape == [2, 2]
    assert np.array_equal(net.layers[0].blobs[0].data, values.reshape(2, 2))


@pytest.mark.parametrize("data", [b"\x0a\x05ab", b"\x80", b"\x0b", b"\xa2\x06\x02\x3a\x01"])
def test_broken_bytes_raise_caffemodel_error(data):
    with pytest.raises(caffemodel.CaffemodelError):
        caffemodel.read_bytes(data)


def test_file_round_trip(tmp_path):
    path = tmp_path / "w.caffemodel"
    layers = _layers()
    size = caffemodel.write_file(str(path), layers)
    assert size == path.stat().st_size
    net = caffemodel.read_file(str(path))
    assert np.array_equal(net.layers[0].blobs[0].data, layers[0][2][0])
