"""Streamline annotations from the runner: a client of gator's annotate protocol.

Python 3.6, standard library only (runs on the board). What is sent, the sync marker's text and the clock offset
are described in docs/streamline-annotations.md; the protocol itself in section 1 of the shared
streamline-formats notes.

Transport: two Linux abstract Unix stream sockets, the parent ``"\\0streamline-annotate-parent"`` and the data
socket ``"\\0streamline-annotate"`` (the address length excludes a trailing NUL, which Python's AF_UNIX
addresses already do). One data connection carries everything this annotator sends; it begins with the
handshake ``ANNOTATE N\\n`` + uint32 LE tid + uint32 LE pid + uint8 dont_mangle_keys (0), then frames
``uint8 type | uint32 LE body length | body``. Numbers in bodies are signed LEB128 ("packed"); every
timestamp is the packed int64 nanoseconds of CLOCK_MONOTONIC_RAW at the moment of the call.

Protocol versions (the handshake's N): 3 for gator 5.23, 4 for gator 5.24 to 7.8, 5 for gator 7.9 and later.
The messages this module sends (0x01 to 0x07) have the same bodies in all three.

Behaviour, as a real gatord wants it: the data socket refuses connections until a capture has started, so
``connect()`` retries with a short back-off, bounded by ``connect_timeout_s``; it does not wait for the parent
socket's start byte before sending. When nothing listens, annotations are off for the run and the
measurement goes on (``mode="auto"``), or ``connect()`` raises AnnotationError (``mode="on"``). A send that
fails (gatord gone, or stalled longer than ``send_timeout_s``) turns sending off for the rest of the run; it is
counted, never raised. One Annotator belongs to one thread (channels belong to the thread named in the
handshake: the one that connected).
"""

import collections
import os
import socket
import struct
import time

from runner.bundle import monotonic_ns

PARENT_NAME = "\0streamline-annotate-parent"
DATA_NAME = "\0streamline-annotate"
MODES = ("auto", "on", "off")
PROTOCOL_VERSIONS = collections.OrderedDict([
    (3, "gator 5.23"),
    (4, "gator 5.24 to 7.8"),
    (5, "gator 7.9 and later"),
])
DEFAULT_VERSION = 5

# Message types of the annotate protocol (the ones this module sends).
STRING = 0x01          # ts, packed32 channel, str (empty str ends the channel's current annotation)
STRING_COLOUR = 0x02   # ts, packed32 channel, colour, str
NAME_CHANNEL = 0x03    # ts, packed32 channel, packed32 group, str
NAME_GROUP = 0x04      # ts, packed32 group, str
MARKER = 0x06          # ts, str
MARKER_COLOUR = 0x07   # ts, colour, str

# The sync marker: a marker whose text carries the runner's own CLOCK_MONOTONIC stamp (decimal integer ns).
# Its annotate timestamp is the CLOCK_MONOTONIC_RAW reading taken right after that stamp.
SYNC_PREFIX = "layerjoule-sync monotonic_ns="
SYNC_FORMAT = SYNC_PREFIX + "{:d}"
SYNC_PATTERN = r"^layerjoule-sync monotonic_ns=(-?[0-9]+)$"

_HEADER = struct.Struct("<BI")
_IDS = struct.Struct("<IIB")
_TIMEVAL = struct.Struct("@ll")
_COLOUR_RGB = 0x1b  # the 4th colour byte gator's own library uses for an RGB colour (any value >= 5 means RGB)
_SEND_FLAGS = getattr(socket, "MSG_NOSIGNAL", 0)
_clock = time.clock_gettime
_RAW = time.CLOCK_MONOTONIC_RAW


class AnnotationError(Exception):
    """Annotations were required (mode "on") but cannot be sent; the message is one line."""


def monotonic_raw_ns():
    """CLOCK_MONOTONIC_RAW as integer nanoseconds (Python 3.6 has no clock_gettime_ns)."""
    return int(round(_clock(_RAW) * 1e9))


def packed(value):
    """Signed LEB128 of an integer: gator's packed32/packed64 (7 bits a byte, low group first, 0x80 = more)."""
    out = bytearray()
    value = int(value)
    while True:
        b = value & 0x7f
        value >>= 7
        if (value == 0 and not b & 0x40) or (value == -1 and b & 0x40):
            out.append(b)
            return bytes(out)
        out.append(b | 0x80)


def _packed_time(value):
    """packed() for a non-negative integer (a timestamp): the hot path's shorter loop, same bytes."""
    out = bytearray()
    while value >= 64:
        out.append((value & 0x7f) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def colour_bytes(colour):
    """The protocol's 4 colour bytes RR GG BB 0x1b for 0xRRGGBB or an (r, g, b) tuple."""
    if isinstance(colour, (tuple, list)):
        r, g, b = (int(c) for c in colour)
    else:
        colour = int(colour)
        r, g, b = (colour >> 16) & 0xff, (colour >> 8) & 0xff, colour & 0xff
    if not all(0 <= c <= 255 for c in (r, g, b)):
        raise ValueError("colour components must be 0..255")
    return bytes((r, g, b, _COLOUR_RGB))


def _int32(value, what):
    """A channel or group number as the C library packs it (uint32 cast to int32)."""
    if isinstance(value, bool) or not isinstance(value, int) or not -(1 << 31) <= value < (1 << 32):
        raise ValueError(f"{what} must be an integer in the 32-bit range, not {value!r}")
    return value - (1 << 32) if value >= (1 << 31) else value


def _text(text):
    """UTF-8 bytes of a string (no NUL: gator's library measures strings with strlen)."""
    return str(text).replace("\0", "").encode("utf-8")


def _abstract(name):
    """'\\0name' for 'name', '@name' or '\\0name' (all three mean the abstract name 'name')."""
    name = str(name)
    if name[:1] in ("\0", "@"):
        name = name[1:]
    if not name:
        raise ValueError("socket name must not be empty")
    return "\0" + name


def _shown(name):
    """An abstract socket name as ss(8) shows it: '@streamline-annotate'."""
    return "@" + name[1:]


def _thread_id():
    """The calling thread's kernel tid (what gettid(2) returns); the pid where /proc/thread-self is missing."""
    try:
        return int(os.readlink("/proc/thread-self").rsplit("/", 1)[-1])
    except (OSError, ValueError):
        return os.getpid()


def handshake(version, tid, pid, dont_mangle_keys=0):
    """The bytes that open a data connection: ``ANNOTATE N\\n``, uint32 LE tid, uint32 LE pid, uint8 flag."""
    ids = _IDS.pack(tid & 0xffffffff, pid & 0xffffffff, dont_mangle_keys)
    return f"ANNOTATE {version:d}\n".encode("ascii") + ids


_FIELDS = {
    STRING: ("channel",),
    STRING_COLOUR: ("channel", "colour"),
    NAME_CHANNEL: ("channel", "group"),
    NAME_GROUP: ("group",),
    MARKER: (),
    MARKER_COLOUR: ("colour",),
}


def encode_message(kind, ts_ns, channel=None, group=None, colour=None, text=""):
    """One framed message: ``uint8 kind | uint32 LE body length | packed64 ts | fields | UTF-8 text``.

    The fields of each kind, in order: STRING channel; STRING_COLOUR channel, colour; NAME_CHANNEL channel,
    group; NAME_GROUP group; MARKER none; MARKER_COLOUR colour. (Annotator.layer/end build the same bytes from
    cached parts.)
    """
    if kind not in _FIELDS:
        raise ValueError(f"message type 0x{kind:02x} is not one this module sends")
    body = packed(ts_ns)
    values = {"channel": channel, "group": group, "colour": colour}
    for field in _FIELDS[kind]:
        value = values[field]
        if value is None:
            raise ValueError(f"message type 0x{kind:02x} needs a {field}")
        body += colour_bytes(value) if field == "colour" else packed(_int32(value, field))
    body += _text(text)
    return _HEADER.pack(kind, len(body)) + body


def clock_offset(samples=9):
    """CLOCK_MONOTONIC_RAW minus CLOCK_MONOTONIC, read back to back ``samples`` times.

    Each sample brackets one MONOTONIC_RAW reading between two MONOTONIC readings and takes the bracket's
    midpoint. Returns the median offset, the spread (max - min) of the samples, the widest bracket and the
    CLOCK_MONOTONIC time of the measurement.
    """
    offsets = []
    widest = 0
    first = None
    monotonic_ns(), monotonic_raw_ns()  # warm up: the first reads of a process are slower
    for _ in range(max(1, int(samples))):
        m0 = monotonic_ns()
        r = monotonic_raw_ns()
        m1 = monotonic_ns()
        if first is None:
            first = m0
        offsets.append(r - (m0 + m1) // 2)
        widest = max(widest, m1 - m0)
    offsets.sort()
    n = len(offsets)
    median = offsets[n // 2] if n % 2 else (offsets[n // 2 - 1] + offsets[n // 2]) // 2
    return collections.OrderedDict([
        ("monotonic_ns", first),
        ("offset_ns", median),
        ("spread_ns", offsets[-1] - offsets[0]),
        ("bracket_ns", widest),
        ("samples", n),
    ])


class Annotator:
    """Sends per-layer annotations to a gatord (ARM Streamline) during a measurement.

    Annotator(mode="auto"|"on"|"off", version=5, connect_timeout_s=1.0, names=None, send_timeout_s=0.05)

    - ``connect()`` once, before the measurement (the first send connects lazily otherwise);
    - ``name_group(group, name)`` and ``name_channel(channel, group, name)`` once after connecting;
    - ``marker(text)`` at phase boundaries, ``sync(t_monotonic_ns)`` where the importer should align clocks;
    - ``layer(name)`` just before a layer runs, ``end()`` just after it;
    - ``close()`` at the end, then ``describe()`` for the bundle manifest.

    ``names`` is ``(parent, data)``, abstract socket names (a leading NUL or '@' is optional); the default is
    gatord's own pair. Every send method returns True when the message went out and never raises on a send
    failure; only ``connect()`` in mode "on" raises (AnnotationError).
    """

    def __init__(self, mode="auto", version=DEFAULT_VERSION, connect_timeout_s=1.0, names=None,
                 send_timeout_s=0.05):
        if mode not in MODES:
            raise ValueError("annotation mode must be one of " + ", ".join(MODES))
        if version not in PROTOCOL_VERSIONS:
            raise ValueError("annotate protocol version must be one of "
                             + ", ".join(str(v) for v in PROTOCOL_VERSIONS))
        if names is None:
            names = (PARENT_NAME, DATA_NAME)
        parent, data = names
        self.mode = mode
        self.version = version
        self.connect_timeout_s = max(0.0, float(connect_timeout_s))
        self.send_timeout_s = max(0.001, float(send_timeout_s))
        self.parent_name = _abstract(parent)
        self.data_name = _abstract(data)
        self._sock = None
        self._parent = None
        self._tried = mode == "off"
        self._state = "off" if mode == "off" else "not-connected"
        self._note = ("annotations off" if mode == "off"
                      else "not connected yet (connect() runs before the first annotation)")
        self._connected = False
        self._tid = None
        self._attempts = 0
        self._connect_ms = None
        self._start_signals = 0
        self._parent_closed = False
        self._sent = 0
        self._bytes = 0
        self._dropped = 0
        self._errors = 0
        self._last_error = None
        self._strings = {}
        self._ends = {}
        self._syncs = []
        self._offsets = []

    # ------------------------------------------------------------------------------------------------
    # connection

    def connect(self):
        """Connect to gatord once; True when annotations will be sent.

        Tries the parent socket once and the data socket until it accepts or ``connect_timeout_s`` has
        passed (a gatord refuses data connections until its capture starts), then sends the handshake.
        Mode "off": False at once. Nothing listening: False in mode "auto" (describe() says why),
        AnnotationError in mode "on". Later calls return the first call's answer without trying again.
        """
        if self._sock is not None:
            return True
        if self._tried:
            return False
        self._tried = True
        self._offsets.append(clock_offset())
        start = time.monotonic()
        deadline = start + self.connect_timeout_s
        parent, parent_error = self._open(self.parent_name, deadline)
        data, error = None, None
        pause = 0.002
        while True:
            self._attempts += 1
            data, error = self._open(self.data_name, deadline)
            now = time.monotonic()
            if data is not None or now >= deadline:
                break
            time.sleep(min(pause, deadline - now))
            pause = min(pause * 2, 0.05)
        if data is not None:
            try:
                self._tid = _thread_id()
                data.sendall(handshake(self.version, self._tid, os.getpid()), _SEND_FLAGS)
                data.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO,
                                _TIMEVAL.pack(int(self.send_timeout_s),
                                              int(round((self.send_timeout_s % 1) * 1e6))))
            except OSError as e:
                data.close()
                data, error = None, e
        self._connect_ms = round((time.monotonic() - start) * 1e3, 3)
        if data is None:
            if parent is not None:
                parent.close()
            parent_shown, data_shown = _shown(self.parent_name), _shown(self.data_name)
            waited = f"{self.connect_timeout_s:g} s"
            if parent_error is None:
                self._state = "no-capture"
                self._note = (f"gatord listens on {parent_shown} but {data_shown} refused connections for {waited}"
                              f" ({_why(error)}): no capture running")
            else:
                self._state = "no-gatord"
                self._note = (f"no gatord: nothing listens on {parent_shown} or {data_shown}"
                              f" (tried for {waited}; {_why(error)})")
            if self.mode == "on":
                raise AnnotationError("Streamline annotations required but " + self._note)
            self._note += "; the measurement runs without annotations"
            return False
        self._sock = data
        self._parent = parent
        self._connected = True
        self._state = "connected"
        self._note = f"connected to gatord ({_shown(self.data_name)}), ANNOTATE {self.version}"
        if parent is None:
            self._note += f"; parent socket not available ({_why(parent_error)})"
        return True

    @staticmethod
    def _open(name, deadline):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            sock.connect(name)
            sock.settimeout(None)
        except OSError as e:
            sock.close()
            return None, e
        return sock, None

    def _poll_parent(self):
        """Count gatord's capture-start bytes on the parent socket without waiting."""
        parent = self._parent
        while parent is not None:
            try:
                got = parent.recv(64, socket.MSG_DONTWAIT)
            except BlockingIOError:
                return
            except OSError:
                got = b""
            if not got:
                self._parent_closed = True
                parent.close()
                self._parent = None
                return
            self._start_signals += len(got)

    def _unconnected(self):
        """The send path when no data connection is up: connect lazily once, else drop and count."""
        if not self._tried:
            return self.connect()
        if self.mode != "off":
            self._dropped += 1
        return False

    def _fail(self, error):
        self._errors += 1
        self._last_error = _why(error)
        self._state = "lost"
        self._note = f"gatord connection lost ({self._last_error}); later annotations dropped"
        sock, self._sock = self._sock, None
        try:
            sock.close()
        except OSError:
            pass

    def _send(self, message):
        try:
            self._sock.sendall(message, _SEND_FLAGS)
        except OSError as e:
            self._fail(e)
            self._dropped += 1
            return False
        self._sent += 1
        self._bytes += len(message)
        return True

    # ------------------------------------------------------------------------------------------------
    # messages

    def layer(self, name, channel=1, colour=None):
        """Channel string ``name`` (0x01, or 0x02 with a colour): the layer about to run."""
        if self._sock is None and not self._unconnected():
            return False
        key = (channel, name, colour)
        entry = self._strings.get(key)
        if entry is None:
            tail = packed(_int32(channel, "channel"))
            if colour is not None:
                tail += colour_bytes(colour)
            entry = self._strings[key] = (STRING if colour is None else STRING_COLOUR, tail + _text(name))
        kind, tail = entry
        ts = _packed_time(int(round(_clock(_RAW) * 1e9)))
        return self._send(_HEADER.pack(kind, len(ts) + len(tail)) + ts + tail)

    def end(self, channel=1):
        """Empty channel string (0x01): ends the channel's current annotation (the layer has finished)."""
        if self._sock is None and not self._unconnected():
            return False
        tail = self._ends.get(channel)
        if tail is None:
            tail = self._ends[channel] = packed(_int32(channel, "channel"))
        ts = _packed_time(int(round(_clock(_RAW) * 1e9)))
        return self._send(_HEADER.pack(STRING, len(ts) + len(tail)) + ts + tail)

    def marker(self, text, colour=None):
        """Marker (0x06, or 0x07 with a colour): phase boundaries, iterations."""
        if self._sock is None and not self._unconnected():
            return False
        return self._send(encode_message(MARKER if colour is None else MARKER_COLOUR, monotonic_raw_ns(),
                                         colour=colour, text=text))

    def sync(self, t_monotonic_ns=None):
        """Sync marker ``layerjoule-sync monotonic_ns=<t>``: the runner's CLOCK_MONOTONIC stamp in the text.

        Pass the stamp the runner took just before (``t_monotonic_ns``), or None to take one here. The marker's
        own timestamp is CLOCK_MONOTONIC_RAW read right after, so each sync marker pairs the two clocks.
        """
        if self._sock is None and not self._unconnected():
            return False
        t = monotonic_ns() if t_monotonic_ns is None else int(t_monotonic_ns)
        raw = monotonic_raw_ns()
        sent = self._send(encode_message(MARKER, raw, text=SYNC_FORMAT.format(t)))
        if sent:
            self._syncs.append(collections.OrderedDict([("monotonic_ns", t), ("monotonic_raw_ns", raw)]))
        return sent

    def name_group(self, group, name):
        """Name a group (0x04)."""
        if self._sock is None and not self._unconnected():
            return False
        return self._send(encode_message(NAME_GROUP, monotonic_raw_ns(), group=group, text=name))

    def name_channel(self, channel, group, name):
        """Name a channel and put it in a group (0x03)."""
        if self._sock is None and not self._unconnected():
            return False
        return self._send(encode_message(NAME_CHANNEL, monotonic_raw_ns(), channel=channel, group=group, text=name))

    # ------------------------------------------------------------------------------------------------
    # end and report

    def close(self):
        """Close the connections (gatord sees a disconnect) and measure the clock offset once more."""
        if self._connected or self._offsets:
            self._offsets.append(clock_offset())
        self._poll_parent()
        if self._sock is not None:
            try:
                self._sock.close()
            except OSError:
                pass
            self._sock = None
            self._state = "closed"
        if self._parent is not None:
            self._parent.close()
            self._parent = None
        self._tried = True

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def describe(self):
        """The manifest's annotation object (an OrderedDict of JSON values): see docs/streamline-annotations.md."""
        self._poll_parent()
        offsets = self._offsets if self._offsets else [clock_offset()]
        first = offsets[0]
        return collections.OrderedDict([
            ("protocol", "streamline-annotate"),
            ("mode", self.mode),
            ("enabled", self.mode != "off"),
            ("connected", self._connected),
            ("active", self._sock is not None),
            ("state", self._state),
            ("note", self._note),
            ("protocol_version", self.version),
            ("gator_versions", PROTOCOL_VERSIONS[self.version]),
            ("transport", "unix-abstract-stream"),
            ("parent_socket", _shown(self.parent_name)),
            ("data_socket", _shown(self.data_name)),
            ("default_sockets", (self.parent_name, self.data_name) == (PARENT_NAME, DATA_NAME)),
            ("pid", os.getpid()),
            ("tid", self._tid),
            ("connect_attempts", self._attempts),
            ("connect_ms", self._connect_ms),
            ("capture_start_signals", self._start_signals),
            ("parent_closed", self._parent_closed),
            ("messages_sent", self._sent),
            ("bytes_sent", self._bytes),
            ("messages_dropped", self._dropped),
            ("send_errors", self._errors),
            ("last_error", self._last_error),
            ("timestamp_clock", "CLOCK_MONOTONIC_RAW"),
            ("sync_marker", SYNC_FORMAT.replace("{:d}", "{monotonic_ns}")),
            ("sync_markers", list(self._syncs)),
            ("clock_offset", collections.OrderedDict([
                ("definition", "monotonic_raw_ns - monotonic_ns"),
                ("offset_ns", first["offset_ns"]),
                ("spread_ns", first["spread_ns"]),
                ("samples", first["samples"]),
                ("measurements", [collections.OrderedDict(m) for m in offsets]),
            ])),
        ])


def _why(error):
    if error is None:
        return "no error"
    name = type(error).__name__
    text = getattr(error, "strerror", None) or str(error)
    return f"{name}: {text}" if text else name
