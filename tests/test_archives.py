"""Hostile archives and XML: zip slip, links, compression bombs (zip and gzip), too many members, lying sizes, and
XML with entities, external references, deep nesting or another encoding. Each is refused with one InputError
line before anything is written outside the reader's scratch folder; limits come from importer/limits.py and
their environment variables (docs/limits.md)."""

from __future__ import annotations

import gzip
import io
import stat
import struct
import uuid
import zipfile
from pathlib import Path

import duckdb
import pytest
import streamline_writer as sw

from cli.main import main
from importer import limits
from importer.assemble import ImportOptions, detect_kind, read_one
from importer.errors import InputError
from importer.ingest import import_sources
from importer.readers.bundle import read_bundle
from importer.readers.streamline_capture import read_capture

import bundles

D = 5_000_000_000
BOMB_BYTES = 64 << 20  # 64 MiB of zeros: about 64 KiB deflated


def bundle_members(tmp_path: Path) -> dict[str, bytes]:
    folder = bundles.write_bundle(tmp_path / "members")
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def write_zip(path: Path, members: dict[str, bytes], prefix: str = "run/") -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(prefix + name, data)
    return path


def zeros_member(archive: zipfile.ZipFile, name: str, size: int) -> None:
    info = zipfile.ZipInfo(name)
    info.compress_type = zipfile.ZIP_DEFLATED
    with archive.open(info, "w", force_zip64=True) as member:
        chunk = bytes(1 << 20)
        for _ in range(size >> 20):
            member.write(chunk)


def refused(call, *words) -> str:
    with pytest.raises(InputError) as caught:
        call()
    text = str(caught.value)
    assert "\n" not in text
    for word in words:
        assert word in text, text
    return text


def untouched(tmp_path: Path, marker: str) -> bool:
    """Nowhere an escaping member could have landed: below the test's folder, the temporary folder, the cwd."""
    return not list(tmp_path.rglob(marker)) and not any((p / marker).exists() for p in (Path("/tmp"), Path.cwd()))


# ---------------------------------------------------------------------------------------------------------------
# paths and links


@pytest.mark.parametrize("name", ["run/../../{marker}", "/tmp/{marker}", "C:/{marker}", "run\\..\\..\\{marker}"])
def test_a_member_escaping_the_folder_refuses_the_whole_bundle(tmp_path, name):
    marker = f"escaped-{uuid.uuid4().hex}"
    path = write_zip(tmp_path / "run.zip", bundle_members(tmp_path))
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr(name.format(marker=marker), b"must never be written")
    text = refused(lambda: read_bundle(path), "points outside the archive's folder", "nothing was extracted")
    assert text.startswith(f"{path}: member ")
    assert untouched(tmp_path, marker)


def symlink_info(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.create_system = 3  # Unix: the mode is in the high bits
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info


def test_a_symbolic_link_in_a_bundle_zip_is_refused(tmp_path):
    members = bundle_members(tmp_path)
    path = tmp_path / "run.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            if name != "rails.csv":
                archive.writestr(f"run/{name}", data)
        archive.writestr(symlink_info("run/rails.csv"), "/etc/passwd")
    refused(lambda: read_bundle(path), "member 'run/rails.csv' is a symbolic link; expected plain files")


def test_a_symbolic_link_in_a_capture_zip_is_refused(tmp_path):
    zipped = sw.write_capture(tmp_path / "c.apc", monotonic_delta_ns=D, realtime_ns=10**18, zip=True)
    with zipfile.ZipFile(zipped, "a") as archive:
        archive.writestr(symlink_info("c.apc/0000000001"), "../../etc/shadow")
    refused(lambda: read_capture(zipped), "is a symbolic link")


def test_a_member_twice_is_refused(tmp_path):
    members = bundle_members(tmp_path)
    path = write_zip(tmp_path / "run.zip", members)
    with zipfile.ZipFile(path, "a") as archive, pytest.warns(UserWarning, match="Duplicate name"):
        archive.writestr("run/rails.csv", b"t_ns,rail,power_mw\n")
    refused(lambda: read_bundle(path), "member 'run/rails.csv' is in the zip twice")


def test_a_tar_archive_is_named_as_such(tmp_path):
    path = tmp_path / "run.tar.gz"
    path.write_bytes(gzip.compress(b"not really a tar"))
    refused(lambda: detect_kind(path), "tar archives are not read")


# ---------------------------------------------------------------------------------------------------------------
# sizes: compression ratio, total size, member count, lying headers


def test_a_zip_bomb_member_is_refused_by_its_ratio_before_it_is_unpacked(tmp_path):
    members = bundle_members(tmp_path)
    path = tmp_path / "bomb.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            if name != "rails.csv":
                archive.writestr(f"run/{name}", data)
        zeros_member(archive, "run/rails.csv", BOMB_BYTES)
    assert path.stat().st_size < 1 << 20
    refused(lambda: read_bundle(path), f"{path}: member run/rails.csv: expands more than 200 times",
            "LAYERJOULE_MAX_COMPRESSION_RATIO")


def test_a_member_larger_than_its_header_says_is_a_damaged_zip(tmp_path):
    """A zip whose headers declare a small size for a member that inflates to much more."""
    members = bundle_members(tmp_path)
    path = tmp_path / "liar.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("run/manifest.json", members["manifest.json"])
        zeros_member(archive, "run/events.csv", 8 << 20)
    data = bytearray(path.read_bytes())
    # Rewrite the uncompressed size of events.csv in its central directory entry (what zipfile reads) to 1000.
    entry = data.rfind(b"PK\x01\x02")
    assert struct.unpack_from("<I", data, entry + 24)[0] == 8 << 20
    struct.pack_into("<I", data, entry + 24, 1000)
    path.write_bytes(bytes(data))
    # zipfile reads no more than the declared 1000 bytes, which fail the CRC: never 8 MiB written.
    refused(lambda: read_bundle(path), f"{path}: damaged zip archive (Bad CRC-32 for file 'run/events.csv')")


def test_the_total_unpacked_size_has_a_limit(tmp_path, monkeypatch):
    path = write_zip(tmp_path / "run.zip", bundle_members(tmp_path))
    assert read_bundle(path).run_id == "run-tiny-1"
    monkeypatch.setenv("LAYERJOULE_MAX_UNPACKED_BYTES", "2000")
    refused(lambda: read_bundle(path), f"{path}: unpacks to more than 2,000 bytes", "LAYERJOULE_MAX_UNPACKED_BYTES")


def test_thousands_of_members_are_refused(tmp_path):
    members = bundle_members(tmp_path)
    path = write_zip(tmp_path / "many.zip", members)
    with zipfile.ZipFile(path, "a") as archive:
        for i in range(limits.ARCHIVE_MEMBERS.default):
            archive.writestr(f"run/junk/{i}.txt", b"")
    refused(lambda: read_bundle(path), f"holds {limits.ARCHIVE_MEMBERS.default + len(members):,} members",
            "LAYERJOULE_MAX_ARCHIVE_MEMBERS")


def test_a_bad_limit_setting_is_a_clear_error(tmp_path, monkeypatch):
    path = write_zip(tmp_path / "run.zip", bundle_members(tmp_path))
    monkeypatch.setenv("LAYERJOULE_MAX_ARCHIVE_MEMBERS", "lots")
    refused(lambda: read_bundle(path), "environment: LAYERJOULE_MAX_ARCHIVE_MEMBERS='lots'; expected a positive number")


# ---------------------------------------------------------------------------------------------------------------
# gzip bombs: bundle members and logs


def test_a_gzip_bomb_in_a_bundle_is_refused(tmp_path):
    folder = bundles.write_bundle(tmp_path / "run")
    (folder / "rails.csv").unlink()
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb") as stream:
        stream.write(b"t_ns,rail,power_mw,voltage_mv,current_ma\n")
        row = b"1000000,VDD_IN,1500.0,,\n"
        for _ in range(BOMB_BYTES // (len(row) << 15)):
            stream.write(row * (1 << 15))
    (folder / "rails.csv.gz").write_bytes(buffer.getvalue())
    refused(lambda: read_bundle(folder), f"{folder}/rails.csv.gz: expands more than 200 times")


def test_a_gzipped_log_is_read_and_a_gzip_bomb_log_is_refused(tmp_path):
    log = Path(__file__).parent / "fixtures" / "logs" / "tegrastats_orin.log"
    packed = tmp_path / "orin.log.gz"
    packed.write_bytes(gzip.compress(log.read_bytes()))
    assert detect_kind(packed) == "tegrastats"
    plain = read_one("tegrastats", log, ImportOptions())
    assert read_one("tegrastats", packed, ImportOptions()).samples.equals(plain.samples)
    bomb = tmp_path / "bomb.log.gz"
    bomb.write_bytes(gzip.compress(log.read_bytes() + b"\n" * BOMB_BYTES))
    refused(lambda: read_one("tegrastats", bomb, ImportOptions()), f"{bomb}: expands more than 200 times")
    refused(lambda: detect_kind(tmp_path / "cut.log.gz") if (tmp_path / "cut.log.gz").write_bytes(
        packed.read_bytes()[:-20]) else None, "cut.log.gz: cannot be read completely")


def test_a_text_log_over_the_size_limit_is_refused(tmp_path, monkeypatch):
    log = Path(__file__).parent / "fixtures" / "logs" / "power_generic.csv"
    monkeypatch.setenv("LAYERJOULE_MAX_LOG_BYTES", "100")
    refused(lambda: read_one("power-csv", log, ImportOptions()), "is over 100 bytes", "LAYERJOULE_MAX_LOG_BYTES")


def test_a_bomb_on_the_command_line_is_one_line_exit_2_and_the_store_unchanged(tmp_path, capsys):
    db = tmp_path / "store.duckdb"
    import_sources([bundles.write_bundle(tmp_path / "existing", bundles.manifest(run_id="run-existing"))], db=db)
    members = bundle_members(tmp_path)
    path = tmp_path / "bomb.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            if name != "events.csv":
                archive.writestr(name, data)
        zeros_member(archive, "events.csv", BOMB_BYTES)
    capsys.readouterr()
    assert main(["import", str(path), "--db", str(db)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"layerjoule import: {path}: member events.csv: expands more than")
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT list(run_id) FROM runs").fetchone()[0] == ["run-existing"]


# ---------------------------------------------------------------------------------------------------------------
# XML


def capture_with(tmp_path: Path, xml: str | bytes, member: str = "captured.xml") -> Path:
    folder = sw.write_capture(tmp_path / "x.apc", monotonic_delta_ns=D, realtime_ns=10**18)
    (folder / member).write_bytes(xml.encode() if isinstance(xml, str) else xml)
    return folder


BILLION_LAUGHS = ('<?xml version="1.0"?>\n<!DOCTYPE captured [\n <!ENTITY lol "lol">\n'
                  + "".join(f' <!ENTITY lol{i} "{f"&lol{i - 1};" * 10 if i > 1 else "&lol;" * 10}">\n'
                            for i in range(1, 10))
                  + ']>\n<captured version="1"><target name="&lol9;"/><counters/></captured>\n')


def test_billion_laughs_is_refused_before_parsing(tmp_path):
    folder = capture_with(tmp_path, BILLION_LAUGHS)
    text = refused(lambda: read_capture(folder), f"{folder}/captured.xml: line 3: declares entities lol, lol1,")
    assert "expected plain XML without a DOCTYPE" in text


def test_an_external_entity_or_dtd_is_refused_and_nothing_is_fetched(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET")
    xml = (f'<?xml version="1.0"?>\n<!DOCTYPE captured SYSTEM "file://{secret}">\n'
           '<captured version="1"><counters/></captured>\n')
    text = refused(lambda: read_capture(capture_with(tmp_path, xml)), "line 2: has a DOCTYPE")
    assert "TOP-SECRET" not in text
    xml = ('<?xml version="1.0"?>\n<!DOCTYPE events [<!ENTITY % remote SYSTEM "http://127.0.0.1:9/x.dtd"> %remote;]>'
           "\n<events/>\n")
    refused(lambda: read_capture(capture_with(tmp_path, xml, "events.xml")),
            "events.xml: line 2: declares entity remote")


def test_deep_nesting_has_a_limit(tmp_path, monkeypatch):
    deep = '<captured version="1"><counters/>' + "<a>" * 100 + "</a>" * 100 + "</captured>"
    refused(lambda: read_capture(capture_with(tmp_path, deep)), "captured.xml: line 1: elements nest deeper than 64",
            "LAYERJOULE_MAX_XML_DEPTH")
    events = "<events>" + "<category>" * 80 + "</category>" * 80 + "</events>"
    refused(lambda: read_capture(capture_with(tmp_path, events, "events.xml")), "events.xml", "deeper than 64")
    monkeypatch.setenv("LAYERJOULE_MAX_XML_DEPTH", "200")
    assert read_capture(capture_with(tmp_path, deep)).kind == "streamline-capture"


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be", "utf-32"])
def test_xml_in_another_encoding_is_refused(tmp_path, encoding):
    xml = '<?xml version="1.0"?><captured version="1"><counters/></captured>'.encode(encoding)
    refused(lambda: read_capture(capture_with(tmp_path, xml)), "captured.xml: line 1: is not UTF-8")


def test_an_xml_encoding_declaration_other_than_utf8_is_refused(tmp_path):
    xml = '<?xml version="1.0" encoding="EBCDIC-US"?><captured version="1"/>'
    refused(lambda: read_capture(capture_with(tmp_path, xml)), "declares encoding 'EBCDIC-US'; expected UTF-8")


def test_an_xml_file_over_the_size_limit_is_refused(tmp_path, monkeypatch):
    folder = sw.write_capture(tmp_path / "x.apc", monotonic_delta_ns=D, realtime_ns=10**18)
    monkeypatch.setenv("LAYERJOULE_MAX_XML_BYTES", "64")
    refused(lambda: read_capture(folder), "captured.xml: is", "expected an XML file of at most 64 bytes")
