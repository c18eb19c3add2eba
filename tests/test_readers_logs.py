"""Readers of measurement logs (tegrastats, power CSVs, energy probes, PTDaemon, Streamline text reports) on the
hand-written samples in tests/fixtures/logs (see the README there): exact values, time bases, options, and bad
input as one-line InputErrors naming the file and the place."""

import hashlib
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from importer.errors import InputError
from importer.readers.power_csv import read_energy_probe, read_power_csv, read_ptdaemon
from importer.readers.streamline_report import read_streamline_report
from importer.readers.tegrastats import read_tegrastats

LOGS = Path(__file__).parent / "fixtures" / "logs"
S = 10**9
MS = 10**6


def utc_ns(text: str) -> int:
    """'2023-08-03 10:15:41.250' (UTC) -> nanoseconds since the epoch, exactly."""
    whole, _, fraction = text.partition(".")
    seconds = int(datetime.strptime(whole, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC).timestamp())
    return seconds * S + int((fraction or "0").ljust(9, "0"))


def rail(source, name):
    return source.samples[source.samples["rail"] == name]


def column(frame, name):
    return frame[name].tolist()


def rails_of(source):
    return [(r.name, r.unit, r.total, r.update_interval_ms) for r in source.rails]


def raises_at(call, path, place, *words):
    """The call raises an InputError whose one line starts with the file and the place."""
    with pytest.raises(InputError) as caught:
        call()
    text = str(caught.value)
    assert "\n" not in text
    assert text.startswith(f"{path}: {place}: "), text
    for word in words:
        assert word in text, text
    return text


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


# ---------------------------------------------------------------------------------------------------------------
# tegrastats

TX2_RAILS = ["VDD_SYS_GPU", "VDD_SYS_SOC", "VDD_4V0_WIFI", "VDD_IN", "VDD_SYS_CPU", "VDD_SYS_DDR"]


def test_tegrastats_tx2_relative_times_other_output_and_a_cut_line():
    path = LOGS / "tegrastats_tx2.log"
    source = read_tegrastats(path, interval_ms=1000)
    assert source.kind == "tegrastats" and source.time_base == "relative" and source.anchor == {}
    assert source.content_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert rails_of(source) == [(r, "mW", r == "VDD_IN", 1000.0) for r in TX2_RAILS]
    assert list(source.samples.columns) == ["t_ns", "rail", "power_mw", "voltage_mv", "current_ma", "power_avg_mw",
                                            "power_third_mw"]
    assert source.samples["t_ns"].dtype == np.int64
    # Lines 1, 2 and 5 are tegrastats lines 0, 1, 2 (the blank line and the caffe output do not count); line 6 is cut.
    vdd_in = rail(source, "VDD_IN")
    assert column(vdd_in, "t_ns") == [0, 1 * S, 2 * S]
    assert column(vdd_in, "power_mw") == [1383.0, 4521.0, 4702.0]
    assert column(vdd_in, "power_avg_mw") == [1383.0, 2952.0, 3535.0]
    assert column(rail(source, "VDD_SYS_CPU"), "power_mw") == [153.0, 612.0, 598.0]
    assert column(rail(source, "VDD_SYS_CPU"), "power_avg_mw") == [191.0, 401.0, 467.0]
    assert source.samples[["voltage_mv", "current_ma", "power_third_mw"]].isna().all().all()
    assert len(source.samples) == 3 * 6
    assert list(source.samples["rail"][:6]) == TX2_RAILS
    notes = " | ".join(source.notes)
    assert "2 line(s) that are not tegrastats output skipped" in notes
    assert "1 line(s) start like tegrastats but are cut" in notes and "(line 6)" in notes


def test_tegrastats_nano_interval_and_total():
    source = read_tegrastats(LOGS / "tegrastats_nano.log", interval_ms=500)
    assert rails_of(source) == [("POM_5V_IN", "mW", True, 500.0), ("POM_5V_GPU", "mW", False, 500.0),
                                ("POM_5V_CPU", "mW", False, 500.0)]
    assert column(rail(source, "POM_5V_IN"), "t_ns") == [0, 500 * MS, 1000 * MS]
    assert column(rail(source, "POM_5V_IN"), "power_mw") == [933.0, 3542.0, 3617.0]
    assert column(rail(source, "POM_5V_GPU"), "power_mw") == [0.0, 1409.0, 1452.0]
    assert column(rail(source, "POM_5V_CPU"), "power_avg_mw") == [84.0, 105.0, 111.0]


def test_tegrastats_agx_xavier_names_without_vdd_and_no_total():
    source = read_tegrastats(LOGS / "tegrastats_xavier.log", interval_ms=1000)
    assert [r.name for r in source.rails] == ["GPU", "CPU", "SOC", "CV", "VDDRQ", "SYS5V"]
    assert not any(r.total for r in source.rails)
    assert column(rail(source, "GPU"), "power_mw") == [1155.0, 6421.0]
    assert column(rail(source, "SYS5V"), "power_avg_mw") == [2692.0, 3083.0]
    assert any("no whole-input rail" in n for n in source.notes)


def test_tegrastats_orin_date_stamps_are_utc_and_give_the_interval():
    source = read_tegrastats(LOGS / "tegrastats_orin.log")
    assert source.time_base == "utc"
    assert rails_of(source) == [("VDD_GPU_SOC", "mW", False, 1000.0), ("VDD_CPU_CV", "mW", False, 1000.0),
                                ("VIN_SYS_5V0", "mW", True, 1000.0), ("VDDQ_VDD2_1V8AO", "mW", False, 1000.0)]
    gpu = rail(source, "VDD_GPU_SOC")
    assert column(gpu, "t_ns") == [utc_ns("2023-08-03 10:15:41"), utc_ns("2023-08-03 10:15:42"),
                                   utc_ns("2023-08-03 10:15:43")]
    assert column(gpu, "power_mw") == [2390.0, 7970.0, 8368.0]
    assert column(gpu, "power_avg_mw") == [2390.0, 5180.0, 6243.0]
    assert column(rail(source, "VIN_SYS_5V0"), "power_mw") == [3234.0, 4855.0, 4853.0]
    assert any("inferred 1000 ms" in n for n in source.notes)


def test_tegrastats_three_values_shared_stamps_and_utc_offset():
    source = read_tegrastats(LOGS / "tegrastats_three_values.log", interval_ms=500, utc_offset_minutes=60)
    assert source.time_base == "utc"
    assert rails_of(source) == [("VDD_GPU_SOC", "mW", False, 500.0), ("VDD_CPU_CV", "mW", False, 500.0),
                                ("VIN_SYS_5V0", "mW", True, 500.0)]
    total = rail(source, "VIN_SYS_5V0")
    # Board time 09:30:05 at UTC+1; the second line shares the first's stamp and comes one interval after it.
    assert column(total, "t_ns") == [utc_ns("2024-11-20 08:30:05"), utc_ns("2024-11-20 08:30:05.5"),
                                     utc_ns("2024-11-20 08:30:06")]
    assert column(total, "power_mw") == [5139.0, 7120.0, 7517.0]
    assert column(total, "power_avg_mw") == [5139.0, 6129.0, 6592.0]
    assert column(total, "power_third_mw") == [5139.0, 7120.0, 7517.0]
    assert column(rail(source, "VDD_CPU_CV"), "power_third_mw") == [1188.0, 1585.0, 1585.0]
    assert any("UNKNOWN" in n for n in source.notes)


def test_tegrastats_interval_is_required_where_times_need_it(tmp_path):
    path = LOGS / "tegrastats_nano.log"
    raises_at(lambda: read_tegrastats(path), path, "line 1", "pass interval_ms")
    shared = LOGS / "tegrastats_three_values.log"
    raises_at(lambda: read_tegrastats(shared), shared, "line 2", "shares its date stamp", "interval_ms")
    raises_at(lambda: read_tegrastats(path, interval_ms=0), path, "option interval_ms", "positive")


def test_tegrastats_without_power_fields_is_a_tx1():
    path = LOGS / "tegrastats_tx1.log"
    text = raises_at(lambda: read_tegrastats(path, interval_ms=1000), path, "lines 1-2")
    assert text.endswith("no power fields (a TX1's tegrastats prints none: use the runner's ina3221 rails)")


def test_tegrastats_last_line_without_newline_is_cut(tmp_path):
    lines = (LOGS / "tegrastats_nano.log").read_text().splitlines()
    path = write(tmp_path, "killed.log", "\n".join(lines))  # complete-looking, but the writer was killed
    source = read_tegrastats(path, interval_ms=1000)
    assert column(rail(source, "POM_5V_IN"), "t_ns") == [0, 1 * S]
    assert any("(line 3)" in n for n in source.notes)


def test_tegrastats_date_without_year_needs_year(tmp_path):
    path = write(tmp_path, "noyear.log", "03-01 23:59:59 RAM 1/2MB VDD_IN 1200/1200\n"
                                         "03-02 00:00:00 RAM 1/2MB VDD_IN 1300/1250\n")
    raises_at(lambda: read_tegrastats(path), path, "line 1", "has no year", "year=")
    source = read_tegrastats(path, year=2024)  # a leap year: March 1st follows February 29th
    assert column(source.samples, "t_ns") == [utc_ns("2024-03-01 23:59:59"), utc_ns("2024-03-02 00:00:00")]


def test_tegrastats_broken_inputs(tmp_path):
    garbage = write(tmp_path, "garbage.log", b"\x00\x17binary\xff\nnot a tegrastats line\n")
    raises_at(lambda: read_tegrastats(garbage, interval_ms=1000), garbage, "line 1", "no tegrastats lines")
    bad_date = write(tmp_path, "date.log", "08-03-2023 10:15:41 RAM 1/2MB VDD_IN 1/1\n"
                                           "13-45-2023 10:15:42 RAM 1/2MB VDD_IN 1/1\n")
    raises_at(lambda: read_tegrastats(bad_date), bad_date, "line 2", "is not a date")
    mixed = write(tmp_path, "mixed.log", "08-03-2023 10:15:41 RAM 1/2MB VDD_IN 1/1\nRAM 1/2MB VDD_IN 1/1\n")
    raises_at(lambda: read_tegrastats(mixed, interval_ms=1000), mixed, "line 2", "has no date stamp")
    backwards = write(tmp_path, "back.log", "08-03-2023 10:15:41 RAM 1/2MB VDD_IN 1/1\n"
                                            "08-03-2023 10:15:40 RAM 1/2MB VDD_IN 1/1\n")
    raises_at(lambda: read_tegrastats(backwards), backwards, "line 2", "before the previous line")
    missing = tmp_path / "absent.log"
    with pytest.raises(InputError, match="absent.log: no such file"):
        read_tegrastats(missing)


# ---------------------------------------------------------------------------------------------------------------
# Generic power CSV


def test_power_csv_detects_time_and_power_columns_with_units():
    path = LOGS / "power_generic.csv"
    source = read_power_csv(path)
    assert source.kind == "power-csv" and source.time_base == "relative"
    assert source.content_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert rails_of(source) == [("VDD_IN", "mW", True, None), ("GPU", "mW", False, None)]
    assert list(source.samples.columns) == ["t_ns", "rail", "power_mw", "voltage_mv", "current_ma"]
    assert column(rail(source, "VDD_IN"), "t_ns") == [0, 100 * MS, 200 * MS, 300 * MS]
    assert column(rail(source, "VDD_IN"), "power_mw") == [1383.5, 4521.0, 4702.25, 4690.0]
    # GPU is in W; its empty cell at 0.2 s is no sample.
    assert column(rail(source, "GPU"), "t_ns") == [0, 100 * MS, 300 * MS]
    assert column(rail(source, "GPU"), "power_mw") == pytest.approx([152.0, 2450.0, 2601.0])
    notes = " | ".join(source.notes)
    assert "GPU (W): 1 empty cell(s) skipped" in notes and "board temp (C)" in notes


def test_power_csv_epoch_milliseconds_are_utc():
    source = read_power_csv(LOGS / "power_epoch_ms.csv")
    assert source.time_base == "utc"
    assert rails_of(source) == [("total", "mW", False, None)]
    assert column(source.samples, "t_ns") == [1714557600123 * MS, 1714557600223 * MS, 1714557600323 * MS]
    assert column(source.samples, "power_mw") == [5125.0, 5250.0, 6000.0]
    assert read_power_csv(LOGS / "power_epoch_ms.csv", total_rail="total").rails[0].total


def test_power_csv_explicit_columns_unit_and_time_unit():
    path = LOGS / "power_custom.csv"
    raises_at(lambda: read_power_csv(path), path, "line 1", "'stamp', 'chan_a', 'chan_b', 'note'", "time_column=",
              "power_columns=")
    source = read_power_csv(path, time_column="stamp", power_columns={"chan_a": "VDD_IN", "chan_b": "GPU"},
                            unit="mW", time_unit="ms")
    assert rails_of(source) == [("VDD_IN", "mW", True, None), ("GPU", "mW", False, None)]
    assert column(rail(source, "VDD_IN"), "t_ns") == [10 * MS, 20 * MS, 30 * MS]
    assert column(rail(source, "VDD_IN"), "power_mw") == [1500.0, 2500.0, 2600.0]
    assert column(rail(source, "GPU"), "power_mw") == [300.0, 310.0, 305.0]
    listed = read_power_csv(path, time_column="stamp", power_columns=["chan_a"], unit="W", time_unit="s")
    assert column(listed.samples, "power_mw") == [1.5e6, 2.5e6, 2.6e6]
    assert column(listed.samples, "t_ns") == [10 * S, 20 * S, 30 * S]
    assert [r.name for r in listed.rails] == ["chan_a"]


def test_power_csv_unit_option_overrides_the_header():
    source = read_power_csv(LOGS / "power_generic.csv", power_columns=["VDD_IN power (mW)"], unit="W")
    assert column(source.samples, "power_mw")[:2] == [1383500.0, 4521000.0]


def test_power_csv_times_exact_to_the_nanosecond_and_units_from_names(tmp_path):
    path = write(tmp_path, "epoch.csv", "timestamp,power_mw\n1714557600.123456789,100\n1714557600.123456790,101\n")
    source = read_power_csv(path)
    assert source.time_base == "utc"
    assert column(source.samples, "t_ns") == [1714557600123456789, 1714557600123456790]
    ns = read_power_csv(write(tmp_path, "ns.csv", "t_ns,Power [W]\n0,1\n1500,2\n"))
    assert column(ns.samples, "t_ns") == [0, 1500] and column(ns.samples, "power_mw") == [1000.0, 2000.0]
    plain = read_power_csv(write(tmp_path, "plain.csv", "Time,cpu_power_mw\n0.5,7\n"))
    assert column(plain.samples, "t_ns") == [500 * MS] and [r.name for r in plain.rails] == ["cpu"]
    assert any("read as seconds" in n for n in plain.notes)


def test_power_csv_broken_inputs(tmp_path):
    truncated = write(tmp_path, "cut.csv", "time_s,power_mw\n0.1,5\n0.2\n")
    raises_at(lambda: read_power_csv(truncated), truncated, "line 3", "1 cell; expected 2")
    bad = write(tmp_path, "bad.csv", "time_s,power_mw\n0.1,5\n\n0.2,abc\n")
    raises_at(lambda: read_power_csv(bad), bad, "line 4", "column 'power_mw' is 'abc'; expected a number")
    bad_time = write(tmp_path, "badtime.csv", "time_s,power_mw\n0.1,5\nsoon,6\n")
    raises_at(lambda: read_power_csv(bad_time), bad_time, "line 3 column 'time_s'", "expected a number")
    backwards = write(tmp_path, "back.csv", "time_s,power_mw\n0.2,5\n0.1,6\n")
    raises_at(lambda: read_power_csv(backwards), backwards, "line 3 column 'time_s'", "strictly increasing")
    no_unit = write(tmp_path, "nounit.csv", "time_s,power\n0.1,5\n")
    raises_at(lambda: read_power_csv(no_unit), no_unit, "line 1", "column 'power' has no power unit", "unit='mW'")
    garbage = write(tmp_path, "garbage.csv", b"\xff\xfe\x00garbage\n")
    raises_at(lambda: read_power_csv(garbage), garbage, "line 1", "expected UTF-8 text")
    raises_at(lambda: read_power_csv(LOGS / "power_generic.csv", unit="kJ"), LOGS / "power_generic.csv",
              "option unit")


# ---------------------------------------------------------------------------------------------------------------
# Workload Automation / devlib energy CSVs


def test_energy_probe_wa2_channel_file_needs_a_sample_rate():
    path = LOGS / "BAT.csv"
    raises_at(lambda: read_energy_probe(path), path, "line 1", "pass sample_rate_hz")
    source = read_energy_probe(path, sample_rate_hz=10000)
    assert source.kind == "energy-probe" and source.time_base == "relative"
    assert source.content_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert rails_of(source) == [("BAT", "mW", False, None)]  # the rail is named after the file, as WA2 names it
    assert column(source.samples, "t_ns") == [0, 100_000, 200_000]
    assert column(source.samples, "power_mw") == [1250.0, 1500.0, 1375.0]
    assert column(source.samples, "voltage_mv") == pytest.approx([4100.0, 4090.0, 4095.0])
    assert column(source.samples, "current_ma") == pytest.approx([305.0, 367.0, 336.0])
    raw_thousandths = read_energy_probe(path, sample_rate_hz=10000, unit="mW", rail="VBAT")
    assert [r.name for r in raw_thousandths.rails] == ["VBAT"]
    assert column(raw_thousandths.samples, "power_mw") == [1.25, 1.5, 1.375]


def test_energy_probe_wa2_pandas_index_column_is_ignored():
    source = read_energy_probe(LOGS / "A57.csv", sample_rate_hz=1000)
    assert [r.name for r in source.rails] == ["A57"]
    assert column(source.samples, "t_ns") == [0, 1 * MS]
    assert column(source.samples, "power_mw") == [225.0, 450.0]
    assert column(source.samples, "current_ma") == [250.0, 500.0]


def test_energy_probe_devlib_channels_and_daq():
    probe = read_energy_probe(LOGS / "energy_probe_devlib.csv", sample_rate_hz=10000)
    assert [r.name for r in probe.rails] == ["PORT_0", "PORT_1"]
    assert column(rail(probe, "PORT_0"), "power_mw") == [2100.0, 2200.0, 2300.0]
    assert column(rail(probe, "PORT_0"), "voltage_mv") == [5000.0, 5000.0, 4990.0]
    assert column(rail(probe, "PORT_1"), "current_ma") == [300.0, 310.0, 320.0]
    assert column(rail(probe, "PORT_1"), "t_ns") == [0, 100_000, 200_000]
    assert "layout: energy probe (power, voltage, current)" in probe.notes
    daq = read_energy_probe(LOGS / "daq_devlib.csv", sample_rate_hz=10000)
    assert [r.name for r in daq.rails] == ["A53", "A57"]
    assert column(rail(daq, "A57"), "power_mw") == [1200.0, 1250.0]
    assert column(rail(daq, "A53"), "voltage_mv") == [950.0, 950.0]
    assert rail(daq, "A53")["current_ma"].isna().all()
    assert "layout: DAQ (power, voltage)" in daq.notes


def test_energy_probe_juno_readenergy_keeps_cumulative_energy():
    source = read_energy_probe(LOGS / "juno_readenergy.csv", sample_rate_hz=10)
    assert [r.name for r in source.rails] == ["sys", "a57", "a53", "gpu"]
    assert list(source.samples.columns) == ["t_ns", "rail", "power_mw", "voltage_mv", "current_ma", "energy_mj"]
    a57 = rail(source, "a57")
    assert column(a57, "t_ns") == [0, 100 * MS]
    assert column(a57, "power_mw") == [900.0, 1080.0]
    assert column(a57, "current_ma") == [1000.0, 1200.0]
    assert column(a57, "energy_mj") == pytest.approx([20000.0, 20108.0])
    assert "layout: Juno readenergy" in source.notes


def test_energy_probe_time_column_and_power_from_energy(tmp_path):
    timed = read_energy_probe(LOGS / "arm_probe_devlib.csv")
    assert [r.name for r in timed.rails] == ["VDD_A57"]
    assert column(timed.samples, "t_ns") == [100_000, 200_000, 300_000]
    assert column(timed.samples, "power_mw") == [1500.0, 1600.0, 1700.0]
    energy_only = read_energy_probe(write(tmp_path, "e.csv", "time,sys_energy\n0,1.0\n0.1,1.2\n0.2,1.5\n"))
    assert column(energy_only.samples, "t_ns") == [100 * MS, 200 * MS]
    assert column(energy_only.samples, "power_mw") == pytest.approx([2000.0, 3000.0])


def test_energy_probe_broken_inputs(tmp_path):
    wrong = write(tmp_path, "wrong.csv", "x,y\n1,2\n")
    raises_at(lambda: read_energy_probe(wrong, sample_rate_hz=1), wrong, "line 1", "'x', 'y'", "power,voltage,current")
    cut = write(tmp_path, "cut.csv", "power,voltage,current\n1.0,5.0,0.2\n1.1,5.0\n")
    raises_at(lambda: read_energy_probe(cut, sample_rate_hz=1), cut, "line 3", "2 cells; expected 3")
    garbage = write(tmp_path, "garbage.csv", "power,voltage\n1.0,five\n")
    raises_at(lambda: read_energy_probe(garbage, sample_rate_hz=1), garbage, "line 2", "'voltage' is 'five'")
    raises_at(lambda: read_energy_probe(LOGS / "BAT.csv", sample_rate_hz=-1), LOGS / "BAT.csv",
              "option sample_rate_hz")


# ---------------------------------------------------------------------------------------------------------------
# MLPerf PTDaemon


def test_ptdaemon_samples_marks_and_skipped_lines():
    path = LOGS / "ptdaemon.log"
    source = read_ptdaemon(path)
    assert source.kind == "ptdaemon" and source.time_base == "utc"
    assert source.content_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert rails_of(source) == [("wall", "mW", True, 1000.0)]
    assert list(source.samples.columns) == ["t_ns", "rail", "power_mw", "voltage_mv", "current_ma", "power_factor"]
    assert column(source.samples, "t_ns") == [utc_ns("2021-03-22 19:18:09.364"), utc_ns("2021-03-22 19:18:10.364"),
                                              utc_ns("2021-03-22 19:18:11.365"), utc_ns("2021-03-22 19:18:12.364"),
                                              utc_ns("2021-03-22 19:18:13.364")]
    assert column(source.samples, "power_mw") == [69510.0, 69750.0, 85200.0, 86125.0, 70000.0]
    assert column(source.samples, "voltage_mv") == pytest.approx([120060.0, 120050.0, 119980.0, 119970.0, 120040.0])
    assert column(source.samples, "current_ma") == pytest.approx([633.5, 635.1, 775.6, 782.0, 637.7])
    assert column(source.samples, "power_factor") == [0.9137, 0.9141, 0.9155, 0.9179, 0.9144]
    assert column(source.markers, "t_ns") == [utc_ns("2021-03-22 19:18:09.364"), utc_ns("2021-03-22 19:18:11.365"),
                                              utc_ns("2021-03-22 19:18:13.364")]
    assert column(source.markers, "text") == ["notStarted", "resnet50_testing", "notStarted"]
    notes = " | ".join(source.notes)
    assert "line 9 ends without a newline (the log was cut): skipped" in notes
    assert "3 line(s) that are not samples skipped" in notes


def test_ptdaemon_utc_offset():
    source = read_ptdaemon(LOGS / "ptdaemon.log", utc_offset_minutes=-300)  # PTDaemon ran at UTC-5
    assert column(source.samples, "t_ns")[0] == utc_ns("2021-03-23 00:18:09.364")


def test_ptdaemon_broken_inputs(tmp_path):
    line = "Time,03-22-2021 19:18:{:02d}.364,Watts,{},Volts,120.0,Amps,0.6,PF,0.91,Mark,x\n"
    bad_value = write(tmp_path, "value.log", line.format(9, "69.5") + line.format(10, "oops") + line.format(11, "1"))
    raises_at(lambda: read_ptdaemon(bad_value), bad_value, "line 2", "Watts is 'oops'; expected a number")
    wrong = write(tmp_path, "wrong.log", line.format(9, "69.5") + "Time,03-22-2021 19:18:10.364,Watts,70\n"
                  + line.format(11, "1"))
    raises_at(lambda: read_ptdaemon(wrong), wrong, "line 2", "is not a PTDaemon sample", "Watts,<v>,Volts")
    garbage = write(tmp_path, "garbage.log", b"\x00\x01 nothing here\n")
    raises_at(lambda: read_ptdaemon(garbage), garbage, "line 1", "no PTDaemon sample lines")
    bad_date = write(tmp_path, "date.log", line.format(9, "1").replace("03-22", "22-03"))
    raises_at(lambda: read_ptdaemon(bad_date), bad_date, "line 1", "is not a date")


# ---------------------------------------------------------------------------------------------------------------
# Streamline text reports


def test_streamline_bookmarks_space_aligned():
    path = LOGS / "streamline_bookmarks.txt"
    source = read_streamline_report(path)
    assert source.kind == "streamline-report" and source.time_base == "capture"
    assert source.content_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert column(source.markers, "t_ns") == [250 * MS, 1500 * MS, 3750250000]
    assert column(source.markers, "text") == ["warmup start", "inference start", "inference end"]
    assert source.annotations.empty and source.counters is None and source.samples is None
    assert "1 line(s) before the header skipped" in source.notes


def test_streamline_timeline_space_aligned_counters_and_power_rails():
    source = read_streamline_report(LOGS / "streamline_timeline.txt")
    assert list(source.counter_info.itertuples(index=False, name=None)) == [
        ("CPU Activity: User", "CPU Activity", "User", "%"),
        ("CPU Activity: System", "CPU Activity", "System", "%"),
        ("Energy Probe: Power", "Energy Probe", "Power", "mW"),
        ("Energy Probe: Voltage", "Energy Probe", "Voltage", "V"),
    ]
    user = source.counters[source.counters["counter"] == "CPU Activity: User"]
    assert column(user, "t_ns") == [0, 10 * MS, 20 * MS]
    assert column(user, "value") == [12.5, 48.0, 51.25]
    assert user["core"].isna().all()
    assert rails_of(source) == [("Energy Probe: Power", "mW", False, None)]
    assert column(source.samples, "t_ns") == [0, 10 * MS, 20 * MS]
    assert column(source.samples, "power_mw") == [2150.0, 3275.5, 3301.0]
    assert source.markers is None and source.annotations is None


def test_streamline_timeline_csv_and_tsv():
    csv_source = read_streamline_report(LOGS / "streamline_timeline.csv")
    assert column(csv_source.samples, "t_ns") == [500_000, 1_500_000, 2_500_000]  # Time (ms)
    assert column(csv_source.samples, "power_mw") == [2500.0, 4750.0, 4800.0]  # Board Power [W]
    cycles = csv_source.counters[csv_source.counters["counter"] == "Cortex-A57 #1 Cycles"]
    assert column(cycles, "value") == [1200000.0, 2500000.0] and column(cycles, "core") == [1, 1]
    assert list(csv_source.counter_info["unit"].fillna("-")) == ["%", "-", "W"]
    tsv = read_streamline_report(LOGS / "streamline_timeline.tsv")
    assert rails_of(tsv) == [("VDD_IN", "mW", True, None)]
    assert column(tsv.samples, "t_ns") == [100_000, 200_000]
    assert column(tsv.samples, "power_mw") == [4100.0, 4350.0]
    jobs = tsv.counters[tsv.counters["counter"] == "Mali Core 0 Jobs"]
    assert column(jobs, "value") == [3.0, 5.0]
    assert "tab-separated" in tsv.notes


def test_streamline_log_view_annotations_and_markers():
    source = read_streamline_report(LOGS / "streamline_log.csv")
    a = source.annotations
    assert list(a.columns) == ["t_start_ns", "t_end_ns", "tid", "channel", "channel_name", "group_name", "text"]
    assert column(a, "t_start_ns") == [1000 * MS, 1040 * MS, 1100 * MS]
    assert column(a, "t_end_ns") == [1040 * MS, 1060 * MS, 1100500000]
    assert column(a, "tid") == [2047, 2047, 2050]
    assert column(a, "channel") == [1, 1, 2]
    assert column(a, "channel_name")[:2] == ["Network", "Network"] and a["channel_name"].isna().iloc[2]
    assert column(a, "group_name") == ["Layers", "Layers", "Sync"]
    assert column(a, "text") == ["conv1", "relu1, in place", "sync"]
    assert column(source.markers, "t_ns") == [1060 * MS]
    assert column(source.markers, "text") == ["iteration 0 done"]


def test_streamline_older_log_view_space_aligned_with_empty_cells():
    source = read_streamline_report(LOGS / "streamline_log_old.txt")
    a = source.annotations
    assert column(a, "t_start_ns") == [500 * MS] and column(a, "t_end_ns") == [512500000]
    assert column(a, "text") == ["fire2/squeeze"] and column(a, "channel") == [3]
    assert column(a, "group_name") == ["Layers"] and column(a, "tid") == [2047]
    assert column(source.markers, "t_ns") == [512500000, 1250 * MS]
    assert column(source.markers, "text") == ["checkpoint", "late mark"]
    assert any("'Core'" in n for n in source.notes)


def test_streamline_column_map():
    path = LOGS / "streamline_custom.csv"
    text = raises_at(lambda: read_streamline_report(path), path, "line 1", "'Stamp', 'Note'", "column_map")
    assert "time, duration, text" in text
    source = read_streamline_report(path, column_map={"time": "Stamp", "text": "Note", "time_unit": "ms"})
    assert column(source.markers, "t_ns") == [125_000, 250_000]
    assert column(source.markers, "text") == ["first", "second"]
    raises_at(lambda: read_streamline_report(path, column_map={"when": "Stamp"}), path, "option column_map",
              "'when' is unknown")
    raises_at(lambda: read_streamline_report(path, column_map={"time": "Clock"}), path, "line 1",
              "no time column")


def test_streamline_broken_inputs(tmp_path):
    cut = write(tmp_path, "cut.csv", "Time,Message\n0.1,a\n0.2\n")
    raises_at(lambda: read_streamline_report(cut), cut, "line 3", "1 cell; expected 2")
    bad_time = write(tmp_path, "time.txt", "Time [s]  Value\n0.1       1\nabc       2\n")
    raises_at(lambda: read_streamline_report(bad_time), bad_time, "line 3 column 'Time [s]'", "time is 'abc'")
    bad_value = write(tmp_path, "value.txt", "Time [s]  Power [mW]\n0.1  1\n0.2  2\n0.3  lots\n")
    raises_at(lambda: read_streamline_report(bad_value), bad_value, "line 4 column 'Power [mW]'", "not a number")
    garbage = write(tmp_path, "garbage.bin", b"\x00\x01\x02 garbage\n\x7f\n")
    raises_at(lambda: read_streamline_report(garbage), garbage, "line 1", "cannot understand this Streamline report")
    only_time = write(tmp_path, "only.csv", "Time\n0.1\n")
    raises_at(lambda: read_streamline_report(only_time), only_time, "line 1", "neither text nor numeric")
