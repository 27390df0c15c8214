"""Layers without parameters that act value by value, or only reshape: ReLU (7.3), the leaky ReLU and
the sigmoid (2.1) of Section 8, tanh, dropout (Section 7.4), flatten."""
from __future__ import annotations

from typing import Any

import numpy as np

from hdl import _checks, backend
from hdl.layers.base import Layer

__all__ = ["Dropout", "Flatten", "LeakyReLU", "ReLU", "Sigmoid", "Tanh", "activation_of", "fused_activation"]


class ReLU(Layer):
    """max(x, 0) (7.3)."""

    slope: float = 0.0
    devices = ("cpu", "cuda")

    def forward(self, x: Any, train: bool = False) -> Any:
        return backend.ops_for(x).relu(x, self.slope, out=self._buffer("y", x.shape, x))

    def backward(self, dy: Any, x: Any, y: Any, need_dx: bool = True) -> Any:
        return backend.ops_for(x).relu_backward(dy, y, self.slope, out=dy)  # y > 0 exactly where x > 0; dy is ours to reuse


class LeakyReLU(ReLU):
    """slope * x for x <= 0, x otherwise (Section 8)."""

    def __init__(self, slope: float = 0.01):
        self.slope = _checks.positive("slope", slope)


class _Activation(Layer):
    """An elementwise activation of the kernel list (hdl.ops.<kind>, on either device): y = sigma(x), and the
    backward pass from y."""

    kind: str = ""
    devices = ("cpu", "cuda")

    def forward(self, x: Any, train: bool = False) -> Any:
        return getattr(backend.ops_for(x), self.kind)(x, out=self._buffer("y", x.shape, x))

    def backward(self, dy: Any, x: Any, y: Any, need_dx: bool = True) -> Any:
        return getattr(backend.ops_for(x), f"{self.kind}_backward")(dy, y, out=dy)  # dy is ours to reuse


class Sigmoid(_Activation):
    """1 / (1 + e^-x) (2.1), with sigma' = sigma (1 - sigma) (2.2)."""

    kind = "sigmoid"


class Tanh(_Activation):
    """tanh x = (e^x - e^-x) / (e^x + e^-x) = 2 sigma(2x) - 1, with tanh' = 1 - tanh^2."""

    kind = "tanh"


def activation_of(layer: Layer) -> tuple[str, float] | None:
    """(name, slope) of the activation (hdl.ops.ACTIVATIONS) that layer computes, where it is one of the
    layers above and not a subclass, which may compute something else; None otherwise. A layer that
    fuses_activation computes it in its own store when this layer follows it."""
    kind = type(layer)
    if kind is ReLU:
        return "relu", 0.0
    if kind is LeakyReLU:
        return "leaky_relu", layer.slope  # type: ignore[attr-defined]  # kind is LeakyReLU
    if kind is Sigmoid or kind is Tanh:
        return kind.kind, 0.0
    return None


def fused_activation(layer: Layer, nxt: Layer | None) -> tuple[str, float] | None:
    """The activation (name, slope) that layer computes in its own pass for the layer after it, nxt, where layer
    fuses_activation and its forward takes activation= (a subclass's own forward may not); None otherwise."""
    if nxt is None or not (layer.fuses_activation and layer._forward_activation):
        return None
    return activation_of(nxt)


class Dropout(Layer):
    """Inverted dropout: at training time each value is zeroed with probability `rate` and the
    others scaled by 1/(1 - rate); at test time the identity. The model sets `seed` for every batch."""

    devices = ("cpu", "cuda")

    def __init__(self, rate: float):
        self.rate = _checks.rate("Dropout: rate", rate)
        self.seed = 0
        self.mask: Any = None

    def forward(self, x: Any, train: bool = False) -> Any:
        if not train or self.rate == 0.0:
            self.mask = None
            return x
        y, self.mask = backend.ops_for(x).dropout(x, self.rate, self.seed, out=self._buffer("y", x.shape, x),
                                                  mask_out=self._buffer("mask", x.shape, x))
        return y

    def backward(self, dy: Any, x: Any, y: Any, need_dx: bool = True) -> Any:
        return dy if self.mask is None else backend.ops_for(dy).dropout_backward(dy, self.mask, out=dy)


class Flatten(Layer):
    """(N, ...) -> (N, prod(...)): images to the rows a Dense layer takes (no copy)."""

    devices = ("cpu", "cuda")

    def forward(self, x: Any, train: bool = False) -> Any:
        return x.reshape(x.shape[0], -1)

    def backward(self, dy: Any, x: Any, y: Any, need_dx: bool = True) -> Any:
        return dy.reshape(x.shape)
