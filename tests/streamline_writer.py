"""TEST-ONLY writer of Arm Streamline capture folders (``*.apc``), for tests and sample captures.

It follows the published layout described in the shared streamline-formats notes (sections 1, 2 and 2b), with its
own encoder (nothing from importer/): captured.xml, session.xml, events.xml and counters.xml, and binary data files
of ``[int32 LE length][frame]`` records holding

- a Summary frame (type 1: newline canary, realtime, uptime, monotonic delta, key/value strings);
- a perf-attributes frame (type 11) and perf-data frames (type 12) of made-up bytes: the real layout is UNKNOWN,
  they are there to be skipped by their length;
- Counter frames (type 4: time, core, key, value) and Block counter frames (type 5: core, then (key, value) pairs
  with key 0 = time, 1 = pid, 2 = core);
- External frames (type 10: packed32 connection id + raw bytes) carrying one annotate-protocol connection per thread
  (``ANNOTATE N\\n`` + tid, pid, dont_mangle_keys, then ``uint8 type | uint32 LE length | body`` messages), cut into
  small pieces that split messages anywhere, as gatord forwards them, ending with the disconnect frame
  (packed32 -1, packed32 id) and one empty External frame as gatord writes at the end.

It is NOT gatord: it writes what the notes document and what the real gatord 6.7 capture in
tests/fixtures/real-gatord-capture showed, nothing more. Use it to make captures with known contents:

    write_capture(folder, monotonic_delta_ns=..., realtime_ns=...,
                  annotations=[(t_raw_ns, tid, channel, text[, colour])],   # text "" ends the channel's annotation
                  group_names={0: "inference"}, channel_names={1: (0, "layers")},
                  markers=[(t_raw_ns, text[, colour])],
                  counters=[CounterSpec("Linux_meminfo_memfree", "Memory", "Free", units="B",
                                        values=[(t_ns, core, raw_value)])],
                  power=[(t_ns, rail, power_mw)], zip=False, annotate_version=5)

Times: annotation and marker times are absolute CLOCK_MONOTONIC_RAW nanoseconds (as the annotate protocol sends
them); counter and power times are nanoseconds since the capture started (as gatord writes frame times). A reader
places annotation times on the capture's axis by subtracting ``monotonic_delta_ns``.
"""

from __future__ import annotations

import random
import struct
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import quoteattr

CANARY = b"1\n2\r\n3\r4\n\r5"
DEFAULT_TID = 4242
DEFAULT_PID = 4242
FIRST_EXTERNAL_ID = 6  # gatord uses the connection's file descriptor; the real capture had 6


def leb128(value: int) -> bytes:
    """Signed LEB128 (gator's packed32/packed64): 7 bits a byte, low group first, 0x80 = more, sign in 0x40."""
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if (value == 0 and not byte & 0x40) or (value == -1 and byte & 0x40):
            out.append(byte)
            return bytes(out)
        out.append(byte | 0x80)


def packed_string(text: str) -> bytes:
    raw = text.encode("utf-8")
    return leb128(len(raw)) + raw


def colour_bytes(colour: int) -> bytes:
    """0xRRGGBB -> RR GG BB 1b (a template byte of 5 or more means "use the RGB")."""
    return bytes(((colour >> 16) & 0xFF, (colour >> 8) & 0xFF, colour & 0xFF, 0x1B))


@dataclass
class CounterSpec:
    """One counter of the capture and its values.

    type: captured.xml's counter type; for a PMU-style counter (``event`` set) the type is ``<counter_set><n>`` and
    events.xml describes it by ``<category counter_set=...><event event=...>``, otherwise by
    ``<event counter=type>``. values: (t_ns since capture start, core, raw integer value as sent).
    frame: "block" writes Block counter frames (type 5), "counter" Counter frames (type 4).
    """

    type: str
    title: str
    name: str
    units: str = ""
    multiplier: float | None = None
    event: int | None = None
    per_cpu: bool = False
    values: Sequence[tuple[int, int, int]] = ()
    frame: str = "block"
    description: str = ""
    key: int | None = None  # captured.xml key; assigned from 0x3 on when None


@dataclass
class _Message:
    ts: int
    order: int
    body: bytes


@dataclass
class _Connection:
    tid: int
    messages: list = field(default_factory=list)


def annotate_message(kind: int, body: bytes) -> bytes:
    """One annotate-protocol message: uint8 type | uint32 LE body length | body."""
    return struct.pack("<BI", kind, len(body)) + body


def frame(frame_type: int, payload: bytes) -> bytes:
    """One data-file record: int32 LE length, then packed32 frame type and the payload."""
    frame = leb128(frame_type) + payload
    return struct.pack("<i", len(frame)) + frame


def _annotate_messages(connection: _Connection, version: int, extras: bool) -> bytes:
    stream = bytearray()
    for message in sorted(connection.messages, key=lambda m: (m.ts, m.order)):
        stream += message.body
    if extras and connection.messages:
        ts = max(m.ts for m in connection.messages)
        # a counter definition (0x08), one counter value (0x09) and a visual (0x05): to be counted and skipped
        definition = b"".join(leb128(v) for v in (7, 0, 2, 1, 0, 0, 0, 0, 0, 0, 0, 0)) + colour_bytes(0x336699)
        definition += b"layerjoule\0queue\0items\0items waiting"
        value = leb128(ts) + leb128(0) + leb128(7) + leb128(3)  # packed32 (v4) and packed64 (v5) agree for 3
        visual = leb128(ts) + b"picture\0" + bytes(range(16))
        stream += annotate_message(0x08, definition) + annotate_message(0x09, value) + annotate_message(0x05, visual)
    return bytes(stream)


def _connections(annotations, group_names, channel_names, markers, tid: int) -> list[_Connection]:
    by_tid: dict[int, _Connection] = {}
    order = 0
    for item in annotations:
        t_raw, thread, channel, text = item[:4]
        colour = item[4] if len(item) > 4 else None
        connection = by_tid.setdefault(thread, _Connection(thread))
        if colour is None:
            body = leb128(t_raw) + leb128(channel) + text.encode("utf-8")
            connection.messages.append(_Message(t_raw, order, annotate_message(0x01, body)))
        else:
            body = leb128(t_raw) + leb128(channel) + colour_bytes(colour) + text.encode("utf-8")
            connection.messages.append(_Message(t_raw, order, annotate_message(0x02, body)))
        order += 1
    for item in markers:
        t_raw, text = item[:2]
        colour = item[2] if len(item) > 2 else None
        connection = by_tid.setdefault(tid, _Connection(tid))
        if colour is None:
            connection.messages.append(_Message(t_raw, order, annotate_message(0x06, leb128(t_raw) + text.encode())))
        else:
            body = leb128(t_raw) + colour_bytes(colour) + text.encode("utf-8")
            connection.messages.append(_Message(t_raw, order, annotate_message(0x07, body)))
        order += 1
    for connection in by_tid.values():
        first = min(m.ts for m in connection.messages)
        names = []
        for group, name in (group_names or {}).items():
            names.append(annotate_message(0x04, leb128(first) + leb128(group) + name.encode("utf-8")))
        for channel, (group, name) in (channel_names or {}).items():
            names.append(annotate_message(0x03, leb128(first) + leb128(channel) + leb128(group) + name.encode("utf-8")))
        # names go first, before anything at the same time (order -1000...)
        for i, body in enumerate(names):
            connection.messages.append(_Message(first, -1000 + i, body))
    return list(by_tid.values())


def summary_frame(realtime_ns: int, uptime_ns: int, delta_ns: int, attributes: dict) -> bytes:
    """The Summary record: message 1, canary, realtime, uptime, monotonic delta, key/value strings, empty key."""
    payload = leb128(1) + leb128(len(CANARY)) + CANARY + leb128(realtime_ns) + leb128(uptime_ns) + leb128(delta_ns)
    for key, value in attributes.items():
        payload += packed_string(key) + packed_string(value)
    payload += packed_string("")
    return frame(1, payload)


def _perf_frame(frame_type: int, rng: random.Random, size: int) -> bytes:
    """Made-up bytes in a perf frame: any byte values, including ones that look like frame types or lengths."""
    return frame(frame_type, leb128(rng.randrange(2)) + bytes(rng.randrange(256) for _ in range(size)))


def _block_frames(specs: list[CounterSpec], pid: int) -> list[bytes]:
    by_time: dict[int, list[tuple[int, int, int]]] = {}
    for spec in specs:
        if spec.frame != "block":
            continue
        for t_ns, core, value in spec.values:
            by_time.setdefault(t_ns, []).append((core, spec.key, value))
    frames = []
    for t_ns in sorted(by_time):
        payload = bytearray(leb128(0))  # frame core
        payload += leb128(0) + leb128(t_ns) + leb128(1) + leb128(pid)
        core_now = 0
        for core, key, value in by_time[t_ns]:
            if core != core_now:
                payload += leb128(2) + leb128(core)
                core_now = core
            payload += leb128(key) + leb128(value)
        frames.append(frame(5, bytes(payload)))
    return frames


def _counter_frames(specs: list[CounterSpec]) -> list[bytes]:
    frames = []
    for spec in specs:
        if spec.frame != "counter":
            continue
        for t_ns, core, value in spec.values:
            frames.append(frame(4, leb128(t_ns) + leb128(core) + leb128(spec.key) + leb128(value)))
    return frames


def _captured_xml(specs: list[CounterSpec], created: int, cores: int) -> str:
    lines = [
        '<?xml version="1.0" encoding="utf-8"?>',
        f'<captured version="1" backtrace_processing="none" type="Perf" protocol="670" created="{created}">',
        f'  <target name="layerjoule-test" sample_rate="1000" cores="{cores}" cpuid="0xd07" supports_live="yes" '
        'local_capture="yes" />',
        "  <counters>",
    ]
    for spec in specs:
        event = f' event="0x{spec.event:x}"' if spec.event is not None else ""
        lines.append(f'    <counter key="0x{spec.key:x}" type={quoteattr(spec.type)}{event} />')
    lines += ["  </counters>", "</captured>", ""]
    return "\n".join(lines)


def _event_attributes(spec: CounterSpec) -> str:
    text = f"title={quoteattr(spec.title)} name={quoteattr(spec.name)}"
    if spec.units:
        text += f" units={quoteattr(spec.units)}"
    if spec.multiplier is not None:
        text += f' multiplier="{spec.multiplier!r}"'
    if spec.per_cpu:
        text += ' per_cpu="yes"'
    return text + f" description={quoteattr(spec.description or spec.name)}"


def _events_xml(specs: list[CounterSpec], padding: int) -> str:
    lines = ['<?xml version="1.0" encoding="UTF-8"?> ', "<events> "]
    for i in range(padding):  # unrelated entries, as the real events.xml has thousands
        lines.append(f'<counter_set name="Filler_{i}_cnt" count="6" /> ')
        lines.append(f'<category name="Filler {i}" counter_set="Filler_{i}_cnt" per_cpu="yes"> ')
        for event in range(8):
            lines.append(f'<event event="0x{event:02x}" title="Filler" name="Event {event}" '
                         f'description="unrelated event {event}" /> ')
        lines.append("</category> ")
    sets: dict[str, list[CounterSpec]] = {}
    plain = []
    for spec in specs:
        if spec.event is None:
            plain.append(spec)
        else:
            sets.setdefault(spec.type.rstrip("0123456789"), []).append(spec)
    for counter_set, members in sets.items():
        lines.append(f'<counter_set name={quoteattr(counter_set)} count="6" /> ')
        lines.append(f'<category name={quoteattr(members[0].title)} counter_set={quoteattr(counter_set)} '
                     'per_cpu="yes"> ')
        for spec in members:
            lines.append(f'<event event="0x{spec.event:x}" {_event_attributes(spec)} /> ')
        lines.append("</category> ")
    if plain:
        lines.append('<category name="layerjoule test"> ')
        for spec in plain:
            lines.append(f"<event counter={quoteattr(spec.type)} {_event_attributes(spec)} /> ")
        lines.append("</category> ")
    lines += ["</events>", ""]
    return "\n".join(lines)


def _session_xml(sample_rate: int, energy: list[str]) -> str:
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<session version="1" title="layerjoule test" sample_rate="{sample_rate}" buffer_mode="streaming" '
        'call_stack_unwinding="no" duration="3">',
    ]
    if energy:
        lines.append('  <energy_capture type="energy_probe">')
        for i, rail in enumerate(energy):
            lines.append(f'    <channel id="{i}" resistance="20" power="yes" voltage="yes" current="no" '
                         f'name={quoteattr(rail)} />')
        lines.append("  </energy_capture>")
    else:
        lines.append('  <energy_capture type="none" />')
    lines += ["</session>", ""]
    return "\n".join(lines)


def _counters_xml(specs: list[CounterSpec]) -> str:
    lines = ['<?xml version="1.0" encoding="utf-8"?>', "  <counters>"]
    lines += [f"    <counter name={quoteattr(spec.type)} />" for spec in specs]
    lines += ["  </counters>", ""]
    return "\n".join(lines)


def write_capture(
    folder: str | Path,
    *,
    monotonic_delta_ns: int,
    realtime_ns: int,
    uptime_ns: int | None = None,
    annotations: Sequence[tuple] = (),
    group_names: dict[int, str] | None = None,
    channel_names: dict[int, tuple[int, str]] | None = None,
    markers: Sequence[tuple] = (),
    counters: Sequence[CounterSpec] = (),
    power: Sequence[tuple[int, str, float]] = (),
    tid: int = DEFAULT_TID,
    pid: int = DEFAULT_PID,
    annotate_version: int = 5,
    chunk_size: int = 7,
    perf_frames: bool = True,
    annotate_extras: bool = True,
    disconnect: bool = True,
    data_files: int = 1,
    events_xml: bool = True,
    events_padding: int = 20,
    summary_attributes: dict[str, str] | None = None,
    zip: bool = False,
    zip_layout: str = "folder",
    seed: int = 1,
) -> Path:
    """Write a capture folder and return its path (or, with ``zip=True``, the path of ``<folder>.zip``).

    annotations: (t_raw_ns, tid, channel, text[, colour 0xRRGGBB]); text "" ends the channel's annotation. One
    annotate connection per tid. markers: (t_raw_ns, text[, colour]), sent on the connection of ``tid``.
    group_names {group: name} and channel_names {channel: (group, name)} are sent first on every connection.
    power: (t_ns since capture start, rail, milliwatts) become counters titled "Power" with units "W", multiplier
    0.001 and integer milliwatt values, and an energy_capture section in session.xml.
    zip_layout: "folder" (members in one top folder named like the capture) or "root".
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    specs = list(counters)
    rails = []
    for rail in dict.fromkeys(r for _, r, _ in power):
        rails.append(rail)
        values = [(t, 0, int(round(mw))) for t, r, mw in power if r == rail]
        specs.append(CounterSpec(f"layerjoule_power_{len(rails) - 1}", "Power", rail, units="W", multiplier=0.001,
                                 values=values, description=f"{rail} power"))
    next_key = 0x3
    used = {s.key for s in specs if s.key is not None}
    for spec in specs:
        if spec.key is None:
            while next_key in used:
                next_key += 1
            spec.key = next_key
            used.add(next_key)
    cores = 1 + max((core for s in specs for _, core, _ in s.values), default=0)

    (folder / "captured.xml").write_text(_captured_xml(specs, realtime_ns // 10**9, max(cores, 2)), "utf-8")
    (folder / "session.xml").write_text(_session_xml(1000, rails), "utf-8")
    if events_xml:
        (folder / "events.xml").write_text(_events_xml(specs, events_padding), "utf-8")
    (folder / "counters.xml").write_text(_counters_xml(specs), "utf-8")

    attributes = {"uname": "Linux layerjoule-test 4.9.140-tegra aarch64", "PAGESIZE": "4096"}
    attributes.update(summary_attributes or {})
    records = [summary_frame(realtime_ns, monotonic_delta_ns if uptime_ns is None else uptime_ns,
                              monotonic_delta_ns, attributes)]
    if perf_frames:
        records.append(_perf_frame(11, rng, 200))
    records += _counter_frames(specs)

    connections = _connections(annotations, group_names, channel_names, markers, tid)
    pieces: list[list[bytes]] = []
    for index, connection in enumerate(connections):
        ident = FIRST_EXTERNAL_ID + index
        stream = (f"ANNOTATE {annotate_version}\n".encode() + struct.pack("<IIB", connection.tid, pid, 0)
                  + _annotate_messages(connection, annotate_version, annotate_extras))
        chunks = [stream[i : i + chunk_size] for i in range(0, len(stream), chunk_size)]
        frames = [frame(10, leb128(ident) + chunk) for chunk in chunks]
        if disconnect:
            frames.append(frame(10, leb128(-1) + leb128(ident)))
        pieces.append(frames)
    # interleave the connections' frames, with a perf frame now and then, as gatord's buffers mix them
    step = 0
    while any(pieces):
        for frames in pieces:
            if frames:
                records.append(frames.pop(0))
                step += 1
                if perf_frames and step % 5 == 0:
                    records.append(_perf_frame(12, rng, rng.randrange(8, 120)))
    if pieces:
        records.append(frame(10, b""))  # gatord ends with an empty External frame
    records += _block_frames(specs, pid)

    for old in folder.iterdir():
        if old.name.isdigit() and len(old.name) == 10:
            old.unlink()
    per_file = -(-len(records) // max(1, data_files))
    for number in range(max(1, data_files)):
        part = records[number * per_file : (number + 1) * per_file]
        (folder / f"{number:010d}").write_bytes(b"".join(part))

    if not zip:
        return folder
    target = folder.parent / (folder.name + ".zip")
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        if zip_layout == "folder":
            archive.writestr(f"{folder.name}/", b"")
        for member in sorted(folder.iterdir()):
            name = f"{folder.name}/{member.name}" if zip_layout == "folder" else member.name
            archive.write(member, name)
    return target
