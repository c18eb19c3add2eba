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

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

NS_PER_MS = 1e6
MW_NS_PER_MJ = 1e9  # 1 mJ = 1 mW x 1 s = 1e9 mW x ns
RESOLUTION_FACTOR = 2.0  # a layer is resolved when it lasts at least this many sensor update intervals
METHOD_DIRECT = "direct"


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


def energy_between_mj(signal: RailSignal, start_ns: np.ndarray, end_ns: np.ndarray) -> np.ndarray:
    """Energy (mJ) of the rail over each interval [start, end]; NaN where the samples do not cover it."""
    start_ns = np.asarray(start_ns, dtype=np.int64)
    end_ns = np.asarray(end_ns, dtype=np.int64)
    t = signal.t_ns.astype(np.int64)
    p = signal.power_mw.astype(np.float64)
    if len(t) == 0 or (not signal.update_interval_ns and len(t) < 2):
        return np.full(start_ns.shape, np.nan)
    if signal.update_interval_ns:
        breaks = np.concatenate([[t[0] - signal.update_interval_ns], t])
        cumulative = _cumulative_step(breaks, p)
        energy = _step_at(breaks, p, cumulative, end_ns) - _step_at(breaks, p, cumulative, start_ns)
    else:
        breaks = t
        cumulative = _cumulative_linear(t, p)
        energy = _linear_at(t, p, cumulative, end_ns) - _linear_at(t, p, cumulative, start_ns)
    covered = (start_ns >= breaks[0]) & (end_ns <= breaks[-1])
    return np.where(covered, energy / MW_NS_PER_MJ, np.nan)


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


def ci95_half_width(std: pd.Series, n: pd.Series) -> pd.Series:
    """Half-width of the 95% confidence interval of a mean (Student's t); NaN for fewer than two values."""
    n = n.astype(np.float64)
    quantile = stats.t.ppf(0.975, np.maximum(n - 1, 1))
    return pd.Series(np.where(n >= 2, quantile * std / np.sqrt(n), np.nan), index=std.index)


def idle_power_mw(signal: RailSignal, phases: pd.DataFrame) -> float:
    """Mean power over all idle phases (NaN without an idle phase the samples cover)."""
    idle = phases[phases["phase"] == "idle"]
    if idle.empty:
        return np.nan
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
            energy = energy_between_mj(signal, inference["t_start_ns"].to_numpy(), inference["t_end_ns"].to_numpy())
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
