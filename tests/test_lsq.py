"""Nonlinear least squares: the Jacobian by back propagation, and the ten-point fit of Figure 2.4."""
import numpy as np
import pytest

import hdl
from hdl.lsq import jacobian, residuals


def test_jacobian_matches_finite_differences():
    rng = np.random.default_rng(0)
    net = hdl.Network([3, 4, 2], activation=["sigmoid", "leaky_relu"], seed=1)
    X, Y = rng.random((3, 7)), rng.random((2, 7))
    J = jacobian(net, X, Y)
    p, h = net.get_params(), 1e-6
    for i in range(p.size):
        q = p.copy()
        q[i] += h
        net.set_params(q)
        up = residuals(net, X, Y)
        q[i] -= 2 * h
        net.set_params(q)
        down = residuals(net, X, Y)
        np.testing.assert_allclose(J[:, i], (up - down) / (2 * h), rtol=1e-6, atol=1e-8)
    net.set_params(p)


@pytest.mark.parametrize("extra", [False, True])
def test_least_squares_fits_the_ten_points(extra):
    X, Y = hdl.data.ten_points(extra_point=extra)
    net = hdl.Network([2, 2, 3, 2], seed=2)
    start = net.cost(X, Y)
    result = hdl.least_squares(net, X, Y)
    assert result.cost < 1e-3 * start
    assert result.cost == pytest.approx(net.cost(X, Y))
    np.testing.assert_array_equal(net.predict(X), Y.argmax(0))


def test_lm_needs_enough_points():
    X, Y = hdl.data.ten_points()
    with pytest.raises(ValueError, match="'lm' needs at least as many points"):
        hdl.least_squares(hdl.Network([2, 2, 3, 2]), X, Y, method="lm")
    rng = np.random.default_rng(0)
    X, Y = rng.random((1, 40)), rng.random((1, 40))
    net = hdl.Network([1, 3, 1], seed=0)
    result = hdl.least_squares(net, X, Y, method="lm")
    assert result.cost < hdl.Network([1, 3, 1], seed=0).cost(X, Y)
