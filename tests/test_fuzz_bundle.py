"""Fuzzing the run bundle reader (folder, gzipped members, zip) and everything an accepted bundle goes through
before the store (attribution, model cost): broken tables, manifests with any JSON in any field, damaged zips and
gzip streams. The only allowed failure is an InputError of one line naming the bundle."""

from __future__ import annotations

import copy
import gzip
import io
import json
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np
from corpus.checks import check_one_line, write_and_roll_back
from corpus.mutations import mutated
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from importer.assemble import RunSources
from importer.errors import InputError
from importer.readers.bundle import read_bundle

import bundles

FUZZ = settings(max_examples=int(os.environ.get("LAYERJOULE_FUZZ_EXAMPLES", 60)), deadline=5000,
                suppress_health_check=[HealthCheck.too_slow], database=None)
GOOD = {
    "manifest.json": json.dumps(bundles.manifest(), indent=1).encode(),
    "model.prototxt": bundles.PROTOTXT,
    "events.csv": ("\n".join(bundles.tiny_events()) + "\n").encode(),
    "rails.csv": ("\n".join(bundles.tiny_rails()) + "\n").encode(),
}


def import_in_memory(path: Path) -> None:
    """Read the bundle, prepare and write its run as an import would: InputError or success, nothing else."""
    try:
        bundle = read_bundle(path)
        prepared = write_and_roll_back(RunSources(bundle, [("run-bundle", bundle.path, bundle.content_sha256)]))
    except InputError as error:
        check_one_line(error, path)
        return
    assert len(prepared.layer_stats) >= 1
    assert prepared.bundle.layer_events["t_start_ns"].dtype == np.int64


def write_members(folder: Path, members: dict[str, bytes]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in members.items():
        (folder / name).write_bytes(data)
    return folder


@FUZZ
@given(member=st.sampled_from(["events.csv", "rails.csv", "manifest.json", "model.prototxt"]), data=st.data())
def test_fuzz_one_broken_member(member, data):
    broken = data.draw(mutated([GOOD[member]]), label=member)
    with tempfile.TemporaryDirectory() as scratch:
        import_in_memory(write_members(Path(scratch) / "run", {**GOOD, member: broken}))


JSON = st.recursive(st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats() | st.text(max_size=20),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
                    max_leaves=8)


def _paths(value, prefix=()):
    yield prefix
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from _paths(inner, (*prefix, key))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            yield from _paths(inner, (*prefix, index))


MANIFEST_PATHS = [p for p in _paths(bundles.manifest()) if p]


@FUZZ
@given(changes=st.lists(st.tuples(st.sampled_from(MANIFEST_PATHS), JSON | st.just(...)), min_size=1, max_size=3))
def test_fuzz_manifest_fields(changes):
    """Any JSON value in any manifest field (or the field removed: `...`)."""
    manifest = copy.deepcopy(bundles.manifest())
    for path, value in changes:
        parent = manifest
        for key in path[:-1]:
            if not isinstance(parent, dict | list) or (isinstance(parent, dict) and key not in parent) or (
                    isinstance(parent, list) and key >= len(parent)):
                break
            parent = parent[key]
        else:
            if (isinstance(parent, dict) and (value is not ... or path[-1] in parent)) or (
                    isinstance(parent, list) and isinstance(path[-1], int) and path[-1] < len(parent)):
                if value is ...:
                    parent.pop(path[-1])
                else:
                    parent[path[-1]] = value
    text = json.dumps(manifest, allow_nan=True).encode()
    with tempfile.TemporaryDirectory() as scratch:
        import_in_memory(write_members(Path(scratch) / "run", {**GOOD, "manifest.json": text}))


def zipped(members: dict[str, bytes], prefix: str = "run/") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(prefix + name, data)
    return buffer.getvalue()


GZIPPED = {**GOOD, "events.csv.gz": gzip.compress(GOOD["events.csv"], mtime=0),
           "rails.csv.gz": gzip.compress(GOOD["rails.csv"], mtime=0)}
del GZIPPED["events.csv"], GZIPPED["rails.csv"]


@FUZZ
@given(data=mutated([zipped(GOOD), zipped(GZIPPED, prefix="")]) | st.binary(max_size=300))
def test_fuzz_zipped_bundle(data):
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "run.zip"
        path.write_bytes(b"PK" + data[2:] if data[:2] != b"PK" and len(data) > 4 else data)
        import_in_memory(path)


@FUZZ
@given(member=st.sampled_from(["events.csv.gz", "rails.csv.gz"]), data=st.data())
def test_fuzz_gzipped_member(member, data):
    broken = data.draw(mutated([GZIPPED[member]]) | st.binary(max_size=200), label=member)
    with tempfile.TemporaryDirectory() as scratch:
        import_in_memory(write_members(Path(scratch) / "run", {**GZIPPED, member: broken}))
