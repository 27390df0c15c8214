"""Layers without parameters that act value by value, or only reshape: ReLU (7.3), the leaky ReLU and
the sigmoid (2.1) of Section 8, dropout (Section 7.4), flatten."""
from __future__ import annotations

import numpy as np

from hdl import _checks, ops
from hdl.layers.base import Layer


class ReLU(Layer):
    """max(x, 0) (7.3)."""

    slope = 0.0

    def forward(self, x, train=False):
        return ops.relu(x, self.slope, out=self._buffer("y", x.shape, x.dtype))

    def backward(self, dy, x, y, need_dx=True):
        return ops.relu_backward(dy, y, self.slope, out=dy)  # y > 0 exactly where x > 0; dy is ours to reuse


class LeakyReLU(ReLU):
    """slope * x for x <= 0, x otherwise (Section 8)."""

    def __init__(self, slope=0.01):
        self.slope = _checks.positive("slope", slope)


class Sigmoid(Layer):
    """1 / (1 + e^-x) (2.1), with sigma' = sigma (1 - sigma) (2.2)."""

    def forward(self, x, train=False):
        return ops.sigmoid(x, out=self._buffer("y", x.shape, x.dtype))

    def backward(self, dy, x, y, need_dx=True):
        return ops.sigmoid_backward(dy, y, out=dy)  # dy is ours to reuse


class Dropout(Layer):
    """Inverted dropout: at training time each value is zeroed with probability `rate` and the
    others scaled by 1/(1 - rate); at test time the identity. The model sets `seed` for every batch."""

    def __init__(self, rate):
        rate = float(rate)
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"Dropout: rate must be in [0, 1), got {rate}")
        self.rate = rate
        self.seed = 0
        self.mask = None

    def forward(self, x, train=False):
        if not train or self.rate == 0.0:
            self.mask = None
            return x
        y, self.mask = ops.dropout(x, self.rate, self.seed, out=self._buffer("y", x.shape, x.dtype),
                                   mask_out=self._buffer("mask", x.shape, x.dtype))
        return y

    def backward(self, dy, x, y, need_dx=True):
        return dy if self.mask is None else np.multiply(dy, self.mask, out=dy)


class Flatten(Layer):
    """(N, ...) -> (N, prod(...)): images to the rows a Dense layer takes (no copy)."""

    def forward(self, x, train=False):
        return x.reshape(x.shape[0], -1)

    def backward(self, dy, x, y, need_dx=True):
        return dy.reshape(x.shape)
