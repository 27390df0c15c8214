"""Subnormal floats inside hdl's CPU kernels (csrc/include/hdl/float_mode.hpp): flushed to zero by default,
so that saturated sigmoids do not slow every multiply by a microcode assist; IEEE subnormals with
hdl.set_flush_denormal(False); the caller's own floating-point mode untouched either way."""
import numpy as np
import pytest

import hdl
from hdl import _C, ops

TINY32 = np.float32(1e-39)  # below float32's smallest normal, 1.18e-38
TINY64 = 1e-310  # below float64's smallest normal, 2.2e-308

pytestmark = pytest.mark.skipif(not _C.set_flush_denormal(True), reason="this processor cannot flush subnormals")


@pytest.fixture
def ieee():
    hdl.set_flush_denormal(False)
    yield
    hdl.set_flush_denormal(True)


def caller_keeps_subnormals():
    return np.float32(TINY32) * np.float32(1.0) == TINY32 and np.float64(TINY64) * 1.0 == TINY64


@pytest.mark.parametrize("dtype, tiny", [(np.float32, TINY32), (np.float64, TINY64)])
@pytest.mark.parametrize("n", [1, 300])  # one thread, and a product split across the threads
def test_kernels_flush_subnormals_by_default(dtype, tiny, n):
    assert hdl.get_flush_denormal()
    A = np.full((n, n), tiny, dtype)
    B = np.eye(n, dtype=dtype)
    assert np.all(_C.gemm(A, B) == 0)  # subnormal operands read as zero
    assert caller_keeps_subnormals()


@pytest.mark.parametrize("dtype, tiny", [(np.float32, TINY32), (np.float64, TINY64)])
@pytest.mark.parametrize("n", [1, 300])
def test_ieee_subnormals_when_asked(ieee, dtype, tiny, n):
    assert not hdl.get_flush_denormal()
    A = np.full((n, n), tiny, dtype)
    B = np.eye(n, dtype=dtype)
    np.testing.assert_array_equal(_C.gemm(A, B), A)


def test_results_below_the_normal_range_become_zero():
    x = np.full((4, 8), 1e-20, np.float32)  # normal; their products 1e-40 are not
    y = _C.gemm(x, x, trans_b=True)
    assert np.all(y == 0) and caller_keeps_subnormals()


def test_a_saturated_sigmoid_gradient_flushes(ieee):
    # sigma'(z) dy with sigma = 1e-20 and dy = 1e-20: 1e-40, the values a saturated sigmoid net passes back
    y = np.full(64, 1e-20, np.float32)
    dy = np.full(64, 1e-20, np.float32)
    assert np.all(ops.sigmoid_backward(dy, y) > 0)
    hdl.set_flush_denormal(True)
    assert np.all(ops.sigmoid_backward(dy, y) == 0)


def test_a_callback_inside_the_compiled_loop_sees_ieee_subnormals():
    seen = []
    X, Y = hdl.data.ten_points()
    net = hdl.Network([2, 2, 3, 2], seed=1)
    hdl.stochastic_gradient(net, X, Y, eta=0.05, epochs=2, seed=1,
                            on_epoch=lambda epoch, history: seen.append(caller_keeps_subnormals()))
    assert seen == [True, True]
    assert caller_keeps_subnormals()


def test_the_setting_is_a_bool():
    before = hdl.get_flush_denormal()
    assert hdl.set_flush_denormal(before) is True
    assert hdl.get_flush_denormal() is before
