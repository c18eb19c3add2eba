"""Ways to break a good input file, for the fuzz tests (hypothesis strategies) and the committed corpus
(make_corpus.py): truncation, bytes deleted, inserted or flipped, lines reordered, duplicated or dropped, numbers
replaced by odd ones, and the whole file re-encoded (latin-1, UTF-16 with and without a BOM, a UTF-8 BOM) or
sprinkled with NUL bytes."""

from __future__ import annotations

import codecs

from hypothesis import strategies as st

# Bytes that matter to text tables and logs: delimiters, quotes, line ends, signs, digits, exponents, units.
NASTY_BYTES = b",;\t\n\r\"' 0123456789.-+eE/:[]()#%\x00\xff\xfe\xef\xbb\xbf\xb0\xb5mWVsnu"
NASTY_TOKENS = [b"nan", b"NaN", b"inf", b"-inf", b"1e308", b"1e400", b"-0", b"99999999999999999999999",
                b"0x1F", b"", b"\"", b"\"\"", b",,,", b"\t", b"\r", b"\r\n", b"\xc3\x28", b"\xef\xbb\xbf",
                b"-9223372036854775808", b"9223372036854775807", b"1.5e-3", b"12:34:56", b"\xb0C", b"\xb5s"]


ENCODINGS = ["utf-16", "utf-16-le", "utf-16-be", "latin-1", "utf-8-sig"]


def reencode(data: bytes, encoding: str) -> bytes:
    """The text re-encoded: 'utf-16' (with a BOM), 'utf-16-le' / 'utf-16-be' (without), 'latin-1' (characters it
    lacks replaced), 'utf-8-sig' (a UTF-8 BOM added)."""
    text = data.decode("utf-8", errors="replace")
    if encoding == "utf-8-sig":
        return codecs.BOM_UTF8 + data
    return text.encode(encoding, errors="replace")


def _lines(data: bytes) -> list[bytes]:
    return data.split(b"\n")


def apply(data: bytes, operation: tuple) -> bytes:
    """One mutation: (name, arguments...). Positions are fractions of the length (0..1), so that one operation
    fits any file."""
    name, *args = operation
    at = int(args[0] * len(data)) if args and isinstance(args[0], float) else 0
    if name == "truncate":
        return data[:at]
    if name == "delete":
        return data[:at] + data[at + args[1]:]
    if name == "insert":
        return data[:at] + args[1] + data[at:]
    if name == "flip":
        if not data:
            return data
        at = min(at, len(data) - 1)
        return data[:at] + bytes([data[at] ^ args[1]]) + data[at + 1:]
    if name == "token":  # replace the number-ish run at `at` by an odd token
        end = at
        while end < len(data) and data[end:end + 1] not in (b",", b"\n", b" ", b"\t", b";", b"/"):
            end += 1
        return data[:at] + args[1] + data[end:]
    if name == "crlf":
        return data.replace(b"\n", b"\r\n")
    if name == "encode":
        return reencode(data, args[1])
    if name == "nul":
        return data.replace(b"\n", b"\x00\n", args[0])
    lines = _lines(data)
    i = int(args[0] * len(lines)) % max(len(lines), 1) if args else 0
    if name == "drop-line":
        return b"\n".join(lines[:i] + lines[i + 1:])
    if name == "repeat-line":
        return b"\n".join(lines[:i + 1] + lines[i:])
    if name == "swap-lines":
        j = int(args[1] * len(lines)) % max(len(lines), 1)
        lines[i], lines[j] = lines[j], lines[i]
        return b"\n".join(lines)
    if name == "reverse-lines":
        return b"\n".join(reversed(lines))
    raise ValueError(name)


fraction = st.floats(0, 1, allow_nan=False)
OPERATIONS = st.one_of(
    st.tuples(st.just("truncate"), fraction),
    st.tuples(st.just("delete"), fraction, st.integers(1, 40)),
    st.tuples(st.just("insert"), fraction, st.binary(min_size=1, max_size=12).map(bytes) | st.lists(
        st.sampled_from(list(NASTY_BYTES)), min_size=1, max_size=12).map(bytes)),
    st.tuples(st.just("flip"), fraction, st.integers(1, 255)),
    st.tuples(st.just("token"), fraction, st.sampled_from(NASTY_TOKENS)),
    st.tuples(st.just("drop-line"), fraction),
    st.tuples(st.just("repeat-line"), fraction),
    st.tuples(st.just("swap-lines"), fraction, fraction),
    st.tuples(st.just("reverse-lines")),
    st.tuples(st.just("crlf")),
    st.tuples(st.just("encode"), st.just(0), st.sampled_from(ENCODINGS)),
    st.tuples(st.just("nul"), st.integers(1, 3)),
)


class Seeds(list):
    """Seed files, shown briefly in hypothesis' reports."""

    def __repr__(self) -> str:
        return f"<{len(self)} seed files>"


@st.composite
def mutated(draw, seeds: list[bytes]) -> bytes:
    """One of the seeds with one to four mutations."""
    data = draw(st.sampled_from(Seeds(seeds)))
    for operation in draw(st.lists(OPERATIONS, min_size=1, max_size=4)):
        data = apply(data, operation)
    return data
