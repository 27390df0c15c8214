"""The compiled training loop against its Numba twin, form by form, and its behaviour."""
import os
import subprocess
import sys

import numpy as np
import pytest
from numba.typed import List

import hdl
from hdl import _C, reference

FORMS = [  # (batch_size, replacement): (4.6), (4.7), (4.8) with and without
    (1, True), (1, False), (3, True), (4, False), (10, False),
]


def oracle_run(net, X, Y, iterations, batch_size, replacement, shuffle, eta, lam, record_every, seed):
    Ws = List([W.copy() for W in net.W])
    bs = List([b.copy() for b in net.b])
    acts = np.array([hdl.ops.activation_code(layer.activation) for layer in net.layers])
    slopes = np.array([layer.slope for layer in net.layers])
    cost = reference.sgd_train(Ws, bs, acts, slopes, X, Y, iterations, batch_size, replacement, shuffle, eta, lam,
                               record_every, seed)
    return cost, list(Ws), list(bs)


def test_generator_matches_oracle():
    for seed in (0, 1, 2**40 + 3):
        for n in (1, 2, 10, 1000, 2**31 + 11):
            np.testing.assert_array_equal(_C.rng_below(seed, n, 500), reference.rng_below(seed, n, 500))
        np.testing.assert_array_equal(_C.rng_shuffle(seed, 37), reference.rng_shuffle(seed, 37))


def test_generator_state_matches_oracle():
    for seed in (0, 1, 2**63 - 1):
        np.testing.assert_array_equal(_C.rng_state(seed), reference.rng.seed_state(seed))


@pytest.mark.parametrize("batch_size,replacement", FORMS)
@pytest.mark.parametrize("cut", [1, 7, 13])  # updates before the cut: off and on the epochs' and records' grid
def test_a_run_cut_in_two_by_its_state_is_the_run_and_matches_oracle(batch_size, replacement, cut):
    """_C.sgd_train for `cut` updates, then from the state it left for the rest: the whole run bit for bit
    (parameters, recorded costs at the multiples of record_every), and the oracle's run cut the same way."""
    X, Y = hdl.data.ten_points()
    whole = hdl.Network([2, 2, 3, 2], seed=4)
    h = hdl.stochastic_gradient(whole, X, Y, eta=0.3, iterations=40, batch_size=batch_size, replacement=replacement,
                                record_every=3, seed=11)
    net = hdl.Network([2, 2, 3, 2], seed=4)
    Ws, bs = list(net.W), list(net.b)
    acts = [hdl.ops.activation_code(layer.activation) for layer in net.layers]
    slopes = [layer.slope for layer in net.layers]
    state, order = np.array([*_C.rng_state(11), 10, 0], np.uint64), np.arange(10)
    costs = [_C.sgd_train(Ws, bs, acts, slopes, X, Y, n, batch_size, replacement, True, 0.3, 0.0, 3, 0,
                          state=state, order=order)[0] for n in (cut, 40 - cut)]
    assert state[5] == 40
    np.testing.assert_array_equal(np.concatenate(costs), h.cost)  # a cost at a multiple of 3 is recorded once
    np.testing.assert_array_equal(net.get_params(), whole.get_params())
    oracle = hdl.Network([2, 2, 3, 2], seed=4)
    oWs, obs = List([W.copy() for W in oracle.W]), List([b.copy() for b in oracle.b])
    ostate, oorder = reference.sgd_state(11, 10)
    ocosts = [reference.sgd_continue(oWs, obs, np.array(acts), np.array(slopes), X, Y, n, batch_size, replacement,
                                     True, 0.3, 0.0, 3, ostate, oorder) for n in (cut, 40 - cut)]
    np.testing.assert_array_equal(ostate, state)  # the same draws: the same generator words, position, updates
    np.testing.assert_array_equal(oorder, order)
    np.testing.assert_allclose(np.concatenate(ocosts), h.cost, rtol=1e-12)
    for got, want in zip(list(net.W) + list(net.b), list(oWs) + list(obs)):
        np.testing.assert_allclose(got, want, rtol=1e-11, atol=1e-13)


def test_a_bad_state_is_refused_naming_it():
    X, Y = hdl.data.ten_points()
    net = hdl.Network([2, 2, 3, 2], seed=4)
    args = (list(net.W), list(net.b), [1, 1, 1], [0.0] * 3, X, Y, 5, 1, False, True, 0.1, 0.0, 1, 0)
    good = np.array([*_C.rng_state(1), 10, 0], np.uint64)
    for state, order, match in [
        (good, None, "order must be a writeable int64 array of shape \\(10,\\)"),
        (good.astype(np.int64), np.arange(10), "state must be a writeable uint64"),
        (good[:5], np.arange(10), "state must be a writeable uint64 array of shape \\(6,\\)"),
        (np.zeros(6, np.uint64), np.arange(10), "all zero"),
        (np.array([*good[:4], 11, 0], np.uint64), np.arange(10), "position must be in \\[0, N\\]"),
        (good, np.arange(1, 11), "order\\[9\\] = 10 is not a point"),
        (None, np.arange(10), "order is given without state"),
    ]:
        with pytest.raises((ValueError, TypeError), match=match):
            _C.sgd_train(*args, state=state, order=order)


def test_draws_are_uniform():
    counts = np.bincount(_C.rng_below(5, 10, 100_000), minlength=10)
    chi2 = ((counts - 10_000) ** 2 / 10_000).sum()
    assert chi2 < 30  # 9 degrees of freedom: p < 0.0005


@pytest.mark.parametrize("batch_size,replacement", FORMS)
@pytest.mark.parametrize("lam", [0.0, 0.01])
def test_every_form_matches_oracle(batch_size, replacement, lam):
    X, Y = hdl.data.ten_points()
    net = hdl.Network([2, 2, 3, 2], seed=4)
    want_cost, want_W, want_b = oracle_run(net, X, Y, 1500, batch_size, replacement, True, 0.3, lam, 5, 11)
    hist = hdl.stochastic_gradient(net, X, Y, eta=0.3, iterations=1500, batch_size=batch_size,
                                   replacement=replacement, lam=lam, record_every=5, seed=11)
    np.testing.assert_allclose(hist.cost, want_cost, rtol=1e-12)
    np.testing.assert_array_equal(hist.iterations, np.arange(0, 1501, 5))
    for got, want in zip(list(net.W) + list(net.b), want_W + want_b):
        np.testing.assert_allclose(got, want, rtol=1e-11, atol=1e-13)


@pytest.mark.parametrize("acts", [["relu", "leaky_relu", "linear"], ["sigmoid", "relu", "sigmoid"]])
def test_other_activations_and_float32_match_oracle(acts):
    rng = np.random.default_rng(0)
    X, Y = rng.random((3, 37)), rng.random((2, 37))
    for dtype, rtol in ((np.float64, 1e-11), (np.float32, 2e-4)):
        net = hdl.Network([3, 5, 4, 2], activation=acts, seed=1, dtype=dtype)
        want_cost, want_W, _ = oracle_run(net, X.astype(dtype), Y.astype(dtype), 400, 8, False, True, 0.1, 0.0, 40, 2)
        hist = hdl.stochastic_gradient(net, X.astype(dtype), Y.astype(dtype), eta=0.1, iterations=400,
                                       batch_size=8, replacement=False, record_every=40, seed=2)
        np.testing.assert_allclose(hist.cost, want_cost, rtol=rtol)
        for got, want in zip(net.W, want_W):
            np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol)


@pytest.mark.parametrize("iterations", [2, 40])  # a few columns of a large set: gathered in place; else copied
def test_data_in_either_order_and_either_gather_match_oracle(iterations):
    """X, Y as the paper's (n, N) rows or as data.T of (N, n) arrays (F-ordered: read in place)."""
    rng = np.random.default_rng(5)
    X, Y = rng.random((6, 203)), rng.random((3, 203))
    net = hdl.Network([6, 5, 3], activation=["relu", "sigmoid"], seed=2)
    want_cost, want_W, want_b = oracle_run(net, X, Y, iterations, 7, False, True, 0.2, 0.01, 1, 3)
    for Xi, Yi in ((X, Y), (np.asfortranarray(X), np.asfortranarray(Y)), (X, np.asfortranarray(Y))):
        trained = hdl.Network([6, 5, 3], activation=["relu", "sigmoid"], seed=2)
        hist = hdl.stochastic_gradient(trained, Xi, Yi, eta=0.2, iterations=iterations, batch_size=7,
                                       replacement=False, lam=0.01, record_every=1, seed=3)
        np.testing.assert_allclose(hist.cost, want_cost, rtol=1e-12)
        for got, want in zip(list(trained.W) + list(trained.b), want_W + want_b):
            np.testing.assert_allclose(got, want, rtol=1e-11, atol=1e-13)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("n, N", [(300, 700), (37, 203), (64, 1029)])
def test_wide_layers_with_point_major_data_match_c_order(dtype, n, N):
    """Layers on the GEMM core read an F-ordered X in place for the cost pass too; a C-ordered X is copied
    point-major (register-transposed blocks and the edges past them: sizes that are not multiples of 32 or 8)."""
    rng = np.random.default_rng(6)
    X, Y = rng.standard_normal((n, N)).astype(dtype), rng.random((40, N)).astype(dtype)
    runs = []
    for Xi, Yi in ((X, Y), (np.asfortranarray(X), np.asfortranarray(Y))):
        net = hdl.Network([n, 64, 40], activation=["relu", "linear"], seed=3, init="he", dtype=dtype)
        hist = hdl.stochastic_gradient(net, Xi, Yi, eta=0.01, epochs=2, batch_size=50, replacement=False,
                                       seed=1)
        runs.append((hist.cost, net.W[2].copy()))
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    np.testing.assert_array_equal(runs[0][1], runs[1][1])


@pytest.mark.parametrize("order", ["C", "F"])
def test_large_batches_gathered_across_threads_match_oracle(order):
    """Batches of at least 2^16 values are gathered on every thread, and a C-ordered X is copied point-major
    in cache-bypassing stores (its rows a multiple of 32 bytes in both dtypes here): the run is the oracle's."""
    rng = np.random.default_rng(8)
    X, Y = rng.standard_normal((64, 1029)), rng.random((10, 1029))
    X, Y = (np.asfortranarray(X), np.asfortranarray(Y)) if order == "F" else (X, Y)
    net = hdl.Network([64, 48, 10], activation=["relu", "linear"], seed=2, init="he")
    want_cost, want_W, want_b = oracle_run(net, X, Y, 6, 1024, False, True, 0.05, 0.01, 2, 4)
    hist = hdl.stochastic_gradient(net, X, Y, eta=0.05, iterations=6, batch_size=1024, replacement=False,
                                   lam=0.01, record_every=2, seed=4)
    np.testing.assert_allclose(hist.cost, want_cost, rtol=1e-11)
    for got, want in zip(list(net.W) + list(net.b), want_W + want_b):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


def test_steepest_descent_is_full_batch_gradient_step():
    X, Y = hdl.data.ten_points()
    net = hdl.Network([2, 2, 3, 2], seed=2)
    expect = net.copy()
    dW, db = expect.gradients(X, Y)
    for l in range(2, 5):
        expect.W[l] -= 0.5 * dW[l]
        expect.b[l] -= 0.5 * db[l]
    hdl.steepest_descent(net, X, Y, eta=0.5, iterations=1)
    np.testing.assert_allclose(net.get_params(), expect.get_params(), rtol=1e-13, atol=1e-15)
    hist = hdl.steepest_descent(net, X, Y, eta=0.5, iterations=200)
    assert np.all(np.diff(hist.cost) < 0)  # small eta: the cost decreases monotonically


def test_epochs_count_updates_and_visit_every_point():
    X, Y = hdl.data.ten_points()
    net = hdl.Network([2, 2, 3, 2], seed=2)
    hist = hdl.stochastic_gradient(net, X, Y, eta=0.1, epochs=3, batch_size=4, replacement=False, seed=0)
    np.testing.assert_array_equal(hist.iterations, [0, 3, 6, 9])  # ceil(10 / 4) = 3 updates per epoch,
    assert hist.final_cost == pytest.approx(hist.cost[-1], rel=1e-12)  # the cost recorded once per epoch


def test_cost_recorded_once_per_epoch_by_default():
    rng = np.random.default_rng(0)
    X, Y = rng.random((3, 250)), rng.random((2, 250))
    net = hdl.Network([3, 5, 2], seed=0)
    hist = hdl.stochastic_gradient(net, X, Y, eta=0.1, iterations=30, batch_size=25, seed=0)
    np.testing.assert_array_equal(hist.iterations, [0, 10, 20, 30])
    single = hdl.stochastic_gradient(net, X, Y, eta=0.1, iterations=500, seed=0)  # batch 1: every N = 250 updates
    np.testing.assert_array_equal(single.iterations, [0, 250, 500])
    asked = hdl.stochastic_gradient(net, X, Y, eta=0.1, iterations=4, batch_size=25, record_every=1, seed=0)
    np.testing.assert_array_equal(asked.iterations, [0, 1, 2, 3, 4])


def test_runs_are_reproducible_and_seeds_matter():
    X, Y = hdl.data.ten_points()
    runs = []
    for seed in (1, 1, 2):
        net = hdl.Network([2, 2, 3, 2], seed=0)
        runs.append(hdl.stochastic_gradient(net, X, Y, eta=0.05, iterations=1000, record_every=1, seed=seed).cost)
    np.testing.assert_array_equal(runs[0], runs[1])
    assert not np.array_equal(runs[0], runs[2])


def test_recording_does_not_change_the_trajectory():
    X, Y = hdl.data.ten_points()
    a, b = hdl.Network([2, 2, 3, 2], seed=0), hdl.Network([2, 2, 3, 2], seed=0)
    ha = hdl.stochastic_gradient(a, X, Y, eta=0.05, iterations=5000, record_every=1, seed=3)
    hb = hdl.stochastic_gradient(b, X, Y, eta=0.05, iterations=5000, record_every=0, seed=3)
    np.testing.assert_allclose(a.get_params(), b.get_params(), rtol=1e-12, atol=1e-14)
    assert hb.cost.size == 0 and hb.final_cost is None  # no pass over the data that was not asked for
    assert ha.final_cost == pytest.approx(a.cost(X, Y), rel=1e-12)
    last = hdl.Network([2, 2, 3, 2], seed=0)  # batch_cost: the cost of the last mini-batch, before its update
    h1 = hdl.stochastic_gradient(last, X, Y, eta=0.05, iterations=1, batch_size=10, replacement=False,
                                 record_every=0, seed=3)
    assert h1.batch_cost == pytest.approx(hdl.Network([2, 2, 3, 2], seed=0).cost(X, Y), rel=1e-12)


def test_large_data_parallel_cost_matches_python_cost():
    rng = np.random.default_rng(0)
    X, Y = rng.random((30, 5000)), rng.random((4, 5000))
    net = hdl.Network([30, 40, 4], seed=0)
    hist = hdl.stochastic_gradient(net, X, Y, eta=0.01, iterations=3, batch_size=100, record_every=1, seed=0)
    assert hist.final_cost == pytest.approx(net.cost(X, Y), rel=1e-12)


def test_ten_point_golden_curve():
    """The first costs of the paper's setting with seed 1, stored when this test was written."""
    X, Y = hdl.data.ten_points()
    net = hdl.Network([2, 2, 3, 2], seed=1)
    hist = hdl.stochastic_gradient(net, X, Y, eta=0.05, iterations=5, record_every=1, seed=1)
    golden = [0.2556463656732403, 0.2559007095725521, 0.2561624552363555, 0.2564319181566517,
              0.25604557334578526, 0.2563123309485071]
    np.testing.assert_allclose(hist.cost, golden, rtol=1e-12)


@pytest.mark.parametrize("isa", ["avx2", "generic"])
def test_every_instruction_set_gives_the_same_run(isa):
    code = ("import hdl, numpy as np; X, Y = hdl.data.ten_points(); net = hdl.Network([2, 2, 3, 2], seed=1);"
            "h = hdl.stochastic_gradient(net, X, Y, eta=0.05, iterations=20000, seed=1);"
            "print(hdl.isa(), repr(h.final_cost))")
    X, Y = hdl.data.ten_points()
    net = hdl.Network([2, 2, 3, 2], seed=1)
    here = hdl.stochastic_gradient(net, X, Y, eta=0.05, iterations=20000, seed=1).final_cost
    out = subprocess.run([sys.executable, "-c", code], env={**os.environ, "HDL_ISA": isa}, capture_output=True,
                         text=True, check=True).stdout.split()
    assert out[0] in (isa, "generic")
    assert float(out[1]) == pytest.approx(here, rel=1e-9)


# -- the run around the compiled loop (hdl.run.Run, as fit's): epochs, callbacks, stops ------------------

def regression_problem(n=200, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.random((3, n))
    Y = np.vstack([np.sin(3 * X[0]) * X[1], X[2] ** 2]) * 0.5 + 0.25
    return X, Y


def test_callbacks_see_every_epoch_and_leave_the_trajectory_alone(tmp_path):
    from hdl.callbacks import Callback, CSVLogger

    class Seen(Callback):
        def __init__(self):
            self.epochs, self.params = [], []

        def on_epoch_end(self, epoch, model, history):
            self.epochs.append(epoch)
            self.params.append(model.get_params())
            return False
    X, Y = regression_problem()
    plain, watched = hdl.Network([3, 8, 2], seed=1), hdl.Network([3, 8, 2], seed=1)
    kw = dict(eta=0.5, epochs=4, batch_size=16, replacement=False, seed=3)
    h0 = hdl.stochastic_gradient(plain, X, Y, **kw)
    seen = Seen()
    h1 = hdl.stochastic_gradient(watched, X, Y, **kw, callbacks=[seen, CSVLogger(tmp_path / "log.csv")],
                                 progress=True)
    np.testing.assert_array_equal(watched.get_params(), plain.get_params())  # the pauses change nothing
    np.testing.assert_array_equal(h1.cost, h0.cost)
    assert seen.epochs == h1.epochs == [1, 2, 3, 4]
    np.testing.assert_array_equal(seen.params[-1], watched.get_params())
    assert len(h1.train["objective"]) == 4 and all(np.isfinite(h1.train["objective"]))
    assert len(h1.images_per_second) == 4 and h1.lr == [0.5] * 4
    # each epoch's objective is the mean cost of its 13 mini-batches, the cost each update descends on
    assert h1.train["objective"][-1] == pytest.approx(h1.cost[-1], rel=0.5)
    rows = (tmp_path / "log.csv").read_text().splitlines()
    assert rows[0].startswith("epoch,lr,seconds") and len(rows) == 5


def test_early_stopping_and_checkpoints_of_a_network(tmp_path):
    from hdl.callbacks import EarlyStopping
    X, Y = regression_problem()
    net = hdl.Network([3, 8, 2], seed=1)
    best = []

    def on_epoch(epoch, history):
        best.append(history.train["objective"][-1])
    stopper = EarlyStopping(patience=2)
    hist = hdl.stochastic_gradient(net, X, Y, eta=40.0, epochs=30, batch_size=50, seed=0, callbacks=[stopper],
                                   checkpoint=tmp_path / "ck.npz", on_epoch=on_epoch)
    assert len(hist.epochs) < 30 and hist.epochs[-1] - stopper.best_epoch == 2  # stopped early
    # the best epoch's weights are back, and final_cost is theirs
    np.testing.assert_array_equal(net.get_params(), np.concatenate([w.ravel() for w in stopper.weights]))
    assert hist.final_cost == pytest.approx(net.cost(X, Y), rel=1e-12)
    saved = hdl.Network.load(tmp_path / "ck.npz")
    assert type(saved) is hdl.Network and saved.meta["history"]["epochs"] == hist.epochs
    with pytest.raises(ValueError, match="give epochs"):
        hdl.stochastic_gradient(net, X, Y, eta=0.1, iterations=10, callbacks=[stopper])


def test_divergence_stops_before_the_update_naming_epoch_and_batch():
    from hdl.run import TrainingDiverged
    X, Y = regression_problem()
    net = hdl.Network([3, 8, 2], activation="linear", seed=0)
    with pytest.raises(TrainingDiverged, match=r"mini-batch cost \(3.3\) became .* at epoch \d+, batch \d+ of 13 "
                                               r"\(eta=1000.0"):
        hdl.stochastic_gradient(net, X * 1e3, Y, eta=1000.0, epochs=50, batch_size=16, seed=0)


def test_ctrl_c_stops_a_compiled_run():
    import signal
    import threading
    import time
    X, Y = hdl.data.ten_points()
    net = hdl.Network([2, 2, 3, 2], seed=1)
    timer = threading.Timer(0.3, lambda: os.kill(os.getpid(), signal.SIGINT))
    # Python's KeyboardInterrupt handler, also where pytest runs as a background job (SIGINT ignored from the start)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    start = time.perf_counter()
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            hdl.stochastic_gradient(net, X, Y, eta=0.05, iterations=2 * 10**8, record_every=0, seed=1)  # ~12 s
    finally:
        timer.cancel()
        signal.signal(signal.SIGINT, previous)
    assert time.perf_counter() - start < 3  # stopped inside the compiled loop, not after it
    assert np.isfinite(net.get_params()).all()
