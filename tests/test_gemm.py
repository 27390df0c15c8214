"""The GEMM core (csrc/cpu/kernels/gemm.hpp) against numpy, and the layers that run on it (dense layers,
the mini-batch training loop, covering and 1x1 convolutions) against their Numba oracles and central
differences, at sizes that take the GEMM path and straddle its block edges."""
import numpy as np
import pytest
from conftest import CODES, examples
from hypothesis import given, settings
from hypothesis import strategies as st

import hdl
from hdl import _C, ops, reference
from hdl.reference import cnn

# Tile and block edges of every instruction set: MR in {6, 12}, NR in {4, 8, 16, 32}, KC in {256, 512}
# (AVX-512), MC in {60, 120, 126, 240, 252}, NC = 4096.
EDGES_M = [1, 5, 6, 7, 12, 13, 59, 61, 119, 121, 126, 127, 253]
EDGES_N = [1, 3, 4, 8, 9, 15, 16, 17, 31, 33]
EDGES_K = [0, 1, 7, 255, 256, 257, 511, 512, 513, 1025]


def product(A, B, ta, tb):
    return (A.T if ta else A).astype(np.float64) @ (B.T if tb else B).astype(np.float64)


def operands(rng, M, N, K, ta, tb, dtype):
    A = rng.standard_normal((K, M) if ta else (M, K)).astype(dtype)
    B = rng.standard_normal((N, K) if tb else (K, N)).astype(dtype)
    return A, B


def tolerance(dtype, K):
    """Errors of a sum of K products of N(0, 1) entries grow like K u (a bound, not the typical sqrt(K) u)."""
    u = np.finfo(dtype).eps
    return dict(rtol=8 * u * max(K, 1), atol=8 * u * max(K, 1))


@settings(max_examples=examples(80), deadline=None)
@given(M=st.integers(1, 300), N=st.integers(1, 300), K=st.integers(0, 300), ta=st.booleans(), tb=st.booleans(),
       alpha=st.sampled_from([1.0, -0.5, 2.0]), beta=st.sampled_from([0.0, 1.0, 0.3]), seed=st.integers(0, 2**31))
def test_float64_matches_numpy(M, N, K, ta, tb, alpha, beta, seed):
    rng = np.random.default_rng(seed)
    A, B = operands(rng, M, N, K, ta, tb, np.float64)
    C = rng.standard_normal((M, N))
    got = C.copy()
    out = _C.gemm(A, B, got, ta, tb, alpha, beta)
    assert out is got or np.shares_memory(out, got)
    np.testing.assert_allclose(got, alpha * product(A, B, ta, tb) + beta * C, **tolerance(np.float64, K))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_small_batches_times_w_transposed(dtype):
    """x W^T for batches of 1..16 (dot products, or W's rows against packed panels of x^T), accumulating."""
    rng = np.random.default_rng(3)
    for M in range(1, 17):
        for N, K in ((64, 1), (65, 7), (130, 300), (10, 33)):
            x, W, C = rng.standard_normal((M, K)), rng.standard_normal((N, K)), rng.standard_normal((M, N))
            x, W, C = x.astype(dtype), W.astype(dtype), C.astype(dtype)
            got = C.copy()
            _C.gemm(x, W, got, False, True, -0.5, 0.3)
            np.testing.assert_allclose(got, -0.5 * product(x, W, False, True) + 0.3 * C, **tolerance(dtype, K))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("batch", [1, 4, 5, 8, 9, 12, 16])
def test_small_batch_fully_connected_epilogue(batch, dtype):
    """A fully connected layer (a filter covering its input) on a small batch: bias and ReLU fused into the
    store of x W^T, whichever kernel the batch takes (narrow rows of W, the two-vector panel, dot products)."""
    rng = np.random.default_rng(batch)
    x = rng.standard_normal((batch, 3, 5, 7)).astype(dtype)
    w, b = rng.standard_normal((70, 3, 5, 7)).astype(dtype), rng.standard_normal(70).astype(dtype)
    want = np.maximum(x.reshape(batch, -1) @ w.reshape(70, -1).T + b, 0)
    got = ops.conv2d(x, w, b, relu=True).reshape(batch, 70)
    np.testing.assert_allclose(got, want, **tolerance(dtype, 105))


@pytest.mark.parametrize("ta,tb", [(False, False), (False, True), (True, False), (True, True)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_block_edges(ta, tb, dtype):
    rng = np.random.default_rng(7)
    for M in EDGES_M:
        for N, K in zip(rng.choice(EDGES_N, 3), rng.choice(EDGES_K, 3)):
            A, B = operands(rng, M, N, K, ta, tb, dtype)
            got = _C.gemm(A, B, trans_a=ta, trans_b=tb)
            assert got.dtype == dtype and got.shape == (M, N)
            np.testing.assert_allclose(got, product(A, B, ta, tb), **tolerance(dtype, K))
    # the same with the roles of M and N swapped (the transposed product runs when N is small)
    for N in EDGES_M:
        for M, K in zip(rng.choice(EDGES_N, 3), rng.choice(EDGES_K, 3)):
            A, B = operands(rng, M, N, K, ta, tb, dtype)
            np.testing.assert_allclose(_C.gemm(A, B, trans_a=ta, trans_b=tb), product(A, B, ta, tb),
                                       **tolerance(dtype, K))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(1024, 1024, 1024), (64, 512, 784), (257, 4100, 3), (3, 4100, 300), (300, 5, 600)])
def test_large_and_threaded(dtype, shape):
    M, N, K = shape
    rng = np.random.default_rng(1)
    A, B = operands(rng, M, N, K, False, True, dtype)
    np.testing.assert_allclose(_C.gemm(A, B, trans_b=True), product(A, B, False, True), **tolerance(dtype, K))


def test_beta_zero_ignores_what_out_held_and_beta_accumulates():
    rng = np.random.default_rng(2)
    A, B = rng.standard_normal((40, 30)), rng.standard_normal((30, 50))
    out = np.full((40, 50), np.nan)
    _C.gemm(A, B, out)
    np.testing.assert_allclose(out, A @ B, rtol=1e-13, atol=1e-13)
    _C.gemm(A, B, out, beta=1.0)
    np.testing.assert_allclose(out, 2 * A @ B, rtol=1e-13, atol=1e-13)
    empty = _C.gemm(np.zeros((40, 0)), np.zeros((0, 50)), out, beta=0.5)  # K = 0: out = beta out
    np.testing.assert_allclose(empty, A @ B, rtol=1e-13, atol=1e-13)


def test_bad_input_names_the_shapes():
    A, B = np.zeros((3, 4)), np.zeros((5, 6))
    with pytest.raises(ValueError, match=r"op\(A\) is \(3, 4\) but op\(B\) is \(5, 6\)"):
        _C.gemm(A, B)
    with pytest.raises(ValueError, match=r"out must have shape \(3, 6\)"):
        _C.gemm(A, np.zeros((4, 6)), np.zeros((3, 5)))
    with pytest.raises(ValueError, match="beta"):
        _C.gemm(A, np.zeros((4, 6)), beta=1.0)
    with pytest.raises(TypeError, match="float64"):
        _C.gemm(A, np.zeros((4, 6), np.float32))
    with pytest.raises(ValueError, match="C-contiguous"):
        _C.gemm(np.zeros((4, 3)).T, np.zeros((4, 6)))


# ---- dense layers on the GEMM core ---------------------------------------------------------------

LAYERS = [(512, 784, 1), (512, 784, 7), (512, 784, 64), (33, 70, 100), (10, 512, 256), (120, 400, 16)]
CONTINUOUS = ["linear", "sigmoid", "relu", "leaky_relu"]  # step flips on rounding at z = 0


def dense_tol(dtype, n_in):
    return dict(rtol=1e-11, atol=1e-11) if dtype == np.float64 else dict(rtol=2e-5, atol=4e-7 * n_in)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", LAYERS)
def test_dense_layers_match_oracle(shape, dtype):
    n_out, n_in, m = shape
    rng = np.random.default_rng(n_out + m)
    W, b, a_in, g = (rng.standard_normal(s).astype(dtype) for s in ((n_out, n_in), n_out, (n_in, m), (n_out, m)))
    W /= np.sqrt(n_in).astype(dtype)
    for act in CONTINUOUS:
        a_out = ops.dense_forward(W, b, a_in, act, 0.02)
        np.testing.assert_allclose(a_out, reference.dense_forward(W, b, a_in, CODES[act], 0.02),
                                   **dense_tol(dtype, n_in))
        got = ops.dense_backward(g, a_out, W, a_in, act, 0.02, 1.0 / m)
        want = reference.dense_backward(g, a_out, W, a_in, CODES[act], 0.02, 1.0 / m)
        for x, y, k in zip(got, want, (1, m, m, n_out)):
            np.testing.assert_allclose(x, y, **dense_tol(dtype, k))


def test_dense_gradient_by_central_differences():
    """C = sum(g o sigma(W a + b)) on a layer that takes the GEMM path: dC/dW, dC/db, dC/da."""
    rng = np.random.default_rng(4)
    n_out, n_in, m = 40, 30, 20
    W, b, a, g = rng.standard_normal((n_out, n_in)), rng.standard_normal(n_out), rng.standard_normal((n_in, m)), \
        rng.standard_normal((n_out, m))
    cost = lambda W, b, a: np.sum(g * ops.dense_forward(W, b, a, "sigmoid"))  # noqa: E731
    _, dW, db, g_in = ops.dense_backward(g, ops.dense_forward(W, b, a, "sigmoid"), W, a, "sigmoid")
    h = 1e-6
    for k, grad in enumerate((dW, db, g_in)):  # along random directions v: (C(p + h v) - C(p - h v)) / 2h = <grad, v>
        for _ in range(3):
            v = rng.standard_normal(grad.shape)
            up, down = [W, b, a], [W, b, a]
            up[k], down[k] = up[k] + h * v, down[k] - h * v
            numeric = (cost(*up) - cost(*down)) / (2 * h)
            assert np.sum(grad * v) == pytest.approx(numeric, rel=1e-6, abs=1e-6)


@pytest.mark.parametrize("dtype,rtol", [(np.float64, 1e-10), (np.float32, 2e-3)])
def test_mini_batch_training_on_the_gemm_path_matches_oracle(dtype, rtol):
    from test_training import oracle_run

    rng = np.random.default_rng(0)
    X, Y = rng.random((30, 300)).astype(dtype), rng.random((5, 300)).astype(dtype)
    net = hdl.Network([30, 64, 40, 5], activation=["relu", "sigmoid", "linear"], seed=1, dtype=dtype, scale=0.2)
    want_cost, want_W, want_b = oracle_run(net, X, Y, 30, 64, False, True, 0.1, 0.01, 10, 2)
    hist = hdl.stochastic_gradient(net, X, Y, eta=0.1, iterations=30, batch_size=64, replacement=False, lam=0.01,
                                   record_every=10, seed=2)
    np.testing.assert_allclose(hist.cost, want_cost, rtol=rtol)
    for got, want in zip(list(net.W) + list(net.b), want_W + want_b):
        np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol)


@pytest.mark.parametrize("replacement,dtype,rtol", [(True, np.float64, 1e-10), (False, np.float32, 2e-3)])
def test_one_sample_at_a_time_on_wide_layers_matches_oracle(replacement, dtype, rtol):
    """Batch size 1 on layers of 8192+ multiply-adds (300 -> 250 on two threads, 300 columns in two ranges): the
    forward dot products and the one-pass W^T delta and update by ranges of columns (dense_impl.hpp), against
    the oracle, weight decay included."""
    from test_training import oracle_run

    rng = np.random.default_rng(1)
    X, Y = rng.random((300, 40)).astype(dtype), rng.random((5, 40)).astype(dtype)
    net = hdl.Network([300, 250, 130, 5], activation=["relu", "sigmoid", "linear"], seed=1, dtype=dtype, scale=0.1)
    want_cost, want_W, want_b = oracle_run(net, X, Y, 25, 1, replacement, True, 0.05, 0.01, 5, 3)
    hist = hdl.stochastic_gradient(net, X, Y, eta=0.05, iterations=25, batch_size=1, replacement=replacement,
                                   lam=0.01, record_every=5, seed=3)
    np.testing.assert_allclose(hist.cost, want_cost, rtol=rtol)
    for got, want in zip(list(net.W) + list(net.b), want_W + want_b):
        np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol)


@pytest.mark.parametrize("layout", ["columns", "short run", "rows in place"])
@pytest.mark.parametrize("replacement,dtype", [(False, np.float64), (True, np.float64), (False, np.float32)])
def test_mini_batches_in_the_row_form_match_oracle(layout, replacement, dtype):
    """Mini-batches whose layers reach the GEMM core run with a point per row (dense_rows.hpp): gathered from
    a point-major copy ('columns'), from the columns in place (a run too short to copy: 'short run'), or
    from data.T ('rows in place'); odd sizes, a last short batch, leaky ReLU and no cost recording."""
    from test_training import oracle_run

    rng = np.random.default_rng(3)
    N, iters = (2001, 3) if layout == "short run" else (203, 17)
    X, Y = rng.random((37, N)).astype(dtype), rng.random((3, N)).astype(dtype)
    net = hdl.Network([37, 29, 45, 3], activation=["leaky_relu", "sigmoid", "linear"], seed=5, scale=0.3,
                      dtype=dtype)
    want_cost, want_W, want_b = oracle_run(net, X, Y, iters, 24, replacement, True, 0.2, 0.003, 0, 7)
    Xg, Yg = (np.ascontiguousarray(X.T).T, np.ascontiguousarray(Y.T).T) if layout == "rows in place" else (X, Y)
    hist = hdl.stochastic_gradient(net, Xg, Yg, eta=0.2, iterations=iters, batch_size=24, replacement=replacement,
                                   lam=0.003, record_every=0, seed=7)
    assert hist.final_cost is None
    tol = 1e-11 if dtype == np.float64 else 2e-4
    for got, want in zip(list(net.W) + list(net.b), want_W + want_b):
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol)


# ---- convolutions that are one GEMM --------------------------------------------------------------

CONVS = [  # (N, C, H, W, O): a covering filter, then 1x1 stride-1 filters
    # a covering filter permutes the smaller side into the other's patch order: the inputs when N < O ...
    ("covers", 64, 16, 5, 5, 120), ("covers", 2, 64, 7, 7, 300),  # whole 8 x 8 / 4 x 4 register transposes
    # ... the filters when N >= O
    ("covers", 40, 6, 3, 5, 12), ("covers", 130, 16, 2, 4, 130), ("covers", 33, 9, 3, 3, 1), ("covers", 1, 784, 1, 1, 512), ("covers", 7, 3, 4, 6, 33),
    ("covers", 9, 7, 3, 3, 70), ("covers", 16, 50, 1, 1, 131), ("covers", 13, 3, 1, 1, 64),  # small batches x W^T
    ("1x1", 2, 24, 7, 9, 40), ("1x1", 3, 5, 6, 6, 1),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CONVS)
def test_gemm_convolutions_match_oracle(case, dtype):
    kind, N, C, H, W, O = case
    k = (H, W) if kind == "covers" else (1, 1)
    rng = np.random.default_rng(N * O)
    x, w, b = (rng.standard_normal(s).astype(dtype) for s in ((N, C, H, W), (O, C, *k), O))
    tol = dict(rtol=1e-11, atol=1e-11) if dtype == np.float64 else dict(rtol=1e-4, atol=1e-5 * C * k[0] * k[1])
    y = ops.conv2d(x, w, b)
    np.testing.assert_allclose(y, cnn.conv2d(x, w, b, 1, 0), **tol)
    np.testing.assert_allclose(ops.conv2d(x, w, b, relu=True), np.maximum(y, 0), **tol)
    dy = rng.standard_normal(y.shape).astype(dtype)
    for got, want in zip(ops.conv2d_backward(dy, x, w), cnn.conv2d_backward(dy, x, w, 1, 0)):
        np.testing.assert_allclose(got, want, **(tol if dtype == np.float64 else dict(rtol=1e-4, atol=1e-5 * N * H * W)))


@pytest.mark.parametrize("features", [40, 5])  # more features than the batch (inputs permuted), fewer (filters)
def test_fully_connected_chain_gradients_by_central_differences(features):
    from hdl.convnet import ConvNet, FullyConnected, ReLU

    rng = np.random.default_rng(5)
    net = ConvNet([FullyConnected(3, features, (4, 5), init="he", rng=rng, dtype=np.float64), ReLU(),
                   FullyConnected(features, 30, init="he", rng=rng, dtype=np.float64), ReLU(),
                   FullyConnected(30, 4, init="he", rng=rng, dtype=np.float64)])
    x, labels = rng.standard_normal((9, 4, 5, 3)), rng.integers(0, 4, 9)
    hdl.gradcheck(net, x, labels, samples=6)
