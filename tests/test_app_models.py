"""Models page (AppTest): the model cost of sample and uploaded prototxts, compared with importer.model.cost
directly; options and the chosen sample restored from the URL; bad prototxts as one-line errors.
Plus the pure table and chart functions behind it."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from streamlit.dataframe_util import convert_arrow_bytes_to_pandas_df
from streamlit.testing.v1 import AppTest

from app import charts, tables
from importer.errors import InputError
from importer.model.cost import analyze, cost_frame
from importer.model.net import parse_prototxt, read_prototxt
from importer.store import ENV_DB

import apptest

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "sample_traces" / "models"
TIMEOUT_S = 60

BAD_FIELD = """name: "bad"
input: "data"
input_shape { dim: 1 dim: 3 dim: 32 dim: 32 }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
        convolution_param { num_output: 8 kernal_size: 3 } }
"""
UNKNOWN_TYPE = """name: "odd"
input: "data"
input_shape { dim: 1 dim: 3 dim: 32 dim: 32 }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
        convolution_param { num_output: 8 kernel_size: 3 } }
layer { name: "mystery" type: "FancyNorm" bottom: "conv1" top: "mystery" }
"""


@pytest.fixture(autouse=True)
def _empty_store(tmp_path, monkeypatch):
    import streamlit as st

    monkeypatch.setenv(ENV_DB, str(tmp_path / "store.duckdb"))  # the page never reads it; main.py must not fail
    st.cache_data.clear()
    yield
    st.cache_data.clear()


def _app(**params) -> AppTest:
    return apptest.open_page("views/models.py", params, timeout_s=TIMEOUT_S)


def _ok(at: AppTest) -> AppTest:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    return at


def _metrics(at: AppTest) -> dict[str, str]:
    return {metric.label: metric.value for metric in at.metric}


def _exact(totals: dict) -> dict[str, int]:
    return {
        "MACs": totals["macs"], "FLOPs": totals["flops"], "Parameters": totals["params"],
        "Weight bytes": totals["weight_bytes"], "Activation bytes": totals["input_bytes"] + totals["output_bytes"],
        "Minimum traffic": totals["traffic_bytes"],
    }


def _shown_exact(at: AppTest) -> dict[str, int]:
    """The exact totals, from the caption under the metrics ("Exactly: MACs 387,747,520 · ...")."""
    line = next(c.value for c in at.caption if c.value.startswith("Exactly: "))
    pairs = [part.rsplit(" ", 1) for part in line.removeprefix("Exactly: ").split(" · ")]
    return {label: int(number.replace(",", "")) for label, number in pairs}


def _chart_data(at: AppTest, title_start: str) -> tuple[dict, pd.DataFrame]:
    for chart in at.get("vega_lite_chart"):
        spec = json.loads(chart.proto.spec)
        if spec["title"].startswith(title_start):
            return spec, convert_arrow_bytes_to_pandas_df(chart.proto.datasets[0].data.data)
    raise AssertionError(f"no chart titled {title_start!r}")


def test_squeezenet_v11_by_default_with_the_analyzers_totals():
    at = _ok(_app())
    analysis = analyze(read_prototxt(MODELS / "squeezenet_v1.1.prototxt"))
    assert _shown_exact(at) == _exact(analysis.totals())
    assert _shown_exact(at)["Parameters"] == 1_235_496  # torchvision's figure (docs/model-cost.md)
    assert _metrics(at) == {"MACs": "387.75 M", "FLOPs": "781.62 M", "Parameters": "1.24 M",
                            "Weight bytes": "4.94 MB", "Activation bytes": "61.67 MB", "Minimum traffic": "66.62 MB"}
    assert at.selectbox(key="models_model").value == "squeezenet_v1.1"
    assert at.query_params["model"] == "squeezenet_v1.1" and at.query_params["dtype"] == "fp32"
    assert "1x3x227x227" in at.markdown[0].value


def test_layer_and_module_tables_and_charts_hold_the_analysis():
    at = _ok(_app())
    costs = cost_frame(analyze(read_prototxt(MODELS / "squeezenet_v1.1.prototxt")).layers)
    layers = at.dataframe[0].value
    assert layers["name"].tolist() == costs["layer_name"].tolist()
    assert layers["flops"].tolist() == costs["flops"].tolist()
    assert layers.loc[0, "output_shape"] == "1x64x113x113"  # conv1, 3x3 stride 2 on 227
    modules = at.dataframe[1].value.set_index("module")
    fire2 = costs[costs["module"] == "fire2"]
    assert modules.loc["fire2", "layers"] == len(fire2) == 7
    # squeeze 64->16, expand1x1 16->64, expand3x3 16->64, with biases
    assert modules.loc["fire2", "params"] == fire2["params"].sum() == 1_040 + 1_088 + 9_280
    assert modules["macs"].sum() == costs["macs"].sum()

    spec, data = _chart_data(at, "FLOPs per layer")
    assert "modelled" in spec["title"]
    assert data["label"].tolist() == costs["layer_name"].tolist()
    assert data["flops"].tolist() == costs["flops"].tolist()
    _, params = _chart_data(at, "Parameters per layer")
    assert params["params"].sum() == 1_235_496 and (params["params"] > 0).all()
    _, intensity = _chart_data(at, "Arithmetic intensity per layer")
    conv1 = costs.iloc[0]
    assert intensity.loc[0, "arithmetic_intensity"] == pytest.approx(conv1["flops"] / conv1["traffic_bytes"])
    # Every table and chart can be downloaded.
    labels = [button.proto.label for button in at.get("download_button")]
    assert labels.count("CSV") == 2 and labels.count("Parquet") == 2
    assert labels.count("SVG") == 3 and labels.count("PNG") == 3


def test_url_restores_model_and_options():
    at = _ok(_app(model="resnet50", batch="4", dtype="fp16", shape="1,3,256,256", by="module"))
    analysis = analyze(read_prototxt(MODELS / "resnet50.prototxt"), input_shape=[1, 3, 256, 256], batch=4,
                       dtype="fp16")
    assert _shown_exact(at) == _exact(analysis.totals())
    fp32 = analyze(read_prototxt(MODELS / "resnet50.prototxt"), input_shape=[1, 3, 256, 256], batch=4).totals()
    assert 2 * analysis.totals()["weight_bytes"] == fp32["weight_bytes"]  # fp16: two bytes a value
    assert at.selectbox(key="models_model").value == "resnet50"
    assert at.number_input(key="models_batch").value == 4
    assert at.text_input(key="models_shape").value == "1,3,256,256"
    assert at.radio(key="models_dtype").value == "fp16"
    assert at.radio(key="models_by").value == "module"
    _, data = _chart_data(at, "FLOPs per module")
    assert "res2a" in data["label"].tolist()


def test_choices_go_into_the_url():
    at = _ok(_app())
    at.selectbox(key="models_model").select("alexnet").run()
    at.number_input(key="models_batch").set_value(2).run()
    at.radio(key="models_dtype").set_value("fp16").run()
    _ok(at)
    assert at.query_params["model"] == "alexnet"
    assert at.query_params["batch"] == "2"
    assert at.query_params["dtype"] == "fp16"
    assert _shown_exact(at)["MACs"] == 2 * 724_406_816  # BVLC AlexNet, published figure x batch 2
    assert _shown_exact(at)["Parameters"] == 60_965_224
    assert _metrics(at)["MACs"] == "1.45 G"


def test_bad_url_values_fall_back_with_a_message():
    at = _app(model="no-such-net", batch="-3")
    assert not at.exception
    assert any("no-such-net" in w.value for w in at.warning)
    assert at.selectbox(key="models_model").value == "squeezenet_v1.1"
    assert at.number_input(key="models_batch").value is None
    assert _shown_exact(at)["Parameters"] == 1_235_496


def test_bad_input_shape_is_one_line():
    at = _app(shape="1,3,x")
    assert not at.exception
    assert [e.value for e in at.error] == ["input shape: '1,3,x' is not a shape; expected positive integers like "
                                           "1,3,227,227"]
    assert not at.metric


def test_uploaded_prototxt_is_analysed():
    at = _ok(_app(model="upload"))
    assert not at.metric  # nothing to show before a file is uploaded
    assert any("cannot be part of a link" in c.value for c in at.caption)
    lenet = (MODELS / "legacy_v1_lenet.prototxt").read_bytes()
    at.get("file_uploader")[0].set_value(("lenet.prototxt", lenet, "text/plain"))
    _ok(at.run())
    assert _shown_exact(at)["MACs"] == 2_293_000
    assert _shown_exact(at)["Parameters"] == 431_080
    assert at.query_params["model"] == "upload"


def test_bad_prototxt_gives_the_one_line_error_naming_the_file():
    at = _ok(_app(model="upload"))
    at.get("file_uploader")[0].set_value(("my_net.prototxt", BAD_FIELD.encode(), "text/plain"))
    at.run()
    assert not at.exception
    with pytest.raises(InputError) as expected:
        parse_prototxt(BAD_FIELD, "my_net.prototxt")
    assert [e.value for e in at.error] == [expected.value.one_line()]
    assert at.error[0].value.startswith("my_net.prototxt: line 5")
    assert "kernal_size" in at.error[0].value and "\n" not in at.error[0].value
    assert not at.metric

    at.get("file_uploader")[0].set_value(("binary.prototxt", b"\xff\xfe\x00junk", "text/plain"))
    at.run()
    assert not at.exception
    assert at.error[0].value.startswith("binary.prototxt: cannot be read as UTF-8 text")


def test_unknown_layers_refused_unless_allowed():
    at = _ok(_app(model="upload"))
    at.get("file_uploader")[0].set_value(("odd.prototxt", UNKNOWN_TYPE.encode(), "text/plain"))
    at.run()
    assert "layer type 'FancyNorm' is not known" in at.error[0].value
    at.checkbox(key="models_unknown").check().run()
    _ok(at)
    assert at.query_params["unknown"] == "True"
    assert any("FancyNorm" in w.value and "shape-preserving" in w.value for w in at.warning)
    layers = at.dataframe[0].value.set_index("name")
    assert bool(layers.loc["mystery", "known"]) is False and layers.loc["mystery", "flops"] == 0
    assert _shown_exact(at)["MACs"] == 8 * 30 * 30 * 3 * 3 * 3


# Pure functions

def test_model_module_table_sums_and_intensity():
    layers = pd.DataFrame({
        "index": [0, 1, 2], "module": ["a", "a", "b"], "macs": [10, 0, 5], "flops": [20, 4, 10],
        "params": [3, 0, 1], "weight_bytes": [12, 0, 4], "traffic_bytes": [100, 20, 0],
    })
    modules = tables.model_module_table(layers)
    assert modules["module"].tolist() == ["a", "b"]
    assert modules["layers"].tolist() == [2, 1]
    assert modules["flops"].tolist() == [24, 10]
    assert modules.loc[0, "arithmetic_intensity"] == pytest.approx(24 / 120)
    assert pd.isna(modules.loc[1, "arithmetic_intensity"])  # no traffic: no intensity, not infinity


def test_model_bar_chart_keeps_network_order_and_marks_modelled():
    costs = cost_frame(analyze(read_prototxt(MODELS / "googlenet.prototxt")).layers)
    table = tables.model_layer_table(costs)
    spec = charts.model_bar_chart(table, "flops", "FLOPs", "FLOPs").to_dict()
    data = spec["datasets"][spec["data"]["name"]]
    assert [row["label"] for row in data] == table["name"].tolist()
    assert spec["encoding"]["y"]["sort"] == table["name"].tolist()
    assert {row["note"] for row in data} == {charts.MODEL_NOTE}
    modules = tables.model_module_table(table)
    spec = charts.model_bar_chart(modules, "params", "Params", "parameters", by="module").to_dict()
    data = spec["datasets"][spec["data"]["name"]]
    assert [row["label"] for row in data][:3] == ["conv1", "pool1", "conv2"]
    assert sum(row["params"] for row in data) == 6_998_552
