"""Upload page (AppTest, which sets st.file_uploader's files) on a copy of the sample store: real sample files
imported through the page, errors naming the uploaded file, nothing written on error, a repeated upload already
present. Plus the planning functions behind it (app.tables, upload page section)."""

from __future__ import annotations

import io
import json
import re
import zipfile
from pathlib import Path

import duckdb
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from app import tables
from importer import limits
from importer.errors import InputError

import apptest

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "sample_traces"
EXTRAS = SAMPLES / "extras"
TIMEOUT_S = 120
COUNTED = ("runs", "sources", "layers", "layer_stats", "power_samples")


def _zip(folder: Path, replace: dict[str, bytes] | None = None) -> bytes:
    """A run bundle folder zipped as a user would: the folder itself at the zip's root."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in sorted(folder.iterdir()):
            archive.writestr(f"{folder.name}/{path.name}", (replace or {}).get(path.name, path.read_bytes()))
    return buffer.getvalue()


def _counts(db: Path) -> dict[str, int]:
    with duckdb.connect(str(db), read_only=True) as con:
        return {table: con.execute(f"SELECT count(*) FROM {table}").fetchone()[0] for table in COUNTED}


def _run_row(db: Path, run_id: str) -> dict:
    with duckdb.connect(str(db), read_only=True) as con:
        frame = con.execute("SELECT * FROM runs WHERE run_id = ?", [run_id]).df()
    assert len(frame) == 1
    return frame.iloc[0].to_dict()


def _text(value: str) -> str:
    """A message as the user reads it (the page escapes Markdown in file names)."""
    return re.sub(r"\\(.)", r"\1", value)


def _page(**params) -> AppTest:
    return apptest.open_page("views/upload.py", params, timeout_s=TIMEOUT_S)


def _upload(at: AppTest, files: list[tuple[str, bytes]]) -> AppTest:
    at.get("file_uploader")[0].set_value([(name, data, "application/octet-stream") for name, data in files])
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _kinds(at: AppTest) -> dict[str, str | None]:
    return {box.label.removeprefix("Kind of "): box.value for box in at.selectbox if box.label.startswith("Kind of ")}


def _import(at: AppTest) -> AppTest:
    at.button(key="upload_import").click().run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _links(at: AppTest) -> list[tuple[str, str, str]]:
    return [(link.proto.page, link.proto.query_string, link.proto.label) for link in at.get("page_link")]


def test_page_states_the_limits_and_restores_team_and_tags(sample_store, monkeypatch):
    monkeypatch.setenv("LAYERJOULE_USER", "ana")
    at = _page(team="vision", tags="tx1, nightly")
    assert not at.exception
    limits_line = _text(at.caption[0].value)
    assert f"{st.get_option('server.maxUploadSize')} MB per file" in limits_line
    assert f"{limits.ARCHIVE_MEMBERS.get():,} members" in limits_line
    assert f"{limits.COMPRESSION_RATIO.get()} times" in limits_line
    assert "Tar archives are not read" in limits_line
    assert at.get("file_uploader")[0].accept_multiple_files
    assert any("nothing is imported" in info.value for info in at.info)
    # The run fields appear once there are files; a link pre-fills team and tags.
    _upload(at, [("notes.txt", b"hello\n")])
    assert at.text_input(key="upload_team").value == "vision"
    assert at.text_input(key="upload_tags").value == "tx1, nightly"
    assert at.text_input(key="upload_owner").value == "ana"  # LAYERJOULE_USER


def test_zipped_bundle_with_fields_is_imported_and_linked(sample_store):
    before = _counts(sample_store)
    at = _upload(_page(), [("squeezenet v1.0 (layer loop).zip", _zip(SAMPLES / "squeezenet_v1.0-layerloop"))])
    assert _kinds(at) == {"squeezenet v1.0 (layer loop).zip": "bundle"}
    at.text_input(key="upload_name").set_value("v1.0 on my desk")
    at.text_input(key="upload_owner").set_value("bo")
    at.text_input(key="upload_team").set_value("vision")
    at.text_input(key="upload_tags").set_value("cpu, tx1 ,cpu")
    _import(at.run())
    assert not at.error, [e.value for e in at.error]
    run_id = json.loads((SAMPLES / "squeezenet_v1.0-layerloop" / "manifest.json").read_text())["run_id"]
    assert [_text(s.value) for s in at.success] == [f"Imported v1.0 on my desk (run {run_id})"]
    assert _links(at) == [("run", f"run={run_id}", "Open v1.0 on my desk on the Run page")]
    row = _run_row(sample_store, run_id)
    assert (row["name"], row["owner"], row["team"], list(row["tags"])) == ("v1.0 on my desk", "bo", "vision",
                                                                          ["cpu", "tx1"])
    after = _counts(sample_store)
    assert after["runs"] == before["runs"] + 1
    assert after["layer_stats"] > before["layer_stats"]
    assert at.query_params["team"] == "vision"


def test_loose_files_of_a_bundle_folder_make_one_run(sample_store):
    folder = SAMPLES / "googlenet-layerloop"
    at = _upload(_page(), [(path.name, path.read_bytes()) for path in sorted(folder.iterdir())])
    assert set(_kinds(at).values()) == {"bundle-file"}
    _import(at)
    run_id = json.loads((folder / "manifest.json").read_text())["run_id"]
    assert not at.error, [e.value for e in at.error]
    assert _links(at)[0][:2] == ("run", f"run={run_id}")
    assert _run_row(sample_store, run_id)["name"] == run_id  # the folder is named after the run id


def test_a_bad_file_is_named_as_uploaded_and_nothing_is_written(sample_store):
    before = _counts(sample_store)
    garbage = b"this is not a tegrastats line\nnor is this\n"
    at = _upload(_page(), [("squeezenet_v1.0-layerloop.zip", _zip(SAMPLES / "squeezenet_v1.0-layerloop")),
                           ("board log.txt", garbage)])
    kinds = _kinds(at)
    assert kinds["squeezenet_v1.0-layerloop.zip"] == "bundle" and kinds["board log.txt"] is None
    # Not detected: the user says what it is.
    next(box for box in at.selectbox if box.label == "Kind of board log.txt").select("tegrastats")
    _import(at.run())
    errors = [_text(e.value) for e in at.error]
    assert len(errors) == 1 and errors[0].startswith("board log.txt: line 1: no tegrastats lines; expected lines like")
    assert "layerjoule-upload-" not in errors[0] and "/tmp" not in errors[0]
    assert not at.success and not _links(at)
    assert _counts(sample_store) == before


def test_a_bad_bundle_member_is_named_inside_the_uploaded_zip(sample_store):
    before = _counts(sample_store)
    broken = _zip(SAMPLES / "alexnet-layerloop", replace={"manifest.json": b'{"format": "layerjoule-run-bundle"'})
    at = _import(_upload(_page(), [("alexnet run.zip", broken)]))
    errors = [_text(e.value) for e in at.error]
    assert len(errors) == 1 and errors[0].startswith("alexnet run.zip!manifest.json: ")
    assert "\n" not in errors[0] and "Traceback" not in errors[0]
    assert _counts(sample_store) == before


def test_uploading_a_stored_run_again_says_it_is_already_there(sample_store):
    before = _counts(sample_store)
    files = [("squeezenet_v1.1-network.zip", _zip(SAMPLES / "squeezenet_v1.1-network")),
             *[(path.name, path.read_bytes()) for path in sorted(EXTRAS.glob("*.apc.zip"))],
             *[(path.name, path.read_bytes()) for path in sorted(EXTRAS.glob("*.tegrastats.log"))]]
    at = _upload(_page(), files)
    assert list(_kinds(at).values()) == ["bundle", "streamline-capture", "tegrastats"]
    _import(at)
    run_id = json.loads((SAMPLES / "squeezenet_v1.1-network" / "manifest.json").read_text())["run_id"]
    assert not at.error and not at.success
    assert any(_text(i.value).startswith("Already in the store: ") and run_id in _text(i.value) for i in at.info)
    assert _links(at)[0][:2] == ("run", f"run={run_id}")  # the stored run, one click away
    assert _counts(sample_store) == before


def test_a_file_of_unknown_format_must_be_given_a_kind(sample_store):
    at = _upload(_page(), [("notes.txt", b"hello world\n")])
    assert _kinds(at) == {"notes.txt": None}
    assert any(c.value.startswith("Not detected: cannot tell which format this is") for c in at.caption)
    assert not any("KIND:PATH" in c.value for c in at.caption)  # the command line's advice, not the page's
    _import(at)
    assert [_text(e.value) for e in at.error] == [
        "notes.txt: its format could not be detected; expected a kind chosen for it (or 'leave out')"]


# Planning an upload (pure)

def test_plan_keeps_names_and_maps_messages_back(tmp_path):
    log = (EXTRAS / "squeezenet_v1.1-network.tegrastats.log").read_bytes()
    plan = tables.plan_upload([("../../escape/board.log", log), ("a.zip", b"PK")], ["tegrastats", "bundle"],
                              tmp_path)
    folder = tmp_path.resolve()
    paths = [Path(argument.split(":", 1)[1]) for argument in plan.arguments]
    assert [argument.split(":", 1)[0] for argument in plan.arguments] == ["tegrastats", "bundle"]
    assert [path.name for path in paths] == ["board.log", "a.zip"]  # the names kept, inside the folder
    assert all(folder in path.parents for path in paths)
    assert paths[0].read_bytes() == log
    assert plan.words(f"{paths[1]}!manifest.json: bad; reading {paths[0]}") == (
        "a.zip!manifest.json: bad; reading ../../escape/board.log")


def test_plan_puts_loose_bundle_files_in_one_folder(tmp_path):
    folder = SAMPLES / "alexnet-layerloop"
    files = [(f"alexnet-layerloop/{path.name}", path.read_bytes()) for path in sorted(folder.iterdir())]
    plan = tables.plan_upload(files, ["bundle-file"] * len(files), tmp_path)
    assert len(plan.arguments) == 1 and plan.arguments[0].startswith("bundle:")
    bundle = Path(plan.arguments[0].split(":", 1)[1])
    assert bundle.name == "alexnet-layerloop"  # a folder upload's name
    assert sorted(p.name for p in bundle.iterdir()) == sorted(p.name for p in folder.iterdir())
    from importer.readers.bundle import read_bundle

    assert read_bundle(bundle).run_id == json.loads((folder / "manifest.json").read_text())["run_id"]


@pytest.mark.parametrize(
    ("files", "kinds", "message"),
    [
        ([("a.zip", b"")], ["ignore"], "upload: nothing to import; expected a run bundle or a Streamline capture"),
        ([("x.bin", b"")], [None], "x.bin: its format could not be detected"),
        ([("a.zip", b""), ("net.prototxt", b"")], ["bundle", "prototxt"],
         "net.prototxt: a prototxt joins only a run made from a Streamline capture without a run bundle"),
        ([("c.apc.zip", b""), ("a.prototxt", b""), ("b.prototxt", b"")],
         ["streamline-capture", "prototxt", "prototxt"], "b.prototxt: is a second prototxt"),
        ([("events.csv.gz", b"")], ["bundle-file"],
         "events.csv.gz: is a file of a run bundle without its manifest.json"),
        ([("manifest.json", b"{}"), ("notes.md", b"")], ["bundle-file", "bundle-file"],
         "notes.md: is not a file of a run bundle folder"),
        ([("d1/manifest.json", b"{}"), ("d2/manifest.json", b"{}")], ["bundle-file", "bundle-file"],
         "d2/manifest.json: is uploaded twice (also as 'd1/manifest.json')"),
    ],
)
def test_plan_refuses_what_cannot_make_one_run(tmp_path, files, kinds, message):
    with pytest.raises(InputError) as error:
        tables.plan_upload(files, kinds, tmp_path)
    assert error.value.one_line().startswith(message)


def test_prototxt_goes_with_a_capture_only_run(tmp_path):
    capture = (EXTRAS / "squeezenet_v1.1-network.apc.zip").read_bytes()
    prototxt = (SAMPLES / "models" / "squeezenet_v1.1.prototxt").read_bytes()
    files = [("run.apc.zip", capture), ("deploy.prototxt", prototxt)]
    kinds = [tables.detect_upload_kind(name, data, [n for n, _ in files])[0] for name, data in files]
    assert kinds == ["streamline-capture", "prototxt"]
    plan = tables.plan_upload(files, kinds, tmp_path)
    assert [a.split(":", 1)[0] for a in plan.arguments] == ["streamline-capture"]
    assert plan.options.model.name == "deploy.prototxt" and plan.options.model.read_bytes() == prototxt


def test_detected_kinds_of_the_sample_files():
    folder = SAMPLES / "squeezenet_v1.1-network"
    names = [path.name for path in folder.iterdir()]
    assert {tables.detect_upload_kind(n, (folder / n).read_bytes(), names)[0] for n in names} == {"bundle-file"}
    # Alone, a bundle's prototxt is a prototxt and its gzipped table is read whole (a power CSV).
    assert tables.detect_upload_kind("model.prototxt", b"name: 'x'", ["model.prototxt"]) == ("prototxt", None)
    rails = (folder / "rails.csv.gz").read_bytes()
    assert tables.detect_upload_kind("rails.csv.gz", rails, ["rails.csv.gz"]) == ("power-csv", None)
    extras = {path.name: tables.detect_upload_kind(path.name, path.read_bytes(), [path.name])[0]
              for path in EXTRAS.iterdir()}
    assert extras == {
        "squeezenet_v1.1-network.apc.zip": "streamline-capture",
        "squeezenet_v1.1-network.streamline-log.csv": "streamline-report",
        "squeezenet_v1.1-network.streamline-timeline.csv": "streamline-report",
        "squeezenet_v1.1-network.tegrastats.log": "tegrastats",
    }
    assert tables.detect_upload_kind("x.tar.gz", b"\x1f\x8b" + b"\0" * 30, ["x.tar.gz"])[0] is None


def test_parse_tags():
    assert tables.parse_tags(" tx1, nightly,,tx1 , ") == ["tx1", "nightly"]
    assert tables.parse_tags("") == []


def test_upload_basename_never_leaves_its_folder():
    assert tables.upload_basename("../../etc/passwd") == "passwd"
    assert tables.upload_basename("C:\\Users\\ana\\run.zip") == "run.zip"
    assert tables.upload_basename("..") == "upload"
    assert tables.upload_basename("dir/") == "upload"

