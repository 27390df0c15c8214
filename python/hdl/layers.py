"""Layers: each owns its parameters and calls the kernels of hdl.ops.

A layer maps the activations a of the layer below (columns are data points) to
its own; backward maps g = dC/d(output) to dC/d(input) and the gradients of its
parameters. Convolutional layers join this family with the same two methods.
"""
from __future__ import annotations

import numpy as np

from hdl import _checks, ops


class Dense:
    """Fully connected layer (3.2): a[l] = sigma(W[l] a[l-1] + b[l]), W[l] of shape (n_out, n_in).

    activation: 'sigmoid' (2.1), 'relu' (7.3), 'leaky_relu' (slope * z for z <= 0), 'step' or 'linear'.
    """

    def __init__(self, n_in: int, n_out: int, activation: str = "sigmoid", slope: float = 0.01,
                 dtype=np.float64):
        n_in = _checks.positive("n_in", n_in, integer=True)
        n_out = _checks.positive("n_out", n_out, integer=True)
        ops.activation_code(activation)
        self.slope = _checks.positive("slope", slope)
        self.activation = activation
        dtype = _checks.float_dtype(dtype)
        self.W = np.zeros((n_out, n_in), dtype)
        self.b = np.zeros(n_out, dtype)

    @property
    def n_in(self) -> int:
        return self.W.shape[1]

    @property
    def n_out(self) -> int:
        return self.W.shape[0]

    @property
    def dtype(self) -> np.dtype:
        return self.W.dtype

    def params(self) -> dict[str, np.ndarray]:
        return {"W": self.W, "b": self.b}

    def initialize(self, rng: np.random.Generator, init: str = "normal", scale: float = 0.5) -> None:
        """'normal': scale * N(0,1) entries for W and b, as netbp.m (scale 0.5);
        'he': N(0, 2/n_in) weights; 'glorot': N(0, 2/(n_in+n_out)) weights; zero biases for both."""
        shape = self.W.shape
        if init == "normal":
            self.W[...] = scale * rng.standard_normal(shape)
            self.b[...] = scale * rng.standard_normal(self.n_out)
        elif init in ("he", "glorot"):
            var = 2.0 / self.n_in if init == "he" else 2.0 / (self.n_in + self.n_out)
            self.W[...] = np.sqrt(var) * rng.standard_normal(shape)
            self.b[...] = 0.0
        else:
            raise ValueError(f"unknown init {init!r}; choose 'normal', 'he' or 'glorot'")

    def forward(self, a: np.ndarray) -> np.ndarray:
        return ops.dense_forward(self.W, self.b, a, self.activation, self.slope)

    def backward(self, g: np.ndarray, a_in: np.ndarray, a_out: np.ndarray, scale: float = 1.0,
                 want_g_in: bool = True):
        """(g_in, {'W': dW, 'b': db}, delta) by Lemma 5.1, given g = dC/da_out."""
        delta, dW, db, g_in = ops.dense_backward(g, a_out, self.W, a_in, self.activation, self.slope, scale,
                                                 want_g_in)
        return g_in, {"W": dW, "b": db}, delta

    def config(self) -> dict:
        return {"type": "Dense", "n_in": self.n_in, "n_out": self.n_out, "activation": self.activation,
                "slope": self.slope}

    def __repr__(self) -> str:
        return f"Dense({self.n_in}, {self.n_out}, activation={self.activation!r})"


LAYER_TYPES = {"Dense": Dense}
