"""Listing 6.1 (netbp.m) written directly in NumPy and in Numba: the baselines
that bench_netbp.py times beside hdl. The 2-2-3-2 sigmoid network, one sample
with replacement per step (4.6), Cost monitored after every step."""
import numpy as np

try:
    import numba
except ImportError:  # the NumPy baseline runs without it
    numba = None


def _sigma(z):
    return 1.0 / (1.0 + np.exp(-z))


def netbp_numpy(X, Y, W2, W3, W4, b2, b3, b4, eta, niter, idx):
    """netbp.m line by line: idx[k] is the point of step k; returns the cost after each step."""
    W2, W3, W4, b2, b3, b4 = (p.copy() for p in (W2, W3, W4, b2, b3, b4))
    b2, b3, b4 = b2[:, None], b3[:, None], b4[:, None]
    costs = np.empty(niter)
    for counter in range(niter):
        k = idx[counter]
        x = X[:, k:k + 1]
        a2 = _sigma(W2 @ x + b2)
        a3 = _sigma(W3 @ a2 + b3)
        a4 = _sigma(W4 @ a3 + b4)
        delta4 = a4 * (1 - a4) * (a4 - Y[:, k:k + 1])
        delta3 = a3 * (1 - a3) * (W4.T @ delta4)
        delta2 = a2 * (1 - a2) * (W3.T @ delta3)
        W2 -= eta * delta2 @ x.T
        W3 -= eta * delta3 @ a2.T
        W4 -= eta * delta4 @ a3.T
        b2 -= eta * delta2
        b3 -= eta * delta3
        b4 -= eta * delta4
        F = _sigma(W4 @ _sigma(W3 @ _sigma(W2 @ X + b2) + b3) + b4)
        costs[counter] = np.sum((Y - F) ** 2)
    return costs


def _netbp_loops(X, Y, W2, W3, W4, b2, b3, b4, eta, niter, idx):
    """The same, as scalar loops for Numba to compile: the 'plain loop' baseline."""
    W2, W3, W4, b2, b3, b4 = W2.copy(), W3.copy(), W4.copy(), b2.copy(), b3.copy(), b4.copy()
    N = X.shape[1]
    costs = np.empty(niter)
    a2 = np.empty(2)
    a3 = np.empty(3)
    a4 = np.empty(2)
    d2 = np.empty(2)
    d3 = np.empty(3)
    d4 = np.empty(2)
    for counter in range(niter):
        k = idx[counter]
        for j in range(2):
            a2[j] = 1.0 / (1.0 + np.exp(-(W2[j, 0] * X[0, k] + W2[j, 1] * X[1, k] + b2[j])))
        for j in range(3):
            a3[j] = 1.0 / (1.0 + np.exp(-(W3[j, 0] * a2[0] + W3[j, 1] * a2[1] + b3[j])))
        for j in range(2):
            a4[j] = 1.0 / (1.0 + np.exp(-(W4[j, 0] * a3[0] + W4[j, 1] * a3[1] + W4[j, 2] * a3[2] + b4[j])))
        for j in range(2):
            d4[j] = a4[j] * (1 - a4[j]) * (a4[j] - Y[j, k])
        for j in range(3):
            d3[j] = a3[j] * (1 - a3[j]) * (W4[0, j] * d4[0] + W4[1, j] * d4[1])
        for j in range(2):
            d2[j] = a2[j] * (1 - a2[j]) * (W3[0, j] * d3[0] + W3[1, j] * d3[1] + W3[2, j] * d3[2])
        for j in range(2):
            for i in range(2):
                W2[j, i] -= eta * d2[j] * X[i, k]
            b2[j] -= eta * d2[j]
        for j in range(3):
            for i in range(2):
                W3[j, i] -= eta * d3[j] * a2[i]
            b3[j] -= eta * d3[j]
        for j in range(2):
            for i in range(3):
                W4[j, i] -= eta * d4[j] * a3[i]
            b4[j] -= eta * d4[j]
        cost = 0.0
        for p in range(N):
            for j in range(2):
                a2[j] = 1.0 / (1.0 + np.exp(-(W2[j, 0] * X[0, p] + W2[j, 1] * X[1, p] + b2[j])))
            for j in range(3):
                a3[j] = 1.0 / (1.0 + np.exp(-(W3[j, 0] * a2[0] + W3[j, 1] * a2[1] + b3[j])))
            for j in range(2):
                a4[j] = 1.0 / (1.0 + np.exp(-(W4[j, 0] * a3[0] + W4[j, 1] * a3[1] + W4[j, 2] * a3[2] + b4[j])))
                cost += (Y[j, p] - a4[j]) ** 2
        costs[counter] = cost
    return costs


netbp_numba = numba.njit(cache=True)(_netbp_loops) if numba is not None else None
