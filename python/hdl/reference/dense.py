"""One fully connected layer, forward and backward, as the loops of Lemma 5.1.
Activation codes: 0 linear, 1 sigmoid, 2 relu, 3 leaky relu, 4 step, 5 tanh (hdl.ops.ACTIVATIONS)."""
import numba
import numpy as np


@numba.njit(cache=True)
def sigma(z, act, slope):
    if act == 1:
        return 1.0 / (1.0 + np.exp(-z))  # (2.1)
    if act == 2:
        return max(z, 0.0)  # (7.3)
    if act == 3:
        return z if z > 0 else slope * z
    if act == 4:
        return 1.0 if z > 0 else 0.0
    if act == 5:
        return np.tanh(z)
    return z


@numba.njit(cache=True)
def sigma_prime(a, act, slope):
    """sigma'(z) written in terms of a = sigma(z)."""
    if act == 1:
        return a * (1.0 - a)  # (2.2)
    if act == 2:
        return 1.0 if a > 0 else 0.0
    if act == 3:
        return 1.0 if a > 0 else slope
    if act == 4:
        return 0.0
    if act == 5:
        return 1.0 - a * a
    return 1.0


@numba.njit(cache=True)
def dense_forward(W, b, a, act, slope):
    """z_j = sum_k w_jk a_k + b_j (5.2), a_j = sigma(z_j) (5.3), for every column."""
    n_out, n_in = W.shape
    m = a.shape[1]
    out = np.empty((n_out, m), dtype=W.dtype)
    for p in range(m):
        for j in range(n_out):
            z = b[j]
            for k in range(n_in):
                z += W[j, k] * a[k, p]
            out[j, p] = sigma(z, act, slope)
    return out


@numba.njit(cache=True)
def dense_backward(g, a_out, W, a_in, act, slope, scale):
    """(delta, dW, db, g_in) for g = dC/da_out: Lemma 5.1 over the columns."""
    n_out, n_in = W.shape
    m = a_in.shape[1]
    delta = np.empty((n_out, m), dtype=W.dtype)
    for p in range(m):
        for j in range(n_out):
            delta[j, p] = sigma_prime(a_out[j, p], act, slope) * g[j, p]  # (5.5), (5.6)
    dW = np.zeros((n_out, n_in), dtype=W.dtype)
    db = np.zeros(n_out, dtype=W.dtype)
    g_in = np.zeros((n_in, m), dtype=W.dtype)
    for p in range(m):
        for j in range(n_out):
            db[j] += scale * delta[j, p]  # (5.7)
            for k in range(n_in):
                dW[j, k] += scale * delta[j, p] * a_in[k, p]  # (5.8)
                g_in[k, p] += W[j, k] * delta[j, p]  # (W^T delta) of (5.6)
    return delta, dW, db, g_in


@numba.njit(cache=True)
def quadratic_cost(a, y, scale):
    """scale * sum 1/2 ||y - a||^2 and its gradient scale * (a - y)."""
    c = 0.0
    g = np.empty_like(a)
    for j in range(a.shape[0]):
        for p in range(a.shape[1]):
            c += 0.5 * (y[j, p] - a[j, p]) ** 2
            g[j, p] = scale * (a[j, p] - y[j, p])
    return scale * c, g
