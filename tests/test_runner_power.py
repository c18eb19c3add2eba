"""runner/power: the power sources (INA3221 iio and hwmon, RAPL, NVML, replay), the Sampler thread, open_sources.

The sysfs trees here are faithful fakes of the kernel's interface, built in tmp_path: the same folder layouts
and file names as the L4T ina3221x iio driver, the mainline ina3221 hwmon driver and powercap RAPL, each file
holding one number in the kernel's unit (mW, mV, mA, uJ) followed by a newline, as sysfs prints it. The sources
are pointed at them with ``root=`` (or $LAYERJOULE_SYSFS_ROOT). Values are changed by rewriting the files while
the sampler runs. NVML is replaced by a small stand-in ``pynvml`` module injected through sys.modules: it has
the functions the source calls (nvmlInit, nvmlDeviceGetCount, nvmlDeviceGetHandleByIndex, nvmlDeviceGetName,
nvmlDeviceGetPowerUsage in mW, nvmlShutdown) and NVMLError; it is a stand-in, not NVIDIA's library.
Nothing here touches a real sensor.
"""

import itertools
import json
import os
import subprocess
import sys
import textwrap
import time
import types
from pathlib import Path

import pytest

from runner.bundle import RailSample, layer_event, phase_event
from runner.power import (
    PowerSourceError,
    RenamedRails,
    Sampler,
    collect,
    open_sources,
    sampler_summary,
    split_specs,
    start_all,
    stop_all,
)
from runner.power.rapl import energy_delta_uj

ROOT = Path(__file__).resolve().parent.parent
PYTHON36 = ROOT / ".venv36" / "bin" / "python"
MS = 1_000_000


@pytest.fixture(autouse=True)
def _no_real_nvml(monkeypatch):
    """No test may find a real NVML, nor depend on the environment's sysfs root."""
    monkeypatch.setitem(sys.modules, "pynvml", None)  # `import pynvml` raises ImportError
    monkeypatch.delenv("LAYERJOULE_SYSFS_ROOT", raising=False)


def put(path, value):
    """Write a sysfs-like attribute atomically (a reader sees the old or the new value, never half)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name("." + path.name + ".tmp")
    tmp.write_text(f"{value}\n")
    os.replace(tmp, path)


TX1_RAILS = ("VDD_IN", "VDD_GPU", "VDD_CPU")


def tx1_iio(root, layout="bus", values=None):
    """A TX1 INA3221 (ina3221x iio, 1-0040): rail_name_0..2 and in_{power,voltage,current}<n>_input."""
    if layout == "bus":
        folder = Path(root) / "sys/bus/i2c/drivers/ina3221x/1-0040/iio:device0"
    else:  # the other L4T layout
        folder = Path(root) / "sys/devices/platform/7000c400.i2c/i2c-1/1-0040/iio_device"
    put(folder / "name", "ina3221x")
    for n, rail in enumerate(TX1_RAILS):
        put(folder / f"rail_name_{n}", rail)
        put(folder / f"warn_current_limit_{n}", 5000)
        put(folder / f"crit_current_limit_{n}", 6000)
    set_tx1(folder, values or {"VDD_IN": (2500, 5048, 495), "VDD_GPU": (120, 1000, 120), "VDD_CPU": (310, 1000, 310)})
    return folder


def set_tx1(folder, values):
    """values: {rail: (power mW, voltage mV, current mA)}."""
    for n, rail in enumerate(TX1_RAILS):
        if rail in values:
            p, v, c = values[rail]
            put(folder / f"in_power{n}_input", p)
            put(folder / f"in_voltage{n}_input", v)
            put(folder / f"in_current{n}_input", c)


def hwmon_nx(root, first=1):
    """A Xavier-NX-like hwmon ina3221: in1 VDD_IN, in2 VDD_CPU_GPU_CV, in3 NC, in4-6 shunts, in7 shunt sum."""
    folder = Path(root) / "sys/class/hwmon/hwmon2"
    put(folder / "name", "ina3221")
    put(folder / "update_interval", 140)
    labels = {first: "VDD_IN", first + 1: "VDD_CPU_GPU_CV", first + 2: "NC"}
    volts = {first: 5072, first + 1: 5064, first + 2: 0}
    amps = {first: 1234, first + 1: 402, first + 2: 0}
    for n, label in labels.items():
        put(folder / f"in{n}_label", label)
        put(folder / f"in{n}_input", volts[n])
        put(folder / f"curr{n}_input", amps[n])
    for n in (4, 5, 6):
        put(folder / f"in{n}_input", 12)  # shunt voltages: no label
    put(folder / "in7_label", "sum of shunt voltages")
    put(folder / "in7_input", 36)
    put(folder / "curr4_input", 1636)  # sum current
    return folder


def rapl(root, packages=1, energy=1_000_000, max_range=262_143_328_850):
    base = Path(root) / "sys/class/powercap"
    for k in range(packages):
        zone = base / f"intel-rapl:{k}"
        put(zone / "name", f"package-{k}")
        put(zone / "energy_uj", energy)
        put(zone / "max_energy_range_uj", max_range)
        put(zone / f"intel-rapl:{k}:0" / "name", "core")  # a sub-zone: not used
        put(zone / f"intel-rapl:{k}:0" / "energy_uj", 5)
    put(base / f"intel-rapl:{packages}" / "name", "psys")  # platform zone: not a package
    put(base / f"intel-rapl:{packages}" / "energy_uj", 7)
    put(base / f"intel-rapl:{packages}" / "max_energy_range_uj", max_range)
    return base / "intel-rapl:0"


def wait_for(cond, timeout=5.0):
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise AssertionError("condition not met in time")
        time.sleep(0.002)


def strictly_increasing_per_rail(samples):
    last = {}
    for s in samples:
        if s.rail in last and s.t_ns <= last[s.rail]:
            return False
        last[s.rail] = s.t_ns
    return True


def run_events(t0, t1):
    return [phase_event("setup", t0, t0 + 10 * MS), phase_event("inference", t0 + 10 * MS, t1),
            layer_event("inference", 0, 0, "conv1", "Convolution", 1, t0 + 10 * MS, t0 + 20 * MS)]


# ---------------------------------------------------------------------------------------------------------
# INA3221 (iio)


def test_tx1_iio_discovery_values_and_describe(tmp_path):
    folder = tx1_iio(tmp_path)
    sources, messages = open_sources(["ina3221"], root=tmp_path)
    [src] = sources
    assert messages == [f"ina3221: using {folder} (VDD_IN, VDD_GPU, VDD_CPU)"]
    assert (src.name, src.kind, src.simulated, src.update_interval_ms) == ("ina3221", "ina3221", False, 54.0)
    assert src.read() == [2500, 5048, 495, 120, 1000, 120, 310, 1000, 310]
    d = src.describe()
    assert d["update_interval_ms"] == 54.0 and d["poll_ms"] == 54.0
    assert [(r["name"], r["unit"], r["total"]) for r in d["rails"]] == [
        ("VDD_IN", "mW", True), ("VDD_GPU", "mW", False), ("VDD_CPU", "mW", False)]
    assert d["device"] == str(folder) and d["i2c"] == "1-0040" and d["driver"].startswith("ina3221x")
    assert d["channels"] == {"VDD_IN": 0, "VDD_GPU": 1, "VDD_CPU": 2}
    assert "0x7607" in d["update_interval_source"]
    assert src.samples([]) == [] and src.ground_truth([]) == []


def test_iio_update_interval_and_poll_overrides(tmp_path):
    tx1_iio(tmp_path)
    [src], _ = open_sources(["ina3221"], root=tmp_path, update_interval_ms=27.0, poll_ms=5)
    d = src.describe()
    assert (d["update_interval_ms"], d["poll_ms"], d["update_interval_source"]) == (27.0, 5.0, "given")
    assert any("repeat values" in n for n in d["notes"])


def test_other_l4t_layout_and_nc_rail_skipped(tmp_path):
    folder = tx1_iio(tmp_path, layout="platform")
    put(folder / "rail_name_2", "NC")
    [src], messages = open_sources(["auto"], root=tmp_path)
    assert messages == [f"auto: using ina3221 at {folder} (VDD_IN, VDD_GPU)"]
    assert [r["name"] for r in src.describe()["rails"]] == ["VDD_IN", "VDD_GPU"]
    assert src.describe()["i2c"] == "1-0040"
    assert src.read() == [2500, 5048, 495, 120, 1000, 120]


def test_sampler_reads_changing_values_with_increasing_times(tmp_path):
    folder = tx1_iio(tmp_path)
    [src], _ = open_sources(["ina3221"], root=tmp_path, poll_ms=5)
    src.start()
    try:
        wait_for(lambda: src.sampler.reads >= 3)
        set_tx1(folder, {"VDD_IN": (4100, 5040, 813), "VDD_GPU": (1500, 1000, 1500), "VDD_CPU": (450, 1000, 450)})
        seen = src.sampler.reads
        wait_for(lambda: src.sampler.reads >= seen + 3)
    finally:
        src.stop()
    samples = src.samples(None)
    assert all(isinstance(s, RailSample) for s in samples)
    assert strictly_increasing_per_rail(samples)
    by_rail = {r: [s for s in samples if s.rail == r] for r in TX1_RAILS}
    assert len({len(v) for v in by_rail.values()}) == 1 and len(by_rail["VDD_IN"]) >= 6
    # exact values: first the old triple, then (after the change) the new one, never anything else
    assert (by_rail["VDD_IN"][0].power_mw, by_rail["VDD_IN"][0].voltage_mv, by_rail["VDD_IN"][0].current_ma) == (
        2500, 5048, 495)
    assert (by_rail["VDD_IN"][-1].power_mw, by_rail["VDD_IN"][-1].voltage_mv, by_rail["VDD_IN"][-1].current_ma) == (
        4100, 5040, 813)
    powers = [s.power_mw for s in by_rail["VDD_GPU"]]
    assert set(powers) == {120, 1500} and powers == sorted(powers)
    assert all(type(s.power_mw) is int for s in samples)
    stats = src.describe()["sampler"]
    assert stats["reads"] == len(by_rail["VDD_IN"]) and stats["failed_reads"] == 0 and stats["stopped"]
    assert stats["cpu_s"] is not None and 0 <= stats["cpu_share_of_one_core"] <= 1.5


def test_sampler_survives_a_transient_read_error(tmp_path):
    folder = tx1_iio(tmp_path)
    [src], _ = open_sources(["ina3221"], root=tmp_path, poll_ms=2)
    src.start()
    try:
        wait_for(lambda: src.sampler.reads >= 2)
        gone = folder / "in_power1_input"
        gone.unlink()  # the driver's file vanishes for a moment (an I2C error reads the same: an OSError)
        wait_for(lambda: src.sampler.failed_reads >= 2)
        put(gone, 777)
        seen = src.sampler.reads
        wait_for(lambda: src.sampler.reads >= seen + 2)
        assert src.sampler.is_alive()
    finally:
        src.stop()
    stats = src.stats()
    assert stats["failed_reads"] >= 2 and "FileNotFoundError" in stats["first_error"]
    gpu = [s.power_mw for s in src.samples(None) if s.rail == "VDD_GPU"]
    assert gpu[0] == 120 and gpu[-1] == 777
    assert strictly_increasing_per_rail(src.samples(None))


def test_sampler_stops_promptly_during_a_long_sleep(tmp_path):
    tx1_iio(tmp_path)
    [src], _ = open_sources(["ina3221"], root=tmp_path, poll_ms=5000)
    src.start()
    wait_for(lambda: src.sampler.reads >= 1)
    t0 = time.monotonic()
    src.stop()
    assert time.monotonic() - t0 < 0.5
    assert not src.sampler.is_alive() and src.sampler.reads == 1
    src.stop()  # twice is harmless


def test_sampler_thread_affinity_and_its_own_cpu_time():
    cpus_before = os.sched_getaffinity(0)
    first = min(cpus_before)
    sampler = Sampler(lambda: [1.0], 0.002, cpus=[first])
    sampler.start()
    wait_for(lambda: sampler.reads >= 5)
    assert sampler.stop()
    stats = sampler.stats()
    assert stats["affinity"] == [first] and stats["affinity_requested"] == [first]
    assert os.sched_getaffinity(0) == cpus_before  # only the sampler thread was pinned
    assert stats["cpu_s"] is not None and stats["reads"] >= 5 and stats["reads_per_s"] > 0
    times, rows = sampler.readings()
    assert rows[0] == (1.0,) and all(b > a for a, b in itertools.pairwise(times))


def test_sampler_does_not_busy_loop():
    sampler = Sampler(lambda: [1.0], 0.05)
    sampler.start()
    time.sleep(0.3)
    sampler.stop()
    assert 3 <= sampler.reads <= 9  # ~ 0.3 s / 50 ms + the first read


def test_sampler_counts_failures_of_any_kind():
    calls = []

    def read():
        calls.append(1)
        if len(calls) % 2:
            raise OSError(5, "Input/output error")
        return [len(calls)]

    sampler = Sampler(read, 0.001)
    sampler.start()
    wait_for(lambda: sampler.reads >= 3 and sampler.failed_reads >= 3)
    sampler.stop()
    assert sampler.stats()["last_error"].startswith("OSError")


# ---------------------------------------------------------------------------------------------------------
# hwmon


def test_hwmon_channels_from_1_nc_and_shunt_sum_skipped(tmp_path):
    folder = hwmon_nx(tmp_path, first=1)
    [src], messages = open_sources(["hwmon"], root=tmp_path)
    assert messages == [f"hwmon: using {folder} (VDD_IN, VDD_CPU_GPU_CV)"]
    d = src.describe()
    assert [(r["name"], r["total"]) for r in d["rails"]] == [("VDD_IN", True), ("VDD_CPU_GPU_CV", False)]
    assert d["update_interval_ms"] == 140.0 and d["update_interval_source"].endswith("update_interval")
    assert d["channels"] == {"VDD_IN": 1, "VDD_CPU_GPU_CV": 2} and d["channel_numbering"] == "from 1"
    assert src.read() == [5072 * 1234 / 1000, 5072, 1234, round(5064 * 402 / 1000, 3), 5064, 402]
    src.start()
    wait_for(lambda: src.sampler.reads >= 2)
    src.stop()
    samples = src.samples(None)
    assert strictly_increasing_per_rail(samples)
    assert samples[0] == RailSample(samples[0].t_ns, "VDD_IN", 6258.848, 5072, 1234)
    assert samples[1] == RailSample(samples[0].t_ns, "VDD_CPU_GPU_CV", 2035.728, 5064, 402)


def test_hwmon_channels_from_0(tmp_path):
    hwmon_nx(tmp_path, first=0)
    [src], _ = open_sources(["auto"], root=tmp_path, update_interval_ms=8)
    d = src.describe()
    assert src.kind == "hwmon" and d["channel_numbering"] == "from 0"
    assert d["channels"] == {"VDD_IN": 0, "VDD_CPU_GPU_CV": 1}
    assert (d["update_interval_ms"], d["update_interval_source"]) == (8.0, "given")


# ---------------------------------------------------------------------------------------------------------
# RAPL


def test_rapl_wrap_around_arithmetic():
    assert energy_delta_uj(100, 400, 1000) == 300
    assert energy_delta_uj(900, 99, 1000) == 1000 + 1 - 900 + 99


def test_rapl_package_zones_power_and_wrap(tmp_path):
    max_range = 262_143_328_850
    zone = rapl(tmp_path, energy=max_range - 50_000)
    [src], messages = open_sources(["rapl"], root=tmp_path, poll_ms=10)
    assert messages == [f"rapl: using {zone.parent} (package-0)"]
    d = src.describe()
    assert [(r["name"], r["total"]) for r in d["rails"]] == [("package-0", True)]  # one package: it is the total
    assert d["update_interval_ms"] == 10.0 and d["zones"] == ["intel-rapl:0"]
    assert d["max_energy_range_uj"] == [max_range]
    # exact power from made-up readings, across a wrap: 150_001 uJ in 10 ms = 15_000.1 mW
    rows = src._rows([0, 10 * MS, 20 * MS], [(max_range - 50_000.0,), (100_000.0,), (100_000.0,)])
    assert rows == [RailSample(10 * MS, "package-0", 15000.1, None, None), RailSample(20 * MS, "package-0", 0.0,
                                                                                   None, None)]
    # live: the counter wraps while the sampler runs; the energy of the samples adds up to what was written
    src.start()
    try:
        wait_for(lambda: src.sampler.reads >= 2)
        put(zone / "energy_uj", 250_000)
        seen = src.sampler.reads
        wait_for(lambda: src.sampler.reads >= seen + 2)
    finally:
        src.stop()
    samples = src.samples(None)
    times, _ = src.sampler.readings()
    assert len(samples) == len(times) - 1 and strictly_increasing_per_rail(samples)
    energy_uj = sum(s.power_mw * (t1 - t0) / 1e6 for s, t0, t1 in zip(samples, times[:-1], times[1:], strict=True))
    assert energy_uj == pytest.approx(50_000 + 1 + 250_000, rel=1e-6)


def test_rapl_several_packages_none_total(tmp_path):
    rapl(tmp_path, packages=2)
    [src], _ = open_sources(["rapl"], root=tmp_path)
    assert [(r["name"], r["total"]) for r in src.describe()["rails"]] == [("package-0", False), ("package-1", False)]
    assert src.describe()["poll_ms"] == 50.0


# ---------------------------------------------------------------------------------------------------------
# auto, explicit, errors, environment


def test_auto_prefers_ina3221_over_rapl(tmp_path):
    folder = tx1_iio(tmp_path)
    rapl(tmp_path)
    sources, messages = open_sources(["auto"], root=tmp_path)
    assert [s.kind for s in sources] == ["ina3221"]
    assert messages == [f"auto: using ina3221 at {folder} (VDD_IN, VDD_GPU, VDD_CPU)"]


def test_auto_finds_rapl_alone(tmp_path):
    rapl(tmp_path)
    [src], _ = open_sources("auto", root=tmp_path)
    assert src.kind == "rapl"


def test_auto_with_nothing_is_timing_only(tmp_path):
    assert open_sources(["auto"], root=tmp_path) == ([], ["auto: no power source found; timing only"])
    assert open_sources(None, root=tmp_path)[0] == []


def test_auto_notes_an_unusable_source(tmp_path):
    zone = rapl(tmp_path)
    (zone / "energy_uj").unlink()
    (zone / "energy_uj").mkdir()  # unreadable as a file (root ignores chmod, so a folder stands in)
    sources, [message] = open_sources(["auto"], root=tmp_path)
    assert sources == [] and message.startswith("auto: no power source found; timing only (rapl: cannot read")


@pytest.mark.parametrize("kind,looked", [("ina3221", "rail_name_<n>"), ("hwmon", "ina3221"),
                                         ("rapl", "intel-rapl"), ("nvml", "pynvml")])
def test_explicit_missing_source_raises_one_line(tmp_path, kind, looked):
    with pytest.raises(PowerSourceError) as e:
        open_sources([kind], root=tmp_path)
    text = str(e.value)
    assert text.startswith(kind + ":") and looked in text and "\n" not in text
    if kind != "nvml":
        assert str(tmp_path) in text


def test_bad_specs():
    for specs, words in ((["tegrastats"], "unknown power source"), (["auto", "rapl"], "cannot be combined"),
                         (["none", "simulate"], "cannot be combined"), (["rapl", "rapl"], "twice"),
                         (["replay:"], "give a file")):
        with pytest.raises(PowerSourceError, match=words):
            open_sources(specs, root="/nonexistent")
    assert split_specs("ina3221, rapl") == ["ina3221", "rapl"]
    assert split_specs(["replay:/a,b.csv"]) == ["replay:/a,b.csv"]


def test_environment_root(tmp_path, monkeypatch):
    tx1_iio(tmp_path)
    monkeypatch.setenv("LAYERJOULE_SYSFS_ROOT", str(tmp_path))
    [src], _ = open_sources(["ina3221"])
    assert src.rail_names == list(TX1_RAILS)


def test_none_simulate_and_unique_rail_names(tmp_path):
    assert open_sources(["none"]) == ([], ["none: no power source; timing only"])
    tx1_iio(tmp_path)
    sources, messages = open_sources(["ina3221", "simulate"], root=tmp_path, noise_mw=0.0, seed=3)
    real, sim = sources
    assert sim.kind == "simulate" and sim.simulated and isinstance(sim, RenamedRails)
    names = [r["name"] for s in sources for r in s.describe()["rails"]]
    assert names == ["VDD_IN", "VDD_GPU", "VDD_CPU", "ina3221-sim.VDD_IN", "ina3221-sim.VDD_GPU",
                     "ina3221-sim.VDD_CPU"]
    assert sim.describe()["rails"][0]["recorded_as"] == "VDD_IN" and sim.rail_names[0] == "ina3221-sim.VDD_IN"
    assert any(m.startswith("rail VDD_IN of ina3221-sim renamed ina3221-sim.VDD_IN") for m in messages)
    events = run_events(10**12, 10**12 + 500 * MS)
    sim_samples = sim.samples(events)
    assert {s.rail for s in sim_samples} == {"ina3221-sim.VDD_IN", "ina3221-sim.VDD_GPU", "ina3221-sim.VDD_CPU"}
    assert {g.rail for g in sim.ground_truth(events)} == {"ina3221-sim.VDD_IN", "ina3221-sim.VDD_GPU",
                                                          "ina3221-sim.VDD_CPU"}
    start_all(sources)
    wait_for(lambda: real.sampler.reads >= 1)
    stop_all(sources)
    samples, truth = collect(sources, events)
    assert {s.rail for s in samples} >= {"VDD_IN", "ina3221-sim.VDD_IN"} and truth
    assert [s.t_ns for s in samples] == sorted(s.t_ns for s in samples)
    [line] = sampler_summary(sources)
    assert line.startswith("ina3221: ") and "failed" in line and "of one core" in line


# ---------------------------------------------------------------------------------------------------------
# replay


def test_replay_shifts_onto_the_run_clock(tmp_path):
    csv_path = tmp_path / "recorded.csv"
    lines = ["t_ns,rail,power_mw,voltage_mv,current_ma"]
    t_rec = 5_000_000_000
    for k in range(20):
        t = t_rec + k * 54 * MS
        lines.append(f"{t},VDD_IN,{2000 + k},5000,{400 + k}")
        lines.append(f"{t + 1000},VDD_GPU,{100.5 + k},,")
    csv_path.write_text("\n".join(lines) + "\n")
    [src], [message] = open_sources([f"replay:{csv_path}"])
    assert message.startswith(f"replay: replaying {csv_path} onto this run's clock (VDD_IN, VDD_GPU)")
    d = src.describe()
    assert (d["kind"], d["simulated"], d["update_interval_ms"]) == ("replay", True, 54.0)
    assert [(r["name"], r["total"]) for r in d["rails"]] == [("VDD_IN", True), ("VDD_GPU", False)]
    assert d["description"].startswith(f"replayed from {csv_path}")
    t0 = 10**12
    events = run_events(t0, t0 + 500 * MS)  # the run lasts 500 ms: samples 0..9 of each rail fit
    src.start()
    src.stop()
    samples = src.samples(events)
    assert samples[0] == RailSample(t0, "VDD_IN", 2000, 5000, 400)
    assert samples[1] == RailSample(t0 + 1000, "VDD_GPU", 100.5, None, None)
    assert samples[-1].t_ns == t0 + 9 * 54 * MS + 1000 and len(samples) == 20
    assert strictly_increasing_per_rail(samples) and src.ground_truth(events) == []


def test_replay_errors(tmp_path):
    with pytest.raises(PowerSourceError, match="cannot read"):
        open_sources([f"replay:{tmp_path / 'missing.csv'}"])
    bad = tmp_path / "bad.csv"
    bad.write_text("time,rail,power\n1,VDD_IN,3\n")
    with pytest.raises(PowerSourceError, match="lacks column"):
        open_sources([f"replay:{bad}"])


# ---------------------------------------------------------------------------------------------------------
# NVML (a stand-in pynvml module)


def fake_pynvml(powers):
    """A stand-in for the pynvml module: GPU0 reports power (next value of ``powers`` per call), GPU1 cannot."""
    m = types.ModuleType("pynvml")
    state = {"init": 0, "shutdown": 0, "calls": 0}

    class NVMLError(Exception):
        pass

    def get_power(handle):
        if handle == 1:
            raise NVMLError("Not Supported")
        state["calls"] += 1
        return powers[min(state["calls"] - 1, len(powers) - 1)]

    m.NVMLError = NVMLError
    m.nvmlInit = lambda: state.__setitem__("init", state["init"] + 1)
    m.nvmlShutdown = lambda: state.__setitem__("shutdown", state["shutdown"] + 1)
    m.nvmlDeviceGetCount = lambda: 2
    m.nvmlDeviceGetHandleByIndex = lambda i: i
    m.nvmlDeviceGetName = lambda h: b"NVIDIA Stand-in GPU"
    m.nvmlDeviceGetPowerUsage = get_power
    m.nvmlSystemGetDriverVersion = lambda: "999.1"
    m.state = state
    return m


def test_nvml_with_a_stand_in_module(monkeypatch, tmp_path):
    fake = fake_pynvml([61_000, 62_500, 75_250])
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    [src], [message] = open_sources(["auto"], root=tmp_path, poll_ms=2)
    assert message == "auto: using nvml at NVML (GPU0)"
    d = src.describe()
    assert (d["kind"], d["simulated"], d["update_interval_ms"], d["poll_ms"]) == ("nvml", False, 20.0, 2.0)
    assert d["rails"] == [{"name": "GPU0", "unit": "mW", "total": False}]
    assert d["gpus"] == {"GPU0": "NVIDIA Stand-in GPU"} and d["driver_version"] == "999.1"
    assert any("GPU1: no power reading" in n for n in d["notes"])
    src.start()
    wait_for(lambda: src.sampler.reads >= 4)
    src.stop()
    powers = [s.power_mw for s in src.samples(None)]
    assert powers[:3] == [62_500, 75_250, 75_250] and set(powers) == {62_500, 75_250}  # 61_000: the probe
    assert fake.state["init"] == fake.state["shutdown"] == 2


# ---------------------------------------------------------------------------------------------------------
# the board's Python


@pytest.mark.skipif(not PYTHON36.exists(), reason="no .venv36 (python3.6 not on this machine)")
def test_core_paths_on_python36(tmp_path):
    tx1_iio(tmp_path)
    hwmon_nx(tmp_path / "hw")
    rapl(tmp_path / "x86")
    script = textwrap.dedent("""
        import json, sys, time
        from runner.power import open_sources, start_all, stop_all, collect
        out = {}
        for root in sys.argv[1:]:
            sources, messages = open_sources(["auto"], root=root, poll_ms=5, sampler_cpus=[0])
            start_all(sources)
            time.sleep(0.1)
            stop_all(sources)
            samples, _ = collect(sources, [])
            out[root] = {"messages": messages, "describe": [s.describe() for s in sources],
                         "samples": [list(s) for s in samples[:3]]}
        print(json.dumps(out))
    """)
    roots = [str(tmp_path), str(tmp_path / "hw"), str(tmp_path / "x86")]
    done = subprocess.run([str(PYTHON36), "-c", script] + roots, cwd=ROOT, capture_output=True, text=True,
                          timeout=60, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    tx1, hw, x86 = (out[r] for r in roots)
    assert tx1["describe"][0]["kind"] == "ina3221" and tx1["samples"][0][1:] == ["VDD_IN", 2500, 5048, 495]
    assert tx1["describe"][0]["sampler"]["failed_reads"] == 0 and tx1["describe"][0]["sampler"]["cpu_s"] is not None
    assert tx1["describe"][0]["sampler"]["affinity"] == [0]
    assert hw["describe"][0]["kind"] == "hwmon" and hw["samples"][0][1:] == ["VDD_IN", 6258.848, 5072, 1234]
    assert x86["describe"][0]["kind"] == "rapl" and x86["samples"][0][1:] == ["package-0", 0.0, None, None]
