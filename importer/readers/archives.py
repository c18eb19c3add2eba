"""Reading zip archives and gzip files safely (docs/limits.md): the limits of importer/limits.py on member count,
unpacked size and compression ratio; no member whose path escapes the archive's folder (absolute, a drive, `..`),
no links. Members are copied out under fixed names chosen by the reader, never under the names the archive gives.
"""

from __future__ import annotations

import gzip
import re
import stat
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path

from importer import limits
from importer.errors import InputError

CHUNK = 1 << 20


def unsafe_name(name: str) -> bool:
    """A member name that would land outside the extraction folder, or that no file system would take."""
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name) or "\0" in name:
        return True
    return any(part == ".." for part in re.split(r"[/\\]", name))


def is_link(info: zipfile.ZipInfo) -> bool:
    """A symbolic link stored by a Unix zip tool (its mode in the high bits of external_attr)."""
    return info.create_system == 3 and stat.S_ISLNK(info.external_attr >> 16)


def checked_infos(archive: zipfile.ZipFile, shown: str) -> list[zipfile.ZipInfo]:
    """The archive's members, after refusing too many members, escaping paths and links."""
    infos = archive.infolist()
    most = limits.ARCHIVE_MEMBERS.get()
    if len(infos) > most:
        raise InputError(f"holds {len(infos):,} members; expected at most {most:,} ({limits.ARCHIVE_MEMBERS.env} "
                         "raises the limit)", path=shown)
    for info in infos:
        if unsafe_name(info.filename):
            raise InputError(f"member {info.filename!r} points outside the archive's folder; expected relative paths "
                             "inside it (nothing was extracted)", path=shown)
        if is_link(info):
            raise InputError(f"member {info.filename!r} is a symbolic link; expected plain files (nothing was "
                             "extracted)", path=shown)
    return infos


def extract(archive: zipfile.ZipFile, infos: list[tuple[zipfile.ZipInfo, Path]], shown: str) -> None:
    """Copy each (member, target file) out, counting the bytes actually unpacked against the limits: the sizes a
    zip declares are checked first, the real ones as they come."""
    declared = sum(info.file_size for info, _ in infos)
    limits.check_total(declared, shown)
    for info, _ in infos:
        limits.check_ratio(info.file_size, info.compress_size, shown, place=f"member {info.filename}")
    total = 0
    try:
        for info, target in infos:
            written = 0
            with archive.open(info) as source, open(target, "wb") as out:
                while chunk := source.read(CHUNK):
                    written += len(chunk)
                    total += len(chunk)
                    limits.check_total(total, shown)
                    limits.check_ratio(written, info.compress_size, shown, place=f"member {info.filename}")
                    out.write(chunk)
    except zipfile.BadZipFile as error:
        raise InputError(f"damaged zip archive ({error})", path=shown) from None
    except (zipfile.LargeZipFile, NotImplementedError, RuntimeError, EOFError, zlib.error, OSError) as error:
        raise InputError(f"cannot extract ({error}); expected a plain zip archive", path=shown) from None


def open_zip(path: Path, what: str) -> zipfile.ZipFile:
    """Open a zip archive; anything that is not one (or a damaged one) is an InputError."""
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as error:
        raise InputError(f"damaged or not a zip archive ({error}); expected {what}", path=str(path)) from None


def gzip_chunks(path: Path, shown: str) -> Iterator[bytes]:
    """The decompressed bytes of a gzip file in chunks, within the limits; a damaged or cut stream is an error."""
    packed = path.stat().st_size
    total = 0
    try:
        with gzip.open(path, "rb") as stream:
            while chunk := stream.read(CHUNK):
                total += len(chunk)
                limits.check_total(total, shown)
                limits.check_ratio(total, packed, shown)
                yield chunk
    except (EOFError, OSError, zlib.error) as error:
        raise InputError(f"cannot be read completely ({error}); expected a complete gzip stream",
                         path=shown) from None
