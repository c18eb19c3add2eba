"""A simulated board and a simulated INA3221, for development and tests only.

Nothing here is a measurement. Everything it produces is labelled simulated in the bundle: the manifest's
top-level ``"simulated": true`` and a power source of kind ``"simulate"`` with ``"simulated": true``.

The model, given the phase and layer intervals as they happened (events.csv rows):

- true power per rail (mW) is a step function: during a layer interval the idle base of each rail plus an
  extra that depends on the layer type, times a seeded factor per layer so that layers of one type differ;
  during setup the idle base plus a CPU load; between layers of warmup and inference the idle base plus a
  small CPU load (the host driving the loop); elsewhere the idle base. VDD_IN is the whole board's input: its
  extra is (GPU extra + CPU extra) x ``in_overhead`` (regulator losses, memory, SoC), so VDD_IN >= VDD_GPU +
  VDD_CPU;
- the sensor produces one new value every ``update_interval_ms`` (54 ms on a TX1, free running from a seeded
  phase): the exact average of the true power over the window (t - interval, t], plus seeded Gaussian noise
  (``noise_mw``; 0 gives the exact average), quantised to 1 mW and never negative;
- the ground truth is the exact integral of the true power over each layer interval, per rail.

Python 3.6 + numpy (any version from 1.13 on: RandomState, searchsorted, cumsum only).
"""

import collections

import numpy as np

from runner.bundle import GroundTruth, RailSample

RAILS = (
    collections.OrderedDict([("name", "VDD_IN"), ("unit", "mW"), ("total", True)]),
    collections.OrderedDict([("name", "VDD_GPU"), ("unit", "mW"), ("total", False)]),
    collections.OrderedDict([("name", "VDD_CPU"), ("unit", "mW"), ("total", False)]),
)
RAIL_NAMES = tuple(r["name"] for r in RAILS)

# Idle base of each rail (mW): VDD_IN, VDD_GPU, VDD_CPU. Made-up but TX1-like.
IDLE_MW = (1900.0, 60.0, 280.0)

# Extra power above idle while a layer of this type runs: (GPU mW, CPU mW). Keys are lower-case type names.
LAYER_EXTRA_MW = {
    "convolution": (3400.0, 260.0),
    "deconvolution": (3200.0, 260.0),
    "innerproduct": (2600.0, 260.0),
    "lrn": (2100.0, 260.0),
    "pooling": (1800.0, 260.0),
    "relu": (1500.0, 260.0),
    "prelu": (1500.0, 260.0),
    "sigmoid": (1500.0, 260.0),
    "tanh": (1500.0, 260.0),
    "eltwise": (1600.0, 260.0),
    "batchnorm": (1700.0, 260.0),
    "scale": (1500.0, 260.0),
    "concat": (1200.0, 260.0),
    "softmax": (900.0, 320.0),
    "dropout": (300.0, 260.0),
    "split": (300.0, 260.0),
    "flatten": (200.0, 260.0),
    "input": (0.0, 200.0),
}
DEFAULT_EXTRA_MW = (1500.0, 260.0)
SETUP_EXTRA_MW = (120.0, 900.0)  # loading the net: mostly CPU
GAP_EXTRA_MW = (0.0, 240.0)  # between layers of warmup/inference: the host loop


def _ns(values):
    return np.asarray(values, dtype=np.int64)


class StepPower:
    """Piecewise-constant power of several rails.

    ``values_mw[k]`` (one value per rail) holds on ``[edges_ns[k], edges_ns[k + 1])``; ``outside_mw`` holds
    before the first and after the last edge. Integrals are computed from a cumulative sum in float64 on times
    taken relative to the first edge, so they are exact to ~1e-12 relative for runs of days.
    """

    def __init__(self, edges_ns, values_mw, outside_mw, rails=RAIL_NAMES):
        self.edges = _ns(edges_ns)
        self.values = np.asarray(values_mw, dtype=np.float64).reshape(len(self.edges) - 1, -1)
        self.outside = np.asarray(outside_mw, dtype=np.float64).reshape(-1)
        self.rails = tuple(rails)
        if len(self.edges) < 2 or np.any(np.diff(self.edges) <= 0):
            raise ValueError("edges must be at least two strictly increasing times")
        widths = np.diff(self.edges).astype(np.float64)
        self._cum = np.zeros((len(self.edges), self.values.shape[1]))
        self._cum[1:] = np.cumsum(self.values * widths[:, None], axis=0)

    def integral(self, t_ns):
        """Integral of power from the first edge to each t (mW*ns), shape (n, rails); negative before it."""
        t = _ns(t_ns).reshape(-1)
        rel = (t - self.edges[0]).astype(np.float64)
        k = np.clip(np.searchsorted(self.edges, t, side="right") - 1, 0, len(self.values) - 1)
        inside = self._cum[k] + self.values[k] * (t - self.edges[k]).astype(np.float64)[:, None]
        before = rel[:, None] * self.outside[None, :]
        past = (t - self.edges[-1]).astype(np.float64)
        after = self._cum[-1][None, :] + past[:, None] * self.outside[None, :]
        out = np.where((t < self.edges[0])[:, None], before, inside)
        return np.where((t > self.edges[-1])[:, None], after, out)

    def energy_mj(self, t_start_ns, t_end_ns):
        """Exact energy (mJ) over each [t_start, t_end], shape (n, rails)."""
        return (self.integral(t_end_ns) - self.integral(t_start_ns)) * 1e-9

    def window_average_mw(self, t_end_ns, width_ns):
        """Exact average power (mW) over each window (t_end - width, t_end], shape (n, rails)."""
        t = _ns(t_end_ns).reshape(-1)
        width = int(width_ns)
        return (self.integral(t) - self.integral(t - width)) / float(width)

    def power_at(self, t_ns):
        """Power (mW) at each t, shape (n, rails)."""
        t = _ns(t_ns).reshape(-1)
        k = np.clip(np.searchsorted(self.edges, t, side="right") - 1, 0, len(self.values) - 1)
        out = self.values[k]
        outside = (t < self.edges[0]) | (t >= self.edges[-1])
        return np.where(outside[:, None], self.outside[None, :], out)


class PowerModel:
    """True power of a simulated TX1-like board (module docstring): VDD_IN (total), VDD_GPU, VDD_CPU."""

    def __init__(self, seed=0, idle_mw=IDLE_MW, layer_extra_mw=None, default_extra_mw=DEFAULT_EXTRA_MW,
                 setup_extra_mw=SETUP_EXTRA_MW, gap_extra_mw=GAP_EXTRA_MW, factor_spread=0.25,
                 in_overhead=1.3):
        self.seed = int(seed)
        self.idle_mw = np.asarray(idle_mw, dtype=np.float64)
        self.layer_extra_mw = dict(LAYER_EXTRA_MW if layer_extra_mw is None else layer_extra_mw)
        self.default_extra_mw = tuple(default_extra_mw)
        self.setup_extra_mw = tuple(setup_extra_mw)
        self.gap_extra_mw = tuple(gap_extra_mw)
        self.factor_spread = float(factor_spread)
        self.in_overhead = float(in_overhead)
        self._factors = {}

    def _with_extra(self, gpu_cpu, factor=1.0):
        gpu, cpu = gpu_cpu
        gpu *= factor
        cpu *= factor
        return self.idle_mw + np.array([(gpu + cpu) * self.in_overhead, gpu, cpu])

    def layer_factor(self, layer_index):
        """The seeded factor of one layer, uniform in [1 - spread, 1 + spread], fixed for the layer."""
        index = int(layer_index)
        if index not in self._factors:
            rng = np.random.RandomState([self.seed, 101, index])
            self._factors[index] = rng.uniform(1.0 - self.factor_spread, 1.0 + self.factor_spread)
        return self._factors[index]

    def layer_power_mw(self, layer_index, layer_type):
        """Power of each rail (VDD_IN, VDD_GPU, VDD_CPU) while this layer runs."""
        extra = self.layer_extra_mw.get(str(layer_type).lower(), self.default_extra_mw)
        return self._with_extra(extra, self.layer_factor(layer_index))

    def phase_power_mw(self, phase):
        """Power of each rail during a phase, outside its layer intervals."""
        if phase == "setup":
            return self._with_extra(self.setup_extra_mw)
        if phase in ("warmup", "inference"):
            return self._with_extra(self.gap_extra_mw)
        return self.idle_mw.copy()

    def step_power(self, events):
        """The true power of a run as a StepPower, from its events (bundle.Event rows)."""
        layers = [e for e in events if e.kind == "layer" and e.t_end_ns > e.t_start_ns]
        phases = [e for e in events if e.kind == "phase" and e.t_end_ns > e.t_start_ns]
        times = [e.t_start_ns for e in layers + phases] + [e.t_end_ns for e in layers + phases]
        if not times:
            raise ValueError("no interval with a duration among the events")
        edges = np.unique(_ns(times))
        if len(edges) < 2:
            raise ValueError("no interval with a duration among the events")
        seg = edges[:-1]
        values = np.tile(self.idle_mw, (len(seg), 1))
        for rows, power_of in ((phases, lambda e: self.phase_power_mw(e.phase)),
                               (layers, lambda e: self.layer_power_mw(e.layer_index, e.layer_type))):
            if not rows:
                continue
            rows = sorted(rows, key=lambda e: e.t_start_ns)
            starts = _ns([e.t_start_ns for e in rows])
            ends = _ns([e.t_end_ns for e in rows])
            power = np.array([power_of(e) for e in rows])
            k = np.searchsorted(starts, seg, side="right") - 1
            covered = (k >= 0) & (seg < ends[np.clip(k, 0, None)])
            values[covered] = power[k[covered]]
        return StepPower(edges, values, self.idle_mw, RAIL_NAMES)


def sensor_values(step, times_ns, interval_ns, noise_mw=0.0, rng=None):
    """The simulated sensor's value at each time: window average over (t - interval, t] + noise, in whole mW.

    Returns an int64 array of shape (len(times), rails). ``noise_mw`` is the Gaussian sigma; 0 means exact.
    """
    avg = step.window_average_mw(times_ns, interval_ns)
    if noise_mw:
        rng = rng if rng is not None else np.random.RandomState(0)
        avg = avg + rng.normal(0.0, float(noise_mw), size=avg.shape)
    return np.maximum(np.round(avg), 0).astype(np.int64)


def sensor_times(t_begin_ns, t_end_ns, interval_ns, phase_ns=0):
    """Times of the sensor's new values in [t_begin, t_end]: t_begin + phase + k * interval."""
    first = int(t_begin_ns) + int(phase_ns)
    if first > int(t_end_ns):
        return np.zeros(0, dtype=np.int64)
    count = (int(t_end_ns) - first) // int(interval_ns) + 1
    return first + np.arange(count, dtype=np.int64) * int(interval_ns)


class SimulatedINA3221:
    """A power source that simulates the TX1's INA3221 (3 rails) over a run's events.

    Same interface as a real power source: ``describe()`` for the manifest, ``start()``/``stop()`` around the
    run, ``samples(events)`` for rails.csv; plus ``ground_truth(events)`` for ground_truth.csv.
    """

    kind = "simulate"
    simulated = True

    def __init__(self, update_interval_ms=54.0, noise_mw=10.0, seed=0, model=None, name="ina3221-sim"):
        if update_interval_ms <= 0:
            raise ValueError("update_interval_ms must be > 0")
        if noise_mw < 0:
            raise ValueError("noise_mw must be >= 0")
        self.name = name
        self.update_interval_ms = float(update_interval_ms)
        self.interval_ns = int(round(self.update_interval_ms * 1e6))
        self.noise_mw = float(noise_mw)
        self.seed = int(seed)
        self.model = model if model is not None else PowerModel(seed=seed)
        self._step = None
        self._step_key = None

    def describe(self):
        """This source's entry of manifest.power_sources."""
        return collections.OrderedDict([
            ("name", self.name),
            ("kind", self.kind),
            ("simulated", True),
            ("update_interval_ms", self.update_interval_ms),
            ("rails", [collections.OrderedDict(r) for r in RAILS]),
            ("noise_mw", self.noise_mw),
            ("seed", self.seed),
            ("quantum_mw", 1),
            ("description", "simulated INA3221: window average of a modelled step power per rail + Gaussian "
                            "noise; not a measurement"),
        ])

    def start(self):
        """Nothing to start: the simulation runs over the events afterwards."""

    def stop(self):
        """Nothing to stop."""

    def step_power(self, events):
        key = (len(events), events[0] if events else None, events[-1] if events else None)
        if self._step is None or self._step_key != key:
            self._step = self.model.step_power(events)
            self._step_key = key
        return self._step

    def sample_times(self, events):
        t_begin = min(e.t_start_ns for e in events)
        t_end = max(e.t_end_ns for e in events)
        phase = np.random.RandomState([self.seed, 202]).randint(0, self.interval_ns)
        return sensor_times(t_begin, t_end, self.interval_ns, phase)

    def readings(self, events):
        """(times int64 (n,), values int64 (n, 3)) of the sensor over the run's span."""
        times = self.sample_times(events)
        rng = np.random.RandomState([self.seed, 303])
        values = sensor_values(self.step_power(events), times, self.interval_ns, self.noise_mw, rng)
        return times, values

    def samples(self, events):
        """rails.csv rows: one per rail per new sensor value, interleaved by time."""
        times, values = self.readings(events)
        out = []
        for i, t in enumerate(times.tolist()):
            row = values[i].tolist()
            for j, rail in enumerate(RAIL_NAMES):
                out.append(RailSample(t, rail, row[j], None, None))
        return out

    def ground_truth(self, events):
        """ground_truth.csv rows: exact energy (mJ) of every layer interval, per rail."""
        layers = [e for e in events if e.kind == "layer"]
        if not layers:
            return []
        energy = self.step_power(events).energy_mj(_ns([e.t_start_ns for e in layers]),
                                                   _ns([e.t_end_ns for e in layers]))
        out = []
        for e, row in zip(layers, energy.tolist()):
            for j, rail in enumerate(RAIL_NAMES):
                out.append(GroundTruth(e.phase, e.iteration, e.layer_index, rail, row[j]))
        return out
