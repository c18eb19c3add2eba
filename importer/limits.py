"""Limits on what an import will read, so that a broken or hostile file is refused with an InputError instead of
filling the disk, the memory or the clock. Every limit has a default and an environment variable that changes it
(read on each use, so a running dashboard and a test can change them); docs/limits.md lists them.

Also the one test hook of the importer, LAYERJOULE_TEST_PAUSE_AT (see `pause_point`): tests/test_crash.py stops
an import at a named stage and kills it there.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass

from importer.errors import InputError

MIB = 1 << 20
GIB = 1 << 30


@dataclass(frozen=True)
class Limit:
    env: str
    default: int
    what: str  # for docs and errors

    def get(self) -> int:
        text = os.environ.get(self.env, "").strip()
        if not text:
            return self.default
        try:
            value = int(float(text))
        except ValueError:
            value = 0
        if value <= 0:
            raise InputError(f"{self.env}={text!r}; expected a positive number ({self.what})",
                             place="environment")
        return value


# Archives (zipped run bundles and captures) and gzipped members and logs.
ARCHIVE_MEMBERS = Limit("LAYERJOULE_MAX_ARCHIVE_MEMBERS", 1000, "members of one zip archive")
UNPACKED_BYTES = Limit("LAYERJOULE_MAX_UNPACKED_BYTES", 8 * GIB,
                       "bytes unpacked from one zip, or decompressed from one gzip file")
COMPRESSION_RATIO = Limit("LAYERJOULE_MAX_COMPRESSION_RATIO", 200,
                          "uncompressed size over compressed size of a zip member or gzip file")
RATIO_FLOOR_BYTES = MIB  # the ratio is checked only beyond this many uncompressed bytes: tiny files compress well
# Text logs (tegrastats, power CSVs, PTDaemon, Streamline reports) are read whole into memory.
LOG_BYTES = Limit("LAYERJOULE_MAX_LOG_BYTES", 2 * GIB, "bytes of one text log (after decompression)")
# XML files of Streamline captures.
XML_BYTES = Limit("LAYERJOULE_MAX_XML_BYTES", 64 * MIB, "bytes of one XML file of a capture")
XML_DEPTH = Limit("LAYERJOULE_MAX_XML_DEPTH", 64, "nesting depth of elements in an XML file of a capture")
# The dashboard's Upload page (Streamlit's server.maxUploadSize, in MB).
UPLOAD_MB = Limit("LAYERJOULE_MAX_UPLOAD_MB", 500, "megabytes of one file uploaded to the dashboard")

ALL = (ARCHIVE_MEMBERS, UNPACKED_BYTES, COMPRESSION_RATIO, LOG_BYTES, XML_BYTES, XML_DEPTH, UPLOAD_MB)


def max_upload_mb() -> int:
    """For the dashboard: Streamlit's server.maxUploadSize (MB) and the limit stated on the Upload page."""
    return UPLOAD_MB.get()


def check_ratio(unpacked_bytes: int, packed_bytes: int, name: str, place: str | None = None) -> None:
    """A compression ratio beyond COMPRESSION_RATIO (once past RATIO_FLOOR_BYTES) is refused as a likely bomb."""
    ratio = COMPRESSION_RATIO.get()
    if unpacked_bytes > RATIO_FLOOR_BYTES and unpacked_bytes > ratio * max(packed_bytes, 1):
        raise InputError(
            f"expands more than {ratio} times ({packed_bytes:,} bytes to over {unpacked_bytes:,}); expected "
            f"ordinary compressed data (a compression bomb?); {COMPRESSION_RATIO.env} raises the limit",
            path=name, place=place)


def check_total(unpacked_bytes: int, name: str, place: str | None = None) -> None:
    limit = UNPACKED_BYTES.get()
    if unpacked_bytes > limit:
        raise InputError(f"unpacks to more than {limit:,} bytes; expected less ({UNPACKED_BYTES.env} raises the "
                         "limit)", path=name, place=place)


# ---------------------------------------------------------------------------------------------------------------
# Test hook

PAUSE_ENV = "LAYERJOULE_TEST_PAUSE_AT"
PAUSE_STAGES = ("reading", "attributing", "writing", "committing", "committed")


def pause_point(stage: str) -> None:
    """With LAYERJOULE_TEST_PAUSE_AT=<stage>, an import reaching that stage prints `layerjoule-test-paused <stage>`
    on stderr and waits (forever) to be killed: tests/test_crash.py kills it there. Stages: reading (after the
    first source is read), attributing (before the attribution), writing (in the store transaction, half of the
    tables written), committing (just before COMMIT), committed (just after COMMIT, before the connection
    closes). Without the variable this does nothing."""
    if os.environ.get(PAUSE_ENV) != stage:
        return
    print(f"layerjoule-test-paused {stage}", file=sys.stderr, flush=True)
    while True:
        time.sleep(1)
