"""runner/streamline.py against a fake gatord that speaks the real annotate interface.

The fake binds the same Linux abstract Unix stream sockets a real gatord listens on (``@streamline-annotate-parent``
and ``@streamline-annotate``), writes the capture-start byte ``0x00`` to each parent client as gatord does, and
reads the same bytes gatord reads: the handshake ``ANNOTATE N\\n`` + uint32 LE tid + uint32 LE pid + uint8 flag,
then frames ``uint8 type | uint32 LE length | body`` whose numbers are signed LEB128. Its decoder is written here,
independently of the client's encoder (it shares no code with runner/streamline.py), after section 1 of the shared
streamline-formats notes; the test that reads the real-gatord capture checks this decoder against a stream a real
gatord (6.7) recorded.

Why not a real gatord: gatord is a native daemon built from Arm's C++ sources, not installed on this test machine
and not installable through a Python package; a capture also needs perf access (root or a lowered
perf_event_paranoid) and, to be read back, Streamline or the importer. The real-gatord check was done once
elsewhere (section 2b of the notes; the capture is in the shared fixtures) and is repeated on the board.

If another process (a real gatord, a parallel test run) already holds the real names, the fake binds unique
abstract names instead and the tests pass those to the client; a warning says so and the tests that need the
default names are skipped.
"""

import json
import os
import re
import select
import socket
import statistics
import subprocess
import sys
import threading
import time
import warnings
import zipfile
from itertools import pairwise
from pathlib import Path

import pytest

from runner import streamline
from runner.streamline import AnnotationError, Annotator

ROOT = Path(__file__).resolve().parent.parent
PYTHON36 = ROOT / ".venv36" / "bin" / "python"
REAL_CAPTURE = Path("/work/shared/fixtures/real-gatord-capture")
REAL_PARENT = "\0streamline-annotate-parent"
REAL_DATA = "\0streamline-annotate"
LAYERS = ["conv1", "relu_conv1", "pool1", "fire2/squeeze1x1", "fire2/expand1x1", "fire2/expand3x3",
          "fire2/concat", "conv10", "pool10", "prob"]


# ----------------------------------------------------------------------------------------------------
# the fake gatord's decoder (independent of the client's encoder)


def read_leb(buf, pos):
    """Signed LEB128 at buf[pos]: (value, next position)."""
    value = 0
    shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            if byte & 0x40:
                value -= 1 << shift
            return value, pos


def u32(buf, pos):
    return int.from_bytes(bytes(buf[pos:pos + 4]), "little")


# message type -> the fields after the timestamp, before the string
LAYOUT = {1: ("channel",), 2: ("channel", "colour"), 3: ("channel", "group"), 4: ("group",), 6: (), 7: ("colour",)}


def decode_stream(raw):
    """A data connection's bytes -> (handshake dict, [message dicts], leftover byte count)."""
    m = re.match(rb"ANNOTATE (\d+)\n", bytes(raw))
    assert m, f"no handshake at the start of {bytes(raw[:20])!r}"
    pos = m.end()
    hello = {"version": int(m.group(1)), "tid": u32(raw, pos), "pid": u32(raw, pos + 4),
             "dont_mangle_keys": raw[pos + 8]}
    pos += 9
    messages = []
    while pos + 5 <= len(raw):
        kind = raw[pos]
        length = u32(raw, pos + 1)
        if pos + 5 + length > len(raw):
            break
        body = bytes(raw[pos + 5:pos + 5 + length])
        frame = bytes(raw[pos:pos + 5 + length])
        pos += 5 + length
        assert kind in LAYOUT, f"unexpected message type {kind:#x}"
        msg = {"type": kind, "frame": frame}
        msg["ts"], i = read_leb(body, 0)
        for field in LAYOUT[kind]:
            if field == "colour":
                msg["colour"] = body[i:i + 4]
                i += 4
            else:
                msg[field], i = read_leb(body, i)
        msg["text"] = body[i:].decode("utf-8")
        messages.append(msg)
    return hello, messages, len(raw) - pos


def read_so_far(raw):
    """The messages complete so far in a connection still being read (none before the handshake is in)."""
    raw = bytes(raw)
    return decode_stream(raw)[1] if re.match(rb"ANNOTATE \d+\n.{9}", raw, re.S) else []


# ----------------------------------------------------------------------------------------------------
# the fake gatord


class Connection:
    def __init__(self, sock, read):
        self.sock = sock
        self.raw = bytearray()
        self.done = threading.Event()
        if read:
            threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    break
                self.raw.extend(chunk)
        except OSError:
            pass
        self.done.set()

    def drop(self):
        """gatord goes away: shut the connection from this side and wait for the reader to stop."""
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.done.wait(2)
        self.sock.close()


class FakeGatord:
    """Listens like gatord: parent and data abstract sockets; the data socket only after ``capture_delay_s``.

    ``start_byte``: send 0x00 to parent clients on accept (gatord does at capture start). ``read``: read the data
    connections (False: accept and never read, a stalled gatord).
    """

    def __init__(self, capture_delay_s=0.0, start_byte=True, read=True, names=None):
        self.capture_delay_s = capture_delay_s
        self.start_byte = start_byte
        self.read = read
        self.parents = []
        self.data = []
        self.parent_signalled = threading.Event()
        self.data_accepted = threading.Event()
        self._stop = threading.Event()
        self._threads = []
        self.real_names = names is None
        self.names = names or (REAL_PARENT, REAL_DATA)

    def __enter__(self):
        try:
            self._parent_listener = self._bind(self.names[0])
            # Check the data name is free now (bound for real after the delay).
            self._bind(self.names[1]).close()
        except OSError:
            if not self.real_names:
                raise
            if hasattr(self, "_parent_listener"):
                self._parent_listener.close()
            unique = f"layerjoule-test-{os.getpid()}-{id(self):x}"
            warnings.warn(f"the real annotate socket names are taken here (a gatord or another test run?): "
                          f"the fake gatord uses @{unique}-parent and @{unique}", stacklevel=2)
            self.real_names = False
            self.names = ("\0" + unique + "-parent", "\0" + unique)
            self._parent_listener = self._bind(self.names[0])
        # With no delay the capture is running already: bind the data socket before the client can try it.
        self._data_listener = self._bind(self.names[1]) if self.capture_delay_s <= 0 else None
        self._spawn(self._serve_parent)
        self._spawn(self._serve_data)
        return self

    def __exit__(self, *exc):
        self._stop.set()
        for t in self._threads:
            t.join(2)
        for c in self.parents + self.data:
            c.sock.close()

    @property
    def client_names(self):
        """What to give Annotator(names=...): None (the defaults) when the fake holds the real names."""
        return None if self.real_names else self.names

    @staticmethod
    def _bind(name):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(name)
        except OSError:
            sock.close()
            raise
        sock.listen(16)
        return sock

    def _spawn(self, target):
        t = threading.Thread(target=target, daemon=True)
        t.start()
        self._threads.append(t)

    def _accept_loop(self, listener, on_accept):
        try:
            while not self._stop.is_set():
                ready, _, _ = select.select([listener], [], [], 0.02)
                if ready:
                    conn, _ = listener.accept()
                    on_accept(conn)
        finally:
            listener.close()

    def _serve_parent(self):
        def accepted(conn):
            self.parents.append(Connection(conn, read=False))
            if self.start_byte:
                try:
                    conn.sendall(b"\0")
                except OSError:  # the client has gone already
                    return
                self.parent_signalled.set()
        self._accept_loop(self._parent_listener, accepted)

    def _serve_data(self):
        listener = self._data_listener
        if listener is None:
            if self._stop.wait(self.capture_delay_s):
                return
            listener = self._bind(self.names[1])  # the capture starts: data connections are accepted from now on

        def accepted(conn):
            self.data.append(Connection(conn, read=self.read))
            self.data_accepted.set()
        self._accept_loop(listener, accepted)

    def stream(self, index=0, timeout=5):
        """The decoded stream of data connection ``index`` once the client has closed it."""
        deadline = time.monotonic() + timeout
        while len(self.data) <= index and time.monotonic() < deadline:
            time.sleep(0.005)
        conn = self.data[index]
        assert conn.done.wait(max(0.0, deadline - time.monotonic())), "the client did not close its connection"
        return decode_stream(conn.raw)


@pytest.fixture
def gatord():
    with FakeGatord() as fake:
        yield fake


def unique_names(tag):
    base = f"layerjoule-nobody-{tag}-{os.getpid()}-{time.monotonic_ns()}"
    return ("\0" + base + "-parent", "\0" + base)


def raw_ns():
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC_RAW)


def mono_ns():
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC)


# ----------------------------------------------------------------------------------------------------
# encoding


def test_packed_matches_the_documented_values_and_the_decoder():
    assert streamline.packed(429389) == bytes.fromhex("cd9a1a")
    assert streamline.packed(-4758616141418899142) == bytes.fromhex("bab2a5a2cefafffabd7f")
    for value in (0, 1, -1, 63, 64, -64, -65, 127, 128, 1 << 31, -(1 << 31), 1_700_000_000_123_456_789,
                  (1 << 63) - 1, -(1 << 63)):
        encoded = streamline.packed(value)
        assert read_leb(encoded, 0) == (value, len(encoded))
        if value >= 0:  # the timestamp fast path gives the same bytes
            assert streamline._packed_time(value) == encoded


def test_handshake_and_frames_byte_for_byte():
    assert streamline.handshake(4, 0x4626, 0x4626) == b"ANNOTATE 4\n&F\x00\x00&F\x00\x00\x00"
    assert streamline.handshake(5, 1, 2) == b"ANNOTATE 5\n\x01\x00\x00\x00\x02\x00\x00\x00\x00"
    # name group 0 "inference" at ts 429389: body = ts (3 bytes) + group (1 byte) + "inference" (9 bytes)
    assert streamline.encode_message(4, 429389, group=0, text="inference") == (
        b"\x04" + (13).to_bytes(4, "little") + bytes.fromhex("cd9a1a") + b"\x00" + b"inference")
    assert streamline.encode_message(7, 1, colour=0xFF8000, text="m") == b"\x07\x06\x00\x00\x00\x01\xff\x80\x00\x1bm"
    assert streamline.encode_message(1, 5, channel=1) == b"\x01\x02\x00\x00\x00\x05\x01"  # empty string: end
    with pytest.raises(ValueError):
        streamline.encode_message(3, 5, channel=1)  # a channel name needs a group


@pytest.mark.skipif(not (REAL_CAPTURE / "squeezenet_like.apc.zip").exists(), reason="no real-gatord fixture")
def test_decoder_and_encoder_agree_with_a_stream_a_real_gatord_recorded():
    """The client stream inside a capture by gatord 6.7 (ANNOTATE 4): decode it, re-encode every message."""
    with zipfile.ZipFile(REAL_CAPTURE / "squeezenet_like.apc.zip") as z:
        [name] = [n for n in z.namelist() if n.endswith("/0000000000")]
        data = z.read(name)
    streams, pos = {}, 0
    while pos < len(data):
        length = int.from_bytes(data[pos:pos + 4], "little", signed=True)
        frame = data[pos + 4:pos + 4 + length]
        pos += 4 + length
        kind, i = read_leb(frame, 0)
        if kind != 10 or i >= len(frame):  # External frames carry client streams
            continue
        conn, i = read_leb(frame, i)
        if conn != -1:
            streams.setdefault(conn, bytearray()).extend(frame[i:])
    [raw] = [s for s in streams.values() if s.startswith(b"ANNOTATE")]
    hello, messages, left = decode_stream(raw)
    assert hello["version"] == 4 and hello["dont_mangle_keys"] == 0 and left == 0
    assert bytes(raw[:20]) == streamline.handshake(4, hello["tid"], hello["pid"])
    log = [line.split() for line in (REAL_CAPTURE / "squeezenet_like.client-log.txt").read_text().splitlines()
           if line and not line.startswith("#")]
    strings = [m for m in messages if m["type"] == 1 and m["text"]]
    assert [(m["text"], m["ts"]) for m in strings] == [(layer, int(ts)) for _, layer, ts in log]
    for m in messages:
        fields = {k: m[k] for k in ("channel", "group") if k in m}
        assert streamline.encode_message(m["type"], m["ts"], text=m["text"], **fields) == m["frame"]


# ----------------------------------------------------------------------------------------------------
# round trips through the fake gatord


def expected_run(iterations):
    """(type, channel, group, text) of what run_client sends, in order."""
    out = [(4, None, 0, "inference"), (3, 1, 0, "layers"), (6, None, None, "setup"), (6, None, None, "warmup"),
           (6, None, None, "inference"), ("sync",)]
    for it in range(iterations):
        out.append((6, None, None, f"iteration {it}"))
        for layer in LAYERS:
            out += [(1, 1, None, layer), (1, 1, None, "")]
    out += [(2, 1, None, "coloured"), (1, 1, None, ""), (7, None, None, "idle")]
    return out


def run_client(annotator, iterations=3):
    """Sends the run expected_run() describes; returns the CLOCK_MONOTONIC stamp given to sync()."""
    assert annotator.connect() is True
    annotator.name_group(0, "inference")
    annotator.name_channel(1, 0, "layers")
    for phase in ("setup", "warmup", "inference"):
        annotator.marker(phase)
    stamp = mono_ns()
    annotator.sync(stamp)
    for it in range(iterations):
        annotator.marker(f"iteration {it}")
        for layer in LAYERS:
            annotator.layer(layer)
            annotator.end()
    annotator.layer("coloured", colour=(0x12, 0x34, 0x56))
    annotator.end()
    annotator.marker("idle", colour=0xFF0000)
    return stamp


def check_stream(hello, messages, left, version, stamp, t0_raw, t1_raw, iterations=3):
    assert left == 0
    assert hello["version"] == version and hello["pid"] > 0 and hello["dont_mangle_keys"] == 0
    expected = expected_run(iterations)
    assert len(messages) == len(expected)
    for m, e in zip(messages, expected, strict=True):
        if e == ("sync",):
            assert m["type"] == 6
            found = re.match(streamline.SYNC_PATTERN, m["text"])
            assert found and int(found.group(1)) == stamp
            continue
        assert (m["type"], m.get("channel"), m.get("group"), m["text"]) == e
    assert messages[-3]["colour"] == b"\x12\x34\x56\x1b" and messages[-1]["colour"] == b"\xff\x00\x00\x1b"
    stamps = [m["ts"] for m in messages]
    assert t0_raw <= stamps[0] and stamps[-1] <= t1_raw, "timestamps are CLOCK_MONOTONIC_RAW now"
    assert stamps == sorted(stamps)
    starts = [m["ts"] for m in messages if m["type"] == 1 and m["text"]]
    assert all(b > a for a, b in pairwise(starts)), "one string per layer, strictly increasing"
    for start, end in pairwise(messages):
        if start["type"] == 1 and start["text"]:
            assert end["type"] == 1 and end["text"] == "" and end["ts"] >= start["ts"], "each layer is ended"


@pytest.mark.parametrize("version", [5, 4])
def test_round_trip_through_the_fake_gatord(gatord, version):
    t0 = raw_ns()
    annotator = Annotator(mode="on", version=version, names=gatord.client_names)
    stamp = run_client(annotator)
    assert gatord.parent_signalled.wait(2)
    annotator.close()
    t1 = raw_ns()
    hello, messages, left = gatord.stream()
    check_stream(hello, messages, left, version, stamp, t0, t1)
    assert hello["tid"] == threading.get_native_id() and hello["pid"] == os.getpid()

    d = annotator.describe()
    json.dumps(d)
    assert d["enabled"] and d["connected"] and not d["active"] and d["state"] == "closed"
    assert d["protocol_version"] == version and d["transport"] == "unix-abstract-stream"
    assert d["default_sockets"] == gatord.real_names
    assert d["data_socket"] == "@" + gatord.names[1][1:] and d["parent_socket"] == "@" + gatord.names[0][1:]
    assert d["messages_sent"] == len(messages) and d["bytes_sent"] == len(gatord.data[0].raw) - 20
    assert d["send_errors"] == 0 and d["messages_dropped"] == 0
    assert d["capture_start_signals"] == 1
    assert d["sync_marker"] == "layerjoule-sync monotonic_ns={monotonic_ns}"
    [sync] = d["sync_markers"]
    assert sync["monotonic_ns"] == stamp and sync["monotonic_raw_ns"] == messages[5]["ts"]
    # describe()'s clock offset against the same difference measured here
    here = statistics.median(raw_ns() - mono_ns() for _ in range(9))
    offset = d["clock_offset"]
    assert offset["definition"] == "monotonic_raw_ns - monotonic_ns"
    assert abs(offset["offset_ns"] - here) < 1_000_000
    assert len(offset["measurements"]) == 2 and offset["spread_ns"] >= 0
    assert all(abs(m["offset_ns"] - here) < 1_000_000 for m in offset["measurements"])
    # the sync marker pairs the clocks too: its raw stamp minus the monotonic stamp in its text
    assert abs((sync["monotonic_raw_ns"] - sync["monotonic_ns"]) - here) < 50_000_000  # one preemption at most


def test_the_default_names_are_gatords(gatord):
    if not gatord.real_names:
        pytest.skip("the real annotate socket names are taken on this machine")
    annotator = Annotator()
    assert (annotator.parent_name, annotator.data_name) == (REAL_PARENT, REAL_DATA)
    assert annotator.connect() and annotator.marker("hello")
    annotator.close()
    hello, messages, _ = gatord.stream()
    assert hello["version"] == 5 and [m["text"] for m in messages] == ["hello"]


def test_retries_until_the_capture_starts_and_does_not_wait_for_the_start_byte():
    with FakeGatord(capture_delay_s=0.15, start_byte=False) as fake:
        annotator = Annotator(mode="on", connect_timeout_s=3.0, names=fake.client_names)
        assert annotator.connect()
        assert annotator.layer("conv1") and annotator.end()
        annotator.close()
        _, messages, _ = fake.stream()
        assert [m["text"] for m in messages] == ["conv1", ""]
        d = annotator.describe()
        assert d["connect_attempts"] > 1 and 100 <= d["connect_ms"] < 3000
        assert d["capture_start_signals"] == 0


def test_no_gatord_auto_continues_and_on_raises():
    names = unique_names("auto")
    annotator = Annotator(mode="auto", connect_timeout_s=0.05, names=names)
    t = time.monotonic()
    assert annotator.connect() is False
    assert time.monotonic() - t < 1.0, "a missing gatord must not hold the measurement"
    assert annotator.layer("conv1") is False and annotator.end() is False and annotator.sync() is False
    annotator.close()
    d = annotator.describe()
    json.dumps(d)
    assert d["enabled"] and not d["connected"] and not d["active"] and d["state"] == "no-gatord"
    assert "no gatord" in d["note"] and "without annotations" in d["note"]
    assert d["messages_sent"] == 0 and d["messages_dropped"] == 3 and d["send_errors"] == 0

    with pytest.raises(AnnotationError) as err:
        Annotator(mode="on", connect_timeout_s=0.05, names=unique_names("on")).connect()
    assert "\n" not in str(err.value) and "no gatord" in str(err.value)
    # a lazy first send connects too (and in mode "on" reports the same error)
    with pytest.raises(AnnotationError):
        Annotator(mode="on", connect_timeout_s=0.0, names=unique_names("lazy")).layer("conv1")


def test_gatord_without_a_capture_is_told_apart():
    with FakeGatord(capture_delay_s=60, names=unique_names("nocapture")) as fake:
        annotator = Annotator(mode="auto", connect_timeout_s=0.1, names=fake.names)
        assert annotator.connect() is False
        assert annotator.describe()["state"] == "no-capture"


def test_off_sends_nothing(gatord):
    annotator = Annotator(mode="off", names=gatord.client_names)
    assert annotator.connect() is False
    assert annotator.layer("conv1") is False and annotator.marker("x") is False and annotator.sync(1) is False
    annotator.close()
    time.sleep(0.05)
    assert gatord.parents == [] and gatord.data == []
    d = annotator.describe()
    assert d["enabled"] is False and d["connected"] is False and d["messages_dropped"] == 0
    assert d["clock_offset"]["samples"] > 1


def test_gatord_closing_mid_run_drops_and_counts(gatord):
    annotator = Annotator(mode="on", names=gatord.client_names)
    assert annotator.connect()
    for layer in LAYERS[:3]:
        assert annotator.layer(layer) and annotator.end()
    assert gatord.data_accepted.wait(2)
    deadline = time.monotonic() + 5
    while len(read_so_far(gatord.data[0].raw)) < 6 and time.monotonic() < deadline:
        time.sleep(0.002)  # until the fake has read the first six messages
    gatord.data[0].drop()
    results = []
    for layer in LAYERS[3:]:
        results += [annotator.layer(layer), annotator.end()]
    annotator.marker("idle")
    annotator.close()
    assert not any(results)
    d = annotator.describe()
    assert d["send_errors"] == 1 and d["messages_sent"] == 6 and d["messages_dropped"] == len(results) + 1
    assert d["state"] == "lost" and not d["active"] and d["last_error"]
    hello, messages, _ = decode_stream(gatord.data[0].raw)
    assert [m["text"] for m in messages] == [x for layer in LAYERS[:3] for x in (layer, "")]


def test_a_stalled_gatord_does_not_hold_the_measurement():
    with FakeGatord(read=False, names=unique_names("stalled")) as fake:
        annotator = Annotator(mode="on", send_timeout_s=0.05, names=fake.names)
        assert annotator.connect()
        name = "x" * 200
        t = time.monotonic()
        sent = 0
        for _ in range(100_000):
            if not annotator.layer(name):
                break
            sent += 1
        assert time.monotonic() - t < 2.0
        d = annotator.describe()
        assert sent > 0 and d["send_errors"] == 1 and d["state"] == "lost"
        assert annotator.layer(name) is False  # later sends return at once
        annotator.close()


def test_bad_arguments():
    with pytest.raises(ValueError):
        Annotator(mode="maybe")
    with pytest.raises(ValueError):
        Annotator(version=6)
    a = Annotator(names=("@a-parent", "a"))
    assert (a.parent_name, a.data_name) == ("\0a-parent", "\0a")


# ----------------------------------------------------------------------------------------------------
# the client on the board's Python (3.6)

CLIENT_36 = """
import json, sys
sys.path.insert(0, sys.argv[1])
from runner.streamline import Annotator
from runner.bundle import monotonic_ns
names = None if sys.argv[2] == "default" else (sys.argv[2], sys.argv[3])
a = Annotator(mode="on", version=int(sys.argv[4]), names=names)
assert a.connect()
a.name_group(0, "inference")
a.name_channel(1, 0, "layers")
for phase in ("setup", "warmup", "inference"):
    a.marker(phase)
stamp = monotonic_ns()
a.sync(stamp)
for it in range(3):
    a.marker("iteration {}".format(it))
    for layer in sys.argv[5].split(","):
        a.layer(layer)
        a.end()
a.layer("coloured", colour=(0x12, 0x34, 0x56))
a.end()
a.marker("idle", colour=0xFF0000)
a.close()
d = a.describe()
d["stamp"] = stamp
d["python"] = list(sys.version_info[:2])
print(json.dumps(d))
"""


@pytest.mark.skipif(not PYTHON36.exists(), reason="no .venv36 (python3.6 not on this machine)")
@pytest.mark.parametrize("version", [5, 4])
def test_round_trip_with_the_client_on_python36(gatord, version):
    names = ["default", "-"] if gatord.real_names else ["@" + n[1:] for n in gatord.names]
    t0 = raw_ns()
    done = subprocess.run([str(PYTHON36), "-c", CLIENT_36, str(ROOT), *names, str(version), ",".join(LAYERS)],
                          capture_output=True, text=True, timeout=60, cwd="/")
    t1 = raw_ns()
    assert done.returncode == 0, done.stderr
    d = json.loads(done.stdout)
    assert d["python"] == [3, 6]
    hello, messages, left = gatord.stream()
    check_stream(hello, messages, left, version, d["stamp"], t0, t1)
    assert hello["pid"] != os.getpid() and hello["tid"] == hello["pid"]  # the 3.6 process's main thread
    assert d["messages_sent"] == len(messages) and d["send_errors"] == 0 and d["default_sockets"] == gatord.real_names
    here = statistics.median(raw_ns() - mono_ns() for _ in range(9))
    assert abs(d["clock_offset"]["offset_ns"] - here) < 1_000_000


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))


def test_a_runner_run_annotates_every_layer_interval_of_its_event_log(gatord, tmp_path):
    """python3 -m runner (in process) with the fake gatord on gatord's own socket names: the annotations that
    arrive match the bundle's event log, layer for layer, and the sync marker falls where inference starts."""
    import csv

    from runner import cli

    if not gatord.real_names:
        pytest.skip("gatord's socket names are taken on this machine; the CLI always uses the real ones")
    model = Path(__file__).resolve().parent.parent / "sample_traces" / "models" / "legacy_v1_lenet.prototxt"
    out = tmp_path / "bundle"
    assert cli.main(["--engine", "opencv", "--model", str(model), "--iterations", "2", "--warmup", "1",
                     "--rails", "none", "--idle-s", "0.01", "--streamline", "on", "--out", str(out)]) == 0
    hello, messages, left = gatord.stream()
    assert left == 0 and hello["version"] == 5
    with open(out / "events.csv", newline="") as f:
        events = list(csv.DictReader(f))
    layer_rows = [e for e in events if e["kind"] == "layer"]
    layer_strings = [m["text"] for m in messages if m["type"] == 1 and m["text"]]
    assert layer_strings == [e["layer_name"] for e in layer_rows]  # warm-up and inference, in order
    assert sum(1 for m in messages if m["type"] == 1 and not m["text"]) == len(layer_rows)  # each one ended
    markers = [m["text"] for m in messages if m["type"] == 6]
    assert markers[:4] == ["setup", "idle", "warmup", "inference"]
    assert "iteration 0" in markers and "iteration 1" in markers and "idle" in markers[-3:]
    [sync] = [re.match(streamline.SYNC_PATTERN, text) for text in markers if text.startswith("layerjoule-sync")]
    inference = next(e for e in events if e["kind"] == "phase" and e["phase"] == "inference")
    first_layer = next(e for e in layer_rows if e["phase"] == "inference")
    assert int(inference["t_start_ns"]) <= int(sync.group(1)) <= int(first_layer["t_start_ns"])
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["streamline"]["connected"] is True and manifest["streamline"]["protocol_version"] == 5
