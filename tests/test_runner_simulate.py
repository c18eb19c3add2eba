"""runner/simulate.py: the simulated board's true power, the simulated INA3221 and the ground truth."""

from fractions import Fraction

import numpy as np
import pytest

from runner.bundle import layer_event, phase_event
from runner.simulate import (
    RAIL_NAMES,
    PowerModel,
    SimulatedINA3221,
    StepPower,
    sensor_times,
    sensor_values,
)

MS = 1_000_000  # ns


def _step():
    # one rail: 1000 mW on [0, 10 ms), 2000 on [10, 30 ms), 500 on [30, 100 ms); 300 mW outside
    return StepPower([0, 10 * MS, 30 * MS, 100 * MS], [[1000.0], [2000.0], [500.0]], [300.0], rails=["R"])


def _exact_average(t_end, width):
    """Window average of _step() over (t_end - width, t_end] with exact rational arithmetic."""
    pieces = [(-10**12, 0, 300), (0, 10 * MS, 1000), (10 * MS, 30 * MS, 2000), (30 * MS, 100 * MS, 500),
              (100 * MS, 10**12, 300)]
    lo, hi = t_end - width, t_end
    total = sum(Fraction(max(0, min(hi, b) - max(lo, a)) * p) for a, b, p in pieces)
    return total / width


@pytest.mark.parametrize("t_end", [54 * MS, 30 * MS, 12 * MS + 345, 100 * MS, 131 * MS, 400 * MS])
def test_window_average_is_exact(t_end):
    got = _step().window_average_mw([t_end], 54 * MS)[0, 0]
    assert got == pytest.approx(float(_exact_average(t_end, 54 * MS)), rel=1e-12)


def test_sensor_with_noise_0_gives_the_rounded_exact_average():
    times = np.array([54, 60, 84, 108, 125, 162], dtype=np.int64) * MS + 17
    values = sensor_values(_step(), times, 54 * MS, noise_mw=0)
    assert values.dtype == np.int64
    expected = [round(_exact_average(int(t), 54 * MS)) for t in times]
    assert values[:, 0].tolist() == expected
    # a window inside one step reads that step's power exactly
    assert sensor_values(_step(), [95 * MS], 54 * MS)[0, 0] == 500  # (41 ms, 95 ms] lies in one step
    assert sensor_values(_step(), [90 * MS], 50 * MS, noise_mw=0)[0, 0] == 500
    assert sensor_values(_step(), [80 * MS], 54 * MS, noise_mw=0)[0, 0] == round(
        (4 * 2000 + 50 * 500) / 54)


def test_vectorised_average_matches_a_brute_force_integral():
    rng = np.random.RandomState(5)
    edges = np.cumsum(rng.randint(1, 5 * MS, size=400)).astype(np.int64) + 10**12
    values = rng.uniform(0, 5000, size=(399, 3))
    step = StepPower(edges, values, [100.0, 10.0, 20.0])
    times = np.sort(rng.randint(edges[0] - 60 * MS, edges[-1] + 60 * MS, size=50)).astype(np.int64)
    got = step.window_average_mw(times, 54 * MS)
    for i, t in enumerate(times.tolist()):
        lo, hi = t - 54 * MS, t
        total = np.zeros(3)
        bounds = [(-10**18, int(edges[0]), step.outside)] + [
            (int(edges[k]), int(edges[k + 1]), values[k]) for k in range(len(values))] + [
            (int(edges[-1]), 10**18, step.outside)]
        for a, b, p in bounds:
            total += max(0, min(hi, b) - max(lo, a)) * p
        np.testing.assert_allclose(got[i], total / (54 * MS), rtol=1e-9)


def test_noise_is_seeded_gaussian_with_the_given_sigma():
    step = StepPower([0, 10**12], [[1234.4]], [1234.4], rails=["R"])
    times = np.arange(1, 20001, dtype=np.int64) * 54 * MS
    a = sensor_values(step, times, 54 * MS, noise_mw=10, rng=np.random.RandomState(1))[:, 0]
    b = sensor_values(step, times, 54 * MS, noise_mw=10, rng=np.random.RandomState(1))[:, 0]
    c = sensor_values(step, times, 54 * MS, noise_mw=10, rng=np.random.RandomState(2))[:, 0]
    assert (a == b).all() and not (a == c).all()
    err = a - 1234.4
    assert abs(err.mean()) < 0.5
    assert 9.5 < err.std() < 10.5
    assert (sensor_values(step, times[:5], 54 * MS, noise_mw=0)[:, 0] == 1234).all()


def test_sensor_times():
    t = sensor_times(1000, 1000 + 54 * MS * 3 + 7, 54 * MS, phase_ns=7)  # the end is included
    assert t.tolist() == [1007, 1007 + 54 * MS, 1007 + 108 * MS, 1007 + 162 * MS]
    assert sensor_times(0, 5, 54 * MS, phase_ns=10).tolist() == []


def _run_events():
    """A hand-made run: setup, idle, one inference iteration of three layers with gaps, idle."""
    t0 = 10**12
    return [
        phase_event("setup", t0, t0 + 500 * MS),
        phase_event("idle", t0 + 500 * MS, t0 + 1500 * MS),
        phase_event("inference", t0 + 1500 * MS, t0 + 1600 * MS),
        layer_event("inference", 0, 0, "conv1", "Convolution", 1, t0 + 1500 * MS + 40_000, t0 + 1530 * MS),
        layer_event("inference", 0, 1, "relu1", "ReLU", 1, t0 + 1530 * MS + 25_000, t0 + 1541 * MS + 3),
        layer_event("inference", 0, 2, "conv2", "Convolution", 1, t0 + 1541 * MS + 60_000, t0 + 1599 * MS),
        phase_event("idle", t0 + 1600 * MS, t0 + 2600 * MS),
    ]


def test_ground_truth_is_the_analytic_integral():
    events = _run_events()
    sensor = SimulatedINA3221(noise_mw=0, seed=3)
    truth = sensor.ground_truth(events)
    assert len(truth) == 3 * len(RAIL_NAMES)
    model = sensor.model
    for row in truth:
        e = events[3 + row.layer_index]
        power = model.layer_power_mw(e.layer_index, e.layer_type)[RAIL_NAMES.index(row.rail)]
        analytic = power * (e.t_end_ns - e.t_start_ns) * 1e-9
        assert row.energy_mj == pytest.approx(analytic, rel=1e-12)
        assert (row.phase, row.iteration) == ("inference", 0)


def test_power_model_levels():
    model = PowerModel(seed=3)
    conv0 = model.layer_power_mw(0, "Convolution")
    conv2 = model.layer_power_mw(2, "Convolution")
    assert not np.allclose(conv0, conv2)  # seeded per-layer factor: layers of one type differ
    assert np.allclose(conv0, PowerModel(seed=3).layer_power_mw(0, "Convolution"))
    assert not np.allclose(conv0, PowerModel(seed=4).layer_power_mw(0, "Convolution"))
    relu = model.layer_power_mw(1, "ReLU")
    for p in (conv0, conv2, relu, model.phase_power_mw("setup"), model.phase_power_mw("inference")):
        assert p[0] >= p[1] + p[2]  # VDD_IN is the total
    assert np.allclose(model.phase_power_mw("idle"), model.idle_mw)

    step = model.step_power(_run_events())
    t0 = 10**12
    at = step.power_at([t0 - 1, t0 + 100 * MS, t0 + 1000 * MS, t0 + 1500 * MS + 10_000, t0 + 1510 * MS,
                        t0 + 1535 * MS, t0 + 3000 * MS])
    np.testing.assert_allclose(at[0], model.idle_mw)
    np.testing.assert_allclose(at[1], model.phase_power_mw("setup"))
    np.testing.assert_allclose(at[2], model.idle_mw)
    np.testing.assert_allclose(at[3], model.phase_power_mw("inference"))  # gap before the first layer
    np.testing.assert_allclose(at[4], conv0)
    np.testing.assert_allclose(at[5], relu)
    np.testing.assert_allclose(at[6], model.idle_mw)


def test_simulated_ina3221_samples_and_description():
    events = _run_events()
    sensor = SimulatedINA3221(update_interval_ms=54.0, noise_mw=0, seed=9)
    d = sensor.describe()
    assert d["kind"] == "simulate" and d["simulated"] is True and d["update_interval_ms"] == 54.0
    assert [r["name"] for r in d["rails"]] == ["VDD_IN", "VDD_GPU", "VDD_CPU"]
    assert [r["total"] for r in d["rails"]] == [True, False, False]

    samples = sensor.samples(events)
    times = sorted({s.t_ns for s in samples})
    assert len(samples) == 3 * len(times)
    assert [s.rail for s in samples[:3]] == ["VDD_IN", "VDD_GPU", "VDD_CPU"]
    assert times[0] >= events[0].t_start_ns and times[-1] <= events[-1].t_end_ns
    assert times[0] - events[0].t_start_ns < 54 * MS
    assert set(np.diff(times)) == {54 * MS}
    assert all(isinstance(s.power_mw, int) and s.voltage_mv is None for s in samples)
    # with noise 0 every value is the rounded exact window average of the true power
    step = sensor.model.step_power(events)
    exact = step.window_average_mw(times, 54 * MS)
    got = np.array([s.power_mw for s in samples]).reshape(-1, 3)
    np.testing.assert_array_equal(got, np.round(exact))
    # deterministic for a seed, with noise
    noisy = SimulatedINA3221(seed=9)
    assert noisy.samples(events) == SimulatedINA3221(seed=9).samples(events)
    assert noisy.samples(events) != SimulatedINA3221(seed=10).samples(events)


def test_layer_loop_window_inside_a_layer_reads_its_power():
    """A layer repeated for 10 sensor intervals: windows fully inside it read the layer's true power."""
    t0 = 10**12
    events = [phase_event("inference", t0, t0 + 600 * MS),
              layer_event("inference", 0, 0, "conv1", "Convolution", 900, t0, t0 + 600 * MS)]
    sensor = SimulatedINA3221(noise_mw=0, seed=1)
    times, values = sensor.readings(events)
    inside = times - 54 * MS >= t0
    assert inside.sum() >= 9
    expected = np.round(sensor.model.layer_power_mw(0, "Convolution"))
    for row in values[inside]:
        np.testing.assert_array_equal(row, expected)
