"""The synthetic engine: for development, tests and the sample traces. It does NOT run a network.

It reads the layer list (name, type, in order) from the prototxt (runner/prototxt.py) and makes up each
layer's duration from a per-type timing model: a base time per layer type, a seeded factor per layer (so
layers of a type differ), a seeded jitter per run, a slower first run of each layer (cold start), and a batch
factor. Time is virtual: a clock that starts at the real CLOCK_MONOTONIC reading and only moves when the
engine says so; the runner never sleeps. Between layers there is a small gap (tens of microseconds), as a real
runner has.

Every number it produces is made up: a bundle from it says ``"simulated": true``.
"""

import numpy as np

from runner.bundle import monotonic_ns
from runner.engine import Engine

# Base duration (ms) of one run of a layer at batch 1, by lower-case type. Made up, TX1-GPU-like (SqueezeNet
# v1.1 comes to about 18 ms per inference with the gaps).
LAYER_MS = {
    "input": 0.005,
    "convolution": 0.42,
    "deconvolution": 0.6,
    "innerproduct": 0.5,
    "lrn": 0.25,
    "pooling": 0.12,
    "relu": 0.06,
    "prelu": 0.07,
    "sigmoid": 0.06,
    "tanh": 0.06,
    "eltwise": 0.06,
    "batchnorm": 0.08,
    "scale": 0.06,
    "concat": 0.05,
    "softmax": 0.04,
    "dropout": 0.01,
    "split": 0.01,
    "flatten": 0.01,
}
DEFAULT_LAYER_MS = 0.1


class VirtualClock:
    """Integer nanoseconds, starting at the real CLOCK_MONOTONIC reading; it moves only when told."""

    def __init__(self, start_ns=None):
        self.t_ns = int(monotonic_ns() if start_ns is None else start_ns)

    def now_ns(self):
        return self.t_ns

    def advance_ns(self, ns):
        self.t_ns += max(0, int(round(ns)))
        return self.t_ns


class SyntheticEngine(Engine):
    """Made-up layer timings on a virtual clock (module docstring)."""

    name = "synthetic"
    version = "1"
    device = "none"
    simulated = True

    def __init__(self, layers, seed=0, batch=1, clock=None, layer_ms=None, default_layer_ms=DEFAULT_LAYER_MS,
                 layer_spread=0.5, jitter=0.03, gap_us=(15.0, 60.0), repeat_gap_us=(2.0, 5.0),
                 cold_factor=4.0, setup_s=0.6, setup_per_layer_ms=4.0):
        Engine.__init__(self, layers)
        self.seed = int(seed)
        self.batch = max(1, int(batch))
        self.clock = clock if clock is not None else VirtualClock()
        self.layer_ms = dict(LAYER_MS if layer_ms is None else layer_ms)
        self.default_layer_ms = float(default_layer_ms)
        self.jitter = float(jitter)
        self.gap_us = tuple(gap_us)
        self.repeat_gap_us = tuple(repeat_gap_us)
        self.cold_factor = float(cold_factor)
        self.setup_s = float(setup_s)
        self.setup_per_layer_ms = float(setup_per_layer_ms)
        self._rng = np.random.RandomState([self.seed, 11])
        factors = np.random.RandomState([self.seed, 12]).lognormal(0.0, float(layer_spread),
                                                                   size=len(self.layers))
        batch_factor = 0.25 + 0.75 * self.batch  # a fixed part that does not grow with the batch
        base_ms = np.array([self._base_ms(layer.type) for layer in self.layers], dtype=np.float64)
        self.mean_ns = base_ms * factors * batch_factor * 1e6
        self._warm = set()

    def _base_ms(self, layer_type):
        return self.layer_ms.get(str(layer_type).lower(), self.default_layer_ms)

    # -- Engine interface
    def now_ns(self):
        return self.clock.now_ns()

    def idle(self, seconds):
        self.clock.advance_ns(float(seconds) * 1e9)

    def setup(self):
        seconds = self.setup_s + self.setup_per_layer_ms * 1e-3 * len(self.layers)
        seconds *= self._rng.uniform(0.9, 1.1)
        self.clock.advance_ns(seconds * 1e9)

    def forward_layer(self, index):
        self.clock.advance_ns(self._durations(index, 1)[0])

    def forward_network(self):
        """A plain forward: every layer back to back, without the gaps between bracketed layers."""
        for index in range(len(self.layers)):
            self.forward_layer(index)

    def _durations(self, index, count):
        d = self.mean_ns[index] * np.exp(self._rng.normal(0.0, self.jitter, size=count))
        if index not in self._warm:
            d[0] *= self.cold_factor
            self._warm.add(index)
        return np.maximum(np.round(d), 1.0)

    def run_layer(self, index, min_ns=0):
        """Gap, then the layer once, or back to back until the interval lasts >= min_ns (computed)."""
        self.clock.advance_ns(self._rng.uniform(self.gap_us[0], self.gap_us[1]) * 1e3)
        t0 = self.clock.now_ns()
        if min_ns <= 0:
            self.clock.advance_ns(self._durations(index, 1)[0])
            return t0, self.clock.now_ns(), 1
        # each repetition after the first also pays a small loop overhead; draw in chunks until long enough
        per = self.mean_ns[index] + 1e3 * 0.5 * (self.repeat_gap_us[0] + self.repeat_gap_us[1])
        total = 0.0
        repeats = 0
        while True:
            chunk = int(max(16, 1.2 * (min_ns - total) / per + 4))
            d = self._durations(index, chunk)
            gaps = np.round(self._rng.uniform(self.repeat_gap_us[0], self.repeat_gap_us[1], size=chunk) * 1e3)
            if repeats == 0:
                gaps[0] = 0.0  # the interval starts with the first run
            d += gaps
            cum = total + np.cumsum(d)
            hit = int(np.searchsorted(cum, min_ns, side="left"))
            if hit < chunk:
                repeats += hit + 1
                total = float(cum[hit])
                break
            repeats += chunk
            total = float(cum[-1])
        self.clock.advance_ns(total)
        t1 = self.clock.now_ns()
        if t1 - t0 < min_ns:  # rounding of the float sum: never report an interval shorter than asked
            self.clock.advance_ns(min_ns - (t1 - t0))
            t1 = self.clock.now_ns()
        return t0, t1, repeats
