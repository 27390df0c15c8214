"""The fully connected layer (3.2), one class for both conventions:

  in a Model, on batches of rows (the protocol of hdl.layers.base):  y = sigma(x W^T + b), x (N, n_in)
  in the paper's Network, on columns (Section 3):                     a = sigma(W a_in + b), a_in (n_in, m)

W is (n_out, n_in) either way, so a Network's W[l] are the arrays a Model trains.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import DTypeLike, NDArray

from hdl import _checks, backend, ops
from hdl.backend import Array
from hdl.layers.base import Layer

__all__ = ["Dense"]

_ONE, _NO_PAD = (1, 1), (0, 0, 0, 0)  # the covering filter's stride and padding


class Dense(Layer):
    """Fully connected layer (3.2): sigma(W a + b), W of shape (n_out, n_in).

    activation: 'sigmoid' (2.1), 'relu' (7.3), 'leaky_relu' (slope * z for z <= 0), 'tanh', 'step' or 'linear'.
    init: see initialize(); the paper's Network sets it for all its layers.
    """

    def __init__(self, n_in: int, n_out: int, activation: str = "sigmoid", slope: float = 0.01,
                 init: str = "he", scale: float = 0.5, rng: np.random.Generator | int | None = None,
                 dtype: DTypeLike = np.float64):
        n_in = _checks.size("n_in", n_in)
        n_out = _checks.size("n_out", n_out)
        ops.activation_code(activation)
        self.slope = _checks.positive("slope", slope)
        self.activation = activation
        dtype = _checks.float_dtype(dtype)
        self.W: NDArray[Any] = np.zeros((n_out, n_in), dtype)
        self.b: NDArray[Any] = np.zeros(n_out, dtype)
        scale = _checks.positive("scale", scale, allow_zero=True)
        self.init, self.scale = init, scale
        self.lr_mults, self.decay_mults = (1.0, 1.0), (1.0, 0.0)  # no weight decay on biases (8.2)
        self.initialize(_checks.generator("rng", rng), init, scale)

    @property
    def n_in(self) -> int:
        return self.W.shape[1]

    @property
    def n_out(self) -> int:
        return self.W.shape[0]

    @property
    def dtype(self) -> np.dtype[Any]:
        return self.W.dtype

    @property  # an activation layer after a linear Dense layer runs in its product's store
    def fuses_relu(self) -> bool:  # type: ignore[override]  # Layer's is a class attribute
        return self.activation == "linear"

    fuses_activation = fuses_relu

    def params(self) -> Mapping[str, Array]:
        return {"W": self.W, "b": self.b}

    def initialize(self, rng: np.random.Generator, init: str = "normal", scale: float = 0.5) -> None:
        """'normal': scale * N(0,1) entries for W and b, as netbp.m (scale 0.5);
        'he': N(0, 2/n_in) weights; 'glorot': N(0, 2/(n_in+n_out)) weights; zero biases for both."""
        shape = self.W.shape
        if init == "normal":
            with np.errstate(over="ignore"):
                self.W[...] = scale * rng.standard_normal(shape)
                self.b[...] = scale * rng.standard_normal(self.n_out)
        elif init in ("he", "glorot"):
            var = 2.0 / self.n_in if init == "he" else 2.0 / (self.n_in + self.n_out)
            self.W[...] = np.sqrt(var) * rng.standard_normal(shape)
            self.b[...] = 0.0
        else:
            raise ValueError(f"unknown init {init!r}; choose 'normal', 'he' or 'glorot'")
        if not (np.isfinite(self.W).all() and np.isfinite(self.b).all()):
            raise ValueError(f"scale {scale} is too large for {self.W.dtype} weights")
        self.init, self.scale = init, float(scale)

    def supports(self, device: str) -> bool:  # the GPU has no step kernel
        return device == "cpu" or (device == "cuda" and self.activation != "step")

    # -- rows: the layer protocol (a batch of N rows, any trailing shape flattened to n_in) --------
    def _rows(self, x: Any) -> Any:
        """x as (N, 1, 1, n_in): the covering-filter product of conv2d is x W^T + b (no copy)."""
        if x.size != x.shape[0] * self.n_in:
            raise ValueError(f"Dense({self.n_in}, {self.n_out}) needs batches of {self.n_in} values per row, "
                             f"got shape {x.shape}")
        return x.reshape(x.shape[0], 1, 1, self.n_in)

    def forward(self, x: Any, train: bool = False, relu: bool = False,
                activation: tuple[str, float] | None = None) -> Any:
        """sigma(x W^T + b), sigma applied in the product's store: this layer's own activation, or, for a
        linear one, the activation (name, slope) or ReLU (relu=True) of the layer that follows."""
        if (relu or activation is not None) and self.activation != "linear":
            raise ValueError(f"Dense({self.activation!r}) has its own activation; only a linear one takes another")
        if relu and activation is not None:
            raise ValueError(f"Dense.forward: relu=True and activation={activation!r} ask for two")
        name, slope = activation or (("relu", 0.0) if relu else (self.activation, self.slope))
        y = self._buffer("y", (x.shape[0], 1, 1, self.n_out), x)
        backend.ops_for(x).conv2d(self._rows(x), self.W.reshape(self.n_out, self.n_in, 1, 1), self.b, _ONE, _NO_PAD,
                                  layout="NHWC", out=y, activation=name, slope=slope)
        return y.reshape(x.shape[0], self.n_out)

    def backward(self, dy: Any, x: Any, y: Any, need_dx: bool = True) -> Any:
        ops, act = backend.ops_for(x), self.activation
        dy = backend.contiguous(dy).reshape(x.shape[0], 1, 1, self.n_out)
        if act in ("sigmoid", "tanh"):
            dy = getattr(ops, f"{act}_backward")(dy, y.reshape(dy.shape))
        elif act in ("relu", "leaky_relu"):
            dy = ops.relu_backward(dy, y.reshape(dy.shape), self.slope if act == "leaky_relu" else 0.0)
        elif act == "step":
            dy = np.zeros_like(dy)
        x4 = self._rows(x)
        dx = self._buffer("dx", x4.shape, x) if need_dx else None
        dx, dW, self.grads["b"] = ops.conv2d_backward(dy, x4, self.W.reshape(self.n_out, self.n_in, 1, 1), _ONE,
                                                      _NO_PAD, want_dx=need_dx, layout="NHWC", dx_out=dx)
        self.grads["W"] = dW.reshape(self.W.shape)
        return None if dx is None else dx.reshape(x.shape)

    # -- columns: the paper's Network ----------------------------------------------------------
    def forward_columns(self, a: np.ndarray) -> np.ndarray:
        """a = sigma(W a_in + b) for a_in (n_in, m) (5.2)-(5.3)."""
        return ops.dense_forward(self.W, self.b, a, self.activation, self.slope)

    def backward_columns(self, g: np.ndarray, a_in: np.ndarray, a_out: np.ndarray, scale: float = 1.0,
                         want_g_in: bool = True
                         ) -> tuple[NDArray[Any] | None, dict[str, NDArray[Any]], NDArray[Any]]:
        """(g_in, {'W': dW, 'b': db}, delta) by Lemma 5.1, given g = dC/da_out, columns as points."""
        delta, dW, db, g_in = ops.dense_backward(g, a_out, self.W, a_in, self.activation, self.slope, scale,
                                                 want_g_in)
        return g_in, {"W": dW, "b": db}, delta

    def config(self) -> dict:
        return {"type": "Dense", "n_in": self.n_in, "n_out": self.n_out, "activation": self.activation,
                "slope": self.slope, "init": self.init, "scale": self.scale}

    def __repr__(self) -> str:
        return f"Dense({self.n_in}, {self.n_out}, activation={self.activation!r})"
