"""Writes the committed corpus of broken inputs (tests/corpus/<format>/...) and expected.json, what the command line
must answer for each. Run it again after changing a variant: `.venv/bin/python tests/corpus/make_corpus.py`.

Every format gets the same kinds of damage, from one good seed file: truncated, mis-encoded (UTF-16 with a BOM,
latin-1 bytes, NUL bytes), reordered lines, mislabelled (given as another format), empty; and two harmless ones
(a UTF-8 BOM, CRLF line ends) that must still import. tests/test_fuzz_corpus.py runs them all through `layerjoule
import` / `layerjoule analyze`.
"""

from __future__ import annotations

import codecs
import io
import json
import shutil
import sys
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
TESTS = HERE.parent
ROOT = TESTS.parent
sys.path[:0] = [str(TESTS), str(ROOT)]

import streamline_writer as sw  # noqa: E402

import bundles  # noqa: E402

LOGS = TESTS / "fixtures" / "logs"
MS = 1_000_000
D = 5_000_000_000

# format -> (seed file name, how the command line gets it: "import" with KIND, or "analyze")
FORMATS = {
    "tegrastats": ("tx2.log", "tegrastats"),
    "power-csv": ("meter.csv", "power-csv"),
    "energy-probe": ("probe.csv", "energy-probe"),
    "ptdaemon": ("ptd.log", "ptdaemon"),
    "streamline-report": ("log.csv", "streamline-report"),
    "bundle": ("run.zip", "bundle"),
    "streamline-capture": ("capture.apc.zip", "streamline-capture"),
    "prototxt": ("net.prototxt", "analyze"),
    "caffemodel": ("lenet.caffemodel", "weights"),
}

# (format, variant) -> what the command line says: exit status and a piece of its one line (None: success).
EXPECTED = {
    ("tegrastats", "truncated"): (0, None),  # the cut last line is skipped with a note
    ("tegrastats", "utf16"): (2, "is UTF-16 or UTF-32 text; expected UTF-8"),
    ("tegrastats", "latin1"): (0, None),  # a byte that is not UTF-8 in other output is harmless
    ("tegrastats", "nul"): (0, None),
    ("tegrastats", "reordered"): (0, None),  # relative times: lines are taken in file order
    ("tegrastats", "mislabelled"): (2, "no tegrastats lines"),
    ("tegrastats", "empty"): (2, "no tegrastats lines"),
    ("tegrastats", "bom"): (0, None),
    ("tegrastats", "crlf"): (0, None),
    ("power-csv", "truncated"): (0, None),  # the cut last row is skipped with a note
    ("power-csv", "utf16"): (2, "is UTF-16 or UTF-32 text; expected UTF-8"),
    ("power-csv", "latin1"): (2, "line 2: expected UTF-8 text"),
    ("power-csv", "nul"): (2, "line 3 column 'time_s': time is"),
    ("power-csv", "reordered"): (2, "time is not after the previous row's"),
    ("power-csv", "mislabelled"): (2, "column 'off' appears twice"),
    ("power-csv", "empty"): (2, "holds no header line"),
    ("power-csv", "bom"): (0, None),
    ("power-csv", "crlf"): (0, None),
    ("energy-probe", "truncated"): (0, None),  # the cut last row is skipped with a note
    ("energy-probe", "utf16"): (2, "is UTF-16 or UTF-32 text; expected UTF-8"),
    ("energy-probe", "latin1"): (2, "line 2: expected UTF-8 text"),
    ("energy-probe", "nul"): (2, "line 3 column 'timestamp_time': time is"),
    ("energy-probe", "reordered"): (2, "time is not after the previous row's"),
    ("energy-probe", "mislabelled"): (2, "no power, voltage, current or energy columns"),
    ("energy-probe", "empty"): (2, "holds no header line"),
    ("energy-probe", "bom"): (0, None),
    ("energy-probe", "crlf"): (0, None),
    ("ptdaemon", "truncated"): (0, None),  # the cut last line is skipped with a note
    ("ptdaemon", "utf16"): (2, "is UTF-16 or UTF-32 text; expected UTF-8"),
    ("ptdaemon", "latin1"): (0, None),
    ("ptdaemon", "nul"): (0, None),  # a line broken by NUL bytes is no sample: skipped and counted
    ("ptdaemon", "reordered"): (2, "is not a PTDaemon sample"),  # the cut last line comes second
    ("ptdaemon", "mislabelled"): (2, "is not a PTDaemon sample"),
    ("ptdaemon", "empty"): (2, "no PTDaemon sample lines"),
    ("ptdaemon", "bom"): (0, None),
    ("ptdaemon", "crlf"): (0, None),
    ("streamline-report", "truncated"): (0, None),  # the cut last row is skipped with a note
    ("streamline-report", "utf16"): (2, "is UTF-16 or UTF-32 text; expected UTF-8"),
    ("streamline-report", "latin1"): (2, "line 2: expected UTF-8 text"),
    ("streamline-report", "nul"): (2, "line 3 column 'Time': time is"),
    ("streamline-report", "reordered"): (0, None),  # annotations are sorted by time
    ("streamline-report", "mislabelled"): (0, None),  # a time column and a numeric one: a timeline report
    ("streamline-report", "empty"): (2, "cannot understand this Streamline report"),
    ("streamline-report", "bom"): (0, None),
    ("streamline-report", "crlf"): (0, None),
    ("bundle", "truncated"): (2, "not a run bundle: expected a folder or a zip holding manifest.json"),
    ("bundle", "utf16"): (2, "utf16.zip!events.csv: line 1: is UTF-16 or holds NUL bytes; expected UTF-8 text"),
    ("bundle", "latin1"): (2, "latin1.zip!rails.csv: line 1: expected UTF-8 text"),
    ("bundle", "nul"): (2, "nul.zip!rails.csv: line 1: is UTF-16 or holds NUL bytes"),
    ("bundle", "reordered"): (2, "rails.csv: line 3: t_ns 370000000 of rail 'VDD_IN' is not after"),
    ("bundle", "mislabelled"): (2, "expected one manifest.json"),
    ("bundle", "empty"): (2, "not a run bundle"),
    ("bundle", "bom"): (0, None),
    ("bundle", "crlf"): (0, None),
    ("streamline-capture", "truncated"): (2, "not a Streamline capture: expected a *.apc folder or a zip"),
    ("streamline-capture", "utf16"): (2, "captured.xml: line 1: is not UTF-8"),
    ("streamline-capture", "latin1"): (2, "captured.xml: line 2: Invalid bytes in character encoding"),
    ("streamline-capture", "nul"): (2, "captured.xml: line 1: is not UTF-8"),
    ("streamline-capture", "reordered"): (2, "0000000000: byte 0: frame type 0"),
    ("streamline-capture", "mislabelled"): (2, "no captured.xml"),
    ("streamline-capture", "empty"): (2, "not a Streamline capture"),
    ("streamline-capture", "bom"): (0, None),
    ("streamline-capture", "crlf"): (2, "the Summary's newline canary is altered"),  # binary data files
    ("prototxt", "truncated"): (2, "expected Caffe prototxt text"),
    ("prototxt", "utf16"): (2, "cannot be read as UTF-8 text"),
    ("prototxt", "latin1"): (2, "cannot be read as UTF-8 text"),
    ("prototxt", "nul"): (0, None),  # in a comment
    ("prototxt", "reordered"): (2, "which no earlier layer or input produces"),
    ("prototxt", "mislabelled"): (2, "expected Caffe prototxt text"),
    ("prototxt", "empty"): (2, "holds no layers; expected a Caffe network definition"),
    ("prototxt", "bom"): (0, None),  # the byte order mark is dropped
    ("prototxt", "crlf"): (0, None),
    ("caffemodel", "truncated"): (2, "not a Caffe binary model"),
    ("caffemodel", "utf16"): (2, "not a Caffe binary model"),
    ("caffemodel", "latin1"): (2, "not a Caffe binary model"),
    ("caffemodel", "nul"): (2, "not a Caffe binary model"),
    ("caffemodel", "reordered"): (0, None),  # protobuf fields in another order: the same model
    ("caffemodel", "mislabelled"): (2, "not a Caffe binary model"),
    ("caffemodel", "empty"): (2, "holds no layer blobs"),
    ("caffemodel", "bom"): (2, "not a Caffe binary model"),
    ("caffemodel", "crlf"): (2, "not a Caffe binary model"),
}
VARIANTS = ("truncated", "utf16", "latin1", "nul", "reordered", "mislabelled", "empty", "bom", "crlf")


def cut(data: bytes, fraction: float = 0.6) -> bytes:
    """Cut in the middle of a line."""
    at = int(len(data) * fraction)
    while at < len(data) and data[at:at + 1] in (b"\n", b"\r"):
        at += 1
    return data[:at]


def utf16(data: bytes) -> bytes:
    return codecs.BOM_UTF16_LE + data.decode("utf-8").encode("utf-16-le")


def latin1(data: bytes) -> bytes:
    """A degree sign and a micro sign in latin-1 (one byte each, not UTF-8) at the end of the second line."""
    lines = data.split(b"\n")
    lines[1 if len(lines) > 1 else 0] += b" \xb0C \xb5s"
    return b"\n".join(lines)


def nul(data: bytes) -> bytes:
    lines = data.split(b"\n")
    lines[min(2, len(lines) - 1)] = lines[min(2, len(lines) - 1)][:3] + b"\x00\x00" + lines[min(2, len(lines) - 1)][3:]
    return b"\n".join(lines)


def reordered(data: bytes, keep: int = 1) -> bytes:
    """The lines after the first `keep` in reverse order (times run backwards)."""
    ending = data.endswith(b"\n")
    lines = data.rstrip(b"\n").split(b"\n")
    return b"\n".join(lines[:keep] + lines[keep:][::-1]) + (b"\n" if ending else b"")


def text_variants(seed: bytes, mislabelled: bytes, keep: int = 1) -> dict[str, bytes]:
    return {"truncated": cut(seed), "utf16": utf16(seed), "latin1": latin1(seed), "nul": nul(seed),
            "reordered": reordered(seed, keep), "mislabelled": mislabelled, "empty": b"",
            "bom": codecs.BOM_UTF8 + seed, "crlf": seed.replace(b"\n", b"\r\n")}


def zipped(members: dict[str, bytes], top: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in sorted(members.items()):
            archive.writestr(zipfile.ZipInfo(f"{top}/{name}", date_time=(2026, 12, 1, 0, 0, 0)), data)
    return buffer.getvalue()


def bundle_members(scratch: Path) -> dict[str, bytes]:
    folder = bundles.write_bundle(scratch / "run")
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def capture_members(scratch: Path) -> dict[str, bytes]:
    annotations, t = [], D + 100 * MS
    for _ in range(3):
        annotations += [(t, 1, 1, "conv1___Convolution"), (t + 40 * MS, 1, 1, "relu1___ReLU"),
                        (t + 60 * MS, 1, 1, "")]
        t += 60 * MS
    folder = sw.write_capture(scratch / "capture.apc", monotonic_delta_ns=D, realtime_ns=1_796_000_000 * 10**9,
                              tid=1, annotations=annotations, events_padding=2, perf_frames=False,
                              markers=[(D + 50 * MS, "layerjoule-sync monotonic_ns=50000000")])
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def variants(scratch: Path) -> dict[str, dict[str, bytes]]:
    tegra = (LOGS / "tegrastats_tx2.log").read_bytes()
    power = (LOGS / "power_generic.csv").read_bytes()
    probe = (LOGS / "arm_probe_devlib.csv").read_bytes()
    ptd = (LOGS / "ptdaemon.log").read_bytes()
    report = (LOGS / "streamline_log.csv").read_bytes()
    out = {
        "tegrastats": text_variants(tegra, power),
        "power-csv": text_variants(power, tegra, keep=2),  # a comment line, then the header
        "energy-probe": text_variants(probe, ptd),
        "ptdaemon": text_variants(ptd, report),
        "streamline-report": text_variants(report, probe),
    }
    members = bundle_members(scratch)
    out["bundle"] = {
        "truncated": cut(zipped(members, "run")),
        "utf16": zipped({**members, "events.csv": utf16(members["events.csv"])}, "run"),
        "latin1": zipped({**members, "rails.csv": latin1(members["rails.csv"])}, "run"),
        "nul": zipped({**members, "rails.csv": nul(members["rails.csv"])}, "run"),
        "reordered": zipped({**members, "rails.csv": reordered(members["rails.csv"])}, "run"),
        "mislabelled": zipped(capture_members(scratch), "capture.apc"),
        "empty": b"",
        "bom": zipped({**members, "events.csv": codecs.BOM_UTF8 + members["events.csv"]}, "run"),
        "crlf": zipped({**members, "rails.csv": members["rails.csv"].replace(b"\n", b"\r\n")}, "run"),
    }
    capture = capture_members(scratch)
    out["streamline-capture"] = {
        "truncated": cut(zipped(capture, "capture.apc")),
        "utf16": zipped({**capture, "captured.xml": utf16(capture["captured.xml"])}, "capture.apc"),
        "latin1": zipped({**capture, "captured.xml": latin1(capture["captured.xml"])}, "capture.apc"),
        "nul": zipped({**capture, "captured.xml": nul(capture["captured.xml"])}, "capture.apc"),
        "reordered": zipped({**capture, "0000000000": reordered(capture["0000000000"], keep=0)}, "capture.apc"),
        "mislabelled": zipped(members, "run"),
        "empty": b"",
        "bom": zipped({**capture, "captured.xml": codecs.BOM_UTF8 + capture["captured.xml"]}, "capture.apc"),
        "crlf": zipped({**capture, "0000000000": capture["0000000000"].replace(b"\n", b"\r\n")}, "capture.apc"),
    }
    net = (ROOT / "sample_traces" / "models" / "alexnet.prototxt").read_bytes()
    layers = net.split(b"\nlayer {")
    out["prototxt"] = {**text_variants(net, power), "reordered": b"\nlayer {".join([layers[0], *layers[1:][::-1]])}
    model = bundles.lenet_caffemodel()
    out["caffemodel"] = {"truncated": cut(model), "utf16": utf16(net[:200]), "latin1": latin1(net[:200]),
                         "nul": nul(model), "reordered": _reversed_layers(model), "mislabelled": net[:300],
                         "empty": b"", "bom": codecs.BOM_UTF8 + model, "crlf": model.replace(b"\n", b"\r\n")}
    return out


def _reversed_layers(data: bytes) -> bytes:
    from importer.model import caffe_pb2

    model = caffe_pb2.NetParameter.FromString(data)
    reordered_model = caffe_pb2.NetParameter()
    reordered_model.layer.extend(reversed(model.layer))
    return reordered_model.SerializeToString()


def main() -> None:
    scratch = HERE / ".scratch"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir()
    try:
        expected = {}
        for fmt, files in variants(scratch).items():
            seed, how = FORMATS[fmt]
            folder = HERE / fmt
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            stem, _, suffix = seed.partition(".")
            for variant in VARIANTS:
                name = f"{variant}.{suffix}"
                (folder / name).write_bytes(files[variant])
                status, words = EXPECTED[(fmt, variant)]
                expected[f"{fmt}/{name}"] = {"how": how, "exit": status, "error": words}
        (HERE / "expected.json").write_text(json.dumps(expected, indent=1, sort_keys=True) + "\n")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
