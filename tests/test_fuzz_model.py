"""Fuzzing the model readers: Caffe prototxt text (parse, shapes and costs, the rows an import stores) and binary
.caffemodel files (blob shapes, checked against the prototxt). Broken bytes, and numbers in the network replaced
by odd ones (0, negative, 2^31, 2^64, ...). The only allowed failure is an InputError of one line."""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

from corpus.checks import check_one_line
from corpus.mutations import mutated
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from importer.errors import InputError
from importer.model.cost import analyze, cost_frame, run_layer_costs
from importer.model.net import parse_prototxt, read_caffemodel_shapes, read_prototxt

import bundles

MODELS = Path(__file__).resolve().parent.parent / "sample_traces" / "models"
FUZZ = settings(max_examples=int(os.environ.get("LAYERJOULE_FUZZ_EXAMPLES", 60)), deadline=5000,
                suppress_health_check=[HealthCheck.too_slow], database=None)
SEEDS = [(MODELS / f"{name}.prototxt").read_bytes() for name in ("alexnet", "legacy_v1_lenet", "squeezenet_v1.1")]
ODD_NUMBERS = ["0", "-1", "1", "3", "2147483647", "2147483648", "4294967295", "18446744073709551615",
               "99999999999999999999", "1e9", "0.5", "-0"]


@st.composite
def odd_numbers(draw) -> bytes:
    """A seed network with one to three of its numbers replaced by odd ones."""
    text = draw(st.sampled_from(SEEDS)).decode()
    spots = [m.span() for m in re.finditer(r"(?<=: )-?\d+(?:\.\d+)?", text)]
    for _ in range(draw(st.integers(1, 3))):
        start, end = draw(st.sampled_from(spots))
        text = text[:start] + draw(st.sampled_from(ODD_NUMBERS)).ljust(end - start) + text[end:]
    return text.encode()


def analyse_everything(text: str, name: str) -> None:
    try:
        network = parse_prototxt(text, name)
        analysis = analyze(network, allow_unknown=True)
    except InputError as error:
        check_one_line(error, name)
    else:
        assert all(c.macs >= 0 and c.params >= 0 for c in analysis.layers)
        analysis.totals()
    # What an import stores never fails: a network it cannot analyse becomes a note.
    layers, warnings = run_layer_costs(text, {"input_shape": [1, 3, 8, 8], "batch": 2})
    frame = cost_frame(layers)
    assert len(frame) == len(layers)
    assert all(isinstance(w, str) and "\n" not in w for w in warnings)


@FUZZ
@given(data=mutated(SEEDS) | odd_numbers())
def test_fuzz_prototxt(data):
    analyse_everything(data.decode("utf-8", errors="replace"), "net.prototxt")


@FUZZ
@given(data=mutated(SEEDS[:2]))
def test_fuzz_prototxt_file_bytes(data):
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "net.prototxt"
        path.write_bytes(data)
        try:
            analyze(read_prototxt(path), allow_unknown=True)
        except InputError as error:
            check_one_line(error, path)


@FUZZ
@given(data=mutated([bundles.lenet_caffemodel()]) | st.binary(max_size=200))
def test_fuzz_caffemodel(data):
    network = read_prototxt(MODELS / "legacy_v1_lenet.prototxt")
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "w.caffemodel"
        path.write_bytes(data)
        try:
            analyze(network, weight_shapes=read_caffemodel_shapes(path))
        except InputError as error:
            check_one_line(error, path if str(path) in str(error) else network.path)
