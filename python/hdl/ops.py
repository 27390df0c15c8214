"""The functional API: one call per kernel of hdl._C, numpy arrays in and out.

Fully connected layers follow the paper: a mini-batch is a matrix whose columns
are the data points, W is (n_out, n_in), b is (n_out,). Arrays must be
C-contiguous float32 or float64, one dtype per call; the kernels check shapes.
"""
from __future__ import annotations

import numpy as np

from hdl import _C

ACTIVATIONS = {"linear": 0, "sigmoid": 1, "relu": 2, "leaky_relu": 3, "step": 4}


def activation_code(name: str) -> int:
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; choose from {sorted(ACTIVATIONS)}") from None


def dense_forward(W: np.ndarray, b: np.ndarray, a: np.ndarray, activation: str = "sigmoid",
                  slope: float = 0.01) -> np.ndarray:
    """sigma(W a + b): (5.2)-(5.3). a is (n_in, m); returns (n_out, m)."""
    return _C.dense_forward(W, b, a, activation_code(activation), slope)


def dense_backward(g: np.ndarray, a_out: np.ndarray, W: np.ndarray, a_in: np.ndarray, activation: str = "sigmoid",
                   slope: float = 0.01, scale: float = 1.0, want_g_in: bool = True):
    """Back propagation through one layer (Lemma 5.1), given g = dC/da_out of shape (n_out, m).

    Returns (delta, dW, db, g_in): delta = sigma'(z) o g (5.5)/(5.6), dW = scale delta a_in^T (5.8),
    db = scale sum_columns delta (5.7), and g_in = W^T delta = dC/da_in (None unless want_g_in).
    sigma'(z) is computed from a_out = sigma(z).
    """
    return _C.dense_backward(g, a_out, W, a_in, activation_code(activation), slope, scale, want_g_in)


def quadratic_cost(a: np.ndarray, y: np.ndarray, scale: float = 1.0):
    """(scale * sum_columns 1/2 ||y - a||^2, scale * (a - y)): the cost (3.3) with scale = 1/N, and dC/da."""
    return _C.quadratic_cost(a, y, scale)
