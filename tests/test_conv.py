"""Convolution against its Numba oracle, central finite differences and PyTorch (when installed)."""
import contextlib
import os

import numpy as np
import pytest
from conftest import examples
from hypothesis import given, settings
from hypothesis import strategies as st

from hdl import _C, ops
from hdl.reference import cnn


@st.composite
def conv_case(draw):
    kh, kw = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    pad = tuple(draw(st.integers(0, 3)) for _ in range(4))  # asymmetric, may exceed the filter
    N, C, O = draw(st.integers(1, 3)), draw(st.integers(1, 4)), draw(st.integers(1, 5))
    H = draw(st.integers(max(1, kh - pad[0] - pad[1]), 10))
    W = draw(st.integers(max(1, kw - pad[2] - pad[3]), 10))
    return (N, C, H, W), (O, C, kh, kw), (sh, sw), pad


@settings(max_examples=examples(80), deadline=None)
@given(case=conv_case(), dtype=st.sampled_from([np.float32, np.float64]), seed=st.integers(0, 2**31))
def test_conv_matches_oracle(case, dtype, seed):
    xs, ws, stride, pad = case
    rng = np.random.default_rng(seed)
    x, w, b = (rng.standard_normal(s).astype(dtype) for s in (xs, ws, ws[0]))
    y = ops.conv2d(x, w, b, stride, pad)
    tol = dict(rtol=1e-4, atol=1e-4) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(y, cnn.conv2d(x, w, b, stride, pad), **tol)
    dy = rng.standard_normal(y.shape).astype(dtype)
    for got, want in zip(ops.conv2d_backward(dy, x, w, stride, pad), cnn.conv2d_backward(dy, x, w, stride, pad)):
        np.testing.assert_allclose(got, want, **tol)


def check_conv_gradients(case, seed, n):
    """ops.conv2d_backward's dx, dw, db against float64 central differences of sum(dy * conv2d), n entries each."""
    xs, ws, stride, pad = case
    rng = np.random.default_rng(seed)
    x, w, b = rng.standard_normal(xs), rng.standard_normal(ws), rng.standard_normal(ws[0])
    dy = rng.standard_normal(ops.conv2d(x, w, b, stride, pad).shape)
    dx, dw, db = ops.conv2d_backward(dy, x, w, stride, pad)
    h = 1e-6
    for arr, grad in ((x, dx), (w, dw), (b, db)):
        for flat in rng.choice(arr.size, min(n, arr.size), replace=False):
            idx = np.unravel_index(flat, arr.shape)
            old = arr[idx]
            arr[idx] = old + h
            up = np.sum(dy * ops.conv2d(x, w, b, stride, pad))
            arr[idx] = old - h
            down = np.sum(dy * ops.conv2d(x, w, b, stride, pad))
            arr[idx] = old
            assert grad[idx] == pytest.approx((up - down) / (2 * h), rel=1e-6, abs=1e-6)


@pytest.mark.parametrize("case", [
    ((2, 3, 7, 6), (4, 3, 5, 5), 1, 2),
    ((1, 2, 8, 7), (3, 2, 3, 2), (2, 3), (1, 0, 2, 1)),
    ((3, 4, 4, 4), (2, 4, 1, 1), 1, 0),       # 1x1 filter: no column matrix
    ((2, 2, 5, 5), (3, 2, 1, 1), 2, (0, 1, 1, 0)),
    ((3, 5, 4, 3), (7, 5, 4, 3), 1, 0),       # the filter covers the input: run as a dense layer
])
def test_conv_gradients_by_finite_differences(case):
    check_conv_gradients(case, seed=0, n=25)


def test_conv_matches_torch_on_the_cifar_layers():
    torch = pytest.importorskip("torch", reason="PyTorch is an optional cross-check")
    rng = np.random.default_rng(0)
    for xs, ws, pad in [((5, 3, 32, 32), (32, 3, 5, 5), 2), ((5, 32, 16, 16), (32, 32, 5, 5), 2),
                        ((5, 64, 4, 4), (64, 64, 4, 4), 0), ((5, 64, 1, 1), (10, 64, 1, 1), 0)]:
        x, w, b = (rng.standard_normal(s).astype(np.float32) for s in (xs, ws, ws[0]))
        xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
        yt = torch.nn.functional.conv2d(xt, wt, bt, padding=pad)
        y = ops.conv2d(x, w, b, 1, pad)
        close = lambda got, want: np.testing.assert_allclose(got, want, rtol=0, atol=2e-5 * np.abs(want).max())  # noqa
        close(y, yt.detach().numpy())
        dy = rng.standard_normal(y.shape).astype(np.float32)
        yt.backward(torch.tensor(dy))
        for got, want in zip(ops.conv2d_backward(dy, x, w, 1, pad), (xt.grad, wt.grad, bt.grad)):
            close(got, want.numpy())


def test_nhwc_layout_and_fused_relu():
    rng = np.random.default_rng(1)
    x, w, b = rng.standard_normal((2, 3, 9, 7)), rng.standard_normal((5, 3, 3, 3)), rng.standard_normal(5)
    y = ops.conv2d(x, w, b, 2, (1, 0, 0, 1))
    y_nhwc = ops.conv2d(np.ascontiguousarray(x.transpose(0, 2, 3, 1)), w, b, 2, (1, 0, 0, 1), layout="NHWC")
    np.testing.assert_allclose(y_nhwc.transpose(0, 3, 1, 2), y, rtol=1e-13)
    np.testing.assert_allclose(ops.conv2d(x, w, b, 2, (1, 0, 0, 1), relu=True), np.maximum(y, 0), rtol=1e-13)


def test_wide_channel_counts_cross_vector_blocks():
    """Out-channel counts around the 2-vector block (32 floats, 16 doubles) and odd input channels."""
    rng = np.random.default_rng(2)
    for O, C in [(31, 5), (33, 7), (64, 1), (70, 33)]:
        x, w, b = rng.standard_normal((2, C, 6, 7)), rng.standard_normal((O, C, 3, 2)), rng.standard_normal(O)
        np.testing.assert_allclose(ops.conv2d(x, w, b, 1, 1), cnn.conv2d(x, w, b, 1, 1), rtol=1e-12, atol=1e-12)
        dy = rng.standard_normal(ops.conv2d(x, w, b, 1, 1).shape)
        for got, want in zip(ops.conv2d_backward(dy, x, w, 1, 1), cnn.conv2d_backward(dy, x, w, 1, 1)):
            np.testing.assert_allclose(got, want, rtol=1e-11, atol=1e-11)


def test_filter_covering_the_input_matches_oracle():
    rng = np.random.default_rng(3)
    for N, C, H, W, O in [(1, 3, 4, 4, 5), (9, 64, 4, 4, 64), (7, 2, 3, 5, 33)]:
        x, w, b = rng.standard_normal((N, C, H, W)), rng.standard_normal((O, C, H, W)), rng.standard_normal(O)
        y = ops.conv2d(x, w, b)
        np.testing.assert_allclose(y, cnn.conv2d(x, w, b), rtol=1e-12, atol=1e-12)
        dy = rng.standard_normal(y.shape)
        for got, want in zip(ops.conv2d_backward(dy, x, w), cnn.conv2d_backward(dy, x, w)):
            np.testing.assert_allclose(got, want, rtol=1e-11, atol=1e-11)


@pytest.mark.parametrize("case", [
    (2, 8, 7, 6, 9, 2), (3, 16, 8, 8, 32, 2), (1, 9, 5, 9, 8, (1, 2, 0, 3)), (2, 32, 16, 16, 33, 2),
    (2, 20, 6, 6, 40, 0), (1, 8, 3, 3, 8, (2, 1, 2, 1)),
    (2, 3, 32, 32, 32, 2), (1, 1, 9, 7, 8, (2, 0, 1, 3)), (3, 12, 10, 11, 16, 2), (2, 7, 13, 5, 10, (0, 3, 2, 2)),
])
def test_winograd_path_matches_oracle(case, monkeypatch):
    """Stride-1 5x5 filters with 8+ output channels and 4+ input channels go through Winograd's F(4x4, 5x5)
    under HDL_CONV_WINOGRAD=1 (the channel rule, a harmonic mean of 16 or 10, would send the smaller ones
    direct; inputs of fewer channels than a vector through its narrow layout; 1 and 3 channels, and the data
    gradients into them, run direct): exact in float64 up to rounding, and within a few units in 1e-6 of
    the output's scale in float32."""
    monkeypatch.setenv("HDL_CONV_WINOGRAD", "1")
    N, C, H, W, O, pad = case
    rng = np.random.default_rng(sum(case[:5]))
    x, w, b = rng.standard_normal((N, C, H, W)), rng.standard_normal((O, C, 5, 5)), rng.standard_normal(O)
    y, y0 = ops.conv2d(x, w, b, 1, pad), cnn.conv2d(x, w, b, 1, pad)
    np.testing.assert_allclose(y, y0, rtol=1e-12, atol=1e-12 * np.abs(y0).max())
    dy = rng.standard_normal(y.shape)
    grads0 = cnn.conv2d_backward(dy, x, w, 1, pad)
    for got, want in zip(ops.conv2d_backward(dy, x, w, 1, pad), grads0):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12 * np.abs(want).max())
    f = np.float32
    y32 = ops.conv2d(x.astype(f), w.astype(f), b.astype(f), 1, pad)
    assert np.abs(y32 - y0).max() < 1e-5 * np.abs(y0).max()
    for got, want in zip(ops.conv2d_backward(dy.astype(f), x.astype(f), w.astype(f), 1, pad), grads0):
        assert np.abs(got - want).max() < 2e-5 * np.abs(want).max()


@st.composite
def wide_conv_case(draw):
    """The shapes users write, through every path: 3x3 and 5x5 at stride 1 with 8+ output channels
    (Winograd), strides 2 and 3 (the sub-pixel data gradient), 1x1, 7x7; channel counts around the
    vector width; maps smaller than a Winograd tile; asymmetric padding; batch 1."""
    k = draw(st.sampled_from([1, 2, 3, 3, 3, 4, 5, 7]))
    s = draw(st.sampled_from([1, 1, 2, 3]))
    pad = tuple(draw(st.integers(0, min(3, k))) for _ in range(4))
    N, C, O = draw(st.integers(1, 3)), draw(st.sampled_from([1, 3, 5, 8, 17, 33])), draw(st.sampled_from([6, 8, 16, 17, 33]))
    H = draw(st.integers(max(1, k - pad[0] - pad[1]), 14))
    W = draw(st.integers(max(1, k - pad[2] - pad[3]), 14))
    return (N, C, H, W), (O, C, k, k), (s, s), pad


@contextlib.contextmanager
def conv_paths(**env):
    """The convolution paths forced through their environment switches (HDL_CONV_WINOGRAD, HDL_CONV_IMPLICIT),
    restored after; a context, not monkeypatch, so that hypothesis's examples share it."""
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k)
            else:
                os.environ[k] = v


@settings(max_examples=examples(60), deadline=None)
@given(case=wide_conv_case(), seed=st.integers(0, 2**31))
def test_every_path_matches_oracle(case, seed):
    """float64 to rounding; float32 within 2e-5 of the output's scale (Winograd F(6x6, 3x3) is the
    least accurate path: about 1e-5). The rules' paths, not measured ones (the autotune's own tests
    are test_autotune.py's), so that the paths each shape meets do not depend on timings."""
    with conv_paths(HDL_AUTOTUNE="0"):
        check_every_output(case, seed)


@settings(max_examples=examples(60), deadline=None)
@given(case=wide_conv_case(), seed=st.integers(0, 2**31))
def test_implicit_gemm_matches_oracle(case, seed):
    """The implicit GEMM (conv_implicit.hpp) on every shape the rules would send elsewhere: forward, the
    data gradient's phases (strided and not), the filter gradient."""
    with conv_paths(HDL_CONV_IMPLICIT="1", HDL_CONV_WINOGRAD="0"):
        check_every_output(case, seed)


@settings(max_examples=examples(60), deadline=None)
@given(case=wide_conv_case(), seed=st.integers(0, 2**31))
def test_col2im_data_gradient_matches_oracle(case, seed):
    """The data gradient as one GEMM and a gather (conv_col2im.hpp) on every shape, stride 1 too, where the
    autotune offers it only to strided filters."""
    with conv_paths(HDL_CONV_COL2IM="1", HDL_CONV_WINOGRAD="0"):
        check_every_output(case, seed)


def check_every_output(case, seed):
    xs, ws, stride, pad = case
    rng = np.random.default_rng(seed)
    x, w, b = (rng.standard_normal(s) for s in (xs, ws, ws[0]))
    y0 = cnn.conv2d(x, w, b, stride, pad)
    dy = rng.standard_normal(y0.shape)
    want = (y0,) + tuple(cnn.conv2d_backward(dy, x, w, stride, pad))
    got64 = (ops.conv2d(x, w, b, stride, pad),) + tuple(ops.conv2d_backward(dy, x, w, stride, pad))
    f = np.float32
    got32 = (ops.conv2d(x.astype(f), w.astype(f), b.astype(f), stride, pad),) + tuple(
        ops.conv2d_backward(dy.astype(f), x.astype(f), w.astype(f), stride, pad))
    for name, a64, a32, ref in zip(("y", "dx", "dw", "db"), got64, got32, want):
        scale = max(np.abs(ref).max(), 1e-30)
        np.testing.assert_allclose(a64, ref, rtol=1e-11, atol=1e-11 * scale, err_msg=name)
        assert np.abs(a32 - ref).max() <= 2e-5 * scale, name


@pytest.mark.parametrize("O", [1, 2, 3, 4, 5, 7, 8, 9, 16, 17])
@pytest.mark.parametrize("C", [1, 2, 3, 6])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_narrow_channel_vectors(O, C, dtype):
    """Few output channels (forward, filter gradient) or input channels (data gradient) run on the narrowest
    vector that holds them (16, 32 or 64 bytes): each width and its edges, stride 1 and 2, against the oracle."""
    rng = np.random.default_rng(O * 10 + C)
    rel = 2e-5 if dtype == np.float32 else 1e-11  # of each output's scale (Winograd may take the 5x5s)
    for stride, pad in ((1, 2), (2, (1, 0, 0, 1))):
        x = rng.standard_normal((3, C, 11, 9)).astype(dtype)
        w, b = rng.standard_normal((O, C, 5, 5)).astype(dtype), rng.standard_normal(O).astype(dtype)
        y = ops.conv2d(x, w, b, stride, pad)
        dy = rng.standard_normal(y.shape).astype(dtype)
        got = (y, *ops.conv2d_backward(dy, x, w, stride, pad))
        want = (cnn.conv2d(x, w, b, stride, pad), *cnn.conv2d_backward(dy, x, w, stride, pad))
        for name, g, r in zip(("y", "dx", "dw", "db"), got, want):
            assert np.abs(g - r).max() <= rel * np.abs(r).max(), (name, stride)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", [  # maps that F(6x6, 3x3) would cover with too much waste
    ((4, 8, 8, 8), (12, 8, 3, 3), 1, 1),             # 8x8: 2x2 tiles an image, 16 in the batch; dx too
    ((16, 5, 4, 4), (9, 5, 3, 3), 1, 1),             # 4x4: one tile an image
    ((5, 9, 7, 6), (12, 9, 3, 3), 1, (1, 0, 2, 1)),  # 6x7 outputs (edge tiles), asymmetric padding
    ((4, 33, 9, 9), (20, 33, 3, 3), 1, 0),           # 7x7 outputs, unpadded; channels past a vector
    ((4, 128, 8, 8), (128, 128, 3, 3), 1, 1),        # a wide 8x8 stage, as the channel rule takes it too
])
def test_winograd_f4x4_3x3_matches_oracle_and_differences(case, dtype, monkeypatch):
    """Winograd's F(4x4, 3x3) on 6x6 tiles (the points 0, +-1, +-2 and infinity), which the rule takes where
    F(6x6, 3x3)'s 8x8 tiles would waste more than 1.7 times the output: forward, data and filter gradients
    against the oracle, and by central differences in float64."""
    monkeypatch.setenv("HDL_CONV_WINOGRAD", "1")  # the earlier channel rule: these small channel counts too
    check_against_oracle_and_differences(case, dtype, rel32=1e-5, seed=3)  # F(4x4, 3x3) in float32: a few 1e-6


def check_against_oracle_and_differences(case, dtype, rel32, seed):
    """y, dx, dw, db in dtype against the float64 oracle, within 1e-12 (float64) or rel32 (float32) of each
    output's scale; in float64, 12 entries of each gradient by central differences too."""
    xs, ws, stride, pad = case
    rng = np.random.default_rng(sum(xs))
    x, w, b = (rng.standard_normal(s) for s in (xs, ws, ws[:1]))
    y0 = cnn.conv2d(x, w, b, stride, pad)
    dy = rng.standard_normal(y0.shape)
    want = (y0, *cnn.conv2d_backward(dy, x, w, stride, pad))
    got = (ops.conv2d(*(a.astype(dtype) for a in (x, w, b)), stride, pad),
           *ops.conv2d_backward(*(a.astype(dtype) for a in (dy, x, w)), stride, pad))
    rel = 1e-12 if dtype == np.float64 else rel32
    for name, g, r in zip(("y", "dx", "dw", "db"), got, want):
        assert np.abs(g - r).max() <= rel * np.abs(r).max(), name
    if dtype == np.float64:
        check_conv_gradients(case, seed=seed, n=12)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", [
    ((4, 16, 7, 9), (8, 16, 2, 2), 1, (0, 1, 1, 0)),      # 2x2 stride 1: F(5x5, 2x2) on 6x6 tiles
    ((1, 16, 28, 28), (8, 16, 2, 2), 1, 0),               # F(7x7, 2x2) on 8x8 tiles
    ((4, 16, 7, 9), (8, 16, 4, 4), 1, (2, 1, 1, 2)),      # 4x4 stride 1: F(5x5, 4x4)
    # strided, through space to depth (conv_space_to_depth.hpp): the stride-1 shape's tile, C' channels
    ((1, 3, 55, 55), (8, 3, 11, 11), 4, 2),             # AlexNet's stem: 3x3 over 48, F(4x4, 3x3); dx too
    ((4, 3, 15, 15), (8, 3, 7, 7), 2, 3),               # a 7x7 stride-2 stem: 4x4 over 12, F(5x5, 4x4)
    ((4, 2, 12, 14), (9, 2, 5, 5), 2, (1, 2, 0, 3)),    # 5x5 stride 2, asymmetric padding: 3x3 over 8
    ((1, 2, 32, 32), (8, 2, 4, 4), 2, 1),               # 4x4 stride 2: 2x2 over 8, no zero taps
    ((2, 1, 30, 27), (8, 1, 6, 9), (2, 3), 0),          # strides (2, 3), a 6x9 filter: 3x3 over 6
])
def test_winograd_new_filter_sizes_and_strides(case, dtype, monkeypatch):
    """Winograd's F(m x m, r x r) for r = 2 and 4 (the same points as r = 3 and 5), and strided filters as
    stride-1 ones over space-to-depth inputs: forward, data and filter gradients against the oracle (these
    shapes are ones the rules send there: the earlier channel rule, the rules' choices, not measured ones),
    and by central differences in float64."""
    monkeypatch.setenv("HDL_CONV_WINOGRAD", "1")
    monkeypatch.setenv("HDL_AUTOTUNE", "0")
    check_against_oracle_and_differences(case, dtype, rel32=2e-5, seed=5)


def winograd_offer(case, dtype=np.float32):
    """The Winograd tiles the rules offer the case's three passes (hdl._C.conv_winograd_offer)."""
    xs, ws, stride, pad = case
    n, c, h, w = xs
    sh, sw = stride if isinstance(stride, tuple) else (stride, stride)
    return _C.conv_winograd_offer((n, h, w, c), ws, sh, sw, *(pad if isinstance(pad, tuple) else (pad,) * 4), dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case, forward", [
    (((2, 16, 17, 17), (8, 16, 2, 2), 1, 0), (2, 5)),             # 2x2 on 16x16 outputs: four 5x5 tiles a row
    (((16, 16, 4, 4), (9, 16, 2, 2), 1, (1, 0, 0, 1)), (2, 5)),   # 4x4 outputs: one tile an image
    (((1, 17, 17, 19), (8, 17, 2, 2), 1, (0, 0, 1, 1)), (2, 5)),  # 16x20 outputs, batch 1, odd channels
    (((2, 16, 32, 32), (12, 16, 4, 4), 2, 1), (2, 5)),            # 4x4 stride 2 to 16x16: 2x2 over 64
    (((4, 17, 16, 16), (8, 17, 4, 4), 2, (1, 2, 1, 0)), (2, 5)),  # to 8x7, asymmetric padding: 2x2 over 68
    (((1, 9, 32, 32), (8, 9, 4, 4), 2, 1), (2, 5)),               # batch 1: 16 tiles, 2x2 over 36
])
def test_winograd_f4x4_2x2_matches_oracle_and_differences(case, forward, dtype, monkeypatch):
    """Winograd's F(4x4, 2x2) on 5x5 tiles (the points 0, +-1, 2 and infinity), which the rule takes for 2x2
    filters on maps of 4k x 4k outputs (and for the strided filters that space to depth makes 2x2 there):
    the rule's choice, then forward, data and filter gradients against the oracle and by central
    differences in float64."""
    monkeypatch.setenv("HDL_CONV_WINOGRAD", "1")  # the earlier channel rule: these small channel counts too
    monkeypatch.setenv("HDL_AUTOTUNE", "0")
    assert winograd_offer(case, dtype)["forward"] == forward
    check_against_oracle_and_differences(case, dtype, rel32=1e-5, seed=13)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", [
    ((2, 16, 33, 31), (12, 16, 4, 4), 2, (1, 2, 0, 3)),   # odd sizes, asymmetric padding: phases of 17 and 16 rows
    ((16, 16, 8, 8), (8, 16, 4, 4), 2, (3, 0, 0, 3)),     # padding of 3 on one side: phases that start cropped
    ((1, 8, 32, 32), (8, 8, 4, 4), 2, 1),                 # batch 1: 16 tiles a phase
    ((2, 8, 40, 45), (10, 8, 4, 6), (2, 3), (1, 1, 2, 2)),  # strides (2, 3), a 4x6 filter: 2x2 phases, 6x6 tiles
    # filters grown to a multiple of the stride (zeros after them, one more padding row and column)
    ((4, 16, 16, 16), (8, 16, 5, 5), 2, 2),               # 5x5 stride 2 as 6x6: 3x3 phases of 8x8
    ((4, 16, 17, 15), (8, 16, 5, 5), 2, (1, 2, 0, 3)),    # odd sizes, asymmetric padding
    ((2, 8, 29, 28), (8, 8, 7, 7), 2, 3),                 # 7x7 stride 2 as 8x8: 4x4 phases
    ((2, 8, 30, 29), (8, 8, 5, 7), (2, 3), (2, 1, 3, 0)),  # 5x7, strides (2, 3), as 6x9: 3x3 phases
])
def test_subpixel_winograd_data_gradient(case, dtype, monkeypatch):
    """A filter that is a multiple of its stride (4x4 stride 2), or grown to one (5x5 stride 2 as 6x6), gives
    sub-pixel phases of one R x R filter each, whose data gradients Winograd serves in place (each phase every
    sh-th row and sw-th column of dx), where they take fewer multiplications than space to depth's: against the
    oracle, and by central differences in float64."""
    monkeypatch.setenv("HDL_CONV_WINOGRAD", "1")
    monkeypatch.setenv("HDL_AUTOTUNE", "0")
    assert winograd_offer(case, dtype)["data_gradient_subpixel"]
    check_against_oracle_and_differences(case, dtype, rel32=1e-5, seed=17)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", [
    ((1, 40, 8, 8), (24, 40, 3, 3), 1, 1),            # four tiles of F(4x4, 3x3): the threads share them
    ((1, 256, 8, 8), (200, 256, 3, 3), 1, 1),         # wide (U past 4 MB): they share 200 output channels
    ((2, 192, 7, 9), (176, 192, 3, 3), 1, (1, 0, 2, 0)),  # edge tiles, asymmetric padding, shared channels
    ((1, 64, 5, 5), (40, 64, 2, 2), 1, 0),            # 2x2 filters, one 5x5 tile
    ((1, 32, 8, 8), (16, 32, 4, 4), 2, 1),            # 4x4 stride 2 through space to depth, one tile
])
def test_inference_winograd_on_few_tiles(case, dtype, monkeypatch):
    """An inference that keeps its filters takes Winograd on fewer tiles than training (the rule's kMinTiles
    does not apply: the transform is paid once): the rule's path with filters kept, each call against the
    oracle, the offer with and without keeping."""
    monkeypatch.setenv("HDL_AUTOTUNE", "0")  # the rule's choice: Winograd wherever offered
    xs, ws, stride, pad = case
    x_nhwc = (xs[0], xs[2], xs[3], xs[1])
    p4 = (pad,) * 4 if isinstance(pad, int) else pad
    offer = lambda kept: _C.conv_winograd_offer(x_nhwc, ws, stride, stride, *p4, dtype, kept_filters=kept)["forward"]  # noqa: E731
    assert offer(False) is None and offer(True) is not None
    rng = np.random.default_rng(sum(xs))
    x, w, b = (rng.standard_normal(s) for s in (xs, ws, ws[:1]))
    want = cnn.conv2d(x, w, b, stride, pad)
    xd, wd, bd = (a.astype(dtype) for a in (x, w, b))
    rel = 1e-12 if dtype == np.float64 else 2e-5
    with ops.keeping_filters():
        for _ in range(3):  # made, kept, read
            got = ops.conv2d(xd, wd, bd, stride, pad)
            assert np.abs(got - want).max() <= rel * np.abs(want).max()


@pytest.mark.parametrize("case, tiles", [
    # 2x2 filters: 16x16 outputs on 5x5 tiles (7x7 and 5x5 blocks would cover 21x21 or 20x20), 14x14 on 8x8
    # (two blocks of 7 exactly), 32x32 on 8x8 (5 blocks of 7: 25/16 is not 5% below 64/49 x 35^2/32^2)
    (((64, 256, 17, 17), (128, 256, 2, 2), 1, 0), ((2, 5), (2, 8), (2, 5), False, False)),
    (((64, 256, 15, 15), (128, 256, 2, 2), 1, 0), ((2, 8), (2, 6), (2, 8), False, False)),
    (((64, 256, 33, 33), (128, 256, 2, 2), 1, 0), ((2, 8), (2, 8), (2, 8), False, False)),
    # DCGAN's 4x4 stride-2 layers, through space to depth: 2x2 over 4C channels on 16x16, 8x8, 4x4 outputs;
    # their data gradients by four 2x2 sub-pixel phases onto 16x16, 8x8, 4x4 (space to depth's would fill
    # 17x17, 9x9 and 5x5 blocks of 2x2 pixels from 7x7 and 5x5 tiles: 1.44 times the multiplications)
    (((64, 64, 32, 32), (128, 64, 4, 4), 2, 1), ((2, 5), (2, 5), (2, 5), True, True)),
    (((64, 128, 16, 16), (256, 128, 4, 4), 2, 1), ((2, 5), (2, 5), (2, 5), True, True)),
    (((64, 256, 8, 8), (512, 256, 4, 4), 2, 1), ((2, 5), (2, 5), (2, 5), True, True)),
    # 3x3: 8x8 tiles on 32x32, 6x6 on 8x8; stride 2 on 16x16 pays nothing through space to depth
    (((64, 64, 32, 32), (64, 64, 3, 3), 1, 1), ((3, 8), (3, 8), (3, 8), False, False)),
    (((64, 64, 8, 8), (64, 64, 3, 3), 1, 1), ((3, 6), (3, 6), (3, 6), False, False)),
    (((64, 32, 16, 16), (64, 32, 3, 3), 2, 1), (None, None, None, False, False)),
    # one GEMM serves a filter that covers its input; three input channels take no Winograd filter gradient
    (((64, 64, 4, 4), (10, 64, 4, 4), 1, 0), (None, None, None, False, False)),
    (((64, 3, 34, 34), (32, 3, 3, 3), 1, 0), (None, None, None, False, False)),
])
def test_winograd_tile_rule(case, tiles):
    """The tiles the rules offer each pass (winograd.hpp's shape rule, as conv.cpp applies it)."""
    got = winograd_offer(case)
    assert (got["forward"], got["data_gradient"], got["filter_gradient"], got["space_to_depth"],
            got["data_gradient_subpixel"]) == tiles
    with pytest.raises(TypeError, match="float32 or float64"):
        winograd_offer(case, np.int32)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", [
    ((2, 16, 8, 8), (12, 16, 4, 4), 2, 1),              # DCGAN's 4x4 stride 2 on a small map
    ((1, 17, 9, 7), (8, 17, 3, 3), 2, (0, 2, 1, 0)),    # odd sizes, asymmetric padding, batch 1
    ((3, 16, 11, 10), (9, 16, 5, 5), 3, (2, 1, 0, 3)),  # stride 3, windows overhanging the border
    ((2, 16, 7, 9), (8, 16, 1, 1), 2, 0),               # 1x1 stride 2: half the inputs get no gradient
    ((2, 16, 10, 9), (8, 16, 2, 3), (2, 3), 1),         # a filter no wider than its stride
    ((2, 8, 6, 6), (5, 8, 3, 3), 1, 1),                 # stride 1 (only forced: the autotune offers it strided)
])
def test_col2im_data_gradient_matches_oracle_and_differences(case, dtype, monkeypatch):
    """col2im's dx against the oracle in both precisions and by central differences in float64."""
    monkeypatch.setenv("HDL_CONV_COL2IM", "1")
    monkeypatch.setenv("HDL_CONV_WINOGRAD", "0")
    check_against_oracle_and_differences(case, dtype, rel32=2e-6, seed=7)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", [
    ((3, 16, 4, 4), (40, 16, 3, 3), 1, 1),              # a 4x4 map: 9 blocks of 4 to 9 taps, two vectors out
    ((3, 16, 4, 4), (6, 16, 3, 3), 1, 1),               # the same on one narrow vector (12-pixel tiles)
    ((2, 16, 8, 8), (20, 16, 4, 4), 2, 1),              # 4x4 stride 2 pad 1 on a 4x4 output; its data gradient
    ((1, 9, 7, 6), (17, 9, 5, 5), 1, (2, 1, 0, 2)),     # asymmetric padding, batch 1, odd sizes
    ((2, 8, 3, 5), (9, 8, 5, 5), 1, 3),                 # padding as wide as the map: few taps a pixel
    ((2, 128, 6, 6), (70, 128, 3, 3), 1, 1),            # filters packed on all threads (3 blocks, the last short)
])
def test_direct_kernel_tiles_by_tap_spans(case, dtype, monkeypatch):
    """The direct kernel on small padded maps, whose tiles take pixels of one tap range (pixel_blocks in
    conv.cpp): forward and data gradient against the oracle, and by central differences in float64."""
    monkeypatch.setenv("HDL_CONV_IMPLICIT", "0")
    monkeypatch.setenv("HDL_CONV_WINOGRAD", "0")
    check_against_oracle_and_differences(case, dtype, rel32=2e-6, seed=11)


@pytest.mark.parametrize("case", [
    ((2, 5, 9, 8), (8, 5, 3, 3), 1, 1),               # Winograd F(6x6, 3x3)
    ((1, 17, 6, 7), (9, 17, 3, 3), 1, (0, 2, 1, 0)),  # one tile, asymmetric padding
    ((2, 3, 11, 10), (8, 3, 4, 4), 2, (1, 2, 0, 1)),  # sub-pixel dx, 2x2 phases with 2x2 taps
    ((1, 3, 13, 12), (8, 3, 7, 7), 2, 3),             # a 7x7 stem
    ((2, 4, 7, 7), (6, 4, 1, 1), 3, 0),               # phases without taps: zeros in dx
])
def test_new_paths_by_finite_differences(case, monkeypatch):
    monkeypatch.setenv("HDL_CONV_WINOGRAD", "1")  # 5 -> 8 channels through Winograd (the earlier channel rule)
    check_conv_gradients(case, seed=7, n=20)


@pytest.mark.parametrize("case", [
    ((2, 3, 7, 6), (4, 3, 5, 5), 1, 2),
    ((1, 2, 8, 7), (3, 2, 3, 2), (2, 3), (1, 0, 2, 1)),  # batch 1, strides (2, 3), asymmetric padding
    ((3, 4, 4, 4), (2, 4, 1, 1), 1, 0),                 # 1x1
    ((2, 5, 6, 5), (7, 5, 4, 4), 2, (3, 1, 0, 2)),      # windows that overhang the border; odd O
    ((1, 13, 5, 5), (3, 13, 5, 5), 1, 0),               # a filter that covers the input
    ((2, 4, 7, 7), (6, 4, 1, 1), 3, 0),                 # phases without taps: zeros in dx
    ((1, 4, 12, 11), (5, 4, 9, 9), 2, (1, 2, 0, 3)),    # patches of 324 values: dw as dy^T times the patches
])
def test_implicit_gemm_by_finite_differences(case, monkeypatch):
    monkeypatch.setenv("HDL_CONV_IMPLICIT", "1")
    monkeypatch.setenv("HDL_CONV_WINOGRAD", "0")
    check_conv_gradients(case, seed=11, n=20)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", [  # shapes its rule sends to the implicit GEMM (not forced)
    ((2, 256, 8, 8), (256, 256, 3, 3), 1, 1),        # a wide 3x3 on a map too small for Winograd
    ((3, 128, 3, 3), (192, 128, 3, 3), 1, 1),        # 3x3 maps, batch 3
    ((1, 48, 7, 7), (128, 48, 5, 5), 1, 2),          # 5x5 on 7x7, batch 1 (too few tiles for Winograd)
    ((2, 64, 9, 8), (128, 64, 4, 4), 2, (1, 2, 0, 1)),  # 4x4 stride 2, odd map, asymmetric padding
    ((2, 160, 5, 6), (130, 160, 1, 1), 1, 0),        # a wide 1x1, odd O (a partial tile of columns)
    ((12, 128, 8, 8), (128, 128, 1, 1), 1, 0),       # 768 pixels: the filter gradient's sum in two K blocks
    ((2, 48, 13, 11), (200, 48, 3, 5), (3, 2), 2),  # a rectangular filter, strides (3, 2): strided phases
    ((2, 3, 36, 35), (128, 3, 12, 12), 4, 2),        # an RGB stem: dw as dy^T times patches of 432 values
])
def test_implicit_gemm_by_its_rule_matches_oracle(case, dtype, monkeypatch):
    monkeypatch.setenv("HDL_AUTOTUNE", "0")  # the rules' choices, not measured ones
    xs, ws, stride, pad = case
    rng = np.random.default_rng(sum(xs) + sum(ws))
    x, w, b = (rng.standard_normal(s).astype(dtype) for s in (xs, ws, ws[:1]))
    x64, w64, b64 = (a.astype(np.float64) for a in (x, w, b))
    y0 = cnn.conv2d(x64, w64, b64, stride, pad)
    dy = rng.standard_normal(y0.shape).astype(dtype)
    want = (y0, *cnn.conv2d_backward(dy.astype(np.float64), x64, w64, stride, pad))
    got = (ops.conv2d(x, w, b, stride, pad), *ops.conv2d_backward(dy, x, w, stride, pad))
    rel = 1e-12 if dtype == np.float64 else 1e-5
    for name, g, r in zip(("y", "dx", "dw", "db"), got, want):
        assert np.abs(g - r).max() <= rel * np.abs(r).max(), name
    np.testing.assert_array_equal(ops.conv2d(x, w, b, stride, pad, relu=True), np.maximum(got[0], 0))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", [
    ((3, 1, 28, 28), (6, 1, 5, 5), 1, 2),              # LeNet-5's first layer
    ((1, 1, 9, 37), (7, 1, 3, 3), 1, (0, 2, 1, 0)),     # batch 1, rows of two blocks and a short one, odd O
    ((2, 1, 11, 13), (1, 1, 7, 7), 2, 3),              # one filter, a 7x7 stride-2 stem
    ((2, 1, 10, 40), (9, 1, 4, 2), (3, 2), (1, 0, 2, 1)),  # a stride along the row: the direct kernel
    ((2, 1, 10, 40), (9, 1, 4, 2), (3, 1), (1, 0, 2, 1)),  # 9 channels: two passes; a stride down the columns
    ((4, 1, 5, 5), (3, 1, 1, 1), 1, 0),                # 1x1 (no border: x read in place, to the buffer's end)
    ((2, 1, 6, 6), (5, 1, 6, 6), 1, (2, 3, 3, 2)),     # a filter as large as the input, padded
])
def test_one_input_channel_matches_oracle(case, dtype):
    """A single input channel into fewer output channels than a vector holds: vectors along the output row
    (conv_one_channel.hpp, stride 1 along the row), with the row's and the buffer's ends, a stride down the
    columns and asymmetric padding, ReLU fused;
    against the oracle (float64 to rounding) and, for the gradients, float64 central differences."""
    xs, ws, stride, pad = case
    rng = np.random.default_rng(sum(xs) + sum(ws))
    x, w, b = (rng.standard_normal(sh).astype(dtype) for sh in (xs, ws, ws[:1]))
    want = cnn.conv2d(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64), stride, pad)
    tol = 1e-12 if dtype == np.float64 else 2e-6
    np.testing.assert_allclose(ops.conv2d(x, w, b, stride, pad), want, rtol=tol, atol=tol * np.abs(want).max())
    np.testing.assert_allclose(ops.conv2d(x, w, b, stride, pad, relu=True), np.maximum(want, 0), rtol=tol,
                               atol=tol * np.abs(want).max())
    if dtype == np.float64:
        check_conv_gradients(case, seed=3, n=10)


def test_first_layer_skips_dx():
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((2, 3, 6, 6)), rng.standard_normal((4, 3, 3, 3))
    dy = rng.standard_normal((2, 4, 4, 4))
    dx, dw, db = ops.conv2d_backward(dy, x, w, want_dx=False)
    assert dx is None
    np.testing.assert_allclose(dw, ops.conv2d_backward(dy, x, w)[1])


@pytest.mark.parametrize("call,err,match", [
    (lambda: ops.conv2d(np.ones((1, 3, 5, 5)), np.ones((2, 4, 3, 3)), np.ones(2)), ValueError, "input channels"),
    (lambda: ops.conv2d(np.ones((1, 3, 5, 5)), np.ones((2, 3, 3, 3)), np.ones(3)), ValueError, r"b must have shape"),
    (lambda: ops.conv2d(np.ones((3, 5, 5)), np.ones((2, 3, 3, 3)), np.ones(2)), ValueError, r"\(N, C, H, W\)"),
    (lambda: ops.conv2d(np.ones((1, 3, 2, 2)), np.ones((2, 3, 3, 3)), np.ones(2)), ValueError, "larger than"),
    (lambda: ops.conv2d(np.ones((1, 3, 5, 5)), np.ones((2, 3, 3, 3)), np.ones(2), 0), ValueError, "stride"),
    (lambda: ops.conv2d(np.ones((1, 3, 5, 5), np.float32), np.ones((2, 3, 3, 3)), np.ones(2)), TypeError, "float"),
    (lambda: ops.conv2d(np.ones((1, 5, 10, 3))[:, :, ::2], np.ones((2, 3, 3, 3)), np.ones(2), layout="NHWC"),
     ValueError, "C-contiguous"),
    (lambda: ops.conv2d(np.ones((1, 3, 5, 5)), np.ones((2, 3, 3, 3)), np.ones(2), layout="NWHC"), ValueError,
     "layout"),
    (lambda: ops.conv2d_backward(np.ones((1, 2, 4, 4)), np.ones((1, 3, 5, 5)), np.ones((2, 3, 3, 3))), ValueError,
     r"dy must have shape \(1, 3, 3, 2\)"),
])
def test_bad_input(call, err, match):
    with pytest.raises(err, match=match):
        call()
