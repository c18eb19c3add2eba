"""Reader of Arm Streamline captures: a ``*.apc`` folder, or the same zipped (docs/streamline-capture.md).

What comes out (importer.readers.common.SourceData, time base "capture": nanoseconds since the capture started):
- annotations: closed intervals of the annotate protocol's channel strings (one row per layer, for layerjoule);
- markers: the annotate protocol's markers (iterations, phases, the runner's sync marker);
- counters / counter_info: counter values from Counter and Block counter frames, joined to captured.xml's keys and
  to events.xml's titles, names, units and multipliers;
- samples / rails: power counters (units W, mW or uW), when the capture holds any.

The formats are described in the shared streamline-formats notes (sections 1, 2 and 2b). Frames that this reader
does not need (perf records, scheduler traces, names, backtraces, ...) are skipped by their length, never decoded,
and counted in ``notes``. Every problem with the input is an InputError naming the file, the place (a line of an
XML file, a byte offset of a data file) and what was expected.
"""

from __future__ import annotations

import bisect
import hashlib
import io
import re
import tempfile
import zipfile
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from lxml import etree

from importer import limits
from importer.errors import InputError
from importer.readers import archives
from importer.readers.common import RailInfo, SourceData

KIND = "streamline-capture"
XML_FILES = ("captured.xml", "session.xml", "events.xml", "counters.xml")
DATA_FILE = re.compile(r"^[0-9]{10}$")
CANARY = b"1\n2\r\n3\r4\n\r5"
NEWLINE = b"\n"

# Frame types (section 2 of the notes; 14 and 15 from gator 7 and later). Only 1, 4, 5 and 10 are decoded.
FRAME_SUMMARY, FRAME_COUNTER, FRAME_BLOCK_COUNTER, FRAME_EXTERNAL = 1, 4, 5, 10
SKIPPED_FRAMES = {
    2: "backtraces; not needed",
    3: "names; not needed",
    6: "annotations from the old /dev/gator/annotate path; not decoded",
    7: "scheduler trace; not needed",
    8: "GPU trace of old gator.ko; not needed",
    9: "idle states; not needed",
    11: "perf attributes; layout unknown",
    12: "perf records; layout unknown",
    13: "activity trace; not needed",
    14: "perf AUX records; layout unknown",
    15: "perf sync records; layout unknown",
}
KNOWN_FRAMES = {FRAME_SUMMARY, FRAME_COUNTER, FRAME_BLOCK_COUNTER, FRAME_EXTERNAL, *SKIPPED_FRAMES}

# Annotate protocol messages (section 1).
ANNOTATE_HANDSHAKE = re.compile(rb"ANNOTATE ([0-9]{1,3})\n")
ANNOTATE_VERSIONS = (3, 4, 5)
MSG_STRING, MSG_STRING_COLOUR, MSG_NAME_CHANNEL, MSG_NAME_GROUP = 0x01, 0x02, 0x03, 0x04
MSG_VISUAL, MSG_MARKER, MSG_MARKER_COLOUR = 0x05, 0x06, 0x07
SKIPPED_MESSAGES = {
    0x05: "visuals (images)",
    0x08: "counter definitions",
    0x09: "counter values",
    0x0A: "activity switches",
}

# Power counters: unit -> factor to milliwatts.
POWER_UNITS = {"W": 1000.0, "mW": 1.0, "uW": 1e-3, "\u00b5W": 1e-3}

# lxml parser settings for every XML file of a capture: no entities resolved, no DTD loaded, nothing fetched.
SAFE_XML = {"resolve_entities": False, "no_network": True, "load_dtd": False, "huge_tree": False}


# ------------------------------------------------------------------------------------------------------------------
# packed integers (signed LEB128)


def read_packed(data: bytes | memoryview, offset: int) -> tuple[int, int]:
    """One packed32/packed64 (signed LEB128) at ``offset``: (value as int64, offset after it).

    Raises IndexError when the bytes end inside the number and ValueError when it is longer than 10 bytes.
    """
    result = shift = 0
    while True:
        byte = data[offset]
        offset += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            break
        if shift >= 70:
            raise ValueError("packed integer longer than 10 bytes")
    if byte & 0x40:
        result -= 1 << shift
    result &= (1 << 64) - 1
    return (result - (1 << 64) if result >= 1 << 63 else result), offset


def unpack_all(data: bytes | memoryview) -> np.ndarray:
    """Every packed integer of a byte string that holds nothing else, decoded at once (int64 array).

    Raises ValueError when the last number is unterminated or a number is longer than 10 bytes.
    """
    raw = np.frombuffer(data, dtype=np.uint8)
    if raw.size == 0:
        return np.zeros(0, dtype=np.int64)
    last = raw < 0x80
    if not last[-1]:
        raise ValueError("the bytes end inside a packed integer")
    ends = np.flatnonzero(last)
    starts = np.empty_like(ends)
    starts[0] = 0
    starts[1:] = ends[:-1] + 1
    lengths = ends - starts + 1
    if lengths.max() > 10:
        raise ValueError("packed integer longer than 10 bytes")
    position = np.arange(raw.size) - np.repeat(starts, lengths)
    parts = (raw & 0x7F).astype(np.uint64) << (position * 7).astype(np.uint64)
    values = np.bitwise_or.reduceat(parts, starts)
    shift = lengths * 7
    negative = ((raw[ends] & 0x40) != 0) & (shift < 64)
    if negative.any():
        values[negative] |= ~((np.uint64(1) << shift[negative].astype(np.uint64)) - np.uint64(1))
    return values.view(np.int64)


# ------------------------------------------------------------------------------------------------------------------
# entry points


def is_capture(path: str | Path) -> bool:
    """True for a folder holding captured.xml, or a zip holding it at its root or in one top folder."""
    path = Path(path)
    if path.is_dir():
        return (path / "captured.xml").is_file()
    try:
        if path.is_file() and zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                return any(_zip_member_name(n) == "captured.xml" for n in archive.namelist())
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError):
        return False
    return False


def read_capture(path: str | Path) -> SourceData:
    """Read a Streamline capture folder (``*.apc``) or a zip of one into SourceData (time base "capture")."""
    path = Path(path)
    if not path.exists():
        raise InputError("no such file or folder", path=str(path))
    if path.is_dir():
        return _read_folder(path, shown_as=path)
    with tempfile.TemporaryDirectory(prefix="layerjoule-apc-") as scratch:
        folder = _unpack(path, Path(scratch))
        return _read_folder(folder, shown_as=path)


# ------------------------------------------------------------------------------------------------------------------
# zip


def _zip_member_name(name: str) -> str | None:
    """The member's name below the zip's root or one top folder (None for deeper members)."""
    parts = [p for p in name.split("/") if p]
    if len(parts) == 1:
        return parts[0]
    if len(parts) == 2:
        return parts[1]
    return None


def _unpack(path: Path, scratch: Path) -> Path:
    """Copy the capture's XML and data files out of a zip into ``scratch`` under fixed names (nothing else), within
    the limits of importer/limits.py; escaping paths and links anywhere in the zip refuse it whole."""
    if not zipfile.is_zipfile(path):
        raise InputError(
            "not a Streamline capture: expected a *.apc folder or a zip holding captured.xml", path=str(path)
        )
    with archives.open_zip(path, "a zipped Streamline capture") as archive:
        infos = archives.checked_infos(archive, str(path))
        tops = [i.filename for i in infos if _zip_member_name(i.filename) == "captured.xml"]
        if not tops:
            raise InputError(
                "not a Streamline capture: no captured.xml at the zip's root or in one top folder",
                path=str(path),
            )
        if len(tops) > 1:
            raise InputError(
                f"holds {len(tops)} captures ({', '.join(tops[:3])}{', ...' if len(tops) > 3 else ''}); expected "
                "one captured.xml", path=str(path)
            )
        prefix = tops[0][: -len("captured.xml")]
        chosen: dict[str, zipfile.ZipInfo] = {}
        for info in infos:
            if info.is_dir() or not info.filename.startswith(prefix):
                continue
            member = info.filename[len(prefix) :]
            if member in XML_FILES or DATA_FILE.fullmatch(member):
                if member in chosen:
                    raise InputError(f"member {info.filename!r} is in the zip twice; expected each file once",
                                     path=str(path))
                chosen[member] = info
        archives.extract(archive, [(info, scratch / member) for member, info in chosen.items()], str(path))
    return scratch


# ------------------------------------------------------------------------------------------------------------------
# XML


def _display(shown_as: Path, name: str) -> str:
    return f"{shown_as}/{name}" if shown_as.is_dir() else f"{shown_as}!{name}"


XML_ENCODINGS = ("utf-8", "utf8", "us-ascii", "ascii", "iso-8859-1", "latin-1", "latin1")
XML_DECLARED_ENCODING = re.compile(rb"""^\s*<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")


def _check_xml_file(path: Path, shown: str) -> bytes:
    """Refuse before parsing what the parser must never see: a file over the size limit, a text encoding in which
    a DOCTYPE could hide from this byte scan (gatord writes UTF-8), and any DOCTYPE or ENTITY declaration (gatord
    writes none; libxml2 would expand internal entities in attribute values even with resolve_entities=False)."""
    most = limits.XML_BYTES.get()
    if path.stat().st_size > most:
        raise InputError(f"is {path.stat().st_size:,} bytes; expected an XML file of at most {most:,} bytes "
                         f"({limits.XML_BYTES.env} raises the limit)", path=shown)
    data = path.read_bytes()
    if data.startswith((b"\xff\xfe", b"\xfe\xff", b"\x00\x00\xfe\xff")) or b"\x00" in data[:4096]:
        raise InputError("is not UTF-8 (UTF-16 or UTF-32, or NUL bytes); expected UTF-8 XML as gatord writes it",
                         path=shown, place="line 1")
    declared = XML_DECLARED_ENCODING.match(data.removeprefix(b"\xef\xbb\xbf"))
    if declared and declared[1].decode().lower() not in XML_ENCODINGS:
        raise InputError(f"declares encoding {declared[1].decode()!r}; expected UTF-8 XML as gatord writes it",
                         path=shown, place="line 1")
    at = data.find(b"<!ENTITY")
    if at < 0:
        at = data.find(b"<!DOCTYPE")
    if at >= 0:
        names = [n.decode(errors="replace") for n in re.findall(rb"<!ENTITY\s+(?:%\s+)?([^\s>]+)", data)]
        what = f"declares entit{'y' if len(names) == 1 else 'ies'} {', '.join(names)}" if names else "has a DOCTYPE"
        raise InputError(f"{what}; expected plain XML without a DOCTYPE or entity declarations (nothing was "
                         "expanded or fetched)", path=shown, place=f"line {data.count(NEWLINE, 0, at) + 1}")
    return data


def _refuse_dtd(docinfo, shown: str) -> None:
    """A second line of defence after _check_xml_file: whatever DTD the parser still saw is refused."""
    dtd = docinfo.internalDTD
    entities = list(dtd.iterentities()) if dtd is not None else []
    if entities or docinfo.system_url or docinfo.public_id or dtd is not None:
        raise InputError("has a DOCTYPE; expected plain XML without entity declarations (nothing was expanded or "
                         "fetched)", path=shown)


def _depth_error(shown: str, element) -> InputError:
    most = limits.XML_DEPTH.get()
    return InputError(f"elements nest deeper than {most} levels; expected the shallow XML gatord writes "
                      f"({limits.XML_DEPTH.env} raises the limit)", path=shown, place=f"line {element.sourceline}")


def _xml_error(error: etree.XMLSyntaxError, shown: str) -> InputError:
    line = error.lineno if getattr(error, "lineno", None) else None
    message = str(error.msg if getattr(error, "msg", None) else error).split(", line ")[0]
    return InputError(f"{message}; expected well-formed XML", path=shown, place=f"line {line}" if line else None)


def _parse_xml(path: Path, shown: str, root_tag: str):
    data = _check_xml_file(path, shown)
    parser = etree.XMLParser(**SAFE_XML)
    try:
        # From the bytes already checked (from a file name, lxml reports bad encodings as OSError).
        tree = etree.parse(io.BytesIO(data), parser)
    except etree.XMLSyntaxError as error:
        raise _xml_error(error, shown) from None
    _refuse_dtd(tree.docinfo, shown)
    root = tree.getroot()
    if root.tag != root_tag:
        raise InputError(f"root element is <{root.tag}>; expected <{root_tag}>", path=shown,
                         place=f"line {root.sourceline}")
    most, depth = limits.XML_DEPTH.get(), 0
    for action, element in etree.iterwalk(root, events=("start", "end")):
        depth += 1 if action == "start" else -1
        if depth > most:
            raise _depth_error(shown, element)
    return root


def _int_attribute(element, name: str, shown: str, required: bool = True) -> int | None:
    text = element.get(name)
    if text is None:
        if required:
            raise InputError(f"<{element.tag}> has no {name}; expected {name}=\"0x...\"", path=shown,
                             place=f"line {element.sourceline}")
        return None
    try:
        return int(text.strip(), 0)
    except ValueError:
        raise InputError(f"{name}={text!r}; expected an integer such as 0x3", path=shown,
                         place=f"line {element.sourceline}") from None


@dataclass
class _CounterSpec:
    key: int
    type: str
    event: int | None
    attributes: dict = field(default_factory=dict)  # title, name, units, multiplier, class, display, ...
    source: str = "none"


def _read_captured(path: Path, shown: str) -> tuple[dict, dict[int, _CounterSpec]]:
    root = _parse_xml(path, shown, "captured")
    info = {"captured": dict(root.attrib)}
    target = root.find("target")
    if target is not None:
        info["target"] = dict(target.attrib)
    specs: dict[int, _CounterSpec] = {}
    for element in root.iterfind("counters/counter"):
        key = _int_attribute(element, "key", shown)
        kind = element.get("type")
        if not kind:
            raise InputError("<counter> has no type; expected type=\"...\"", path=shown,
                             place=f"line {element.sourceline}")
        if key in specs:
            raise InputError(f"counter key 0x{key:x} is listed twice; expected unique keys", path=shown,
                             place=f"line {element.sourceline}")
        event = _int_attribute(element, "event", shown, required=False)
        own = {k: v for k, v in element.attrib.items() if k not in ("key", "type", "event")}
        specs[key] = _CounterSpec(key, kind, event, own, "captured.xml" if "title" in own else "none")
    return info, specs


def _read_session(path: Path, shown: str) -> dict:
    root = _parse_xml(path, shown, "session")
    session = {"session": dict(root.attrib)}
    energy = root.find("energy_capture")
    if energy is not None:
        session["energy_capture"] = dict(energy.attrib)
        session["energy_channels"] = [dict(c.attrib) for c in energy.iterfind("channel")]
    return session


def _read_counters_xml(path: Path, shown: str) -> dict[str, dict]:
    root = _parse_xml(path, shown, "counters")
    return {c.get("name"): dict(c.attrib) for c in root.iter("counter") if c.get("name")}


def _counter_set(kind: str) -> str:
    """captured.xml type "ARMv8_Cortex_A57_cnt1" belongs to events.xml counter_set "ARMv8_Cortex_A57_cnt"."""
    return kind.rstrip("0123456789")


def _read_events(path: Path, shown: str, specs: dict[int, _CounterSpec]) -> int:
    """Stream events.xml, keeping only the <event> entries of the capture's counters; return how many matched."""
    by_type = {s.type: s for s in specs.values()}
    by_set: dict[str, dict[int, list[_CounterSpec]]] = defaultdict(lambda: defaultdict(list))
    for spec in specs.values():
        if spec.event is not None:
            by_set[_counter_set(spec.type)][spec.event].append(spec)
    matched = 0
    category: dict = {}
    first = True
    data = _check_xml_file(path, shown)
    most, depth = limits.XML_DEPTH.get(), 0
    try:
        for action, element in etree.iterparse(io.BytesIO(data), events=("start", "end"), **SAFE_XML):
            if first:
                first = False
                _refuse_dtd(element.getroottree().docinfo, shown)
                if element.tag != "events":
                    raise InputError(f"root element is <{element.tag}>; expected <events>", path=shown,
                                     place=f"line {element.sourceline}")
            tag = element.tag
            depth += 1 if action == "start" else -1
            if depth > most:
                raise _depth_error(shown, element)
            if action == "start":
                if tag == "category":
                    category = dict(element.attrib)
                continue
            if tag == "event":
                targets = []
                counter = element.get("counter")
                if counter in by_type:
                    targets.append(by_type[counter])
                counter_set = category.get("counter_set")
                if counter_set in by_set and element.get("event") is not None:
                    try:
                        event = int(element.get("event"), 0)
                    except ValueError:
                        event = None
                    targets.extend(by_set[counter_set].get(event, []))
                for spec in targets:
                    attributes = dict(element.attrib)
                    attributes.setdefault("title", category.get("name", ""))
                    if "per_cpu" not in attributes and "per_cpu" in category:
                        attributes["per_cpu"] = category["per_cpu"]
                    spec.attributes = {**attributes, **spec.attributes}
                    spec.source = "events.xml" if spec.source == "none" else spec.source
                    matched += 1
            if tag in ("event", "category", "counter_set"):
                if tag == "category":
                    category = {}
                element.clear()
                parent = element.getparent()
                while parent is not None and element.getprevious() is not None:
                    del parent[0]
    except etree.XMLSyntaxError as error:
        raise _xml_error(error, shown) from None
    return matched


# ------------------------------------------------------------------------------------------------------------------
# data files


@dataclass
class _Chunk:
    stream_offset: int
    file: str
    file_offset: int


@dataclass
class _Stream:
    """One external connection's bytes, as concatenated from its External frames."""

    id: int
    number: int  # 1, 2, ... for a reused id
    parts: list = field(default_factory=list)
    chunks: list = field(default_factory=list)
    size: int = 0
    disconnected: bool = False

    def add(self, payload: bytes, file: str, file_offset: int) -> None:
        self.chunks.append(_Chunk(self.size, file, file_offset))
        self.parts.append(payload)
        self.size += len(payload)

    def where(self, offset: int) -> tuple[str, str]:
        """(file, "byte N") of a stream offset."""
        if not self.chunks:
            return "", ""
        i = max(0, bisect.bisect_right([c.stream_offset for c in self.chunks], offset) - 1)
        chunk = self.chunks[i]
        return chunk.file, f"byte {chunk.file_offset + offset - chunk.stream_offset}"


@dataclass
class _Decoded:
    summary: dict | None = None
    core_names: dict = field(default_factory=dict)
    skipped: Counter = field(default_factory=Counter)
    empty_external: int = 0
    streams: list = field(default_factory=list)
    counter_parts: list = field(default_factory=list)  # (t, core, key, value) int64 arrays
    untimed_values: int = 0
    notes: list = field(default_factory=list)
    records: int = 0


def _decode_data(files: list[tuple[str, Path]]) -> _Decoded:
    out = _Decoded()
    open_streams: dict[int, _Stream] = {}
    uses: Counter = Counter()
    last_time: dict[int, int] = {}
    for index, (shown, path) in enumerate(files):
        data = path.read_bytes()
        last_file = index == len(files) - 1
        size = len(data)
        pos = 0
        while pos < size:
            if size - pos < 4:
                _truncated(out, shown, pos, 4, size - pos, last_file, "length field")
                break
            length = int.from_bytes(data[pos : pos + 4], "little", signed=True)
            start, end = pos + 4, pos + 4 + length
            if length <= 0:
                raise InputError(f"record length {length}; expected a positive length", path=shown,
                                 place=f"byte {pos}")
            if end > size:
                if size > start:  # a garbage type says the length is garbage too, not an abrupt stop
                    try:
                        frame_type, _ = read_packed(data, start)
                    except (IndexError, ValueError):
                        frame_type = None
                    if frame_type is not None and frame_type not in KNOWN_FRAMES:
                        raise InputError(f"frame type {frame_type} in a record that runs past the end of the file;"
                                         " expected a known frame type (1-15)", path=shown, place=f"byte {pos}")
                _truncated(out, shown, pos, length, size - start, last_file, "record")
                break
            try:
                frame_type, at = read_packed(data, start)
            except (IndexError, ValueError):
                raise InputError("cannot read the frame type; expected a packed integer", path=shown,
                                 place=f"byte {start}") from None
            if frame_type not in KNOWN_FRAMES:
                raise InputError(f"frame type {frame_type}; expected a known frame type (1-15)", path=shown,
                                 place=f"byte {pos}")
            if frame_type == FRAME_EXTERNAL:
                _external(out, data, at, end, shown, pos, open_streams, uses)
            elif frame_type == FRAME_BLOCK_COUNTER:
                _block_counter(out, data, at, end, shown, pos, last_time)
            elif frame_type == FRAME_COUNTER:
                _counter(out, data, at, end, shown, pos)
            elif frame_type == FRAME_SUMMARY:
                _summary(out, data, at, end, shown, pos)
            else:
                out.skipped[frame_type] += 1  # skipped by its length, never decoded
            out.records += 1
            pos = end
    out.streams.extend(open_streams.values())
    out.streams.sort(key=lambda s: (s.chunks[0].file, s.chunks[0].file_offset) if s.chunks else ("", 0))
    if out.records == 0:
        raise InputError("no complete record could be read; expected [int32 length][frame] records",
                         path=files[0][0], place="byte 0")
    return out


def _truncated(out: _Decoded, shown: str, pos: int, wanted: int, left: int, last_file: bool, what: str) -> None:
    if not last_file:
        raise InputError(f"{what} of {wanted} bytes runs past the end of the file ({left} left) although more data "
                         "files follow; expected complete records", path=shown, place=f"byte {pos}")
    out.notes.append(f"{shown}: the last {what} (byte {pos}) needs {wanted} bytes but the file ends after {left}: "
                     f"the capture stopped abruptly? Those {left + (4 if what == 'record' else 0)} bytes were dropped")


def _external(out, data, at, end, shown, pos, open_streams, uses) -> None:
    if at >= end:
        out.empty_external += 1
        return
    try:
        ident, at = read_packed(data, at)
        if ident == -1:
            ident, at = read_packed(data, at)
            stream = open_streams.pop(ident, None)
            if stream is not None:
                stream.disconnected = True
                out.streams.append(stream)
            return
    except (IndexError, ValueError):
        raise InputError("External frame: cannot read the connection id; expected packed32 id", path=shown,
                         place=f"byte {pos}") from None
    if at > end:
        raise InputError("External frame: the connection id runs past the frame", path=shown, place=f"byte {pos}")
    stream = open_streams.get(ident)
    if stream is None:
        uses[ident] += 1
        stream = open_streams[ident] = _Stream(ident, uses[ident])
    if at < end:
        stream.add(data[at:end], shown, at)


def _values(data, at, end, shown, pos, what) -> np.ndarray:
    try:
        return unpack_all(memoryview(data)[at:end])
    except ValueError as error:
        raise InputError(f"{what} frame: {error}; expected packed integers only", path=shown,
                         place=f"byte {pos}") from None


def _block_counter(out: _Decoded, data, at, end, shown, pos, last_time: dict) -> None:
    values = _values(data, at, end, shown, pos, "Block counter")
    if values.size == 0:
        raise InputError("Block counter frame has no core; expected packed32 core then (key, value) pairs",
                         path=shown, place=f"byte {pos}")
    frame_core = int(values[0])
    pairs = values[1:]
    if pairs.size % 2:
        raise InputError("Block counter frame holds an odd number of packed integers; expected (key, value) pairs",
                         path=shown, place=f"byte {pos}")
    if pairs.size == 0:
        return
    keys, vals = pairs[0::2], pairs[1::2]
    index = np.arange(keys.size)
    time_at = np.maximum.accumulate(np.where(keys == 0, index, -1))
    core_at = np.maximum.accumulate(np.where(keys == 2, index, -1))
    counter = keys >= 3
    if (keys < 0).any():
        raise InputError(f"Block counter frame has key {int(keys[keys < 0][0])}; expected 0 (time), 1 (pid), "
                         "2 (core) or a counter key", path=shown, place=f"byte {pos}")
    previous = last_time.get(frame_core)
    times = np.where(time_at >= 0, vals[np.maximum(time_at, 0)], -1 if previous is None else previous)
    if (keys == 0).any():
        last_time[frame_core] = int(vals[np.flatnonzero(keys == 0)[-1]])
    timed = counter & ((time_at >= 0) | (previous is not None))
    out.untimed_values += int(counter.sum() - timed.sum())
    cores = np.where(core_at >= 0, vals[np.maximum(core_at, 0)], frame_core)
    out.counter_parts.append((times[timed], cores[timed], keys[timed], vals[timed]))


def _counter(out: _Decoded, data, at, end, shown, pos) -> None:
    values = _values(data, at, end, shown, pos, "Counter")
    if values.size % 4 == 1:  # frame header with a core (old gator.ko writes one on every frame)
        values = values[1:]
    if values.size % 4:
        raise InputError("Counter frame holds a number of packed integers that is not a multiple of 4; expected "
                         "(time, core, key, value) messages", path=shown, place=f"byte {pos}")
    messages = values.reshape(-1, 4)
    out.counter_parts.append((messages[:, 0], messages[:, 1], messages[:, 2], messages[:, 3]))


def _string(data, at, end) -> tuple[str, int]:
    length, at = read_packed(data, at)
    if length < 0 or at + length > end:
        raise IndexError
    return bytes(data[at : at + length]).decode("utf-8", errors="replace"), at + length


def _summary(out: _Decoded, data, at, end, shown, pos) -> None:
    try:
        # gatord up to about 5.2x wrote a core number on every frame: skip it when the canary follows it.
        if data[at] == 0 and data[at + 1 : at + 3 + len(CANARY)] == bytes([1, len(CANARY)]) + CANARY:
            at += 1
        while at < end:
            code, at = read_packed(data, at)
            if code == 1:
                canary, at = _string(data, at, end)
                if canary.encode() != CANARY:
                    raise InputError("the Summary's newline canary is altered (line endings converted?); expected "
                                     "the bytes 1\\n2\\r\\n3\\r4\\n\\r5", path=shown, place=f"byte {pos}")
                realtime, at = read_packed(data, at)
                uptime, at = read_packed(data, at)
                delta, at = read_packed(data, at)
                attributes = {}
                while True:
                    key, at = _string(data, at, end)
                    if not key:
                        break
                    attributes[key], at = _string(data, at, end)
                summary = {"realtime_ns": realtime, "uptime_ns": uptime, "monotonic_delta_ns": delta,
                           "attributes": attributes, "file": shown, "byte": pos}
                if out.summary is None:
                    out.summary = summary
                elif out.summary["monotonic_delta_ns"] != delta:
                    out.notes.append(f"{shown} byte {pos}: a second Summary with monotonic delta {delta} ns was "
                                     f"ignored; the first ({out.summary['monotonic_delta_ns']} ns) places the times")
            elif code == 3:
                core, at = read_packed(data, at)
                cpuid, at = read_packed(data, at)
                name, at = _string(data, at, end)
                out.core_names[core] = {"cpuid": cpuid, "name": name}
            else:
                out.notes.append(f"{shown} byte {pos}: Summary message {code} is not known; the rest of that frame "
                                 "was skipped")
                return
    except (IndexError, ValueError):
        raise InputError("Summary frame ends inside a message; expected packed integers and length-prefixed "
                         "strings", path=shown, place=f"byte {pos}") from None
    if at > end:
        raise InputError("Summary frame: a message runs past the frame", path=shown, place=f"byte {pos}")


# ------------------------------------------------------------------------------------------------------------------
# annotate protocol


@dataclass
class _Annotations:
    intervals: list = field(default_factory=list)  # (start_raw, end_raw, tid, channel, text)
    markers: list = field(default_factory=list)  # (raw, text)
    channel_names: dict = field(default_factory=dict)  # (tid, channel) -> (group, name)
    group_names: dict = field(default_factory=dict)  # (tid, group) -> name
    skipped: Counter = field(default_factory=Counter)
    notes: list = field(default_factory=list)


def _decode_streams(streams: list[_Stream], out: _Annotations) -> None:
    for stream in streams:
        data = b"".join(stream.parts)
        stream.parts = []
        label = f"external stream {stream.id}" + (f" (connection {stream.number})" if stream.number > 1 else "")
        handshake = ANNOTATE_HANDSHAKE.match(data)
        if handshake is None:
            shown = data[:16].decode("latin-1").encode("unicode_escape").decode()
            if data[:1] == b"\x1c":
                out.notes.append(f"{label}: {len(data)} bytes in the old /dev/gator/annotate record layout; skipped")
            else:
                out.notes.append(f"{label}: {len(data)} bytes that are not an annotate stream (begin {shown!r}); "
                                 "skipped")
            continue
        version = int(handshake.group(1))
        if version not in ANNOTATE_VERSIONS:
            out.notes.append(f"{label}: ANNOTATE {version} is not a known protocol version (3, 4, 5); its "
                             f"{len(data)} bytes were skipped")
            continue
        _decode_annotate(stream, data, handshake.end(), version, label, out)


def _decode_annotate(stream: _Stream, data: bytes, at: int, version: int, label: str, out: _Annotations) -> None:
    size = len(data)
    if size - at < 9:
        out.notes.append(f"{label}: ANNOTATE {version} stream ends inside its handshake; no annotations")
        return
    tid = int.from_bytes(data[at : at + 4], "little")
    at += 9  # tid, pid, dont_mangle_keys
    open_: dict[int, tuple[int, str]] = {}
    last = None
    strings = markers = bad_text = 0
    while at < size:
        if size - at < 5:
            out.notes.append(f"{label}: the stream ends inside a message header ({size - at} bytes dropped)")
            break
        kind = data[at]
        length = int.from_bytes(data[at + 1 : at + 5], "little")
        body, end = at + 5, at + 5 + length
        if end > size:
            out.notes.append(f"{label}: the stream ends inside a message of type 0x{kind:02x} "
                             f"({size - at} bytes dropped)")
            break
        if kind > MSG_MARKER_COLOUR or kind == MSG_VISUAL or kind == 0:
            out.skipped[kind] += 1
            if kind == MSG_VISUAL:
                try:
                    ts, _ = read_packed(data, body)
                    last = ts if last is None else max(last, ts)
                except (IndexError, ValueError):
                    pass
            at = end
            continue
        try:
            ts, i = read_packed(data, body)
            if kind in (MSG_STRING, MSG_STRING_COLOUR):
                channel, i = read_packed(data, i)
                i += 4 if kind == MSG_STRING_COLOUR else 0
            elif kind == MSG_NAME_CHANNEL:
                channel, i = read_packed(data, i)
                group, i = read_packed(data, i)
            elif kind == MSG_NAME_GROUP:
                group, i = read_packed(data, i)
            elif kind == MSG_MARKER_COLOUR:
                i += 4
            if i > end:
                raise IndexError
        except (IndexError, ValueError):
            file, place = stream.where(at)
            raise InputError(f"{label}, ANNOTATE message of type 0x{kind:02x} (stream offset {at}): its fields run "
                             f"past its body of {length} bytes; expected the layout of section 1", path=file,
                             place=place) from None
        raw = data[i:end]
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            text = raw.decode("utf-8", errors="replace")
            bad_text += 1
        last = ts if last is None else max(last, ts)
        if kind in (MSG_STRING, MSG_STRING_COLOUR):
            strings += 1
            current = open_.pop(channel, None)
            if current is not None:
                out.intervals.append((current[0], ts, tid, channel, current[1]))
            if text:
                open_[channel] = (ts, text)
        elif kind in (MSG_MARKER, MSG_MARKER_COLOUR):
            markers += 1
            out.markers.append((ts, text))
        elif kind == MSG_NAME_CHANNEL:
            out.channel_names[(tid, channel)] = (group, text)
        elif kind == MSG_NAME_GROUP:
            out.group_names[(tid, group)] = text
        at = end
    for channel, (start, text) in sorted(open_.items()):
        out.intervals.append((start, last, tid, channel, text))
        out.notes.append(f"{label}: the annotation {text!r} on channel {channel} was still open when the stream "
                         f"ended; closed at the stream's last timestamp ({last} ns CLOCK_MONOTONIC_RAW)")
    if bad_text:
        out.notes.append(f"{label}: {bad_text} texts were not valid UTF-8 (bad bytes replaced)")
    ending = "" if stream.disconnected else "; no disconnect frame (the capture ended while it was connected)"
    out.notes.append(f"{label}: ANNOTATE {version} from tid {tid}, {strings} channel strings, {markers} "
                     f"markers{ending}")


# ------------------------------------------------------------------------------------------------------------------
# assembly


def _read_folder(folder: Path, shown_as: Path) -> SourceData:
    captured = folder / "captured.xml"
    if not captured.is_file():
        raise InputError("not a Streamline capture: captured.xml is missing; expected a *.apc folder",
                         path=str(shown_as))
    data_names = sorted(p.name for p in folder.iterdir() if DATA_FILE.fullmatch(p.name) and p.is_file())
    if not data_names:
        raise InputError("no data file; expected 0000000000 (and following ten-digit files) beside captured.xml",
                         path=str(shown_as))
    for number, name in enumerate(data_names):
        if int(name) != number:
            raise InputError(f"data file {number:010d} is missing ({name} is there); expected files numbered "
                             "from 0000000000 without gaps", path=str(shown_as))
    digest = hashlib.sha256()
    members = [n for n in XML_FILES if (folder / n).is_file()] + data_names
    for name in sorted(members):
        digest.update(name.encode() + b"\0")
        with open(folder / name, "rb") as stream:
            while chunk := stream.read(1 << 20):
                digest.update(chunk)

    notes: list[str] = []
    info, specs = _read_captured(captured, _display(shown_as, "captured.xml"))
    session = {}
    if (folder / "session.xml").is_file():
        session = _read_session(folder / "session.xml", _display(shown_as, "session.xml"))
    if (folder / "events.xml").is_file():
        _read_events(folder / "events.xml", _display(shown_as, "events.xml"), specs)
    else:
        notes.append("events.xml is absent: counters have no titles, names or units beyond captured.xml's")
    if (folder / "counters.xml").is_file():
        listed = _read_counters_xml(folder / "counters.xml", _display(shown_as, "counters.xml"))
        for spec in specs.values():
            extra = {k: v for k, v in listed.get(spec.type, {}).items() if k != "name"}  # name= is the type
            if extra and spec.source == "none" and ("title" in extra or "units" in extra):
                spec.source = "counters.xml"
            spec.attributes = {**extra, **spec.attributes}

    decoded = _decode_data([(_display(shown_as, n), folder / n) for n in data_names])
    if decoded.summary is None:
        raise InputError("no Summary frame (type 1); expected it first in 0000000000",
                         path=_display(shown_as, data_names[0]), place="byte 0")
    notes.extend(decoded.notes)
    delta = decoded.summary["monotonic_delta_ns"]

    annotations = _Annotations()
    _decode_streams(decoded.streams, annotations)
    notes.extend(annotations.notes)
    for kind, count in sorted(annotations.skipped.items()):
        what = SKIPPED_MESSAGES.get(kind, "custom activity maps" if 0x0B <= kind <= 0x10 else "unknown type")
        notes.append(f"skipped {count} annotate messages of type 0x{kind:02x} ({what})")
    for frame_type, count in sorted(decoded.skipped.items()):
        notes.append(f"skipped {count} frames of type {frame_type} ({SKIPPED_FRAMES[frame_type]})")
    if decoded.empty_external:
        notes.append(f"{decoded.empty_external} External frames (type 10) were empty")
    if decoded.untimed_values:
        notes.append(f"dropped {decoded.untimed_values} block counter values that came before any timestamp")

    annotation_frame = _annotation_table(annotations, delta)
    marker_frame = pd.DataFrame({
        "t_ns": pd.array([t - delta for t, _ in annotations.markers], dtype="int64"),
        "text": _text([text for _, text in annotations.markers]),
    }).sort_values("t_ns", kind="stable").reset_index(drop=True)
    counters, counter_info = _counter_tables(decoded, specs, notes)
    samples, rails = _power(counters, counter_info, session, notes)

    anchor = {
        "monotonic_raw_ns_at_zero": delta,
        "realtime_ns_at_zero": decoded.summary["realtime_ns"],
        "uptime_ns": decoded.summary["uptime_ns"],
        "summary": decoded.summary["attributes"],
    }
    if "target" in info:
        anchor["target"] = info["target"]
    if decoded.core_names:
        anchor["core_names"] = decoded.core_names
    return SourceData(
        kind=KIND,
        path=shown_as,
        content_sha256=digest.hexdigest(),
        time_base="capture",
        anchor=anchor,
        samples=samples,
        rails=rails,
        annotations=annotation_frame,
        markers=marker_frame,
        counters=counters,
        counter_info=counter_info,
        notes=notes,
    )


def _text(values) -> pd.Series:
    """A text column (pandas' str dtype; missing values are NaN)."""
    return pd.Series(values, dtype="str")


def _annotation_table(annotations: _Annotations, delta: int) -> pd.DataFrame:
    rows = annotations.intervals
    channel_names, group_names = [], []
    for _, _, tid, channel, _ in rows:
        group, name = annotations.channel_names.get((tid, channel), (None, None))
        channel_names.append(name)
        group_names.append(None if group is None else annotations.group_names.get((tid, group)))
    frame = pd.DataFrame({
        "t_start_ns": np.array([r[0] - delta for r in rows], dtype=np.int64),
        "t_end_ns": np.array([r[1] - delta for r in rows], dtype=np.int64),
        "tid": np.array([r[2] for r in rows], dtype=np.int64),
        "channel": np.array([r[3] for r in rows], dtype=np.int64),
        "channel_name": _text(channel_names),
        "group_name": _text(group_names),
        "text": _text([r[4] for r in rows]),
    })
    return frame.sort_values(["t_start_ns", "tid", "channel"], kind="stable").reset_index(drop=True)


def _multiplier(text: str | None) -> float:
    try:
        return float(text) if text not in (None, "") else 1.0
    except ValueError:
        return 1.0


def _counter_tables(decoded: _Decoded, specs: dict[int, _CounterSpec], notes: list[str]):
    parts = decoded.counter_parts
    if parts:
        times, cores, keys, values = (np.concatenate([p[i] for p in parts]) for i in range(4))
    else:
        times = cores = keys = values = np.zeros(0, dtype=np.int64)
    for key in sorted(set(np.unique(keys).tolist()) - set(specs)):
        specs[key] = _CounterSpec(key, f"key 0x{key:x}", None)
        notes.append(f"counter key 0x{key:x} has values but is not in captured.xml; named {specs[key].type!r}")
    ordered = sorted(specs.values(), key=lambda s: s.key)
    info = pd.DataFrame({
        "counter": _text([s.type for s in ordered]),
        "key": np.array([s.key for s in ordered], dtype=np.int64),
        "title": _text([s.attributes.get("title") for s in ordered]),
        "name": _text([s.attributes.get("name") for s in ordered]),
        "unit": _text([s.attributes.get("units") for s in ordered]),
        "multiplier": np.array([_multiplier(s.attributes.get("multiplier")) for s in ordered], dtype=np.float64),
        "counter_class": _text([s.attributes.get("class") for s in ordered]),
        "display": _text([s.attributes.get("display") for s in ordered]),
        # gator's default is per_cpu="no"; unknown (None) where no description of the counter was found
        "per_cpu": pd.array([None if s.source == "none" else s.attributes.get("per_cpu") == "yes" for s in ordered],
                            dtype="boolean"),
        "source": _text([s.source for s in ordered]),
    })
    unnamed = [s.type for s in ordered if s.source == "none" and not s.type.startswith("key ")]
    if unnamed:
        notes.append(f"no title, name or unit found for {len(unnamed)} counters: {', '.join(unnamed)}")
    lookup_keys = info["key"].to_numpy()
    position = np.searchsorted(lookup_keys, keys)
    multipliers = info["multiplier"].to_numpy()[position] if keys.size else np.zeros(0)
    core = pd.array(cores, dtype="Int64")
    if keys.size:  # a core means nothing for a counter that is not per CPU (memory, disk, power, ...)
        system_wide = set(info.loc[info["per_cpu"].eq(False).fillna(False), "key"].tolist())
        for key in sorted(system_wide & set(np.unique(keys).tolist())):
            rows = keys == key
            if np.unique(cores[rows]).size == 1:
                core[rows] = pd.NA
            else:
                notes.append(f"counter {specs[key].type!r} is not per CPU (events.xml) but has values from several "
                             "cores; their cores are kept")
    counters = pd.DataFrame({
        "t_ns": times.astype(np.int64),
        "counter": _text(info["counter"].to_numpy()[position] if keys.size else []),
        "core": core,
        "value": values.astype(np.float64) * multipliers,
    }).sort_values(["t_ns", "counter", "core"], kind="stable").reset_index(drop=True)
    if keys.size:
        applied = info[(info["multiplier"] != 1.0) & info["key"].isin(np.unique(keys))]["counter"].tolist()
        notes.append(f"{len(counters)} counter values of {len(np.unique(keys))} counters"
                     + (f"; multiplier applied to {', '.join(applied)}" if applied else ""))
    return counters, info


def _power(counters: pd.DataFrame, info: pd.DataFrame, session: dict, notes: list[str]):
    energy = session.get("energy_capture", {}).get("type")
    power = info[info["unit"].isin(list(POWER_UNITS)) & info["counter"].isin(counters["counter"].unique())]
    if power.empty:
        if energy and energy != "none":
            notes.append(f"session.xml asks for energy capture ({energy}) but no power counters (units W, mW or uW) "
                         "are in the capture (caiman's own data files are not read): no power samples")
        else:
            notes.append("no power counters (units W, mW or uW) in the capture: no power samples")
        return None, []
    names = [n or c for n, c in zip(power["name"], power["counter"], strict=True)]
    labels = [
        name if names.count(name) == 1 else f"{title}: {name}" if title else f"{name} ({counter})"
        for name, title, counter in zip(names, power["title"], power["counter"], strict=True)
    ]
    frames, rails = [], []
    for (_, row), label in zip(power.iterrows(), labels, strict=True):
        rows = counters[counters["counter"] == row["counter"]]
        per_core = rows["core"].nunique(dropna=True) > 1
        for core, group in rows.groupby("core", dropna=False, sort=True) if per_core else [(None, rows)]:
            rail = label if core is None else f"{label} core {core}"
            group = group.sort_values("t_ns", kind="stable")
            duplicated = group["t_ns"].duplicated(keep="last")
            if duplicated.any():
                notes.append(f"rail {rail!r}: {int(duplicated.sum())} values at an already seen time dropped "
                             "(the last one kept)")
                group = group[~duplicated]
            frames.append(pd.DataFrame({
                "t_ns": group["t_ns"].to_numpy(np.int64),
                "rail": rail,
                "power_mw": group["value"].to_numpy(np.float64) * POWER_UNITS[row["unit"]],
                "voltage_mv": np.nan,
                "current_ma": np.nan,
            }))
            rails.append(RailInfo(name=rail, unit="mW"))
    notes.append(f"power samples from {len(rails)} counters with power units: "
                 + ", ".join(f"{r.name}" for r in rails))
    return pd.concat(frames, ignore_index=True), rails
