"""Pooling, ReLU, dropout, softmax log-loss and the fused SGD-momentum update
against their Numba oracles and central finite differences."""
import numpy as np
import pytest
from conftest import examples
from hypothesis import given, settings
from hypothesis import strategies as st

from hdl import _C, _checks, ops
from hdl.reference import cnn


@st.composite
def pool_case(draw):
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    pad = tuple(draw(st.integers(0, k - 1)) for k in (kh, kh, kw, kw))  # asymmetric, overhanging windows
    N, C = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    H = draw(st.integers(max(1, kh - pad[0] - pad[1]), 9))
    W = draw(st.integers(max(1, kw - pad[2] - pad[3]), 9))
    return (N, C, H, W), (kh, kw), (sh, sw), pad


def distinct(shape, seed, dtype=np.float64):
    """A permutation of evenly spaced values: the max of a window is unique (MatConvNet's nnpool test)."""
    rng = np.random.default_rng(seed)
    return (rng.permutation(int(np.prod(shape))).reshape(shape) / 7.0 - 3.0).astype(dtype)


@settings(max_examples=examples(80), deadline=None)
@given(case=pool_case(), kind=st.sampled_from(["max", "avg"]), dtype=st.sampled_from([np.float32, np.float64]),
       seed=st.integers(0, 2**31))
def test_pooling_matches_oracle(case, kind, dtype, seed):
    shape, window, stride, pad = case
    x = distinct(shape, seed, dtype)
    f, g = getattr(ops, f"{kind}_pool2d"), getattr(ops, f"{kind}_pool2d_backward")
    fo, go = getattr(cnn, f"{kind}_pool2d"), getattr(cnn, f"{kind}_pool2d_backward")
    y = f(x, window, stride, pad)
    rtol = 2e-6 if dtype == np.float32 else 1e-14
    np.testing.assert_allclose(y, fo(x, window, stride, pad), rtol=rtol, atol=rtol)
    dy = np.random.default_rng(seed + 1).standard_normal(y.shape).astype(dtype)
    np.testing.assert_allclose(g(dy, x, window, stride, pad), go(dy, x, window, stride, pad), rtol=1e-5, atol=1e-6)


def first_argmax(x, window, stride, pad):
    """The index r*W + q of each window's first maximal cell, by numpy, NCHW."""
    (kh, kw), (sh, sw), (pt, pb, pl, pr) = _checks.pair("w", window), _checks.pair("s", stride), _checks.pad4(pad)
    N, C, H, W = x.shape
    Ho, Wo = (H + pt + pb - kh) // sh + 1, (W + pl + pr - kw) // sw + 1
    out = np.empty((N, C, Ho, Wo), np.int32)
    for i in range(Ho):
        for j in range(Wo):
            r0, c0 = max(i * sh - pt, 0), max(j * sw - pl, 0)
            r1, c1 = min(i * sh - pt + kh, H), min(j * sw - pl + kw, W)
            block = x[:, :, r0:r1, c0:c1].reshape(N, C, -1)
            k = block.argmax(axis=2)
            out[:, :, i, j] = (r0 + k // (c1 - c0)) * W + c0 + k % (c1 - c0)
    return out


@settings(max_examples=examples(60), deadline=None)
@given(case=pool_case(), dtype=st.sampled_from([np.float32, np.float64]), seed=st.integers(0, 2**31))
def test_max_pool_argmax_and_fused_relu(case, dtype, seed):
    """The argmax of the forward pass, the backward pass from it, and the fused ReLU, against the oracle."""
    shape, window, stride, pad = case
    x = distinct(shape, seed, dtype)
    y, argmax = ops.max_pool2d(x, window, stride, pad, return_argmax=True)
    assert argmax.dtype == np.int32
    np.testing.assert_array_equal(argmax, first_argmax(x, window, stride, pad))
    dy = np.random.default_rng(seed + 1).standard_normal(y.shape).astype(dtype)
    want = cnn.max_pool2d_backward(dy, x, window, stride, pad)
    np.testing.assert_allclose(ops.max_pool2d_backward(dy, x, window, stride, pad, argmax=argmax), want,
                               rtol=1e-5, atol=1e-6)
    yr, cut = ops.max_pool2d(x, window, stride, pad, relu=True, return_argmax=True)
    np.testing.assert_array_equal(yr, np.maximum(y, 0))
    np.testing.assert_array_equal(cut, np.where(y > 0, argmax, -1))
    np.testing.assert_allclose(ops.max_pool2d_backward(dy, x, window, stride, pad, argmax=cut),
                               cnn.max_pool2d_backward(dy * (y > 0), x, window, stride, pad), rtol=1e-5, atol=1e-6)
    nhwc = ops.max_pool2d(x.transpose(0, 2, 3, 1).copy(), window, stride, pad, layout="NHWC", return_argmax=True)
    np.testing.assert_array_equal(nhwc[1], argmax.transpose(0, 2, 3, 1))


# Channel counts around the vector widths (8 floats or 4 doubles on AVX2, 16 or 8 on AVX-512): the kernels
# split a pixel's channels into whole vectors, an overlapping last vector, or one vector that runs into the
# next pixels; the usual windows, with and without padding, batch 1 and more.
@pytest.mark.parametrize("C", [1, 3, 6, 7, 9, 16, 17])
@pytest.mark.parametrize("window, stride, pad", [(2, 2, 0), (2, 2, (1, 0, 1, 0)), (3, 2, 0), (3, 2, (0, 1, 0, 1)),
                                                 (3, 2, 1), (3, 1, 0), (3, 1, 1), (2, 3, (1, 1, 0, 1))])
@pytest.mark.parametrize("N, H, W", [(1, 7, 9), (3, 8, 5)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_pooling_channel_counts(C, window, stride, pad, N, H, W, dtype):
    x = distinct((N, C, H, W), C + 10 * N, dtype)
    y, argmax = ops.max_pool2d(x, window, stride, pad, return_argmax=True)
    rtol = 2e-6 if dtype == np.float32 else 1e-14
    np.testing.assert_array_equal(y, cnn.max_pool2d(x, window, stride, pad))
    np.testing.assert_array_equal(argmax, first_argmax(x, window, stride, pad))
    dy = np.random.default_rng(C).standard_normal(y.shape).astype(dtype)
    want = cnn.max_pool2d_backward(dy, x, window, stride, pad)
    np.testing.assert_allclose(ops.max_pool2d_backward(dy, x, window, stride, pad), want, rtol=rtol, atol=rtol)
    np.testing.assert_allclose(ops.max_pool2d_backward(dy, x, window, stride, pad, argmax=argmax), want,
                               rtol=rtol, atol=rtol)
    yr, cut = ops.max_pool2d(x, window, stride, pad, relu=True, return_argmax=True)
    np.testing.assert_array_equal(yr, np.maximum(y, 0))
    np.testing.assert_array_equal(cut, np.where(y > 0, argmax, -1))
    np.testing.assert_allclose(ops.max_pool2d_backward(dy, x, window, stride, pad, argmax=cut),
                               cnn.max_pool2d_backward(dy * (y > 0), x, window, stride, pad), rtol=rtol, atol=rtol)
    np.testing.assert_allclose(ops.avg_pool2d(x, window, stride, pad), cnn.avg_pool2d(x, window, stride, pad),
                               rtol=rtol, atol=rtol)
    np.testing.assert_allclose(ops.avg_pool2d_backward(dy, x, window, stride, pad),
                               cnn.avg_pool2d_backward(dy, x, window, stride, pad), rtol=rtol, atol=rtol)


def test_max_pool_ties_go_to_the_first_cell():
    """Equal values (a ReLU's zeros): the argmax and the gradient take the first cell in row-major order."""
    for C in (1, 6, 9):
        x = np.zeros((2, C, 6, 6), np.float32)
        x[:, :, 1::2, 1::2] = -1.0  # a max of 0 at three cells of each 2x2 window
        _, argmax = ops.max_pool2d(x, 2, 2, 0, return_argmax=True)
        np.testing.assert_array_equal(argmax, first_argmax(x, 2, 2, 0))
        dy = np.ones((2, C, 3, 3), np.float32)
        for at in (None, argmax):
            dx = ops.max_pool2d_backward(dy, x, 2, 2, 0, argmax=at)
            np.testing.assert_array_equal(dx[:, :, ::2, ::2], 1.0)
            assert dx.sum() == dy.sum()


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("case", [((1, 2, 7, 6), (3, 3), (2, 2), (0, 1, 0, 1)),
                                  ((2, 1, 5, 5), (2, 3), (3, 1), (1, 0, 2, 1)),
                                  ((1, 1, 4, 4), (1, 1), (2, 2), 0)])
def test_pooling_gradient_by_finite_differences(kind, case):
    shape, window, stride, pad = case
    x = distinct(shape, 3)
    dy = np.random.default_rng(4).standard_normal(getattr(ops, f"{kind}_pool2d")(x, window, stride, pad).shape)
    loss = lambda z: float(np.sum(dy * getattr(ops, f"{kind}_pool2d")(z, window, stride, pad)))  # noqa: E731
    dx = getattr(ops, f"{kind}_pool2d_backward")(dy, x, window, stride, pad)
    h = 1e-6
    for idx in np.ndindex(*shape):
        e = np.zeros(shape)
        e[idx] = h
        assert dx[idx] == pytest.approx((loss(x + e) - loss(x - e)) / (2 * h), abs=1e-6)


def test_matconvnet_border_rules():
    x = -np.arange(1.0, 10.0).reshape(1, 1, 3, 3)  # all negative: a zero pad would win a max
    y = ops.max_pool2d(x, 2, 2, (1, 0, 1, 0))
    np.testing.assert_array_equal(y[0, 0], [[-1, -2], [-4, -5]])
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    a = ops.avg_pool2d(x, 3, 2, (0, 1, 0, 1))
    assert a.shape == (1, 1, 2, 2)
    assert a[0, 0, 1, 1] == x[0, 0, 2:, 2:].mean()  # divides by the 4 cells inside the image, not by 9


@pytest.mark.parametrize("kind", ["max", "avg"])
def test_nhwc_layout_matches_nchw(kind):
    x = distinct((3, 5, 7, 9), 0)
    f, g = getattr(ops, f"{kind}_pool2d"), getattr(ops, f"{kind}_pool2d_backward")
    x_nhwc = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    y = f(x, 3, 2, (0, 1, 0, 1))
    np.testing.assert_array_equal(f(x_nhwc, 3, 2, (0, 1, 0, 1), layout="NHWC").transpose(0, 3, 1, 2), y)
    dy = np.random.default_rng(0).standard_normal(y.shape)
    dy_nhwc = np.ascontiguousarray(dy.transpose(0, 2, 3, 1))
    np.testing.assert_allclose(g(dy_nhwc, x_nhwc, 3, 2, (0, 1, 0, 1), layout="NHWC").transpose(0, 3, 1, 2),
                               g(dy, x, 3, 2, (0, 1, 0, 1)), rtol=1e-15)


def test_cifar_shapes():
    x = np.random.default_rng(0).standard_normal((2, 32, 32, 32)).astype(np.float32)
    assert ops.max_pool2d(x, 3, 2, (0, 1, 0, 1)).shape == (2, 32, 16, 16)
    assert ops.avg_pool2d(x[:, :, :16, :16].copy(), 3, 2, (0, 1, 0, 1)).shape == (2, 32, 8, 8)


@pytest.mark.parametrize("slope", [0.0, 0.01])
def test_relu(slope):
    x = np.random.default_rng(0).standard_normal((3, 4, 5, 6))
    x[np.abs(x) < 1e-3] = 0.5
    np.testing.assert_array_equal(ops.relu(x, slope), cnn.relu(x, slope))
    dy = np.random.default_rng(1).standard_normal(x.shape)
    np.testing.assert_array_equal(ops.relu_backward(dy, x, slope), cnn.relu_backward(dy, x, slope))
    big = np.random.default_rng(2).standard_normal(100_000).astype(np.float32)  # threaded path
    np.testing.assert_array_equal(ops.relu(big, slope), np.where(big > 0, big, np.float32(slope) * big))


@pytest.mark.parametrize("dtype,rtol", [(np.float64, 1e-14), (np.float32, 1e-6)])
@pytest.mark.parametrize("shape", [(1,), (3, 4, 5, 7), (100_001,)])  # odd sizes, and the threaded path
def test_sigmoid_matches_oracle(shape, dtype, rtol):
    rng = np.random.default_rng(len(shape))
    x = (8 * rng.standard_normal(shape)).astype(dtype)
    x.flat[0] = 0.0
    y = ops.sigmoid(x)
    np.testing.assert_allclose(y, cnn.sigmoid(x), rtol=rtol, atol=1e-30)
    assert y.flat[0] == 0.5
    dy = rng.standard_normal(shape).astype(dtype)
    np.testing.assert_allclose(ops.sigmoid_backward(dy, y), cnn.sigmoid_backward(dy, y), rtol=rtol, atol=1e-30)
    assert ops.sigmoid_backward(dy, y, out=dy) is dy  # in place


def test_sigmoid_saturates_without_overflow():
    for dtype in (np.float32, np.float64):
        x = np.array([-1e4, -200.0, -80.0, 80.0, 200.0, 1e4], dtype)
        with np.errstate(all="raise"):
            y = ops.sigmoid(x)
        assert np.all(np.isfinite(y)) and np.all((y >= 0) & (y <= 1))
        np.testing.assert_array_equal(y[3:], 1.0)
        assert np.all(y[:2] < 1e-37) and y[2] == pytest.approx(1.0 / (1.0 + np.exp(80.0)), rel=1e-5)


def test_sigmoid_layer_gradient_by_central_differences():
    rng = np.random.default_rng(3)
    x, dy = rng.standard_normal((2, 3, 3, 4)), rng.standard_normal((2, 3, 3, 4))
    h = 1e-6
    fd = (np.sum(dy * ops.sigmoid(x + h)) - np.sum(dy * ops.sigmoid(x - h))) / (2 * h)  # along all ones
    assert np.sum(ops.sigmoid_backward(dy, ops.sigmoid(x))) == pytest.approx(fd, rel=1e-8)


@pytest.mark.parametrize("dtype,atol", [(np.float64, 1e-15), (np.float32, 3e-7)])
@pytest.mark.parametrize("shape", [(1,), (3, 4, 5, 7), (100_001,)])
def test_tanh_matches_oracle_and_saturates(shape, dtype, atol):
    rng = np.random.default_rng(len(shape))
    x = (3 * rng.standard_normal(shape)).astype(dtype)
    x.flat[0] = 0.0
    y = ops.tanh(x)
    np.testing.assert_allclose(y, cnn.tanh(x), rtol=4 * np.finfo(dtype).eps, atol=atol)  # a few ulp of 1
    assert y.flat[0] == 0.0
    dy = rng.standard_normal(shape).astype(dtype)
    # 1 - y^2 cancels where |y| is near 1: a few ulp of |dy| (the kernel's fused multiply-add is the closer)
    np.testing.assert_allclose(ops.tanh_backward(dy, y), cnn.tanh_backward(dy, y), rtol=1e-6,
                               atol=4 * np.finfo(dtype).eps * np.abs(dy).max())
    assert ops.tanh_backward(dy, y, out=dy) is dy  # in place
    big = np.array([-1e4, -50.0, 50.0, 1e4], dtype)
    with np.errstate(all="raise"):
        np.testing.assert_array_equal(ops.tanh(big), [-1.0, -1.0, 1.0, 1.0])


@pytest.mark.parametrize("kind", ops.ACTIVATION_KERNELS)
def test_activations_by_central_differences(kind):
    """Every activation of the kernel list: its backward pass against float64 central differences."""
    rng = np.random.default_rng(4)
    x, dy = rng.standard_normal((2, 3, 3, 5)), rng.standard_normal((2, 3, 3, 5))
    f, back = getattr(ops, kind), getattr(ops, f"{kind}_backward")
    h = 1e-6
    fd = (dy * (f(x + h) - f(x - h))) / (2 * h)  # elementwise: one difference per entry
    np.testing.assert_allclose(back(dy, f(x)), fd, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("rate", [0.0, 0.15, 0.35, 0.9])
def test_dropout(rate):
    x = np.random.default_rng(0).standard_normal((50, 32, 8, 8))
    y, mask = ops.dropout(x, rate, seed=7)
    y0, mask0 = cnn.dropout(x, rate, 7)
    np.testing.assert_array_equal(mask, mask0)
    np.testing.assert_allclose(y, y0, rtol=1e-15)
    assert set(np.unique(mask)) <= {0.0, 1.0 / (1.0 - rate)}
    assert abs((mask == 0).mean() - rate) < 0.01
    np.testing.assert_array_equal(ops.dropout(x, rate, seed=7)[1], mask)  # seeded
    if rate:
        assert not np.array_equal(ops.dropout(x, rate, seed=8)[1], mask)
    np.testing.assert_array_equal(ops.dropout_backward(y, mask), y * mask)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_log_loss(dtype):
    rng = np.random.default_rng(0)
    v = (5 * rng.standard_normal((13, 10))).astype(dtype)
    labels = rng.integers(0, 10, 13)
    loss, dv = ops.softmax_log_loss(v, labels)
    loss0, dv0 = cnn.softmax_log_loss(v, labels)
    assert loss == pytest.approx(loss0, rel=1e-6)
    np.testing.assert_allclose(dv, dv0, rtol=1e-5, atol=1e-7)
    if dtype == np.float64:
        h = 1e-6
        for i, k in [(0, 0), (3, labels[3]), (12, 9)]:
            e = np.zeros_like(v)
            e[i, k] = h
            fd = (ops.softmax_log_loss(v + e, labels)[0] - ops.softmax_log_loss(v - e, labels)[0]) / (2 * h)
            assert dv[i, k] == pytest.approx(fd, abs=1e-8)
    huge = np.array([[1000.0, 0.0, -1000.0]], dtype)  # log-sum-exp keeps this finite
    assert ops.softmax_log_loss(huge, np.array([0]))[0] == pytest.approx(0.0, abs=1e-6)
    assert ops.softmax_log_loss(huge, np.array([2]))[0] == pytest.approx(2000.0, rel=1e-6)
    v4 = v.reshape(13, 10, 1, 1)
    assert ops.softmax_log_loss(v4, labels)[1].shape == (13, 10, 1, 1)


def test_top_k():
    v = np.array([[0.1, 0.5, 0.2, 0.5], [3.0, 1.0, 2.0, 0.0]])
    np.testing.assert_array_equal(ops.top_k(v, 2), [[1, 3], [0, 2]])
    rng = np.random.default_rng(0)
    v = rng.standard_normal((100, 10))
    np.testing.assert_array_equal(ops.top_k(v, 5), cnn.top_k(v, 5))


@pytest.mark.parametrize("form", ["matconvnet", "pytorch"])
def test_sgd_momentum_matches_oracle(form):
    rng = np.random.default_rng(0)
    shapes = [(32, 3, 5, 5), (32,), (10, 64, 1, 1), (70_000,)]
    params = [rng.standard_normal(s) for s in shapes]
    grads = [rng.standard_normal(s) for s in shapes]
    vels = [rng.standard_normal(s) for s in shapes]
    want = [[a.copy() for a in group] for group in (params, vels)]
    kwargs = dict(lr=0.05, momentum=0.9, weight_decay=1e-4, lr_mults=[0.1, 2, 1, 1], decay_mults=[1, 0, 1, 1],
                  form=form)
    for _ in range(3):
        ops.sgd_momentum_(params, grads, vels, **kwargs)
        cnn.sgd_momentum_(want[0], grads, want[1], **kwargs)
    for got, ref in zip(params + vels, want[0] + want[1]):
        np.testing.assert_allclose(got, ref, rtol=1e-13, atol=1e-15)


def test_momentum_forms_differ_as_documented():
    w, g = np.ones(3), np.full(3, 0.5)
    wm, vm = w.copy(), np.zeros(3)
    wp, vp = w.copy(), np.zeros(3)
    ops.sgd_momentum_([wm], [g], [vm], lr=0.1, form="matconvnet")
    ops.sgd_momentum_([wp], [g], [vp], lr=0.1, form="pytorch")
    np.testing.assert_allclose(wm, wp)  # the same first step, velocities of opposite sign
    np.testing.assert_allclose(vm, -vp)


@pytest.mark.parametrize("call,err,match", [
    (lambda: ops.max_pool2d(np.ones((1, 1, 4, 4)), 0), ValueError, "window must be positive"),
    (lambda: ops.max_pool2d(np.ones((1, 1, 4, 4)), 2, 0), ValueError, "stride must be positive"),
    (lambda: ops.max_pool2d(np.ones((1, 1, 4, 4)), 2, 2, 2), ValueError, "smaller than the window"),
    (lambda: ops.max_pool2d(np.ones((1, 4, 4)), 2), ValueError, r"\(N, C, H, W\)"),
    (lambda: ops.max_pool2d(np.ones((1, 1, 2, 2)), 3), ValueError, "larger than the padded input"),
    (lambda: ops.avg_pool2d(np.ones((1, 1, 4, 4), np.int32), 2), TypeError, "int32"),
    (lambda: ops.max_pool2d(np.ones((1, 4, 8, 1))[:, :, ::2], 2, layout="NHWC"), ValueError, "C-contiguous"),
    (lambda: ops.max_pool2d(np.ones((1, 1, 4, 4)), 2, 2, (1, 0, 0)), TypeError, "4-tuple"),
    (lambda: ops.max_pool2d_backward(np.ones((1, 1, 3, 3)), np.ones((1, 1, 4, 4)), 2), ValueError, "dy must have"),
    (lambda: ops.max_pool2d_backward(np.ones((1, 1, 2, 2)), np.ones((1, 1, 4, 4)), 2, argmax=np.zeros((1, 1, 2, 2))),
     TypeError, "argmax must be an int32 array"),
    (lambda: ops.max_pool2d_backward(np.ones((1, 1, 2, 2)), np.ones((1, 1, 4, 4)), 2,
                                     argmax=np.zeros((1, 1, 2, 3), np.int32)), ValueError, r"argmax must be .*shape"),
    (lambda: _C.avg_pool2d_backward(np.ones((1, 2, 2, 1)), np.ones((1, 4, 4, 1)), 2, 2, 2, 2, 0, 0, 0, 0, None,
                                    np.zeros((1, 2, 2, 1), np.int32)), ValueError, "argmax belongs to max pooling"),
    (lambda: ops.relu_backward(np.ones(3), np.ones(4)), ValueError, "dy has shape"),
    (lambda: ops.sigmoid_backward(np.ones(3), np.ones(4)), ValueError, "dy has shape"),
    (lambda: ops.sigmoid(np.ones(3), out=np.empty(3, np.float32)), (TypeError, ValueError), "out"),
    (lambda: ops.dropout(np.ones(3), 1.0, 0), ValueError, "rate must be in"),
    (lambda: ops.softmax_log_loss(np.ones((2, 3)), np.array([0, 3])), ValueError, "outside"),
    (lambda: ops.softmax_log_loss(np.ones((2, 3)), np.array([0])), ValueError, "labels must have shape"),
    (lambda: ops.top_k(np.ones((2, 3)), 4), ValueError, "k must be in"),
    (lambda: ops.sgd_momentum_([np.ones(3)], [np.ones(4)], [np.ones(3)], lr=0.1), ValueError, "grads"),
    (lambda: ops.sgd_momentum_([np.ones(3)], [np.ones(3)], [np.ones(3)], lr=-1), ValueError, "lr must be"),
    (lambda: ops.sgd_momentum_([np.ones(3)], [np.ones(3)], [np.ones(3)], lr=0.1, form="adam"), ValueError, "form"),
])
def test_bad_input(call, err, match):
    with pytest.raises(err, match=match):
        call()


def test_shape_checks_are_the_ones_the_cuda_backend_uses():
    """_C.conv_shape/pool_shape (hdl/shapes.hpp) give hdl.cuda.ops its checks, fields and output shapes."""
    x, w = np.ones((2, 7, 6, 3)), np.ones((4, 3, 3, 2))
    fields, yshape = _C.conv_shape("conv2d", x.shape, w.shape, 2, 1, 1, 0, 0, 1)
    assert fields == [2, 7, 6, 3, 4, 3, 2, 2, 1, 1, 0, 0, 1]
    assert yshape == ops.conv2d(x, w, np.ones(4), (2, 1), (1, 0, 0, 1), layout="NHWC").shape
    fields, yshape = _C.pool_shape("max_pool2d", x.shape, 3, 2, 2, 1, 1, 0, 1, 0)
    assert fields == [2, 7, 6, 3, 3, 2, 2, 1, 1, 0, 1, 0]
    assert yshape == ops.max_pool2d(x, (3, 2), (2, 1), (1, 0, 1, 0), layout="NHWC").shape
    with pytest.raises(ValueError, match=r"conv2d: w \(4, 3, 3, 2\) expects 3 input channels but x \(2, 7, 6, 4\)"):
        _C.conv_shape("conv2d", (2, 7, 6, 4), w.shape, 1, 1, 0, 0, 0, 0)
    with pytest.raises(ValueError, match=r"avg_pool2d: window \(9, 2\) larger than the padded input"):
        _C.pool_shape("avg_pool2d", x.shape, 9, 2, 1, 1, 0, 0, 0, 0)


def test_out_buffers_are_written_in_place():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 8, 8, 3))
    w, b = rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(4)
    y = np.empty((2, 8, 8, 4))
    assert ops.conv2d(x, w, b, 1, 1, layout="NHWC", out=y) is y
    np.testing.assert_allclose(y, ops.conv2d(x, w, b, 1, 1, layout="NHWC"), rtol=1e-15)
    p = np.empty((2, 4, 4, 4))
    assert ops.max_pool2d(y, 2, layout="NHWC", out=p) is p
    dx = np.empty_like(x)
    assert ops.conv2d_backward(y, x, w, 1, 1, layout="NHWC", dx_out=dx)[0] is dx
    g = rng.standard_normal(y.shape)
    expect = ops.relu_backward(g, y)
    assert ops.relu_backward(g, y, out=g) is g  # in place
    np.testing.assert_array_equal(g, expect)
    with pytest.raises(ValueError, match=r"out must have shape \(2, 8, 8, 4\)"):
        ops.conv2d(x, w, b, 1, 1, layout="NHWC", out=np.empty((2, 8, 8, 5)))
    with pytest.raises(ValueError, match="layout='NHWC'"):
        ops.max_pool2d(x.transpose(0, 3, 1, 2), 2, out=p)
    with pytest.raises(TypeError, match="float64"):
        ops.relu(x, out=np.empty(x.shape, np.float32))
    d, m = np.empty_like(y), np.empty_like(y)
    yd, md = ops.dropout(y, 0.3, 11, out=d, mask_out=m)
    assert yd is d and md is m
    np.testing.assert_array_equal(d, ops.dropout(y, 0.3, 11)[0])
    with pytest.raises(ValueError, match=r"dropout \(mask\): out must have shape"):
        ops.dropout(y, 0.3, 11, mask_out=np.empty(3))
