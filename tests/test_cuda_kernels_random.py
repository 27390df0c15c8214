"""The CUDA kernels against the Numba oracle and the CPU kernel on random awkward shapes drawn by
hypothesis (test_conv.py's and test_cnn_kernels.py's strategies), on every device of
test_cuda_kernels.py. Skipped, saying so, where hypothesis is not installed (a bare GPU image)."""
import numpy as np
import pytest

pytest.importorskip("hypothesis", reason="hypothesis is not installed: the random-shape kernel tests need it")
from conftest import ACTS, CODES  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from test_cnn_kernels import distinct, pool_case  # noqa: E402
from test_conv import conv_case  # noqa: E402
from test_cuda_kernels import CPU_CONV, DEVICES, Cpu, _fake_gpu, backend, close, nchw, nhwc  # noqa: E402,F401

from hdl import ops, reference  # noqa: E402
from hdl.reference import cnn  # noqa: E402

f32 = np.float32
fixtures_ok = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.mark.parametrize("device", DEVICES)
@fixtures_ok
@given(case=conv_case(), relu=st.booleans(), seed=st.integers(0, 2**31))
def test_conv_matches_oracle_and_cpu(device, case, relu, seed):
    xs, ws, stride, pad = case
    rng = np.random.default_rng(seed)
    x, w, b = (rng.standard_normal(s).astype(f32) for s in (xs, ws, ws[0]))
    dev, cpu = backend(device), Cpu()
    y = dev.conv2d(nhwc(x), w, b, stride, pad, relu=relu)
    want = cnn.conv2d(x, w, b, stride, pad)
    close(nchw(y), np.maximum(want, 0) if relu else want)
    close(y, cpu.conv2d(nhwc(x), w, b, stride, pad, relu=relu), **CPU_CONV)
    dy = rng.standard_normal(y.shape).astype(f32)
    got = dev.conv2d_backward(dy, nhwc(x), w, stride, pad)
    want = cnn.conv2d_backward(nchw(dy), x, w, stride, pad)
    close(nchw(got[0]), want[0])
    close(got[1], want[1])
    close(got[2], want[2])
    for a, c in zip(got, cpu.conv2d_backward(dy, nhwc(x), w, stride, pad)):
        close(a, c, **CPU_CONV)



@pytest.mark.parametrize("device", DEVICES)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(shape=st.tuples(st.integers(1, 70), st.integers(1, 70), st.integers(1, 90)), act=st.sampled_from(ACTS),
       scale=st.sampled_from([1.0, 0.25]), seed=st.integers(0, 2**31))
def test_dense_matches_oracle(device, shape, act, scale, seed):
    n_out, n_in, m = shape
    rng = np.random.default_rng(seed)
    W, b, a_in, g = (rng.standard_normal(s).astype(f32) for s in ((n_out, n_in), n_out, (n_in, m), (n_out, m)))
    dev = backend(device)
    a_out = dev.dense_forward(W, b, a_in, act, 0.02)
    close(a_out, reference.dense_forward(W, b, a_in, CODES[act], 0.02), 2e-5, 2e-5)
    a_out = ops.dense_forward(W, b, a_in, act, 0.02)  # the same a_out for both devices' backward
    got = dev.dense_backward(g, a_out, W, a_in, act, 0.02, scale)
    for x, y in zip(got, reference.dense_backward(g, a_out, W, a_in, CODES[act], 0.02, scale)):
        close(x, y, 2e-5, 2e-5)




@pytest.mark.parametrize("device", DEVICES)
@fixtures_ok
@given(case=pool_case(), kind=st.sampled_from(["max", "avg"]), seed=st.integers(0, 2**31))
def test_pooling_matches_oracle_and_cpu(device, case, kind, seed):
    shape, window, stride, pad = case
    x = distinct(shape, seed, f32)
    dev, cpu = backend(device), Cpu()
    y = getattr(dev, f"{kind}_pool2d")(nhwc(x), window, stride, pad)
    np.testing.assert_allclose(nchw(y), getattr(cnn, f"{kind}_pool2d")(x, window, stride, pad), rtol=2e-6, atol=2e-6)
    np.testing.assert_array_equal(y, getattr(cpu, f"{kind}_pool2d")(nhwc(x), window, stride, pad))
    dy = np.random.default_rng(seed + 1).standard_normal(y.shape).astype(f32)
    dx = getattr(dev, f"{kind}_pool2d_backward")(dy, nhwc(x), window, stride, pad)
    want = getattr(cnn, f"{kind}_pool2d_backward")(nchw(dy), x, window, stride, pad)
    np.testing.assert_allclose(nchw(dx), want, rtol=1e-5, atol=1e-6)
    # the backends add a cell's window contributions in different orders: a few ulps of the terms (about 1e-7
    # beside 0.02 when they cancel), as against the oracle above
    np.testing.assert_allclose(dx, getattr(cpu, f"{kind}_pool2d_backward")(dy, nhwc(x), window, stride, pad),
                               rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("device", DEVICES)
@fixtures_ok
@given(case=pool_case(), relu=st.booleans(), seed=st.integers(0, 2**31))
def test_max_pool_argmax_and_fused_relu_match_cpu(device, case, relu, seed):
    """The forward pass's argmax (-1 where the fused ReLU cut the maximum) and the backward pass from it."""
    shape, window, stride, pad = case
    x = nhwc(distinct(shape, seed, f32))
    dev, cpu = backend(device), Cpu()
    y, argmax = dev.max_pool2d(x, window, stride, pad, relu=relu, return_argmax=True)
    y0, argmax0 = cpu.max_pool2d(x, window, stride, pad, relu=relu, return_argmax=True)
    np.testing.assert_array_equal(y, y0)
    np.testing.assert_array_equal(argmax, argmax0)
    dy = np.random.default_rng(seed + 1).standard_normal(y.shape).astype(f32)
    np.testing.assert_allclose(dev.max_pool2d_backward(dy, x, window, stride, pad, argmax=argmax0),
                               cpu.max_pool2d_backward(dy, x, window, stride, pad, argmax=argmax0), rtol=1e-6,
                               atol=1e-7)
    if relu:  # the argmax path equals ReLU backward then the searching max-pool backward
        np.testing.assert_allclose(dev.max_pool2d_backward(dy, x, window, stride, pad, argmax=argmax0),
                                   cpu.max_pool2d_backward(np.where(y0 > 0, dy, 0), x, window, stride, pad),
                                   rtol=1e-6, atol=1e-7)
