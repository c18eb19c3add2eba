"""What an engine is to the runner, and the loop that runs a measurement through one.

An engine knows a network's layers and can run them, one at a time:

- ``info()``: the manifest's ``engine`` object (``name``, ``version``, ``device``, ...);
- ``layers``: the layer list, ``prototxt.Layer(index, name, type)`` in network order;
- ``setup()``: load the network (the ``setup`` phase);
- ``forward_layer(index)``: run one layer once and return when it is done (a GPU engine synchronises the
  device before returning, so that the clock reading after it is the layer's end);
- ``now_ns()`` and ``idle(seconds)``: the clock the events are stamped with (CLOCK_MONOTONIC) and a wait.

``run_layer(index, min_ns)`` times one interval; its default repeats ``forward_layer`` until the interval
lasts at least ``min_ns`` (layer-loop mode). An engine may replace it (the synthetic engine computes the
result).
Real engines (pycaffe, OpenCV dnn) subclass ``Engine`` and implement ``setup`` and ``forward_layer``.
"""

import collections
import time

import numpy as np

from runner.bundle import layer_event, monotonic_ns, phase_event


class EngineError(Exception):
    """An engine cannot run (its module is missing, weights do not fit the network): one line, exit 2."""


class Engine:
    name = "engine"
    version = None
    device = None
    simulated = False

    def __init__(self, layers):
        self.layers = list(layers)

    def info(self):
        return collections.OrderedDict([("name", self.name), ("version", self.version),
                                        ("device", self.device)])

    def now_ns(self):
        return monotonic_ns()

    def idle(self, seconds):
        if seconds > 0:
            time.sleep(seconds)

    def setup(self):
        """Load the network."""

    def forward_layer(self, index):
        raise NotImplementedError

    def forward_network(self):
        """One plain whole-network forward (no bracketing): the reference for the bracketing overhead."""
        raise NotImplementedError

    def run_layer(self, index, min_ns=0):
        """Run layer ``index`` once, or back to back until the interval lasts at least ``min_ns``.

        Returns (t_start_ns, t_end_ns, repeats).
        """
        t0 = self.now_ns()
        self.forward_layer(index)
        t1 = self.now_ns()
        repeats = 1
        while t1 - t0 < min_ns:
            self.forward_layer(index)
            t1 = self.now_ns()
            repeats += 1
        return t0, t1, repeats


MODES = ("network", "layer-loop")


class NoAnnotations:
    """Stands in for a Streamline annotator when annotations are off: every call does nothing."""

    def marker(self, text):
        pass

    def sync(self, t_monotonic_ns):
        pass

    def layer(self, name, channel=1):
        pass

    def end(self, channel=1):
        pass


def run_measurement(engine, mode="network", iterations=200, warmup=10, idle_s=1.0, min_layer_ns=0,
                    annotator=None, gap_mean_ms=0.0, gap_fraction=0.5, seed=0, progress=None):
    """Run the phases of one measurement; returns its events (bundle.Event rows, in the order they happened).

    Phases: setup, idle (``idle_s``), warmup (``warmup`` iterations, each layer once), inference
    (``iterations``), idle. In network mode an inference iteration runs every layer once in order
    (repeats 1). In layer-loop mode it runs each layer back to back until it lasts at least ``min_layer_ns``,
    one event per layer per iteration with its repeat count. Warm-up always runs the network once per
    iteration, in both modes.

    The annotator (runner.streamline.Annotator) gets a marker at every phase start, a sync marker carrying the
    runner's clock at the start of inference, a marker per inference iteration and one channel string per
    layer, sent outside the timed interval. ``gap_mean_ms`` > 0 inserts idle gaps (exponential, that mean) before
    ``gap_fraction`` of the inference layers, chosen at random (seeded): the sensor windows then hold different
    mixes of layers, which statistical estimators need (docs/measurement.md). ``progress(done, total)`` is
    called after each inference iteration.
    """
    if mode not in MODES:
        raise ValueError("mode must be one of " + ", ".join(MODES))
    annotator = annotator if annotator is not None else NoAnnotations()
    rng = np.random.RandomState([int(seed), 21])
    events = []

    def phase(name, body):
        slot = len(events)
        events.append(None)  # the phase row comes before its layer rows; its end is known afterwards
        annotator.marker(name)
        t0 = engine.now_ns()
        body()
        t1 = engine.now_ns()
        events[slot] = phase_event(name, t0, t1)

    def iterations_of(name, count, min_ns, gaps):
        def body():
            if name == "inference":
                annotator.sync(engine.now_ns())
            for it in range(count):
                if name == "inference":
                    annotator.marker(f"iteration {it}")
                for layer in engine.layers:
                    if gaps and rng.random_sample() < gap_fraction:
                        engine.idle(rng.exponential(gap_mean_ms) / 1e3)
                    annotator.layer(layer.name)
                    t0, t1, repeats = engine.run_layer(layer.index, min_ns)
                    annotator.end()
                    events.append(layer_event(name, it, layer.index, layer.name, layer.type, repeats, t0, t1))
                if progress is not None and name == "inference":
                    progress(it + 1, count)
        return body

    use_gaps = gap_mean_ms > 0 and mode == "network"
    phase("setup", engine.setup)
    phase("idle", lambda: engine.idle(idle_s))
    phase("warmup", iterations_of("warmup", warmup, 0, False))
    phase("inference", iterations_of("inference", iterations, min_layer_ns if mode == "layer-loop" else 0, use_gaps))
    phase("idle", lambda: engine.idle(idle_s))
    return events


def time_whole_network(engine, iterations):
    """Plain whole-network forwards (no per-layer bracketing, no annotations): their mean and spread in ms."""
    times_ms = []
    for _ in range(iterations):
        t0 = engine.now_ns()
        engine.forward_network()
        times_ms.append((engine.now_ns() - t0) / 1e6)
    times = np.array(times_ms)
    return collections.OrderedDict([
        ("iterations", iterations),
        ("time_ms_mean", float(times.mean()) if iterations else None),
        ("time_ms_std", float(times.std(ddof=1)) if iterations > 1 else None),
    ])


def bracketing_overhead(events, whole_network):
    """Per-layer bracketing's cost: the mean sum of per-layer intervals per inference iteration against a plain
    whole-network forward, in percent (network mode; gaps between layers are not counted)."""
    sums = collections.defaultdict(int)
    for event in events:
        if event.kind == "layer" and event.phase == "inference":
            sums[event.iteration] += (event.t_end_ns - event.t_start_ns) // max(event.repeats, 1)
    if not sums or not whole_network.get("time_ms_mean"):
        return None
    per_layer_ms = float(np.mean(list(sums.values()))) / 1e6
    return collections.OrderedDict([
        ("per_layer_sum_ms_mean", per_layer_ms),
        ("whole_network_ms_mean", whole_network["time_ms_mean"]),
        ("overhead_pct", 100.0 * (per_layer_ms - whole_network["time_ms_mean"]) / whole_network["time_ms_mean"]),
    ])
