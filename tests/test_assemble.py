"""One run from several sources: a bundle with a Streamline capture and rail logs, clock alignment, and runs made
from a capture alone. Captures come from tests/streamline_writer.py (a test-only writer of the published layout)."""

import duckdb
import pytest
from streamline_writer import CounterSpec, write_capture

from cli.main import main
from importer.assemble import ImportOptions
from importer.ingest import import_sources
from importer.report import run_report

import bundles

MS = 1_000_000
RAW_AT_START = 5_000_000_000_000  # the board's CLOCK_MONOTONIC_RAW when the capture started


def capture_for_tiny_run(tmp_path, sync=True, bus_per_ms=1000):
    """A capture of the tiny run: the sync marker says bundle time 100 ms (inference start) happened at capture
    time 130 ms; a bus-access counter counts bus_per_ms accesses per ms all along (one value per 10 ms)."""
    markers = [(RAW_AT_START + 130 * MS, "layerjoule-sync monotonic_ns=100000000")] if sync else []
    values = [(t * MS, 0, bus_per_ms * 10) for t in range(0, 600, 10)]
    counters = [CounterSpec(type="ARMv8_Cortex_A57_cnt0", title="Cortex-A57", name="Bus access", units="",
                            event=0x19, values=values)]
    return write_capture(tmp_path / "run.apc", monotonic_delta_ns=RAW_AT_START, realtime_ns=1_796_000_000 * 10**9,
                         markers=markers, counters=counters)


def test_a_capture_joins_its_bundle_by_the_sync_marker_and_counters_become_per_layer_bandwidth(tmp_path):
    db = tmp_path / "store.duckdb"
    bundle = bundles.write_bundle(tmp_path / "tiny")
    capture = capture_for_tiny_run(tmp_path)
    [result] = import_sources([bundle, capture], db=db, options=ImportOptions(bytes_per_access=32))
    assert result.status == "imported" and result.run_id == "run-tiny-1"
    with duckdb.connect(str(db), read_only=True) as con:
        method, offset, points = con.execute("SELECT method, offset_ns, n_points FROM alignments").fetchone()
        assert (method, offset, points) == ("sync-marker", -30 * MS, 1)  # capture 130 ms = bundle 100 ms
        counters = con.execute("SELECT l.name, c.value_mean, c.per_s, c.bytes_per_s FROM layer_counters c "
                               "JOIN layers l USING (run_id, layer_index) ORDER BY c.layer_index").fetchall()
        kinds = dict(con.execute("SELECT kind, count(*) FROM sources GROUP BY kind").fetchall())
        assert kinds == {"run-bundle": 1, "streamline-capture": 1}
        marker = con.execute("SELECT t_ns, text FROM markers").fetchone()
    assert marker == (100 * MS, "layerjoule-sync monotonic_ns=100000000")
    (conv_name, conv_count, conv_rate, conv_bytes), (relu_name, relu_count, _, _) = counters
    assert (conv_name, relu_name) == ("conv1", "relu1")
    assert conv_count == pytest.approx(1000 * 40) and relu_count == pytest.approx(1000 * 20)  # per execution
    assert conv_rate == pytest.approx(1e6) and conv_bytes == pytest.approx(32e6)  # accesses/s x 32 bytes
    # Importing the same sources again changes nothing; the bundle alone again is already part of that run.
    assert import_sources([capture, bundle], db=db)[0].status == "already-present"
    assert main(["import", str(bundle), "--db", str(db)]) == 2


def test_without_a_sync_marker_the_capture_is_placed_by_the_recorded_clock_offset(tmp_path):
    manifest = bundles.manifest()
    # The runner recorded raw - monotonic; with it the capture's start (RAW_AT_START) is bundle time 400 ms.
    manifest["streamline"] = {"clock_offset": {"offset_ns": RAW_AT_START - 400 * MS}}
    bundle = bundles.write_bundle(tmp_path / "tiny", manifest)
    capture = capture_for_tiny_run(tmp_path, sync=False)
    db = tmp_path / "store.duckdb"
    import_sources([bundle, capture], db=db)
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT method, offset_ns FROM alignments").fetchone() == ("monotonic-raw-anchor",
                                                                                       400 * MS)


def tegrastats_lines(start_utc_s: int, count: int) -> str:
    stamp = __import__("datetime").datetime.fromtimestamp
    lines = []
    for i in range(count):
        when = stamp(start_utc_s + i, tz=__import__("datetime").timezone.utc).strftime("%m-%d-%Y %H:%M:%S")
        lines.append(f"{when} RAM 1234/3956MB CPU [5%@1428] VDD_IN {2000 + 10 * i}mW/{2000}mW "
                     f"VDD_CPU_GPU_CV 500mW/500mW")
    return "\n".join(lines) + "\n"


def test_a_dated_tegrastats_log_joins_by_the_manifest_clock_pair(tmp_path):
    manifest = bundles.manifest()
    manifest["clock"] = {"monotonic_ns": 0, "realtime_utc_ns": 1_796_000_000 * 10**9}
    # the tiny run lasts 0.48 s; a one-second log from 2 s before to 3 s after its clock reading
    bundle = bundles.write_bundle(tmp_path / "tiny", manifest)
    log = tmp_path / "tegrastats.log"
    log.write_text(tegrastats_lines(1_796_000_000 - 2, 6))
    db = tmp_path / "store.duckdb"
    [result] = import_sources([bundle, f"tegrastats:{log}"], db=db)
    with duckdb.connect(str(db), read_only=True) as con:
        method, offset = con.execute("SELECT method, offset_ns FROM alignments").fetchone()
        rails = dict(con.execute("SELECT rail, source_kind FROM rails").fetchall())
        first = con.execute("SELECT min(t_ns) FROM power_samples WHERE rail = 'tegrastats.VDD_IN'").fetchone()[0]
    assert method == "clock-pair" and offset == -1_796_000_000 * 10**9
    assert rails == {"VDD_IN": "simulate", "tegrastats.VDD_IN": "tegrastats", "VDD_CPU_GPU_CV": "tegrastats"}
    assert first == -2 * 10**9  # 2 s before the bundle's clock reading, on the bundle's CLOCK_MONOTONIC axis
    _, layers = run_report(result.run_id, db)
    assert set(layers["rail"]) == {"VDD_IN", "tegrastats.VDD_IN", "VDD_CPU_GPU_CV"}


def test_a_log_with_relative_times_needs_an_offset(tmp_path, capsys):
    bundle = bundles.write_bundle(tmp_path / "tiny")
    log = tmp_path / "meter.csv"
    log.write_text("time_s,power_mw\n" + "".join(f"{i * 0.01:.2f},{1500 + i}\n" for i in range(60)))
    db = tmp_path / "store.duckdb"
    assert main(["import", str(bundle), str(log), "--db", str(db)]) == 2
    assert "expected --offset-ms" in capsys.readouterr().err
    assert main(["import", str(bundle), f"power-csv:{log}", "--offset-ms", "50", "--db", str(db), "--json"]) == 0
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT method, offset_ns FROM alignments").fetchone() == ("manual", 50 * MS)
        assert con.execute("SELECT min(t_ns) FROM power_samples WHERE rail = 'power_mw' OR rail LIKE '%power%'"
                           ).fetchone()[0] == 50 * MS


def test_a_capture_alone_makes_a_run_from_its_annotations(tmp_path):
    layers = ["conv1", "relu1", "pool1"]
    annotations, markers, t = [], [], RAW_AT_START + 10 * MS
    for it in range(3):
        markers.append((t, f"iteration {it}"))
        for i, name in enumerate(layers):
            annotations.append((t, 7, 1, f"{name}___{['Convolution', 'ReLU', 'Pooling'][i]}"))
            t += (i + 1) * MS
        annotations.append((t, 7, 1, ""))
        t += MS
    capture = write_capture(tmp_path / "cpp-caffe.apc", monotonic_delta_ns=RAW_AT_START,
                            realtime_ns=1_796_000_000 * 10**9, annotations=annotations, markers=markers,
                            channel_names={1: (0, "layers")}, group_names={0: "caffe"},
                            summary_attributes={"layerjoule_synthetic": "true"}, zip=True)
    db = tmp_path / "store.duckdb"
    model = tmp_path / "net.prototxt"
    model.write_text('input: "data"\ninput_shape { dim: 1 dim: 3 dim: 8 dim: 8 }\n'
                     'layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1" '
                     'convolution_param { num_output: 4 kernel_size: 3 } }\n'
                     'layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }\n'
                     'layer { name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1" '
                     'pooling_param { kernel_size: 2 stride: 2 } }\n')
    assert main(["import", str(capture), "--network", "cpp-squeeze", "--model", str(model), "--db", str(db),
                 "--json"]) == 0
    with duckdb.connect(str(db), read_only=True) as con:
        run_id, network, engine, simulated, iterations = con.execute(
            "SELECT run_id, network, engine, simulated, iterations FROM runs").fetchone()
    assert run_id.startswith("capture-") and network == "cpp-squeeze" and engine == "streamline-capture"
    assert simulated is True and iterations == 3
    run, report = run_report(run_id, db)
    assert list(report["name"]) == layers and list(report["type"]) == ["Convolution", "ReLU", "Pooling"]
    assert list(report["time_ms_mean"]) == pytest.approx([1.0, 2.0, 3.0])
    assert report["rail"].isna().all() and report["energy_mj_mean"].isna().all()  # no power in the capture
    assert report.loc[0, "macs"] == 4 * 6 * 6 * 27  # --model gave the cost
    with duckdb.connect(str(db), read_only=True) as con:
        notes = con.execute("SELECT import_notes FROM runs").fetchone()[0]
    assert "layer intervals from channel annotations: 3 layers, 3 iterations" in notes
    assert "synthetic, not recorded" in notes


def test_logs_need_one_bundle_or_one_capture(tmp_path, capsys):
    first = bundles.write_bundle(tmp_path / "a", bundles.manifest(run_id="run-a"))
    second = bundles.write_bundle(tmp_path / "b", bundles.manifest(run_id="run-b"))
    log = tmp_path / "tegrastats.log"
    log.write_text(tegrastats_lines(1_796_000_000, 3))
    assert main(["import", str(first), str(second), str(log), "--db", str(tmp_path / "s.duckdb")]) == 2
    assert "give one bundle per call" in capsys.readouterr().err
    assert main(["import", str(log), "--db", str(tmp_path / "s.duckdb")]) == 2
    assert "0 Streamline captures and no run bundle" in capsys.readouterr().err


def test_report_sets_measured_bandwidth_beside_the_model_traffic(tmp_path):
    db = tmp_path / "store.duckdb"
    import_sources([bundles.write_bundle(tmp_path / "tiny"), capture_for_tiny_run(tmp_path)], db=db)
    _, layers = run_report("run-tiny-1", db)
    conv1 = layers[layers["name"] == "conv1"].iloc[0]
    assert conv1["measured_bytes_per_s"] == pytest.approx(64e6)  # 1e6 accesses/s x 64 bytes (the default)
    assert conv1["traffic_bytes"] > 0


BROKEN = {
    "tegrastats": ("tegrastats.log", "RAM 1234/3956MB CPU [5%@1428,off]\nRAM 1234/3956MB CPU [5%@1428,off]\n"),
    "power-csv": ("meter.csv", "time_s,power_mw\n0.00,1500\n0.01,lots\n"),
    "energy-probe": ("probe.csv", "power,voltage,current\n1.5,5.0,0.3\n1.5,five,0.3\n"),
    "ptdaemon": ("ptd.log", "Time,12-01-2026 10:00:00.000,Watts,12.5,Volts,230.0,Amps,0.05,PF,0.9,Mark,x\n"
                            "Time,13-45-2026 99:00:00.000,Watts,oops\n"
                            "Time,12-01-2026 10:00:01.000,Watts,12.5,Volts,230.0,Amps,0.05,PF,0.9,Mark,x\n"),
    "streamline-report": ("report.txt", "Foo Bar\n1 2\n"),
}


@pytest.mark.parametrize("kind", sorted(BROKEN))
def test_broken_logs_are_one_line_exit_2_and_leave_the_store_unchanged(tmp_path, capsys, kind):
    db = tmp_path / "store.duckdb"
    import_sources([bundles.write_bundle(tmp_path / "other", bundles.manifest(run_id="run-other"))], db=db)
    with duckdb.connect(str(db), read_only=True) as con:
        before = con.execute("SELECT count(*) FROM runs").fetchone()[0], \
            con.execute("SELECT count(*) FROM power_samples").fetchone()[0]
    name, text = BROKEN[kind]
    log = tmp_path / name
    log.write_text(text)
    assert main(["import", str(bundles.write_bundle(tmp_path / "tiny")), f"{kind}:{log}", "--offset-ms", "0",
                 "--interval-ms", "1000", "--db", str(db)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(log) in err[0], err
    with duckdb.connect(str(db), read_only=True) as con:
        after = con.execute("SELECT count(*) FROM runs").fetchone()[0], \
            con.execute("SELECT count(*) FROM power_samples").fetchone()[0]
    assert after == before


def test_a_broken_capture_is_one_line_exit_2(tmp_path, capsys):
    capture = tmp_path / "broken.apc"
    capture.mkdir()
    (capture / "captured.xml").write_text("<captured version='1'><target")
    (capture / "0000000000").write_bytes(b"\x05\x00")
    assert main(["import", str(bundles.write_bundle(tmp_path / "tiny")), str(capture), "--db",
                 str(tmp_path / "s.duckdb")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "broken.apc" in err[0]


def test_a_report_without_sync_marker_takes_the_axis_of_its_capture(tmp_path):
    db = tmp_path / "store.duckdb"
    report = tmp_path / "timeline.csv"
    report.write_text("Time [s],GPU Load [%]\n" + "".join(f"{i * 0.01:.2f},{i % 100}\n" for i in range(50)))
    import_sources([bundles.write_bundle(tmp_path / "tiny"), f"streamline-report:{report}",
                    capture_for_tiny_run(tmp_path)], db=db)
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute("SELECT kind, method, offset_ns FROM alignments ORDER BY kind").fetchall()
    assert rows == [("streamline-capture", "sync-marker", -30 * MS), ("streamline-report", "same-capture", -30 * MS)]
