"""Attribution: the energy of each rail over each interval, and per-layer and per-phase statistics.

How a sample is read (docs/measurement.md):
- A rail with an update interval U (a running-average sensor such as the INA3221) reports at time t_k the average
  power since its previous value. The first sample covers (t_0 - U, t_0]; each later one covers (t_(k-1), t_k].
  When samples come every U this is exactly "the average over the window of length U that ends at t_k"; a
  repeated read of a slow sensor covers only the time since the previous read, and missed updates are bridged by
  the next value. Power is therefore a step function and its integral over an interval is exact for it.
- A rail without an update interval reports instantaneous power: it is interpolated linearly between samples
  (trapezoidal integral).
- Outside the samples' span energy is unknown (NaN, stored as NULL), never zero.

Everything is vectorised: a cumulative integral at the samples, then np.searchsorted for the interval ends.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import sparse, stats

NS_PER_MS = 1e6
MW_NS_PER_MJ = 1e9  # 1 mJ = 1 mW x 1 s = 1e9 mW x ns
RESOLUTION_FACTOR = 2.0  # a layer is resolved when it lasts at least this many sensor update intervals
METHOD_DIRECT = "direct"
MIN_WHOLE_WINDOWS = 3  # intervals holding this many whole sensor windows use their mean (interval_energy_mj)


@dataclass
class RailSignal:
    """One rail's samples made ready for integration."""

    t_ns: np.ndarray  # int64, strictly increasing
    power_mw: np.ndarray  # float64
    update_interval_ns: int | None

    @property
    def effective_interval_ns(self) -> float:
        """The sensor's time resolution: its update interval, or the median spacing of instantaneous samples."""
        if self.update_interval_ns:
            return float(self.update_interval_ns)
        return float(np.median(np.diff(self.t_ns))) if len(self.t_ns) > 1 else np.inf

    # Computed once per rail and reused by every estimator (a long trace has millions of samples).
    @functools.cached_property
    def integral(self) -> tuple[np.ndarray, np.ndarray]:
        """(breaks, cumulative energy in mW x ns at each break) of the step or linear reading of the samples."""
        t = np.asarray(self.t_ns, dtype=np.int64)  # no copy when it already is int64
        p = np.asarray(self.power_mw, dtype=np.float64)
        if self.update_interval_ns:
            breaks = np.concatenate([[t[0] - self.update_interval_ns], t])
            return breaks, _cumulative_step(breaks, p)
        return t, _cumulative_linear(t, p)

    @functools.cached_property
    def windows(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every sensor window (a, b] and its value; see sensor_windows."""
        interval_ns = self.update_interval_ns
        t, p = self.t_ns, self.power_mw
        repeat = np.zeros(len(t), dtype=bool)
        repeat[1:] = (p[1:] == p[:-1]) & (np.diff(t) < 0.9 * interval_ns)
        if not repeat.any():  # the usual case: views, no copies of millions of samples
            return t - interval_ns, t, p
        return t[~repeat] - interval_ns, t[~repeat], p[~repeat]


def energy_between_mj(signal: RailSignal, start_ns: np.ndarray, end_ns: np.ndarray) -> np.ndarray:
    """Energy (mJ) of the rail over each interval [start, end]; NaN where the samples do not cover it."""
    start_ns = np.asarray(start_ns, dtype=np.int64)
    end_ns = np.asarray(end_ns, dtype=np.int64)
    if len(signal.t_ns) == 0 or (not signal.update_interval_ns and len(signal.t_ns) < 2):
        return np.full(start_ns.shape, np.nan)
    breaks, cumulative = signal.integral
    p = np.asarray(signal.power_mw, dtype=np.float64)
    if signal.update_interval_ns:
        energy = _step_at(breaks, p, cumulative, end_ns) - _step_at(breaks, p, cumulative, start_ns)
    else:
        energy = _linear_at(breaks, p, cumulative, end_ns) - _linear_at(breaks, p, cumulative, start_ns)
    covered = (start_ns >= breaks[0]) & (end_ns <= breaks[-1])
    return np.where(covered, energy / MW_NS_PER_MJ, np.nan)


def interval_energy_mj(signal: RailSignal, start_ns: np.ndarray, end_ns: np.ndarray) -> np.ndarray:
    """Energy of each interval, direct. For a sensor with an update interval U, an interval holding at least
    MIN_WHOLE_WINDOWS whole windows gets the mean of those windows' values times its duration: the windows that
    straddle its edges also average the neighbours' power and would bias it. Shorter intervals (and
    instantaneous sources) get the integral, energy_between_mj."""
    energy = energy_between_mj(signal, start_ns, end_ns)
    if not signal.update_interval_ns or len(signal.t_ns) < MIN_WHOLE_WINDOWS:
        return energy
    _, t, values = sensor_windows(signal, np.iinfo(np.int64).min // 2, np.iinfo(np.int64).max)
    cumulative = np.concatenate([[0.0], np.cumsum(values)])
    first = np.searchsorted(t, np.asarray(start_ns, dtype=np.int64) + signal.update_interval_ns, side="left")
    last = np.searchsorted(t, np.asarray(end_ns, dtype=np.int64), side="right")
    count = last - first
    whole = count >= MIN_WHOLE_WINDOWS
    mean_mw = (cumulative[np.where(whole, last, 0)] - cumulative[np.where(whole, first, 0)]) / np.maximum(count, 1)
    duration_ns = (np.asarray(end_ns) - np.asarray(start_ns)).astype(np.float64)
    return np.where(whole & np.isfinite(energy), mean_mw * duration_ns / MW_NS_PER_MJ, energy)


def _cumulative_step(breaks: np.ndarray, value: np.ndarray) -> np.ndarray:
    # Segment k spans (breaks[k], breaks[k+1]] at value[k]; times as offsets keep float64 exact enough.
    widths = np.diff(breaks).astype(np.float64)
    return np.concatenate([[0.0], np.cumsum(value * widths)])


def _step_at(breaks: np.ndarray, value: np.ndarray, cumulative: np.ndarray, at_ns: np.ndarray) -> np.ndarray:
    k = np.clip(np.searchsorted(breaks, at_ns, side="right") - 1, 0, len(value) - 1)
    return cumulative[k] + value[k] * (at_ns - breaks[k]).astype(np.float64)


def _cumulative_linear(t: np.ndarray, p: np.ndarray) -> np.ndarray:
    widths = np.diff(t).astype(np.float64)
    return np.concatenate([[0.0], np.cumsum(0.5 * (p[1:] + p[:-1]) * widths)])


def _linear_at(t: np.ndarray, p: np.ndarray, cumulative: np.ndarray, at_ns: np.ndarray) -> np.ndarray:
    k = np.clip(np.searchsorted(t, at_ns, side="right") - 1, 0, len(t) - 2)
    dt = (at_ns - t[k]).astype(np.float64)
    slope = (p[k + 1] - p[k]) / (t[k + 1] - t[k]).astype(np.float64)
    return cumulative[k] + dt * (p[k] + 0.5 * slope * dt)


@functools.cache
def _openblas_libraries() -> tuple:
    """The OpenBLAS libraries numpy and scipy loaded (Linux; none found elsewhere)."""
    try:
        with open("/proc/self/maps") as maps:
            paths = sorted({line.split()[-1] for line in maps if "openblas" in line and ".so" in line})
        libraries = tuple(ctypes.CDLL(path) for path in paths)
        return tuple(lib for lib in libraries if hasattr(lib, "openblas_set_num_threads_local"))
    except OSError:
        return ()


@contextlib.contextmanager
def one_blas_thread() -> Iterator[None]:
    """Run BLAS/LAPACK on one thread here. The matrices of attribution are small (k x k, k = layers + 1), and
    OpenBLAS threads spin while they wait: on a busy 2-core machine a 230 x 230 eigh took 0.35 s with two
    threads and 0.02 s with one. The setting is per calling thread and restored afterwards."""
    libraries = _openblas_libraries()
    previous = [lib.openblas_set_num_threads_local(1) for lib in libraries]
    try:
        yield
    finally:
        for lib, count in zip(libraries, previous, strict=True):
            lib.openblas_set_num_threads_local(count)


def ci95_half_width(std: pd.Series, n: pd.Series) -> pd.Series:
    """Half-width of the 95% confidence interval of a mean (Student's t); NaN for fewer than two values."""
    n = n.astype(np.float64)
    quantile = stats.t.ppf(0.975, np.maximum(n - 1, 1))
    return pd.Series(np.where(n >= 2, quantile * std / np.sqrt(n), np.nan), index=std.index)


def idle_power_mw(signal: RailSignal, phases: pd.DataFrame) -> float:
    """Mean power over all idle phases (NaN without an idle phase the samples cover).

    For a sensor with an update interval, the mean of the values whose whole window lies inside an idle phase:
    a window that straddles the phase's edge also averages the neighbouring work. Without such windows (or
    for instantaneous sources), the integral over the idle phases divided by their duration.
    """
    idle = phases[phases["phase"] == "idle"]
    if idle.empty:
        return np.nan
    if signal.update_interval_ns and len(signal.t_ns):
        inside = [sensor_windows(signal, int(a), int(b))[2] for a, b in zip(idle["t_start_ns"], idle["t_end_ns"],
                                                                             strict=True)]
        values = np.concatenate(inside)
        if len(values):
            return float(values.mean())
    energy = energy_between_mj(signal, idle["t_start_ns"].to_numpy(), idle["t_end_ns"].to_numpy())
    duration_ns = (idle["t_end_ns"] - idle["t_start_ns"]).to_numpy().astype(np.float64)
    ok = np.isfinite(energy) & (duration_ns > 0)
    if not ok.any():
        return np.nan
    return float(energy[ok].sum() * MW_NS_PER_MJ / duration_ns[ok].sum())


def layer_statistics(layer_events: pd.DataFrame, phases: pd.DataFrame, signals: dict[str, RailSignal]) -> pd.DataFrame:
    """Per layer and rail, over the inference iterations: time and energy mean, std, 95% CI, energy above idle.

    Figures are per single execution of the layer (an interval of a layer-loop run is divided by its repeats).
    Without rails the result has one row per layer with rail None and energy NaN.
    """
    inference = layer_events[layer_events["phase"] == "inference"]
    repeats = inference["repeats"].to_numpy().astype(np.float64)
    duration_ns = (inference["t_end_ns"] - inference["t_start_ns"]).to_numpy().astype(np.float64)
    base = pd.DataFrame({
        "layer_index": inference["layer_index"].to_numpy(),
        "interval_ms": duration_ns / NS_PER_MS,
        "time_ms": duration_ns / repeats / NS_PER_MS,
    })
    frames = []
    for rail, signal in signals.items() or [(None, None)]:
        frame = base.copy()
        frame["rail"] = rail
        if signal is None:
            frame["energy_mj"] = np.nan
            frame["energy_above_idle_mj"] = np.nan
            interval_ns = np.nan
        else:
            energy = interval_energy_mj(signal, inference["t_start_ns"].to_numpy(), inference["t_end_ns"].to_numpy())
            frame["energy_mj"] = energy / repeats
            idle_mw = idle_power_mw(signal, phases)
            frame["energy_above_idle_mj"] = frame["energy_mj"] - idle_mw * frame["time_ms"] / 1e3
            interval_ns = signal.effective_interval_ns
        frames.append(_summarise(frame, interval_ns))
    return pd.concat(frames, ignore_index=True)


def _summarise(frame: pd.DataFrame, interval_ns: float) -> pd.DataFrame:
    grouped = frame.groupby("layer_index", sort=True)
    out = grouped.agg(
        rail=("rail", "first"),
        n_iterations=("time_ms", "size"),
        time_ms_mean=("time_ms", "mean"),
        time_ms_std=("time_ms", "std"),
        interval_ms_mean=("interval_ms", "mean"),
        energy_mj_mean=("energy_mj", "mean"),
        energy_mj_std=("energy_mj", "std"),
        energy_mj_missing=("energy_mj", lambda e: e.isna().any()),
        energy_above_idle_mj_mean=("energy_above_idle_mj", "mean"),
        energy_above_idle_mj_std=("energy_above_idle_mj", "std"),
    ).reset_index()
    # A mean over iterations where any interval lacked coverage is no measurement: leave it empty.
    for column in ("energy_mj_mean", "energy_mj_std", "energy_above_idle_mj_mean", "energy_above_idle_mj_std"):
        out.loc[out["energy_mj_missing"], column] = np.nan
    n = out["n_iterations"]
    out["time_ms_ci95"] = ci95_half_width(out["time_ms_std"], n)
    out["energy_mj_ci95"] = ci95_half_width(out["energy_mj_std"], n)
    out["energy_above_idle_mj_ci95"] = ci95_half_width(out["energy_above_idle_mj_std"], n)
    out["power_mw_mean"] = out["energy_mj_mean"] / out["time_ms_mean"] * 1e3
    has_energy = out["energy_mj_mean"].notna()
    resolved = out["interval_ms_mean"] * NS_PER_MS >= RESOLUTION_FACTOR * interval_ns
    out["resolved"] = pd.Series(np.where(has_energy, resolved, pd.NA), dtype="boolean")
    out["method"] = np.where(has_energy, METHOD_DIRECT, None)
    return out[[
        "layer_index", "rail", "n_iterations", "time_ms_mean", "time_ms_std", "time_ms_ci95",
        "energy_mj_mean", "energy_mj_std", "energy_mj_ci95", "energy_above_idle_mj_mean",
        "energy_above_idle_mj_ci95", "power_mw_mean", "resolved", "method",
    ]]


def phase_statistics(phases: pd.DataFrame, signals: dict[str, RailSignal]) -> pd.DataFrame:
    """Per phase and rail: total time and energy over all occurrences of the phase, and energy above idle."""
    duration_ms = (phases["t_end_ns"] - phases["t_start_ns"]).to_numpy() / NS_PER_MS
    frames = []
    for rail, signal in signals.items() or [(None, None)]:
        if signal is None:
            energy = np.full(len(phases), np.nan)
            idle_mw = np.nan
        else:
            energy = energy_between_mj(signal, phases["t_start_ns"].to_numpy(), phases["t_end_ns"].to_numpy())
            idle_mw = idle_power_mw(signal, phases)
        frame = pd.DataFrame({"phase": phases["phase"].to_numpy(), "time_ms": duration_ms, "energy_mj": energy})
        # sum(min_count=1) keeps a phase without coverage NULL rather than 0.
        out = frame.groupby("phase", sort=False).agg(
            occurrences=("time_ms", "size"),
            time_ms=("time_ms", "sum"),
            energy_mj=("energy_mj", lambda e: e.sum(min_count=len(e))),
        ).reset_index()
        out.insert(1, "rail", rail)
        out["energy_above_idle_mj"] = out["energy_mj"] - idle_mw * out["time_ms"] / 1e3
        out["power_mw_mean"] = out["energy_mj"] / out["time_ms"] * 1e3
        frames.append(out)
    return pd.concat(frames, ignore_index=True)


# ---------------------------------------------------------------------------------------------------------------
# The statistical estimator: layers shorter than a sensor window, resolved across many iterations.
#
# Each sensor value is the average power over its window (t_k - U, t_k]. Within the inference phase the windows
# overlap known layer intervals in known fractions, so value_k = sum_l P_l * overlap(k, l) / U + P_gap * rest_k / U,
# where P_l is layer l's mean power and P_gap the power between layer intervals. Non-negative least squares over
# all windows gives every P_l; a layer's energy is P_l times its mean duration. The 95% interval comes from a
# bootstrap that resamples whole iterations (the windows they hold), so the estimate's spread across the run
# shows. The problem is only well posed when windows hold different mixes of layers (random gaps between layers,
# or enough iterations whose phase drifts against the sensor): the condition number and the interval width say so.

METHOD_STATISTICAL = "statistical"
RESOLVED_CI_FRACTION = 0.2  # a statistical estimate is resolved when its 95% half-width is <= 20% of it
ILL_POSED_CONDITION = 1e6  # above this condition number the overlap matrix cannot separate the layers
BOOTSTRAP_REPLICATES = 200
MAX_BOOTSTRAP_BLOCKS = 200  # a longer run resamples runs of consecutive iterations


@dataclass
class StatisticalEstimate:
    layer_index: np.ndarray  # the layers, in the order of the other arrays
    power_mw: np.ndarray
    power_mw_low: np.ndarray  # 95% bootstrap percentile interval
    power_mw_high: np.ndarray
    gap_power_mw: float
    n_windows: int
    condition_number: float
    note: str | None


def sensor_windows(signal: RailSignal, start_ns: int, end_ns: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The sensor windows (t - U, t] that lie inside [start, end], with their values. A read that repeats the
    previous value sooner than one update interval later is the same window read twice: it is dropped."""
    a, b, values = signal.windows
    first = np.searchsorted(a, start_ns, side="left")
    last = np.searchsorted(b, end_ns, side="right")
    return a[first:last], b[first:last], values[first:last]


def overlap_matrix(layer_events: pd.DataFrame, layer_ids: np.ndarray, a_ns: np.ndarray,
                   b_ns: np.ndarray) -> sparse.csr_matrix:
    """(windows x layers), sparse: how long each layer ran inside each window (a, b], summed over its intervals.
    Windows are sorted (a and b increasing); each interval meets the few windows found by searchsorted."""
    starts = layer_events["t_start_ns"].to_numpy(np.int64)
    ends = layer_events["t_end_ns"].to_numpy(np.int64)
    columns = np.searchsorted(layer_ids, layer_events["layer_index"].to_numpy()).astype(np.int32)
    first = np.searchsorted(b_ns, starts, side="right")  # the first window that ends after the interval starts
    stop = np.searchsorted(a_ns, ends, side="left")  # windows from here on start at or after the interval's end
    count = np.maximum(stop - first, 0)
    # One entry per (interval, window) met, with 32-bit indices (millions of entries: memory traffic is the cost).
    # Every entry is positive except those of zero-length intervals, which add zeros: harmless.
    index = np.int32 if len(a_ns) < 2**31 and len(starts) < 2**31 else np.int64
    interval = np.repeat(np.arange(len(starts), dtype=index), count)
    window = np.repeat((first - np.cumsum(count) + count).astype(index), count)
    window += np.arange(len(window), dtype=index)
    values = (np.minimum(b_ns[window], ends[interval]) - np.maximum(a_ns[window], starts[interval])).astype(np.float64)
    shape = (len(a_ns), len(layer_ids))
    if len(window) and (np.diff(window) >= 0).all():
        # Intervals in time order (the usual case): the entries are already grouped by window, so the CSR arrays
        # are at hand without a sort (a window meeting two intervals of one layer holds two entries; products add).
        indptr = np.concatenate([[0], np.cumsum(np.bincount(window, minlength=len(a_ns)))])
        return sparse.csr_matrix((values, columns[interval], indptr), shape=shape)
    return sparse.csr_matrix((values, (window, columns[interval])), shape=shape)


def overlap_ns(layer_events: pd.DataFrame, layer_ids: np.ndarray, a_ns: np.ndarray, b_ns: np.ndarray) -> np.ndarray:
    """overlap_matrix as a dense array."""
    return overlap_matrix(layer_events, layer_ids, a_ns, b_ns).toarray()


def _least_squares_form(gram: np.ndarray, moment: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """(A, b) with ||A x - b||^2 = x'Gx - 2 h'x + constant, A square: NNLS on the normal equations G = X'X,
    h = X'y gives the same x as NNLS on X and y, at k x k instead of windows x k. Also cond(X) = sqrt(cond(G))."""
    eigenvalues, vectors = np.linalg.eigh(gram)
    largest = max(float(eigenvalues[-1]), 0.0)
    kept = eigenvalues > largest * 1e-15
    root = np.sqrt(eigenvalues[kept])
    condition = np.sqrt(largest / eigenvalues[0]) if eigenvalues[0] > 0 else np.inf
    a = root[:, None] * vectors[:, kept].T
    b = (vectors[:, kept].T @ moment) / root
    return a, b, float(condition)


def _nnls_normal(gram: np.ndarray, moment: np.ndarray) -> np.ndarray:
    from scipy.optimize import nnls

    a, b, _ = _least_squares_form(gram, moment)
    return nnls(a, b, maxiter=50 * gram.shape[0])[0] if len(b) else np.zeros(gram.shape[0])


def _nnls_batch(grams: np.ndarray, moments: np.ndarray, active: np.ndarray) -> np.ndarray:
    """NNLS of many similar problems (bootstrap replicates): first the unconstrained solve on `active`, the full
    data's positive set, kept where the optimality (KKT) conditions hold, which makes it the exact NNLS answer;
    the few others by NNLS."""
    out = np.zeros(moments.shape)
    fine = np.zeros(len(moments), dtype=bool)
    if active.any():
        try:
            sub = np.linalg.solve(grams[:, active][:, :, active], moments[:, active, None])[..., 0]
            out[:, active] = sub
            gradient = moments - np.einsum("rij,rj->ri", grams, out)
            scale = np.abs(moments).max(axis=1, keepdims=True) + 1e-300
            fine = (sub > 0).all(axis=1) & (gradient[:, ~active] <= 1e-9 * scale).all(axis=1)
        except np.linalg.LinAlgError:
            pass
    for r in np.flatnonzero(~fine):
        out[r] = _nnls_normal(grams[r], moments[r])
    return out


@dataclass
class _Design:
    """What the estimate needs of the windows and the layer intervals, whatever the rail's values: the design
    matrix [fractions | gap] (each layer's share of each window, and the share of no layer), the bootstrap
    blocks as runs of windows (`bounds`), and each block's Gram matrix."""

    a_ns: np.ndarray
    b_ns: np.ndarray
    interval_ns: int
    fractions: sparse.csr_matrix
    gap: np.ndarray
    bounds: np.ndarray
    grams: np.ndarray

    @classmethod
    def of(cls, events: pd.DataFrame, layer_ids: np.ndarray, a_ns: np.ndarray, b_ns: np.ndarray,
           interval_ns: int) -> _Design:
        fractions = overlap_matrix(events, layer_ids, a_ns, b_ns) / float(interval_ns)
        gap = np.clip(1.0 - np.asarray(fractions.sum(axis=1)).ravel(), 0.0, None)
        # Bootstrap blocks: each window belongs to the iteration its middle falls in (windows before the first
        # iteration form their own block); a long run merges consecutive iterations into MAX_BOOTSTRAP_BLOCKS.
        iteration_starts = np.sort(events.groupby("iteration")["t_start_ns"].min().to_numpy())
        block = np.searchsorted(iteration_starts, (a_ns + b_ns) // 2, side="right") - 1
        blocks, block = np.unique(block, return_inverse=True)
        count = len(blocks)
        if count > MAX_BOOTSTRAP_BLOCKS:
            block, count = block * MAX_BOOTSTRAP_BLOCKS // count, MAX_BOOTSTRAP_BLOCKS
        bounds = np.searchsorted(block, np.arange(count + 1))  # windows are in time order: blocks are runs
        unknowns = len(layer_ids) + 1
        grams = np.empty((count, unknowns, unknowns))
        for i in range(count):
            rows, gaps = fractions[bounds[i]:bounds[i + 1]], gap[bounds[i]:bounds[i + 1]]
            grams[i, :-1, :-1] = (rows.T @ rows).toarray()
            grams[i, :-1, -1] = grams[i, -1, :-1] = rows.T @ gaps
            grams[i, -1, -1] = gaps @ gaps
        return cls(a_ns, b_ns, interval_ns, fractions, gap, bounds, grams)


def statistical_estimate(signal: RailSignal, layer_events: pd.DataFrame, phases: pd.DataFrame, seed: int = 0,
                         replicates: int = BOOTSTRAP_REPLICATES, shared: dict | None = None
                         ) -> StatisticalEstimate | None:
    """Per-layer mean power of one rail by non-negative least squares over the sensor windows of the inference
    phase, with a bootstrap over iterations; None for a rail without an update interval or without inference.

    The overlap matrix is sparse (a window meets a few layer intervals), and everything after it works on the
    normal equations: each bootstrap block (an iteration, or up to MAX_BOOTSTRAP_BLOCKS runs of consecutive
    iterations in a long run) keeps its k x k Gram matrix, and a replicate is a weighted sum of them. `shared`
    (a dict) lets rails sampled at the same instants reuse the design."""
    inference = phases[phases["phase"] == "inference"]
    events = layer_events[layer_events["phase"] == "inference"]
    if not signal.update_interval_ns or inference.empty or events.empty:
        return None
    layer_ids = np.sort(events["layer_index"].unique())
    start_ns, end_ns = int(inference["t_start_ns"].min()), int(inference["t_end_ns"].max())
    a_ns, b_ns, values = sensor_windows(signal, start_ns, end_ns)
    unknowns = len(layer_ids) + 1
    if len(values) < 2 * unknowns:
        return StatisticalEstimate(layer_ids, *(np.full(len(layer_ids), np.nan) for _ in range(3)), np.nan,
                                   len(values), np.inf,
                                   f"{len(values)} sensor windows for {unknowns} unknowns: too few to estimate")
    design = shared.get("design") if shared is not None else None
    if design is None or not (np.array_equal(design.a_ns, a_ns) and np.array_equal(design.b_ns, b_ns)
                              and design.interval_ns == signal.update_interval_ns):
        design = _Design.of(events, layer_ids, a_ns, b_ns, signal.update_interval_ns)
        if shared is not None:
            shared["design"] = design  # rails read at the same instants (one sensor's channels) share it
    grams, bounds = design.grams, design.bounds
    moments = np.empty((len(grams), unknowns))
    for i in range(len(grams)):
        rows, gaps, y = (part[bounds[i]:bounds[i + 1]] for part in (design.fractions, design.gap, values))
        moments[i, :-1] = rows.T @ y
        moments[i, -1] = gaps @ y
    gram, moment = grams.sum(axis=0), moments.sum(axis=0)
    _, _, condition = _least_squares_form(gram, moment)
    solution = _nnls_normal(gram, moment)

    rng = np.random.default_rng(seed)
    blocks = len(grams)
    counts = np.stack([np.bincount(rng.choice(blocks, size=blocks, replace=True), minlength=blocks)
                       for _ in range(replicates)]).astype(np.float64)
    draws = np.empty((replicates, unknowns))
    for chunk in range(0, replicates, 50):  # 50 replicates' Gram matrices at a time bound the memory
        part = counts[chunk:chunk + 50]
        draws[chunk:chunk + 50] = _nnls_batch(np.tensordot(part, grams, axes=1), part @ moments, solution > 0)
    low, high = np.percentile(draws, [2.5, 97.5], axis=0)
    note = None
    if condition > ILL_POSED_CONDITION:
        note = (f"ill-posed: condition number {condition:.3g} (windows hold almost the same mix of layers; "
                "random gaps between layers, --gap-ms, make them differ)")
    return StatisticalEstimate(layer_ids, solution[:-1], low[:-1], high[:-1], float(solution[-1]), len(values),
                               condition, note)


ESTIMATE_COLUMNS = ["layer_index", "rail", "method", "energy_mj", "energy_mj_ci95_low", "energy_mj_ci95_high",
                    "power_mw", "resolved", "n_windows", "condition_number", "note"]


def attribute(layer_events: pd.DataFrame, phases: pd.DataFrame, signals: dict[str, RailSignal],
              seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-layer statistics with the best estimate per layer and rail, and every estimator's result.

    Returns (layer_stats, layer_estimates). A layer resolved by direct integration keeps the direct figures;
    otherwise the statistical estimate replaces them where there is one (method "statistical", CI from the
    bootstrap, resolved when the CI is narrow enough): it is the better figure for a short layer even when it
    is not resolved, and the sum over layers is the whole network's energy either way. Otherwise the direct
    figure stays, flagged unresolved. layer_estimates holds one row per layer, rail and estimator.
    """
    direct = layer_statistics(layer_events, phases, signals)
    estimates = [pd.DataFrame({
        "layer_index": direct["layer_index"], "rail": direct["rail"], "method": METHOD_DIRECT,
        "energy_mj": direct["energy_mj_mean"],
        "energy_mj_ci95_low": direct["energy_mj_mean"] - direct["energy_mj_ci95"],
        "energy_mj_ci95_high": direct["energy_mj_mean"] + direct["energy_mj_ci95"],
        "power_mw": direct["power_mw_mean"], "resolved": direct["resolved"],
        "n_windows": pd.array([pd.NA] * len(direct), dtype="Int64"), "condition_number": np.nan, "note": None,
    })[direct["rail"].notna()]]
    chosen = direct.copy()
    shared: dict = {}
    for rail, signal in signals.items():
        on_rail = direct["rail"] == rail
        if direct.loc[on_rail, "resolved"].fillna(False).all():
            continue  # every layer is resolved directly: nothing to add
        with one_blas_thread():
            estimate = statistical_estimate(signal, layer_events, phases, seed=seed, shared=shared)
        if estimate is None:
            continue
        rows = direct[on_rail].set_index("layer_index").loc[estimate.layer_index]
        time_s = rows["time_ms_mean"].to_numpy() / 1e3
        energy = estimate.power_mw * time_s
        low, high = estimate.power_mw_low * time_s, estimate.power_mw_high * time_s
        half_width = (high - low) / 2
        resolved = (estimate.condition_number <= ILL_POSED_CONDITION) & np.isfinite(energy) & (
            half_width <= RESOLVED_CI_FRACTION * energy) & (energy > 0)
        estimates.append(pd.DataFrame({
            "layer_index": estimate.layer_index, "rail": rail, "method": METHOD_STATISTICAL, "energy_mj": energy,
            "energy_mj_ci95_low": low, "energy_mj_ci95_high": high, "power_mw": estimate.power_mw,
            "resolved": resolved, "n_windows": estimate.n_windows, "condition_number": estimate.condition_number,
            "note": estimate.note,
        }))
        idle_mw = idle_power_mw(signal, phases)
        # Rows to replace: this rail's layers not resolved directly that have a statistical figure.
        position = chosen["layer_index"].map(pd.Series(np.arange(len(estimate.layer_index)),
                                                       index=estimate.layer_index))
        candidate = (on_rail & position.notna() & ~chosen["resolved"].fillna(False).astype(bool)).to_numpy()
        i = np.where(candidate, position.fillna(0).to_numpy(np.int64), 0)
        replace = candidate & np.isfinite(energy[i])
        i = i[replace]
        chosen.loc[replace, "energy_mj_mean"] = energy[i]
        chosen.loc[replace, "energy_mj_ci95"] = half_width[i]
        chosen.loc[replace, "power_mw_mean"] = estimate.power_mw[i]
        chosen.loc[replace, "energy_above_idle_mj_mean"] = (estimate.power_mw[i] - idle_mw) * time_s[i]
        chosen.loc[replace, "energy_above_idle_mj_ci95"] = half_width[i]
        chosen.loc[replace, "energy_mj_std"] = np.nan
        chosen.loc[replace, "method"] = METHOD_STATISTICAL
        chosen.loc[replace, "resolved"] = resolved[i]
    table = pd.concat(estimates, ignore_index=True) if estimates else pd.DataFrame(columns=ESTIMATE_COLUMNS)
    table["resolved"] = table["resolved"].astype("boolean")
    return chosen, table[ESTIMATE_COLUMNS]


# ---------------------------------------------------------------------------------------------------------------
# Hardware counters attributed to layers the way energy is.

BANDWIDTH_COUNTER = re.compile(r"bus[_ ]?access|mem(ory)?[_ ]?access", re.IGNORECASE)


def counter_statistics(layer_events: pd.DataFrame, counters: pd.DataFrame, counter_info: pd.DataFrame,
                       bytes_per_access: int = 64) -> pd.DataFrame:
    """Per layer and counter, over the inference iterations.

    A counter of class "absolute" is a level (e.g. memory in use): its mean over the layer's intervals. Any
    other counter counts events between its samples (Streamline's delta counters): the count within the
    interval, the events spread evenly over each sample's period, summed over cores; `per_s` is the rate. A
    memory or bus access counter also gives `bytes_per_s` = rate x bytes_per_access (measured bandwidth).
    """
    columns = ["layer_index", "counter", "title", "name", "unit", "counter_class", "n_iterations", "value_mean",
               "per_s", "bytes_per_s"]
    inference = layer_events[layer_events["phase"] == "inference"]
    if counters is None or not len(counters) or inference.empty:
        return pd.DataFrame(columns=columns)
    starts = inference["t_start_ns"].to_numpy(np.int64)
    ends = inference["t_end_ns"].to_numpy(np.int64)
    repeats = inference["repeats"].to_numpy(np.float64)
    duration_s = (ends - starts) / 1e9
    info = counter_info.set_index("counter") if counter_info is not None else pd.DataFrame()
    frames = []
    for counter, rows in counters.groupby("counter", sort=True):
        meta = info.loc[counter] if counter in info.index else pd.Series(dtype=object)
        if isinstance(meta, pd.DataFrame):
            meta = meta.iloc[0]
        absolute = str(meta.get("counter_class", "")).lower() == "absolute"
        per_interval = np.zeros(len(inference))
        for _, series in rows.sort_values("t_ns").groupby(rows["core"].fillna(-1)):
            t = series["t_ns"].to_numpy(np.int64)
            v = series["value"].to_numpy(np.float64)
            if len(t) < 2:
                continue
            if absolute:
                level = RailSignal(t, v, None)  # a level read at instants: interpolate like power
                per_interval += energy_between_mj(level, starts, ends) * MW_NS_PER_MJ / (ends - starts) / 1e9
            else:
                # Cumulative count at each sample; the first sample's period is unknown, so counting starts there.
                cumulative = np.concatenate([[0.0], np.cumsum(v[1:])])
                inside = (starts >= t[0]) & (ends <= t[-1])
                count = np.interp(ends, t, cumulative) - np.interp(starts, t, cumulative)
                per_interval += np.where(inside, count, np.nan)
        if not absolute:
            per_interval = per_interval / repeats
        frame = pd.DataFrame({"layer_index": inference["layer_index"].to_numpy(), "value": per_interval,
                              "seconds": duration_s / repeats})
        grouped = frame.groupby("layer_index").agg(n_iterations=("value", "size"), value_mean=("value", "mean"),
                                                   seconds=("seconds", "mean")).reset_index()
        grouped["per_s"] = np.nan if absolute else grouped["value_mean"] / grouped["seconds"]
        name = " ".join(str(meta.get(k, "")) for k in ("title", "name"))
        grouped["bytes_per_s"] = (grouped["per_s"] * bytes_per_access
                                  if not absolute and BANDWIDTH_COUNTER.search(f"{counter} {name}") else np.nan)
        grouped["counter"] = counter
        for key in ("title", "name", "unit", "counter_class"):
            value = meta.get(key)
            grouped[key] = None if value is None or (isinstance(value, float) and np.isnan(value)) else str(value)
        frames.append(grouped[columns])
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)
