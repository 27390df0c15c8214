"""Inference passes keep their convolutions' packed and Winograd-transformed filters between calls
(ops.keeping_filters, which Model.forward uses; csrc/cpu/kernels/filter_cache.hpp): what they compute must
be bit for bit what a pass that makes them again computes, whatever happens to the weights in between."""
import contextlib
import copy
import threading

import numpy as np
import pytest

from hdl import _C, ops
from hdl.convnet import ConvNet, Conv2d, FullyConnected, MaxPool2d, ReLU

# (x NHWC, w, stride, pad): the paths an inference pass packs or transforms filters on
CASES = [
    ((2, 9, 11, 5), (6, 5, 3, 3), 1, 1),            # the direct kernel, one narrow vector of outputs
    ((2, 10, 10, 40), (70, 40, 3, 3), 2, (0, 1, 1, 0)),  # the direct kernel, three blocks, stride 2
    ((4, 16, 16, 32), (32, 32, 3, 3), 1, 1),        # Winograd F(6x6, 3x3)
    ((4, 8, 8, 64), (64, 64, 3, 3), 1, 1),          # Winograd F(4x4, 3x3)
    ((16, 4, 4, 64), (16, 64, 2, 2), 1, (1, 0, 0, 1)),  # Winograd F(4x4, 2x2), one vector of outputs
    ((4, 32, 32, 16), (32, 16, 4, 4), 2, 1),        # space to depth, F(4x4, 2x2)
    ((2, 14, 14, 16), (32, 16, 5, 5), 1, 2),        # Winograd F(4x4, 5x5)
    ((1, 8, 8, 64), (64, 64, 3, 3), 1, 1),          # F(4x4, 3x3) on four tiles: an inference's only
]


@pytest.fixture(autouse=True)
def rules_only(monkeypatch):
    monkeypatch.setenv("HDL_AUTOTUNE", "0")  # each shape on its rule's path, the same in every call


def data(case, dtype, seed=0):
    xs, ws, stride, pad = case
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(xs).astype(dtype), rng.standard_normal(ws).astype(dtype),
            rng.standard_normal(ws[0]).astype(dtype))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CASES)
def test_kept_filters_give_the_same_outputs_and_follow_the_weights(case, dtype):
    x, w, b = data(case, dtype)
    _, _, stride, pad = case
    conv = lambda w_: ops.conv2d(x, w_, b, stride, pad, layout="NHWC", relu=True)  # noqa: E731

    def made(w_):
        """An inference pass over held filters that reads nothing kept: the second over a copy at its own
        address (the first, over filters not seen before, runs training's algorithms)."""
        c = w_.copy()
        with ops.keeping_filters():
            conv(c)
            return conv(c)

    before = made(w)
    other = w[::-1].copy()  # another array of the same shape
    with ops.keeping_filters():
        runs = [conv(w) for _ in range(4)]  # not held (first seen), held and kept, read, read
        mid = conv(other)
        runs.append(conv(w))
        w[-1, 0, 0, 0] += 0.5  # in place, at the address the kept transform was made from
        changed = [conv(w) for _ in range(3)]  # the kept one no longer matches: not held, kept, read
        w[...] = w[::-1]       # every value, in place
        reversed_ = [conv(w) for _ in range(3)]
    # a pass over filters not held (first seen, or changed in the sample) runs training's algorithms, which
    # may round otherwise (Winograd on four tiles against the direct kernel); every held pass is bit for bit
    # what a pass making the same transform computes
    tol = (1e-12 if dtype == np.float64 else 3e-5) * np.abs(before).max()
    close = lambda a, b_: np.testing.assert_allclose(a, b_, rtol=0, atol=tol)  # noqa: E731
    assert all(np.array_equal(r, before) for r in runs[1:])
    close(runs[0], before)
    close(mid, made(other))
    assert all(np.array_equal(r, made(w)) for r in reversed_[1:])  # w reversed, made again
    close(reversed_[0], made(w))
    w[...] = w[::-1]
    assert all(np.array_equal(r, made(w)) for r in changed[1:]) and not np.allclose(changed[1], before)
    close(changed[0], made(w))
    close(conv(w), changed[1])  # a training pass (which never keeps)


@pytest.mark.parametrize("case", CASES[2:4])
def test_gradients_are_never_read_from_kept_filters(case):
    x, w, b = data(case, np.float32)
    _, _, stride, pad = case
    dy = np.random.default_rng(1).standard_normal(ops.conv2d(x, w, b, stride, pad, layout="NHWC").shape)
    dy = dy.astype(np.float32)
    want = ops.conv2d_backward(dy, x, w, stride, pad, layout="NHWC")
    with ops.keeping_filters():
        ops.conv2d(x, w, b, stride, pad, layout="NHWC")  # keeps the forward transform under w's address
        got = ops.conv2d_backward(dy, x, w, stride, pad, layout="NHWC")
    for g, r in zip(got, want):
        assert np.array_equal(g, r)


def test_the_switch_is_per_thread_and_restored():
    assert _C.keep_filters(False) is False
    seen = []
    with ops.keeping_filters():
        assert _C.keep_filters(True) is True
        thread = threading.Thread(target=lambda: seen.append(_C.keep_filters(False)))
        thread.start()
        thread.join()
    assert seen == [False]  # another thread's switch stays off
    assert _C.keep_filters(False) is False
    with contextlib.suppress(RuntimeError), ops.keeping_filters():
        raise RuntimeError
    assert _C.keep_filters(False) is False


def small_net(seed):
    rng = np.random.default_rng(seed)
    kw = dict(init="he", rng=rng, dtype=np.float32)
    return ConvNet([Conv2d(3, 32, 3, 1, 1, **kw), ReLU(), MaxPool2d(2, 2), Conv2d(32, 32, 3, 1, 1, **kw), ReLU(),
                    Conv2d(32, 16, 4, 2, 1, **kw), ReLU(), FullyConnected(16, 10, (4, 4), **kw)])


def test_model_inference_keeps_filters_and_follows_training():
    """Model.forward in inference keeps its filters; a training step in between changes the weights, and the
    next inference follows them: a pass over held filters equals, bit for bit, one that reads nothing kept (the
    second pass of a copy of the net, its weights at new addresses); the first pass after the step, over
    filters that changed, runs training's algorithms (equal to rounding)."""
    net = small_net(3)
    x = np.random.default_rng(4).standard_normal((8, 16, 16, 3)).astype(np.float32)
    labels = np.arange(8) % 10
    kept = [net.forward(x) for _ in range(3)]  # the third reads what the second kept
    net.loss_and_gradients(x, labels)
    net.step(0.05, 0.9, 0.0)
    after = [net.forward(x) for _ in range(3)]
    assert _C.keep_filters(False) is False  # Model.forward leaves the switch as it found it
    twin = copy.deepcopy(net)
    twin.forward(x)
    fresh = twin.forward(x)
    close = lambda a, b: np.testing.assert_allclose(a, b, rtol=0, atol=3e-5 * np.abs(b).max())  # noqa: E731
    assert all(np.array_equal(a, fresh) for a in after[1:])
    close(after[0], fresh)
    assert np.array_equal(kept[1], kept[2]) and not np.allclose(kept[1], fresh)
    close(kept[0], kept[1])


def test_one_buffer_seen_as_two_filter_shapes():
    """The same memory as (O, C, 3, 4) and (O, C, 4, 3) filters (stride 2, through space to depth): equal
    values, different transforms, each kept apart."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((4, 32, 32, 16)).astype(np.float32)
    buf = rng.standard_normal(24 * 16 * 12).astype(np.float32)
    b = np.zeros(24, np.float32)
    views = (buf.reshape(24, 16, 3, 4), buf.reshape(24, 16, 4, 3))
    for w in views:
        assert _C.conv_winograd_offer((4, 32, 32, 16), w.shape, 2, 2, 1, 1, 1, 1, np.float32)["space_to_depth"]
    want = [ops.conv2d(x, w, b, 2, 1, layout="NHWC") for w in views]
    with ops.keeping_filters():
        got = [[ops.conv2d(x, w, b, 2, 1, layout="NHWC") for w in views] for _ in range(3)]
    for run in got:
        assert all(np.array_equal(g, r) for g, r in zip(run, want))
