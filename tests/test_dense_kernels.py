"""The C++ dense kernels against their Numba oracles, on random shapes and all activations."""
import numpy as np
import pytest
from conftest import ACTS, CODES, examples, tol
from hypothesis import given, settings
from hypothesis import strategies as st

from hdl import ops, reference

shapes = st.tuples(st.integers(1, 9), st.integers(1, 9), st.integers(1, 40))


@settings(max_examples=examples(60), deadline=None)
@given(shape=shapes, act=st.sampled_from(ACTS), dtype=st.sampled_from([np.float32, np.float64]),
       seed=st.integers(0, 2**31))
def test_forward_matches_oracle(shape, act, dtype, seed):
    n_out, n_in, m = shape
    rng = np.random.default_rng(seed)
    W, b, a = (rng.standard_normal(s).astype(dtype) for s in ((n_out, n_in), n_out, (n_in, m)))
    got = ops.dense_forward(W, b, a, act, 0.02)
    want = reference.dense_forward(W, b, a, CODES[act], 0.02)
    assert got.dtype == dtype and got.shape == (n_out, m)
    np.testing.assert_allclose(got, want, **tol(dtype))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n_out,n_in", [(1, 32), (7, 64), (10, 256), (30, 200), (3, 1031), (40, 300), (300, 40)])
def test_single_sample_matches_oracle(n_out, n_in, dtype):
    """One column (batch-1 inference): below the GEMM core's size a dot product per row of W in vectors, with
    the tails of n_in past whole vectors; above it, and for narrow inputs, the other paths."""
    rng = np.random.default_rng(n_out * n_in)
    W, b, a = (rng.standard_normal(s).astype(dtype) for s in ((n_out, n_in), n_out, (n_in, 1)))
    for act in ACTS:
        got = ops.dense_forward(W, b, a, act, 0.02)
        np.testing.assert_allclose(got, reference.dense_forward(W, b, a, CODES[act], 0.02), **tol(dtype))


@settings(max_examples=examples(60), deadline=None)
@given(shape=shapes, act=st.sampled_from(ACTS), dtype=st.sampled_from([np.float32, np.float64]),
       scale=st.sampled_from([1.0, 0.25]), seed=st.integers(0, 2**31))
def test_backward_matches_oracle(shape, act, dtype, scale, seed):
    n_out, n_in, m = shape
    rng = np.random.default_rng(seed)
    W, b, a_in, g = (rng.standard_normal(s).astype(dtype) for s in ((n_out, n_in), n_out, (n_in, m), (n_out, m)))
    a_out = ops.dense_forward(W, b, a_in, act, 0.02)
    got = ops.dense_backward(g, a_out, W, a_in, act, 0.02, scale)
    want = reference.dense_backward(g, a_out, W, a_in, CODES[act], 0.02, scale)
    for x, y in zip(got, want):
        np.testing.assert_allclose(x, y, **tol(dtype))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_accuracy_over_range(dtype):
    """The vectorised exp behind sigmoid, against numpy, from deep saturation to saturation."""
    z = np.linspace(-60, 60, 100_001).astype(dtype)[None, :]
    got = ops.dense_forward(np.ones((1, 1), dtype), np.zeros(1, dtype), z, "sigmoid")
    want = 1.0 / (1.0 + np.exp(-z.astype(np.float64)))
    rel = np.abs(got - want) / want
    assert rel.max() < (4e-16 * 60 if dtype == np.float64 else 3e-6)  # input rounding dominates in float32
    assert np.all((got >= 0) & (got <= 1))


def test_quadratic_cost_matches_oracle():
    rng = np.random.default_rng(0)
    a, y = rng.random((3, 17)), rng.random((3, 17))
    c, g = ops.quadratic_cost(a, y, 1 / 17)
    c0, g0 = reference.quadratic_cost(a, y, 1 / 17)
    assert c == pytest.approx(c0, rel=1e-14)
    np.testing.assert_allclose(g, g0, rtol=1e-14)
    assert c == pytest.approx(np.sum((y - a) ** 2) / 2 / 17, rel=1e-14)


def test_large_layer_uses_threads_and_agrees():
    """Big enough to take the OpenMP path."""
    rng = np.random.default_rng(1)
    W, b, a = rng.standard_normal((64, 200)), rng.standard_normal(64), rng.standard_normal((200, 300))
    out = ops.dense_forward(W, b, a, "relu")
    np.testing.assert_allclose(out, np.maximum(W @ a + b[:, None], 0), rtol=1e-12, atol=1e-12)
    g = rng.standard_normal((64, 300))
    delta, dW, db, g_in = ops.dense_backward(g, out, W, a, "relu", scale=0.5)
    np.testing.assert_allclose(delta, g * (out > 0), rtol=1e-12)
    np.testing.assert_allclose(dW, 0.5 * delta @ a.T, rtol=1e-11, atol=1e-11)
    np.testing.assert_allclose(db, 0.5 * delta.sum(1), rtol=1e-11, atol=1e-11)
    np.testing.assert_allclose(g_in, W.T @ delta, rtol=1e-11, atol=1e-11)
