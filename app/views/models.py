"""Models page: the model cost (docs/model-cost.md) of any Caffe prototxt, without running it.

A sample model (sample_traces/models, the `model` query parameter) or an uploaded prototxt; batch, input shape,
element size and unknown layer types are options, all in the URL except the uploaded file itself. The analysis
is importer.model (as `layerjoule analyze`), pure Python, cached by the prototxt's text and the options.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from app import charts, export, state, tables
from importer.errors import InputError
from importer.model.cost import DTYPE_BYTES, analyze, cost_frame
from importer.model.net import parse_prototxt

MODELS_DIR = Path(__file__).resolve().parent.parent.parent / "sample_traces" / "models"
SAMPLES = {path.stem: path for path in sorted(MODELS_DIR.glob("*.prototxt"))}
DEFAULT_MODEL = "squeezenet_v1.1"  # the poster's network
UPLOAD = "upload"  # the `model` value that shows the uploader instead of a sample
UPLOAD_NOTE = (
    "An uploaded prototxt cannot be part of a link: the URL keeps the options, and a colleague opening it "
    "uploads the same file."
)
BY_OPTIONS = ["layer", "module"]


def _positive(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise ValueError(text)
    return value


def _flag(text: str) -> bool:
    if text not in ("True", "False"):
        raise ValueError(text)
    return text == "True"


def _shape(text: str) -> list[int] | None:
    """An input shape typed as 1,3,227,227 or 1x3x227x227; None when empty."""
    parts = text.replace("x", ",").replace(" ", "").split(",")
    if parts == [""]:
        return None
    try:
        shape = [int(part) for part in parts]
    except ValueError:
        shape = []
    if not shape or any(d <= 0 for d in shape):
        raise InputError(f"{text!r} is not a shape; expected positive integers like 1,3,227,227",
                         place="input shape")
    return shape


def _publish_text(param: str, key: str) -> None:
    """Like state.publish, but an empty box leaves the parameter out of the URL."""
    if st.session_state.get(key):
        state.publish(param, key)
    elif param in st.query_params:
        del st.query_params[param]


@st.cache_data(show_spinner=False, max_entries=64)
def _analysis(text: str, name: str, input_shape: tuple[int, ...] | None, batch: int | None, dtype: str,
              allow_unknown: bool) -> dict:
    """The analysis as plain frames; an InputError is raised (and not cached) for a bad prototxt."""
    network = parse_prototxt(text, name)
    analysis = analyze(network, input_shape=list(input_shape) if input_shape else None, batch=batch, dtype=dtype,
                       allow_unknown=allow_unknown)
    layers = tables.model_layer_table(cost_frame(analysis.layers))
    return {
        "model": analysis.model,
        "inputs": {blob: tables.shape_text(shape) for blob, shape in analysis.input_shapes.items()},
        "layers": layers,
        "modules": tables.model_module_table(layers),
        "totals": tables.model_totals(analysis.totals()),
        "warnings": list(analysis.warnings),
    }


def _si(value: int, unit: str = "") -> str:
    """A metric's figure with an SI prefix (387.75 M, 4.94 MB): the exact one is in its help and the caption."""
    for prefix, scale in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= scale:
            return f"{value / scale:.2f} {prefix}{unit}"
    return f"{value} {unit}".strip()


st.title("Models")
st.caption("Per-layer shapes, MACs, FLOPs, parameters and memory traffic of a Caffe prototxt, computed from the "
           "network definition alone: a model, not a measurement (docs/model-cost.md).")

options = [*SAMPLES, UPLOAD]
# The default also where the URL names a model that is not there (bind leaves the widget alone then).
st.session_state.setdefault("models_model", DEFAULT_MODEL if DEFAULT_MODEL in SAMPLES else options[0])
model_binding = state.bind("model", "models_model", options=options)
if model_binding.invalid:
    st.warning(f"No sample model {model_binding.invalid[0]!r}; showing another one.")
left, right = st.columns([2, 3])
choice = left.selectbox(
    "Model", options, format_func=lambda o: "Upload a prototxt…" if o == UPLOAD else o, **model_binding
)
state.publish("model", "models_model")

batch_col, shape_col, dtype_col, unknown_col = st.columns(4)
batch_binding = state.bind("batch", "models_batch", convert=_positive)
st.session_state.setdefault("models_batch", None)  # empty on a first visit: the batch the prototxt declares
batch = batch_col.number_input(
    "Batch", min_value=1, step=1, placeholder="as declared",
    help="Replaces dimension 0 of every input (empty: as the prototxt declares it)", **batch_binding,
)
state.publish("batch", "models_batch")
shape_text = shape_col.text_input(
    "Input shape", placeholder="as declared, e.g. 1,3,227,227",
    help="Replaces the shape of the first input (N,C,H,W); --batch still sets N",
    **state.bind("shape", "models_shape"),
)
_publish_text("shape", "models_shape")
dtype = dtype_col.radio("Element size", list(DTYPE_BYTES), horizontal=True,
                        help="Bytes per value: fp32 4, fp16 2 (weight, activation and traffic bytes)",
                        **state.bind("dtype", "models_dtype", options=list(DTYPE_BYTES), default="fp32"))
state.publish("dtype", "models_dtype")
allow_unknown = unknown_col.checkbox(
    "Allow unknown layers", help="Treat layer types the analysis does not know as shape-preserving and free "
                                 "(a warning each), instead of refusing the prototxt",
    **state.bind("unknown", "models_unknown", convert=_flag, default=False),
)
state.publish("unknown", "models_unknown")

if choice == UPLOAD:
    uploaded = right.file_uploader("Prototxt", type=["prototxt", "txt"], key="models_upload",
                                   help="A Caffe deploy prototxt (text format, current or legacy V1 layers)")
    right.caption(UPLOAD_NOTE)
    if uploaded is None:
        st.info("Upload a prototxt to see its cost, or pick a sample model.")
        st.stop()
    name, data = uploaded.name, uploaded.getvalue()
else:
    name, data = SAMPLES[choice].name, SAMPLES[choice].read_bytes()

try:
    text = data.decode("utf-8")
except UnicodeDecodeError as error:
    st.error(f"{name}: cannot be read as UTF-8 text ({error.reason} at byte {error.start}); expected a Caffe "
             "prototxt")
    st.stop()
try:
    input_shape = _shape(shape_text or "")
    result = _analysis(text, name, tuple(input_shape) if input_shape else None,
                       int(batch) if batch is not None else None, dtype, allow_unknown)
except InputError as error:
    st.error(error.one_line())
    st.stop()

layers: pd.DataFrame = result["layers"]
totals = result["totals"]
inputs = ", ".join(f"{blob} {shape}" for blob, shape in result["inputs"].items())
st.subheader(result["model"])
st.markdown(f"**input** {inputs or '-'} · **{dtype}** · **{len(layers)}** layers · {name}")
for warning in result["warnings"]:
    st.warning(warning)

METRICS = [  # (total, label, unit, what it counts)
    ("macs", "MACs", "", "multiply-accumulates of Convolution, Deconvolution and InnerProduct (the published "
                         "convention)"),
    ("flops", "FLOPs", "", "every layer's floating-point operations"),
    ("params", "Parameters", "", "learnable values (weights, biases, Scale, PReLU)"),
    ("weight_bytes", "Weight bytes", "B", "learned and stored values (BatchNorm statistics too)"),
    ("activation_bytes", "Activation bytes", "B", "every layer's inputs and outputs, each read or written once"),
    ("traffic_bytes", "Minimum traffic", "B", "weight bytes + activation bytes"),
]
for col, (total, label, unit, what) in zip(st.columns(len(METRICS)), METRICS, strict=True):
    col.metric(label, _si(totals[total], unit), help=f"{totals[total]:,}{' bytes' if unit else ''}: {what}")
st.caption("Exactly: " + " · ".join(f"{label} {totals[total]:,}" for total, label, _, _ in METRICS))

stem = f"{result['model']}_{dtype}" + (f"_batch{int(batch)}" if batch is not None else "")
layers_tab, modules_tab, charts_tab = st.tabs(["Layers", "Modules", "Charts"])
with layers_tab:
    unknown = int((~layers["known"]).sum())
    if unknown:
        st.warning(f"{unknown} layers of unknown type are counted as free (known = False): the totals leave them out.")
    export.show_table(layers, f"{stem}_layers", "models_layers", hide_index=True)
with modules_tab:
    st.caption("Layers grouped into blocks (fire, inception, res): a name's part before '/', ResNet names, "
               "in-place layers with the layer they follow (docs/model-cost.md, Modules).")
    export.show_table(result["modules"], f"{stem}_modules", "models_modules", hide_index=True)
with charts_tab:
    by = st.radio("One bar per", BY_OPTIONS, horizontal=True,
                  **state.bind("by", "models_by", options=BY_OPTIONS, default="layer"))
    state.publish("by", "models_by")
    frame = layers if by == "layer" else result["modules"]
    suffix = f" ({result['model']}, {dtype}, modelled)"
    with_params = frame[frame["params"] > 0]
    with_traffic = frame[frame["arithmetic_intensity"].notna()]
    for data, value, title, axis in [
        (frame, "flops", "FLOPs per " + by, "FLOPs"),
        (with_params, "params", "Parameters per " + by, "parameters"),
        (with_traffic, "arithmetic_intensity", "Arithmetic intensity per " + by,
         "arithmetic intensity (FLOPs per byte of minimum traffic)"),
    ]:
        if data.empty:
            st.info(f"No {by} has {axis}.")
            continue
        chart = charts.model_bar_chart(data, value, title + suffix, axis, by=by)
        export.show_chart(chart, f"{stem}_{value}_per_{by}", f"models_{value}_chart")
