"""The netbp run of Section 6 (10^6 single-point steps with replacement, the cost
over all ten points after every step) in hdl, in Numba and in NumPy, one session.

The slow baselines run fewer steps and are scaled to 10^6; the table at the end
gives the medians and the ratios to hdl."""
import numpy as np
import pytest

import hdl
from baselines import netbp_numba, netbp_numpy

STEPS = 10**6
X, Y = hdl.data.ten_points()


def start():
    return hdl.Network([2, 2, 3, 2], seed=1)


def indices(n):
    return hdl._C.rng_below(1, 10, n)  # the points hdl's generator draws, for the loops that take them


def test_hdl(benchmark, record):
    def run():
        net = start()
        return hdl.stochastic_gradient(net, X, Y, eta=0.05, iterations=STEPS, record_every=1, seed=1)
    hist = benchmark.pedantic(run, rounds=7, warmup_rounds=1)
    record("netbp, 10^6 steps", "hdl")
    assert hist.final_cost * 20 < 5e-3


def test_numba_loop(benchmark, record):
    pytest.importorskip("numba")
    net, idx = start(), indices(STEPS)
    args = (X, Y, *net.W, *net.b, 0.05)
    netbp_numba(*args, 10, idx)  # compile
    costs = benchmark.pedantic(netbp_numba, args=(*args, STEPS, idx), rounds=5, warmup_rounds=1)
    record("netbp, 10^6 steps", "numba loop (netbp.m)")
    ours = hdl.stochastic_gradient(start(), X, Y, eta=0.05, iterations=STEPS, record_every=1, seed=1).cost[1:] * 20
    np.testing.assert_allclose(costs, ours, rtol=1e-6)  # the same run


def test_numba_oracle(benchmark, record):
    """hdl.reference.sgd_train: the general, readable oracle, 10^5 steps scaled."""
    pytest.importorskip("numba")
    from numba.typed import List

    from hdl.reference import sgd_train

    def run():
        net = start()
        return sgd_train(List(list(net.W)), List(list(net.b)), np.array([1, 1, 1]), np.full(3, 0.01), X, Y,
                         STEPS // 10, 1, True, True, 0.05, 0.0, 1, 1)
    run()
    benchmark.pedantic(run, rounds=3, warmup_rounds=0)
    record("netbp, 10^6 steps", "numba oracle (x10)", scale=10)


def test_numpy(benchmark, record):
    net, idx = start(), indices(STEPS // 100)
    benchmark.pedantic(netbp_numpy, args=(X, Y, *net.W, *net.b, 0.05, STEPS // 100, idx), rounds=3)
    record("netbp, 10^6 steps", "numpy (x100)", scale=100)


def test_torch(benchmark, record):
    torch = pytest.importorskip("torch", reason="PyTorch baseline runs when installed")
    torch.set_num_threads(1)
    net, idx = start(), indices(STEPS // 1000)

    def run():
        params = [torch.tensor(p, requires_grad=True) for p in (*net.W, *net.b)]
        W2, W3, W4, b2, b3, b4 = params
        Xt, Yt = torch.tensor(X), torch.tensor(Y)
        F = lambda x: torch.sigmoid(W4 @ torch.sigmoid(W3 @ torch.sigmoid(W2 @ x + b2[:, None]) + b3[:, None])  # noqa
                                    + b4[:, None])
        for k in idx:
            cost = 0.5 * ((Yt[:, k:k + 1] - F(Xt[:, k:k + 1])) ** 2).sum()
            grads = torch.autograd.grad(cost, params)
            with torch.no_grad():
                for p, g in zip(params, grads):
                    p -= 0.05 * g
                ((Yt - F(Xt)) ** 2).sum().item()
    benchmark.pedantic(run, rounds=3)
    record("netbp, 10^6 steps", "pytorch (x1000)", scale=1000)
