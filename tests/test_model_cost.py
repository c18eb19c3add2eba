"""Model cost: shapes, MACs, FLOPs, parameters and bytes, checked against published figures and hand arithmetic."""

import json
from pathlib import Path

import duckdb
import pytest

from cli.main import main
from importer import store
from importer.errors import InputError
from importer.ingest import import_sources
from importer.model import caffe_pb2
from importer.model.cost import analyze
from importer.model.net import parse_prototxt, read_prototxt
from importer.report import run_report

import bundles

MODELS = Path(__file__).resolve().parent.parent / "sample_traces" / "models"


def analysis_of(model: str, **options):
    return analyze(read_prototxt(MODELS / f"{model}.prototxt"), **options)


def by_name(analysis):
    return {c.name: c for c in analysis.layers}


# Reference totals: model-analysis.md (Conv + InnerProduct MACs, learnable parameters, batch 1).
@pytest.mark.parametrize("model, macs, params", [
    ("squeezenet_v1.0", 861_339_936, 1_248_424),
    ("alexnet", 724_406_816, 60_965_224),
    ("resnet50", 3_857_973_248, 25_557_096),
])
def test_totals_equal_the_published_reference_figures(model, macs, params):
    totals = analysis_of(model).totals()
    assert totals["macs"] == macs
    assert totals["params"] == params


def test_squeezenet_v11_parameters_match_torchvision_and_compute_is_over_twice_less():
    v10, v11 = analysis_of("squeezenet_v1.0").totals(), analysis_of("squeezenet_v1.1").totals()
    assert v11["params"] == 1_235_496
    # torchvision quotes "about 2.4x less computation" (at 224x224); at 227x227 the MACs ratio is 2.22.
    assert v10["macs"] / v11["macs"] == pytest.approx(2.22, abs=0.01)


def test_squeezenet_v10_per_layer_figures():
    layers = by_name(analysis_of("squeezenet_v1.0"))
    assert layers["conv1"].macs == 96 * 111 * 111 * 3 * 7 * 7  # 173.9 M
    assert layers["conv10"].macs == 1000 * 15 * 15 * 512  # 115.2 M
    for name, reference_m in [("fire4/expand3x3", 111.5), ("fire8/expand3x3", 107.5),
                              ("fire6/expand3x3", 60.5), ("fire7/expand3x3", 60.5)]:
        assert layers[name].macs / 1e6 == pytest.approx(reference_m, abs=0.05)
    conv1 = layers["conv1"]
    assert conv1.output_shapes == [[1, 96, 111, 111]]
    assert conv1.flops == 2 * conv1.macs
    assert conv1.params == 96 * 3 * 7 * 7 + 96
    assert conv1.weight_bytes == 4 * conv1.params
    assert conv1.input_bytes == 4 * 3 * 227 * 227 and conv1.output_bytes == 4 * 96 * 111 * 111
    assert conv1.traffic_bytes == conv1.input_bytes + conv1.weight_bytes + conv1.output_bytes
    assert conv1.arithmetic_intensity == pytest.approx(conv1.flops / conv1.traffic_bytes)
    # Caffe's ceil rule: 111 -> ceil((111 - 3) / 2) + 1 = 55
    assert layers["pool1"].output_shapes == [[1, 96, 55, 55]]
    assert layers["pool1"].flops == 96 * 55 * 55 * 9
    assert layers["relu_conv1"].flops == 96 * 111 * 111
    assert layers["fire2/concat"].output_shapes == [[1, 128, 55, 55]] and layers["fire2/concat"].flops == 0
    assert layers["pool10"].output_shapes == [[1, 1000, 1, 1]]


def test_modules_group_blocks_as_the_poster_does():
    squeeze = by_name(analysis_of("squeezenet_v1.0"))
    assert squeeze["fire2/squeeze1x1"].module == "fire2" and squeeze["fire2/concat"].module == "fire2"
    assert squeeze["relu_conv1"].module == "conv1"  # in place on conv1's output
    assert squeeze["pool1"].module == "pool1"
    google = by_name(analysis_of("googlenet"))
    assert google["inception_3a/1x1"].module == "inception_3a"
    assert google["inception_3a/output"].module == "inception_3a"
    resnet = by_name(analysis_of("resnet50"))
    for name in ("res2a_branch2a", "bn2a_branch2a", "scale2a_branch2a", "res2a_branch2a_relu", "res2a_branch1",
                 "res2a", "res2a_relu"):
        assert resnet[name].module == "res2a", name
    assert resnet["bn_conv1"].module == "conv1" and resnet["conv1_relu"].module == "conv1"
    mobile = by_name(analysis_of("mobilenet_v1"))
    assert mobile["conv2_1/dw"].module == mobile["conv2_1/sep"].module == "conv2_1"


def test_batchnorm_statistics_are_stored_bytes_not_parameters():
    resnet = by_name(analysis_of("resnet50"))
    bn = resnet["bn_conv1"]
    assert bn.params == 0 and bn.weight_bytes == 4 * (64 + 64 + 1)
    scale = resnet["scale_conv1"]
    assert scale.params == 128 and scale.flops == 2 * 64 * 112 * 112


def test_batch_input_shape_and_fp16_options():
    base = analysis_of("alexnet").totals()
    batched = analysis_of("alexnet", batch=4)
    assert batched.totals()["macs"] == 4 * base["macs"]
    assert batched.input_shapes == {"data": [4, 3, 227, 227]}
    assert analysis_of("alexnet", dtype="fp16").totals()["weight_bytes"] == base["weight_bytes"] // 2
    wide = analysis_of("squeezenet_v1.1", input_shape=[1, 3, 320, 320])
    assert wide.input_shapes == {"data": [1, 3, 320, 320]}
    assert by_name(wide)["conv1"].output_shapes == [[1, 64, 159, 159]]


def test_legacy_v1_format_parses_and_maps_types():
    analysis = analysis_of("legacy_v1_lenet")
    assert [c.type for c in analysis.layers][:4] == ["Convolution", "Pooling", "Convolution", "Pooling"]
    assert analysis.input_shapes == {"data": [1, 1, 28, 28]}
    layers = by_name(analysis)
    assert layers["conv1"].output_shapes == [[1, 20, 24, 24]]
    assert layers["ip1"].macs == 50 * 4 * 4 * 500
    assert analysis.totals()["macs"] == 2_293_000


NET_HEAD = ('name: "t"\n'
            'layer { name: "in" type: "Input" top: "data" input_param { shape { dim: 2 dim: 8 dim: 10 dim: 12 } } }\n')


def costs(body: str, **options):
    return by_name(analyze(parse_prototxt(NET_HEAD + body), **options))


def test_convolution_variants_rectangular_dilated_grouped():
    layers = costs('layer { name: "c" type: "Convolution" bottom: "data" top: "c" convolution_param { num_output: 4 '
                   'kernel_h: 3 kernel_w: 5 stride_h: 2 stride_w: 1 pad_h: 1 pad_w: 0 group: 2 bias_term: false } }\n'
                   'layer { name: "d" type: "Convolution" bottom: "data" top: "d" convolution_param { num_output: 8 '
                   'kernel_size: 3 kernel_size: 1 dilation: 2 } }\n'
                   'layer { name: "dw" type: "DepthwiseConvolution" bottom: "data" top: "dw" convolution_param { '
                   'num_output: 8 kernel_size: 3 pad: 1 } }')
    c = layers["c"]
    assert c.output_shapes == [[2, 4, 5, 8]]  # H: (10 + 2 - 3) // 2 + 1 = 5; W: (12 - 5) + 1 = 8
    assert c.params == 4 * (8 // 2) * 3 * 5 and c.macs == 2 * 4 * 5 * 8 * (8 // 2) * 3 * 5
    d = layers["d"]
    assert d.output_shapes == [[2, 8, 6, 12]]  # dilated 3-tap kernel spans 5 rows
    assert d.params == 8 * 8 * 3 * 1 + 8
    dw = layers["dw"]
    assert dw.params == 8 * 1 * 3 * 3 + 8 and dw.macs == 2 * 8 * 10 * 12 * 9


def test_deconvolution_and_inner_product_axis():
    layers = costs('layer { name: "up" type: "Deconvolution" bottom: "data" top: "up" convolution_param { '
                   'num_output: 3 kernel_size: 4 stride: 2 pad: 1 } }\n'
                   'layer { name: "fc" type: "InnerProduct" bottom: "data" top: "fc" inner_product_param { '
                   'num_output: 7 axis: 2 } }')
    assert layers["up"].output_shapes == [[2, 3, 20, 24]]
    assert layers["up"].macs == 2 * 8 * 10 * 12 * 3 * 16
    assert layers["fc"].output_shapes == [[2, 8, 7]]
    assert layers["fc"].macs == 16 * 120 * 7 and layers["fc"].params == 120 * 7 + 7


def test_pooling_ceil_rule_clip_global_and_floor():
    layers = costs('layer { name: "p" type: "Pooling" bottom: "data" top: "p" pooling_param { pool: MAX '
                   'kernel_size: 2 stride: 2 pad: 1 } }\n'
                   'layer { name: "g" type: "Pooling" bottom: "data" top: "g" pooling_param { pool: AVE '
                   'global_pooling: true } }\n'
                   'layer { name: "f" type: "Pooling" bottom: "data" top: "f" pooling_param { kernel_size: 3 '
                   'stride: 2 round_mode: FLOOR } }')
    # H: ceil((10 + 2 - 2) / 2) + 1 = 6 and W: 7; no clip, since the last windows start inside the input
    assert layers["p"].output_shapes == [[2, 8, 6, 7]]
    assert layers["g"].output_shapes == [[2, 8, 1, 1]] and layers["g"].flops == 2 * 8 * 10 * 12
    assert layers["f"].output_shapes == [[2, 8, 4, 5]]
    clipped = by_name(analyze(parse_prototxt(
        'input: "x" input_shape { dim: 1 dim: 1 dim: 5 dim: 5 }\n'
        'layer { name: "p" type: "Pooling" bottom: "x" top: "p" pooling_param { kernel_size: 2 stride: 2 pad: 1 } }')))
    assert clipped["p"].output_shapes == [[1, 1, 3, 3]]  # ceil((5+2-2)/2)+1 = 4, last window starts in padding


def test_elementwise_layers_params_and_ops():
    layers = costs('layer { name: "bn" type: "BatchNorm" bottom: "data" top: "data" }\n'
                   'layer { name: "sc" type: "Scale" bottom: "data" top: "data" scale_param { bias_term: true } }\n'
                   'layer { name: "pr" type: "PReLU" bottom: "data" top: "pr" }\n'
                   'layer { name: "pr1" type: "PReLU" bottom: "data" top: "pr1" '
                   'prelu_param { channel_shared: true } }\n'
                   'layer { name: "sum" type: "Eltwise" bottom: "pr" bottom: "pr1" top: "sum" eltwise_param { '
                   'operation: SUM coeff: 1 coeff: -1 } }\n'
                   'layer { name: "max" type: "Eltwise" bottom: "pr" bottom: "pr1" bottom: "sum" top: "max" '
                   'eltwise_param { operation: MAX } }\n'
                   'layer { name: "lrn" type: "LRN" bottom: "max" top: "lrn" lrn_param { local_size: 5 } }\n'
                   'layer { name: "sm" type: "Softmax" bottom: "lrn" top: "sm" }\n'
                   'layer { name: "pw" type: "Power" bottom: "sm" top: "pw" power_param { power: 2 } }')
    elements = 2 * 8 * 10 * 12
    assert layers["bn"].params == 0 and layers["bn"].weight_bytes == 4 * 17 and layers["bn"].flops == 2 * elements
    assert layers["sc"].params == 16 and layers["sc"].flops == 2 * elements
    assert layers["pr"].params == 8 and layers["pr1"].params == 1
    assert layers["sum"].flops == (1 + 2) * elements  # one add, two coefficient multiplies
    assert layers["max"].flops == 2 * elements
    assert layers["lrn"].macs == 5 * elements and layers["lrn"].flops == (10 + 3) * elements
    assert layers["sm"].flops == 3 * elements and layers["pw"].flops == 3 * elements
    assert layers["bn"].module == "in" and layers["sc"].module == "in"  # in place on the input's blob


def test_data_movement_layers_shapes():
    layers = costs('layer { name: "sl" type: "Slice" bottom: "data" top: "a" top: "b" slice_param { axis: 1 '
                   'slice_point: 3 } }\n'
                   'layer { name: "cat" type: "Concat" bottom: "b" bottom: "a" top: "cat" }\n'
                   'layer { name: "sp" type: "Split" bottom: "cat" top: "s1" top: "s2" }\n'
                   'layer { name: "fl" type: "Flatten" bottom: "s1" top: "fl" }\n'
                   'layer { name: "rs" type: "Reshape" bottom: "s2" top: "rs" reshape_param { shape { dim: 0 '
                   'dim: -1 dim: 4 } } }\n'
                   'layer { name: "cr" type: "Crop" bottom: "s1" bottom: "a" top: "cr" crop_param { axis: 1 '
                   'offset: 5 offset: 0 offset: 0 } }\n'
                   'layer { name: "pm" type: "Permute" bottom: "s1" top: "pm" permute_param { order: 0 order: 2 '
                   'order: 3 order: 1 } }\n'
                   'layer { name: "sh" type: "ShuffleChannel" bottom: "s1" top: "sh" shuffle_channel_param { '
                   'group: 2 } }\n'
                   'layer { name: "dr" type: "Dropout" bottom: "sh" top: "sh" }')
    assert layers["sl"].output_shapes == [[2, 3, 10, 12], [2, 5, 10, 12]]
    assert layers["cat"].output_shapes == [[2, 8, 10, 12]]
    assert layers["sp"].output_shapes == [[2, 8, 10, 12]] * 2
    assert layers["fl"].output_shapes == [[2, 960]]
    assert layers["rs"].output_shapes == [[2, 240, 4]]
    assert layers["cr"].output_shapes == [[2, 3, 10, 12]]
    assert layers["pm"].output_shapes == [[2, 10, 12, 8]]
    assert layers["sh"].output_shapes == [[2, 8, 10, 12]]
    assert all(layers[n].flops == 0 and layers[n].params == 0 for n in ("sl", "cat", "sp", "fl", "rs", "cr", "dr"))


def test_unknown_layer_type_is_an_error_unless_allowed():
    body = 'layer { name: "odd" type: "Frobnicate" bottom: "data" top: "odd" }'
    with pytest.raises(InputError, match="layer 'odd' \\(Frobnicate\\): layer type 'Frobnicate' is not known"):
        costs(body)
    analysis = analyze(parse_prototxt(NET_HEAD + body), allow_unknown=True)
    odd = by_name(analysis)["odd"]
    assert odd.output_shapes == [[2, 8, 10, 12]] and odd.flops == 0 and odd.known is False
    assert any("Frobnicate" in w for w in analysis.warnings)


def test_syntax_errors_name_line_and_column():
    with pytest.raises(InputError) as error:
        parse_prototxt('name: "t"\nlayer {\n  name: "c"\n  type "Convolution"\n}\n', "bad.prototxt")
    assert error.value.one_line().startswith("bad.prototxt: line 4 column")


def test_unknown_fields_skipped_outside_cost_but_refused_inside():
    net = parse_prototxt(NET_HEAD + 'layer { name: "d" type: "ReLU" bottom: "data" top: "d" '
                         'transform_param { mirror: true } }')
    assert any("transform_param" in w for w in net.warnings)
    with pytest.raises(InputError, match="kernal_size"):
        parse_prototxt(NET_HEAD + 'layer { name: "c" type: "Convolution" bottom: "data" top: "c" '
                       'convolution_param { num_output: 2 kernal_size: 3 } }')


def test_caffemodel_blob_shapes_are_checked(tmp_path):
    prototxt = MODELS / "legacy_v1_lenet.prototxt"
    good = tmp_path / "good.caffemodel"
    good.write_bytes(bundles.lenet_caffemodel())
    assert main(["analyze", str(prototxt), "--weights", str(good), "--format", "json"]) == 0
    model = caffe_pb2.NetParameter.FromString(bundles.lenet_caffemodel())
    model.layer[2].blobs[0].shape.dim[1] = 801
    bad = tmp_path / "bad.caffemodel"
    bad.write_bytes(model.SerializeToString())
    assert main(["analyze", str(prototxt), "--weights", str(bad)]) == 2


def test_cli_analyze_json_contract(capsys):
    assert main(["analyze", str(MODELS / "squeezenet_v1.0.prototxt"), "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["model"] == "squeezenet_v1.0"  # no name: field, so the file name
    assert report["input_shape"] == [1, 3, 227, 227]
    assert report["total"]["macs"] == 861_339_936 and report["total"]["params"] == 1_248_424
    conv1 = report["layers"][0]
    assert set(conv1) >= {"name", "type", "module", "output_shape", "macs", "flops", "params", "weight_bytes",
                          "input_bytes", "output_bytes", "arithmetic_intensity"}
    assert conv1["output_shape"] == [1, 96, 111, 111] and conv1["macs"] == 173_873_952


def test_cli_analyze_bad_prototxt_is_exit_2_with_line_and_column(tmp_path, capsys):
    bad = tmp_path / "bad.prototxt"
    bad.write_text('layer {\n  name: "x"\n  type: Convolution"\n}\n')
    assert main(["analyze", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"{bad}: line 3 column" in err


def test_imported_runs_store_the_model_cost_joined_by_layer_name(tmp_path):
    db = tmp_path / "store.duckdb"
    import_sources([bundles.write_bundle(tmp_path / "tiny")], db=db)
    _, layers = run_report("run-tiny-1", db)
    conv1 = layers[layers["name"] == "conv1"].iloc[0]
    # tiny: 1x3x8x8 input, 4 filters 3x3 -> 1x4x6x6
    assert conv1["macs"] == 4 * 6 * 6 * 3 * 9 and conv1["params"] == 4 * 27 + 4 and conv1["module"] == "conv1"
    relu1 = layers[layers["name"] == "relu1"].iloc[0]
    assert relu1["module"] == "conv1" and relu1["flops"] == 4 * 6 * 6


def test_a_schema_1_store_is_migrated_and_its_runs_get_their_cost(tmp_path):
    db = tmp_path / "old.duckdb"
    with duckdb.connect(str(db)) as con:  # a store as layerjoule's first schema left it
        con.execute("CREATE TABLE schema_version (version INTEGER NOT NULL, applied_utc TIMESTAMP NOT NULL)")
        con.execute(store.MIGRATIONS[0][1])
        con.execute("INSERT INTO schema_version VALUES (1, now()::TIMESTAMP)")
        con.execute("INSERT INTO runs (run_id, name, simulated, imported_utc, prototxt, manifest) "
                    "VALUES ('old-run', 'old', true, now()::TIMESTAMP, ?, ?)",
                    [bundles.PROTOTXT.decode(), json.dumps(bundles.manifest())])
    with store.connect(db, read_only=True) as con:
        assert store.schema_version(con) == store.SCHEMA_VERSION
        rows = con.execute("SELECT layer_name, macs FROM layer_costs WHERE run_id = 'old-run' "
                           "ORDER BY prototxt_index").fetchall()
    assert rows == [("conv1", 4 * 6 * 6 * 3 * 9), ("relu1", 0)]
