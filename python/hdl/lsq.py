"""Training by nonlinear least squares (Section 2: MATLAB's lsqnonlin).

The residuals are r_i(p) = ||y(x_i) - F(x_i)||_2, one per point, as the authors'
nlsrun had them, so sum_i r_i^2 = 2N Cost (3.3). Their Jacobian comes from back
propagation: with C_i = 1/2 r_i^2 of (4.4), grad r_i = grad C_i / r_i, and the
per-point gradients are delta[l](:, i) a[l-1](:, i)^T (5.8) and delta[l](:, i) (5.7),
read off one batched backward pass.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from hdl import _checks
from hdl.network import Network


@dataclass
class LeastSquaresResult:
    cost: float          # Cost (3.3) at the solution
    nfev: int            # evaluations of the residuals
    njev: int            # evaluations of the Jacobian
    status: int          # scipy's status code (> 0: converged by one of its tests)
    message: str
    seconds: float


def residuals(net: Network, X: ArrayLike, Y: ArrayLike) -> NDArray[Any]:
    """r_i = ||y_i - F(x_i)||_2 for each column i."""
    return np.linalg.norm(Y - net.forward(X), axis=0)


def jacobian(net: Network, X: ArrayLike, Y: ArrayLike) -> NDArray[Any]:
    """d r_i / d p, an (N, number of parameters) matrix, p ordered as Network.get_params()."""
    X, Y = net.check_inputs(X, Y)
    a, per_layer = net.backprop(X, Y, scale=1.0)
    r = np.linalg.norm(Y - a[-1], axis=0)
    blocks = []
    for l, (_, delta) in enumerate(per_layer):
        # per-point gradient of C_i: (5.8) delta(:, i) a_in(:, i)^T and (5.7) delta(:, i)
        blocks.append(np.einsum("ji,ki->ijk", delta, a[l]).reshape(X.shape[1], -1))
        blocks.append(delta.T)
    return np.concatenate(blocks, axis=1) / np.maximum(r, np.finfo(float).tiny)[:, None]


def least_squares(net: Network, X: ArrayLike, Y: ArrayLike, method: str = "trf", max_nfev: int | None = None,
                  tol: float = 1e-10) -> LeastSquaresResult:
    """Trains net in place by scipy.optimize.least_squares on the residuals r_i.

    method: 'trf' (trust-region reflective, lsqnonlin's default), 'dogbox', or 'lm'
    (Levenberg-Marquardt, which needs at least as many points as parameters).
    """
    from scipy.optimize import least_squares as scipy_least_squares

    X, Y = net.check_inputs(X, Y)
    if method not in ("trf", "dogbox", "lm"):
        raise ValueError(f"method must be 'trf', 'dogbox' or 'lm', got {method!r}")
    if method == "lm" and X.shape[1] < net.num_params:
        raise ValueError(f"method 'lm' needs at least as many points as parameters ({X.shape[1]} < "
                         f"{net.num_params}); use 'trf'")
    if max_nfev is not None:
        max_nfev = _checks.positive("max_nfev", max_nfev, integer=True)
    tol = _checks.positive("tol", tol)
    work = net.copy()

    def fun(p: NDArray[np.float64]) -> NDArray[np.float64]:
        work.set_params(p.astype(net.dtype))
        return residuals(work, X, Y).astype(np.float64)

    def jac(p: NDArray[np.float64]) -> NDArray[np.float64]:
        work.set_params(p.astype(net.dtype))
        return jacobian(work, X, Y).astype(np.float64)

    start = time.perf_counter()
    sol = scipy_least_squares(fun, net.get_params().astype(np.float64), jac=jac, method=method, max_nfev=max_nfev,
                              xtol=tol, ftol=tol, gtol=tol)
    net.set_params(sol.x)
    return LeastSquaresResult(net.cost(X, Y), int(sol.nfev), int(sol.njev or 0), int(sol.status), sol.message,
                              time.perf_counter() - start)
