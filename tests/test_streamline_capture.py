"""Reading Streamline captures (importer/readers/streamline_capture.py).

1. A capture recorded by Arm's real gatord 6.7 (tests/fixtures/real-gatord-capture), checked against the client's
   own log of the CLOCK_MONOTONIC_RAW stamps it sent.
2. Captures made by tests/streamline_writer.py (its own encoder) with exact expected values.
3. Broken input: every problem is an InputError naming the file and the place.
"""

import shutil
import struct
import tempfile
import time
import uuid
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import streamline_writer as sw

from importer.errors import InputError
from importer.readers.streamline_capture import is_capture, read_capture, read_packed, unpack_all

REAL = Path(__file__).parent / "fixtures" / "real-gatord-capture"
REAL_ZIP = REAL / "squeezenet_like.apc.zip"
REAL_DELTA = 1132572966837  # the Summary's monotonic delta (CLOCK_MONOTONIC_RAW at capture start)

D = 5_000_000_000  # monotonic delta of the writer-made captures
REALTIME = 1_750_000_000_123_456_789
SYNC = "layerjoule-sync monotonic_ns=123456789"


def client_log():
    rows = []
    for line in (REAL / "squeezenet_like.client-log.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            iteration, layer, stamp = line.split()
            rows.append((int(iteration), layer, int(stamp)))
    return rows


@pytest.fixture(scope="module")
def real():
    return read_capture(REAL_ZIP)


def records(data: bytes):
    """(offset, length, first frame byte) of every complete record of a data file."""
    out, pos = [], 0
    while pos + 4 <= len(data):
        (length,) = struct.unpack_from("<i", data, pos)
        if pos + 4 + length > len(data):
            break
        out.append((pos, length, data[pos + 4]))
        pos += 4 + length
    return out


def text_column(values):
    return pd.Series(values, dtype="str")


# ------------------------------------------------------------------------------------------------------------------
# 1. the real gatord capture


def test_real_capture_layer_intervals_match_the_client_log(real):
    log = client_log()
    assert len(log) == 40 and [r[0] for r in log] == [i for i in range(4) for _ in range(10)]
    table = real.annotations
    assert real.time_base == "capture" and real.kind == "streamline-capture"
    assert list(table["text"]) == [layer for _, layer, _ in log]
    # each layer starts at the client's stamp minus the monotonic delta, to the nanosecond
    assert list(table["t_start_ns"]) == [stamp - REAL_DELTA for _, _, stamp in log]
    durations = (table["t_end_ns"] - table["t_start_ns"]).to_numpy().reshape(4, 10)
    stamps = np.array([stamp for _, _, stamp in log]).reshape(4, 10)
    assert (durations[:, :9] == np.diff(stamps, axis=1)).all()
    # the last layer of an iteration ends at the empty channel string: about 0.1 ms of busy wait plus the send
    assert ((durations[:, 9] > 100_000) & (durations[:, 9] < 1_000_000)).all()
    ends = table["t_end_ns"].to_numpy().reshape(4, 10)[:, 9]
    assert (ends[:3] < stamps[1:, 0] - REAL_DELTA).all()
    assert set(table["channel"]) == {1} and table["tid"].nunique() == 1
    assert set(table["channel_name"]) == {"layers"} and set(table["group_name"]) == {"inference"}


def test_real_capture_markers_anchor_counters_and_notes(real):
    markers = real.markers
    assert list(markers["text"]) == [f"iteration {i}" for i in range(4)]
    firsts = real.annotations["t_start_ns"].to_numpy().reshape(4, 10)[:, 0]
    lasts = real.annotations["t_end_ns"].to_numpy().reshape(4, 10)[:, 9]
    assert (markers["t_ns"].to_numpy() <= firsts).all() and (markers["t_ns"].to_numpy()[1:] > lasts[:3]).all()
    assert real.anchor["monotonic_raw_ns_at_zero"] == REAL_DELTA
    assert real.anchor["realtime_ns_at_zero"] == 1796159969199152976
    assert real.anchor["uptime_ns"] == 1132572966837
    assert real.anchor["summary"]["PAGESIZE"] == "4096"
    assert "skipped 39 frames of type 12 (perf records; layout unknown)" in real.notes
    assert "skipped 10 frames of type 11 (perf attributes; layout unknown)" in real.notes
    assert any("ANNOTATE 4 from tid 17958, 44 channel strings, 4 markers" in n for n in real.notes)
    # no power counters there: no samples; Linux counters from the one Block counter frame, joined to events.xml
    assert real.samples is None and real.rails == []
    info = real.counter_info.set_index("counter")
    assert info.loc["Linux_meminfo_memfree", ["title", "name", "unit"]].tolist() == ["Memory", "Free", "B"]
    assert info.loc["Perf_Hardware_user", "multiplier"] == 0.0001
    assert len(real.counters) == 24
    assert set(real.counters["counter"]) == {"Linux_block_rq_rd", "Linux_block_rq_wr", "Linux_meminfo_memfree",
                                            "Linux_meminfo_memused2"}
    assert real.counters["core"].isna().all()  # system-wide counters carry no core


def test_real_capture_zip_equals_folder_and_reads_fast(real, tmp_path):
    with zipfile.ZipFile(REAL_ZIP) as archive:
        archive.extractall(tmp_path)
    folder = read_capture(tmp_path / "squeezenet_like.apc")
    assert folder.content_sha256 == real.content_sha256
    for name in ("annotations", "markers", "counters", "counter_info"):
        pd.testing.assert_frame_equal(getattr(folder, name), getattr(real, name))
    started = time.perf_counter()
    read_capture(REAL_ZIP)
    assert time.perf_counter() - started < 2.0
    assert is_capture(REAL_ZIP) and is_capture(tmp_path / "squeezenet_like.apc")


# ------------------------------------------------------------------------------------------------------------------
# 2. writer-made captures


def test_packed_integer_worked_examples():
    assert sw.leb128(429389) == bytes.fromhex("cd9a1a")
    assert sw.leb128(-4758616141418899142) == bytes.fromhex("bab2a5a2cefafffabd7f")
    assert read_packed(bytes.fromhex("cd9a1a"), 0) == (429389, 3)
    assert read_packed(bytes.fromhex("bab2a5a2cefafffabd7f"), 0) == (-4758616141418899142, 10)
    edges = [0, 1, -1, 63, 64, -64, -65, 2**31 - 1, -(2**31), 2**63 - 1, -(2**63), 429389, -4758616141418899142]
    rng = np.random.default_rng(7)
    values = edges + [int(v) for v in rng.integers(-(2**63), 2**63 - 1, 2000, dtype=np.int64)]
    values += [int(v) for v in rng.integers(-5000, 5000, 500)]
    blob = b"".join(sw.leb128(v) for v in values)
    assert unpack_all(blob).tolist() == values
    at, decoded = 0, []
    while at < len(blob):
        value, at = read_packed(blob, at)
        decoded.append(value)
    assert decoded == values
    with pytest.raises(ValueError):
        unpack_all(bytes.fromhex("cd9a"))


def annotated_capture(folder, **options):
    """Two threads, two channels, a coloured string, markers (one coloured), the sync marker, an interval left open."""
    return sw.write_capture(
        folder,
        monotonic_delta_ns=D,
        realtime_ns=REALTIME,
        annotations=[
            (D + 1000, 100, 1, "conv1"),
            (D + 4000, 100, 1, "relu1"),  # closes conv1
            (D + 4500, 100, 1, ""),  # closes relu1
            (D + 4600, 100, 1, ""),  # nothing open: opens nothing
            (D + 5000, 100, 2, "side", 0x112233),  # never closed: closed at the stream's last timestamp
            (D + 7000, 100, 1, "prob"),
            (D + 9000, 100, 1, ""),
            (D + 2000, 200, 1, "other thread"),  # channel 1 of another thread is another channel
            (D + 3000, 200, 1, ""),
        ],
        group_names={0: "inference"},
        channel_names={1: (0, "layers"), 2: (0, "side channel")},
        markers=[(D + 500, "iteration 0"), (D + 600, SYNC, 0x00FF00), (D + 9500, "done")],
        tid=100,
        **options,
    )


EXPECTED_INTERVALS = pd.DataFrame({
    "t_start_ns": np.array([1000, 2000, 4000, 5000, 7000], dtype=np.int64),
    "t_end_ns": np.array([4000, 3000, 4500, 9500, 9000], dtype=np.int64),
    "tid": np.array([100, 200, 100, 100, 100], dtype=np.int64),
    "channel": np.array([1, 1, 1, 2, 1], dtype=np.int64),
    "channel_name": text_column(["layers", "layers", "layers", "side channel", "layers"]),
    "group_name": text_column(["inference"] * 5),
    "text": text_column(["conv1", "other thread", "relu1", "side", "prob"]),
})
EXPECTED_MARKERS = pd.DataFrame({
    "t_ns": np.array([500, 600, 9500], dtype=np.int64),
    "text": text_column(["iteration 0", SYNC, "done"]),
})


@pytest.mark.parametrize("version", [3, 4, 5])
def test_annotations_become_closed_intervals_and_markers(tmp_path, version):
    data = read_capture(annotated_capture(tmp_path / "a.apc", annotate_version=version))
    pd.testing.assert_frame_equal(data.annotations, EXPECTED_INTERVALS)
    pd.testing.assert_frame_equal(data.markers, EXPECTED_MARKERS)
    assert data.anchor["monotonic_raw_ns_at_zero"] == D and data.anchor["realtime_ns_at_zero"] == REALTIME
    assert data.anchor["uptime_ns"] == D
    open_notes = [n for n in data.notes if "still open" in n]
    assert len(open_notes) == 1 and "'side' on channel 2" in open_notes[0]
    for kind, what in ((0x05, "visuals"), (0x08, "counter definitions"), (0x09, "counter values")):
        assert f"skipped 2 annotate messages of type 0x{kind:02x} ({what}" in " ".join(data.notes)
    assert any(n.startswith("skipped 1 frames of type 11 (perf attributes") for n in data.notes)
    assert any(n.startswith("skipped ") and "of type 12 (perf records; layout unknown)" in n for n in data.notes)
    assert sum(f"ANNOTATE {version} from tid" in n for n in data.notes) == 2


def test_annotations_split_into_one_byte_frames_and_several_data_files(tmp_path):
    reference = read_capture(annotated_capture(tmp_path / "a.apc"))
    split = read_capture(annotated_capture(tmp_path / "b.apc", chunk_size=1, data_files=3))
    pd.testing.assert_frame_equal(split.annotations, reference.annotations)
    pd.testing.assert_frame_equal(split.markers, reference.markers)


COUNTERS = [
    sw.CounterSpec("Linux_meminfo_memfree", "Memory", "Free", units="B",
                   values=[(1_000_000, 0, 7_000_000_000), (2_000_000, 0, 6_500_000_000)]),
    sw.CounterSpec("ARMv8_Cortex_A57_cnt1", "Cortex-A57", "Instructions", event=0x08, per_cpu=True,
                   values=[(1_000_000, 0, 1200), (1_000_000, 1, 3400), (2_000_000, 1, 5600)]),
    sw.CounterSpec("ARMv8_Cortex_A57_ccnt", "Cortex-A57", "Cycles", units="Hz", multiplier=16, per_cpu=True,
                   frame="counter", values=[(1_500_000, 1, 1000), (2_500_000, 0, 2000)]),
    sw.CounterSpec("Linux_cpu_temp", "Thermal", "CPU", units="\u00b0C", multiplier=0.001, frame="counter",
                   values=[(1_500_000, 0, 45250)]),
]


def test_counters_are_joined_with_names_units_and_multipliers(tmp_path):
    data = read_capture(sw.write_capture(tmp_path / "c.apc", monotonic_delta_ns=D, realtime_ns=REALTIME,
                                         counters=COUNTERS))
    info = data.counter_info
    assert list(info["counter"]) == [c.type for c in COUNTERS]
    assert list(info["key"]) == [3, 4, 5, 6]
    assert list(info["title"]) == ["Memory", "Cortex-A57", "Cortex-A57", "Thermal"]
    assert list(info["name"]) == ["Free", "Instructions", "Cycles", "CPU"]
    assert info["unit"].tolist()[0] == "B" and pd.isna(info["unit"].tolist()[1])
    assert info["unit"].tolist()[2:] == ["Hz", "\u00b0C"]
    assert list(info["multiplier"]) == [1.0, 1.0, 16.0, 0.001]
    assert list(info["per_cpu"]) == [False, True, True, False]
    expected = pd.DataFrame({
        "t_ns": np.array([1_000_000] * 3 + [1_500_000] * 2 + [2_000_000] * 2 + [2_500_000], dtype=np.int64),
        "counter": text_column(["ARMv8_Cortex_A57_cnt1", "ARMv8_Cortex_A57_cnt1", "Linux_meminfo_memfree",
                                "ARMv8_Cortex_A57_ccnt", "Linux_cpu_temp", "ARMv8_Cortex_A57_cnt1",
                                "Linux_meminfo_memfree", "ARMv8_Cortex_A57_ccnt"]),
        "core": pd.array([0, 1, None, 1, None, 1, None, 0], dtype="Int64"),
        "value": [1200.0, 3400.0, 7e9, 16000.0, 45.25, 5600.0, 6.5e9, 32000.0],
    })
    pd.testing.assert_frame_equal(data.counters, expected)
    assert data.samples is None
    assert "no power counters (units W, mW or uW) in the capture: no power samples" in data.notes


def test_power_counters_become_rails(tmp_path):
    power = [(1_000_000, "VDD_IN", 5123), (2_000_000, "VDD_IN", 5234), (1_000_000, "VDD_CPU", 812),
             (2_000_000, "VDD_CPU", 1040)]
    data = read_capture(sw.write_capture(tmp_path / "p.apc", monotonic_delta_ns=D, realtime_ns=REALTIME,
                                         power=power))
    assert [r.name for r in data.rails] == ["VDD_IN", "VDD_CPU"] and {r.unit for r in data.rails} == {"mW"}
    samples = data.samples
    assert list(samples.columns) == ["t_ns", "rail", "power_mw", "voltage_mv", "current_ma"]
    assert list(samples["rail"]) == ["VDD_IN", "VDD_IN", "VDD_CPU", "VDD_CPU"]
    assert list(samples["t_ns"]) == [1_000_000, 2_000_000, 1_000_000, 2_000_000]
    assert samples["power_mw"].tolist() == pytest.approx([5123, 5234, 812, 1040], rel=1e-12)
    assert samples["voltage_mv"].isna().all() and samples["current_ma"].isna().all()
    info = data.counter_info.set_index("name")
    assert info.loc["VDD_IN", "unit"] == "W" and info.loc["VDD_IN", "multiplier"] == 0.001


@pytest.mark.parametrize("layout", ["folder", "root"])
def test_zipped_capture_equals_the_folder(tmp_path, layout):
    folder = annotated_capture(tmp_path / "z.apc", counters=COUNTERS[:2], power=[(10, "VDD_IN", 900)])
    zipped = annotated_capture(tmp_path / "z.apc", counters=COUNTERS[:2], power=[(10, "VDD_IN", 900)], zip=True,
                               zip_layout=layout)
    assert zipped.suffix == ".zip" and is_capture(zipped) and is_capture(folder)
    a, b = read_capture(folder), read_capture(zipped)
    assert a.content_sha256 == b.content_sha256 and a.anchor == b.anchor and a.notes == b.notes
    for name in ("annotations", "markers", "counters", "counter_info", "samples"):
        pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name))


def test_missing_optional_files_are_fine(tmp_path):
    folder = annotated_capture(tmp_path / "o.apc", counters=COUNTERS[:1], events_xml=False)
    for remove in ("session.xml", "counters.xml"):
        data = read_capture(folder)
        pd.testing.assert_frame_equal(data.annotations, EXPECTED_INTERVALS)
        info = data.counter_info
        assert info["title"].isna().all() and info["name"].isna().all() and list(info["source"]) == ["none"]
        assert pd.isna(info["per_cpu"].iloc[0]) and data.counters["core"].tolist() == [0, 0]
        assert any(n.startswith("events.xml is absent") for n in data.notes)
        (folder / remove).unlink()


def test_truncated_last_record_is_a_note(tmp_path):
    folder = annotated_capture(tmp_path / "t.apc", counters=COUNTERS[:1])
    data_file = folder / "0000000000"
    data = data_file.read_bytes()
    last = records(data)[-1][0]
    data_file.write_bytes(data[:-3])  # the last Block counter frame loses its end
    result = read_capture(folder)
    pd.testing.assert_frame_equal(result.annotations, EXPECTED_INTERVALS)
    assert list(result.counters["t_ns"]) == [1_000_000]  # the second block counter frame was cut
    [note] = [n for n in result.notes if "stopped abruptly" in n]
    assert f"0000000000: the last record (byte {last})" in note
    data_file.write_bytes(data[:30])  # inside the Summary: nothing readable at all
    with pytest.raises(InputError, match=r"0000000000: byte 0: no complete record"):
        read_capture(folder)


# ------------------------------------------------------------------------------------------------------------------
# 3. broken input


def test_record_cut_in_the_middle_of_the_capture_is_an_error(tmp_path):
    folder = annotated_capture(tmp_path / "m.apc", data_files=2)
    first = folder / "0000000000"
    data = first.read_bytes()
    last = records(data)[-1][0]
    first.write_bytes(data[:-2])
    with pytest.raises(InputError) as error:
        read_capture(folder)
    text = str(error.value)
    assert f"m.apc/0000000000: byte {last}: record of" in text and "more data files follow" in text


def test_garbage_frame_type_and_length_are_errors(tmp_path):
    folder = annotated_capture(tmp_path / "g.apc")
    data_file = folder / "0000000000"
    data = bytearray(data_file.read_bytes())
    offset = records(bytes(data))[5][0]
    original = bytes(data)
    data[offset + 4] = 0x3F  # frame type 63
    data_file.write_bytes(bytes(data))
    with pytest.raises(InputError, match=rf"g\.apc/0000000000: byte {offset}: frame type 63; expected a known"):
        read_capture(folder)
    data = bytearray(original)
    data[offset : offset + 4] = struct.pack("<i", -5)
    data_file.write_bytes(bytes(data))
    with pytest.raises(InputError, match=rf"0000000000: byte {offset}: record length -5"):
        read_capture(folder)


def test_altered_newline_canary_is_an_error(tmp_path):
    folder = annotated_capture(tmp_path / "n.apc")
    data_file = folder / "0000000000"
    data = data_file.read_bytes()
    data_file.write_bytes(data.replace(b"2\r\n3\r", b"2\n\n3\r", 1))
    with pytest.raises(InputError, match=r"0000000000: byte 0: the Summary's newline canary is altered"):
        read_capture(folder)


def test_annotate_message_with_short_body_is_an_error(tmp_path):
    folder = annotated_capture(tmp_path / "s.apc")
    stream = b"ANNOTATE 5\n" + struct.pack("<IIB", 100, 100, 0)
    good = sw.annotate_message(0x06, sw.leb128(D + 10) + b"fine")
    bad = sw.annotate_message(0x03, sw.leb128(D + 20))  # name channel without channel, group or name
    summary = sw.summary_frame(REALTIME, D, D, {"uname": "x"})
    external = sw.frame(10, sw.leb128(6) + stream + good + bad)
    (folder / "0000000000").write_bytes(summary + external)
    bad_at = len(summary) + 4 + 2 + len(stream) + len(good)
    with pytest.raises(InputError, match=rf"0000000000: byte {bad_at}: external stream 6, ANNOTATE message of "
                                         r"type 0x03"):
        read_capture(folder)


def test_missing_captured_xml_or_data_file(tmp_path):
    folder = annotated_capture(tmp_path / "x.apc")
    (folder / "0000000000").rename(folder / "0000000001")
    with pytest.raises(InputError, match=r"x\.apc: data file 0000000000 is missing"):
        read_capture(folder)
    (folder / "0000000001").unlink()
    with pytest.raises(InputError, match=r"x\.apc: no data file"):
        read_capture(folder)
    (folder / "captured.xml").unlink()
    with pytest.raises(InputError, match=r"x\.apc: not a Streamline capture: captured.xml is missing"):
        read_capture(folder)
    zipped = tmp_path / "x.apc.zip"
    with zipfile.ZipFile(zipped, "w") as archive:
        archive.writestr("x.apc/session.xml", "<session/>")
    with pytest.raises(InputError, match=r"x\.apc\.zip: not a Streamline capture: no captured.xml"):
        read_capture(zipped)


def test_zip_member_escaping_the_folder_is_refused_and_never_written(tmp_path):
    folder = annotated_capture(tmp_path / "e.apc")
    marker = f"escaped-{uuid.uuid4().hex}"
    zipped = tmp_path / "inner" / "e.apc.zip"
    zipped.parent.mkdir()
    with zipfile.ZipFile(zipped, "w") as archive:
        for member in folder.iterdir():
            archive.write(member, f"e.apc/{member.name}")
        archive.writestr(f"e.apc/../../{marker}", b"must never be written")
    with pytest.raises(InputError, match=rf"e\.apc\.zip: member 'e\.apc/\.\./\.\./{marker}' points outside"):
        read_capture(zipped)
    places = [tmp_path, zipped.parent, Path.cwd(), Path(tempfile.gettempdir())]
    assert not any((place / marker).exists() for place in places)
    assert not list(tmp_path.rglob(marker))


CAPTURED_WITH_ENTITY = """<?xml version="1.0"?>
<!DOCTYPE captured [
<!ENTITY boom "EXPANDED">
]>
<captured version="1"><target name="&boom;"/><counters/></captured>
"""
CAPTURED_WITH_EXTERNAL = """<?xml version="1.0"?>
<!DOCTYPE captured [
<!ENTITY secret SYSTEM "file://{secret}">
]>
<captured version="1"><target name="t"/><counters><counter key="0x3" type="a"/>&secret;</counters></captured>
"""
EVENTS_WITH_ENTITY = """<?xml version="1.0"?>
<!DOCTYPE events [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>
<events><category name="&lol2;"><event counter="a" title="&lol2;" name="n"/></category></events>
"""


def test_xml_entities_are_refused_not_expanded_or_fetched(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-CONTENT")
    folder = annotated_capture(tmp_path / "x.apc")
    (folder / "captured.xml").write_text(CAPTURED_WITH_ENTITY)
    with pytest.raises(InputError, match=r"x\.apc/captured\.xml: line 3: declares entity boom; expected plain XML"):
        read_capture(folder)
    (folder / "captured.xml").write_text(CAPTURED_WITH_EXTERNAL.format(secret=secret))
    with pytest.raises(InputError, match=r"captured\.xml: line 3: declares entity secret") as error:
        read_capture(folder)
    assert "TOP-SECRET" not in str(error.value)
    annotated_capture(folder)  # a good captured.xml again; now a bad events.xml (read with iterparse)
    (folder / "events.xml").write_text(EVENTS_WITH_ENTITY)
    with pytest.raises(InputError, match=r"x\.apc/events\.xml: line 2: declares entities lol, lol2"):
        read_capture(folder)


def test_not_a_capture_at_all(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    for path in (text, tmp_path / "missing.apc"):
        with pytest.raises(InputError, match=r"not a Streamline capture|no such file"):
            read_capture(path)
    empty = tmp_path / "empty.apc"
    empty.mkdir()
    with pytest.raises(InputError, match=r"empty\.apc: not a Streamline capture"):
        read_capture(empty)
    assert not is_capture(text) and not is_capture(empty)
    folder = annotated_capture(tmp_path / "b.apc")
    (folder / "captured.xml").write_text("<captured><target></captured>")
    with pytest.raises(InputError, match=r"b\.apc/captured\.xml: line 1: .*expected well-formed XML"):
        read_capture(folder)
    (folder / "captured.xml").write_text("<session/>")
    with pytest.raises(InputError, match=r"captured\.xml: line 1: root element is <session>; expected <captured>"):
        read_capture(folder)
    shutil.rmtree(folder)
    folder.mkdir()
    (folder / "captured.xml").write_text('<captured version="1"><counters/></captured>')
    (folder / "0000000000").write_bytes(b"PK\x03\x04 this is not a data file at all")
    with pytest.raises(InputError, match=r"b\.apc/0000000000: byte 0: frame type 32 in a record that runs past"):
        read_capture(folder)
