"""Property tests of the statistical estimator's fast path (importer/attribution.py): NNLS on the normal equations
and the bootstrap's shortcut (the full fit's positive set, kept where the KKT conditions hold) give what scipy's
NNLS gives on the stacked windows, for random problems, including those where a replicate's positive set changes;
the sparse overlap matrix equals a direct computation."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import nnls

from importer.attribution import _nnls_batch, _nnls_normal, overlap_ns

SETTINGS = settings(max_examples=60, deadline=5000, database=None)


@st.composite
def problems(draw):
    """A random design (windows x unknowns, non-negative, some columns nearly idle) and values that make some true
    powers zero, so that positive sets differ between bootstrap replicates."""
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    rows, unknowns = draw(st.integers(12, 80)), draw(st.integers(2, 8))
    design = rng.random((rows, unknowns)) * (rng.random((rows, unknowns)) < 0.6)
    truth = np.where(rng.random(unknowns) < 0.3, 0.0, rng.uniform(100, 5000, unknowns))
    values = design @ truth + rng.normal(0, draw(st.sampled_from([0.0, 10.0, 500.0])), rows)
    blocks = rng.integers(0, 6, rows)
    return design, values, blocks, rng


@SETTINGS
@given(problems())
def test_normal_equations_and_the_batch_shortcut_equal_scipy_nnls(problem):
    design, values, blocks, rng = problem
    full = nnls(design, values, maxiter=50 * design.shape[1])[0]
    gram, moment = design.T @ design, design.T @ values
    whole = _nnls_normal(gram, moment)
    # The same minimum of the least-squares objective (the minimiser itself is unique when the Gram is regular).
    objective = lambda x, g=gram, h=moment: x @ g @ x - 2 * h @ x  # noqa: E731
    assert (whole >= 0).all() and objective(whole) <= objective(full) + 1e-7 * (abs(objective(full)) + 1.0)
    # Replicates: blocks drawn with replacement, as the bootstrap does.
    counts = np.stack([np.bincount(rng.choice(6, size=6), minlength=6) for _ in range(20)]).astype(float)
    grams = np.stack([design[blocks == b].T @ design[blocks == b] for b in range(6)])
    moments = np.stack([design[blocks == b].T @ values[blocks == b] for b in range(6)])
    fast = _nnls_batch(np.tensordot(counts, grams, axes=1), counts @ moments, full > 0)
    for r, weights in enumerate(counts):
        rows = np.concatenate([np.flatnonzero(blocks == b).repeat(int(w)) for b, w in enumerate(weights)])
        if not len(rows):
            continue
        slow = nnls(design[rows], values[rows], maxiter=50 * design.shape[1])[0]
        g, h = design[rows].T @ design[rows], design[rows].T @ values[rows]
        replicate = lambda x, g=g, h=h: x @ g @ x - 2 * h @ x  # noqa: E731
        assert replicate(fast[r]) <= replicate(slow) + 1e-7 * (abs(replicate(slow)) + 1.0)
        assert (fast[r] >= 0).all()


@SETTINGS
@given(seed=st.integers(0, 2**32 - 1), layers=st.integers(1, 6), window_ns=st.sampled_from([7, 50, 1000]))
def test_the_sparse_overlap_matrix_equals_a_direct_sum(seed, layers, window_ns):
    rng = np.random.default_rng(seed)
    n = layers * 20
    durations = rng.integers(1, 300, n)
    gaps = rng.integers(0, 50, n)
    starts = np.cumsum(durations + gaps) - durations
    events = pd.DataFrame({"layer_index": np.tile(np.arange(layers), 20), "t_start_ns": starts,
                           "t_end_ns": starts + durations})
    b = np.arange(window_ns, int(starts[-1] + durations[-1]) + window_ns, window_ns)
    a = b - window_ns
    layer_ids = np.arange(layers)
    direct = np.zeros((len(a), layers))
    for k, (s, e) in enumerate(zip(events["t_start_ns"], events["t_end_ns"], strict=True)):
        direct[:, events["layer_index"][k]] += np.clip(np.minimum(b, e) - np.maximum(a, s), 0, None)
    assert np.array_equal(overlap_ns(events, layer_ids, a, b), direct)
    shuffled = events.sample(frac=1, random_state=seed % 1000)  # intervals out of time order: the general path
    assert np.array_equal(overlap_ns(shuffled, layer_ids, a, b), direct)
