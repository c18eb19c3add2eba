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

from runner.bundle import layer_event, monotonic_ns, phase_event


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


def run_measurement(engine, mode="network", iterations=200, warmup=10, idle_s=1.0, min_layer_ns=0):
    """Run the phases of one measurement; returns its events (bundle.Event rows, in the order they happened).

    Phases: setup, idle (``idle_s``), warmup (``warmup`` iterations, each layer once), inference
    (``iterations``), idle. In network mode an inference iteration runs every layer once in order
    (repeats 1). In layer-loop mode it runs each layer back to back until it lasts at least ``min_layer_ns``,
    one event per layer per iteration with its repeat count. Warm-up always runs the network once per
    iteration, in both modes.
    """
    if mode not in MODES:
        raise ValueError("mode must be one of " + ", ".join(MODES))
    events = []

    def phase(name, body):
        slot = len(events)
        events.append(None)  # the phase row comes before its layer rows; its end is known afterwards
        t0 = engine.now_ns()
        body()
        t1 = engine.now_ns()
        events[slot] = phase_event(name, t0, t1)

    def iterations_of(name, count, min_ns):
        def body():
            for it in range(count):
                for layer in engine.layers:
                    t0, t1, repeats = engine.run_layer(layer.index, min_ns)
                    events.append(layer_event(name, it, layer.index, layer.name, layer.type, repeats, t0, t1))
        return body

    phase("setup", engine.setup)
    phase("idle", lambda: engine.idle(idle_s))
    phase("warmup", iterations_of("warmup", warmup, 0))
    phase("inference", iterations_of("inference", iterations, min_layer_ns if mode == "layer-loop" else 0))
    phase("idle", lambda: engine.idle(idle_s))
    return events
