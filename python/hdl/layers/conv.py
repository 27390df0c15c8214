"""Convolution (Section 7.1) and the fully connected layer MatConvNet writes as one, on NHWC batches."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import DTypeLike, NDArray

from hdl import _checks, backend
from hdl.backend import Array
from hdl.layers.base import Layer

__all__ = ["Conv2d", "FullyConnected"]


class Conv2d(Layer):
    """y = conv(x, w) + b (Section 7.1): w (out, in, k, k), stride, pad int or (top, bottom, left, right).

    init: 'matconvnet' (scale * N(0,1) filters, zero biases; MatConvNet's cifar net uses 0.01 and 0.05),
    'he' (N(0, 2/fan_in)) or 'glorot' (N(0, 2/(fan_in + fan_out))). lr_mults and decay_mults apply to
    (w, b); MatConvNet's cifar example trains filters at 0.1x and biases at 2x the rate.
    """

    fuses_relu = fuses_activation = True
    devices = ("cpu", "cuda")

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | Sequence[int],
                 stride: int | Sequence[int] = 1, pad: int | Sequence[int] = 0, init: str = "matconvnet",
                 scale: float = 0.01, lr_mults: Sequence[float] = (1.0, 1.0), decay_mults: Sequence[float] = (1.0, 0.0),
                 rng: np.random.Generator | int | None = None, dtype: DTypeLike = np.float32):
        self.in_channels = _checks.size("in_channels", in_channels)
        self.out_channels = _checks.size("out_channels", out_channels)
        self.kernel_size = _checks.pair("kernel_size", kernel_size)
        self.stride = _checks.pair("stride", stride)
        self.pad = _checks.pad4(pad)
        if min(self.kernel_size) < 1 or min(self.stride) < 1 or min(self.pad) < 0:
            raise ValueError(f"Conv2d: kernel_size and stride must be positive and pad non-negative, got "
                             f"{self.kernel_size}, {self.stride}, {self.pad}")
        self.lr_mults, self.decay_mults = lr_mults, decay_mults
        self.init, self.scale = init, _checks.positive("scale", scale, allow_zero=True)
        dtype = _checks.float_dtype(dtype)
        self.w: NDArray[Any] = np.zeros((self.out_channels, self.in_channels, *self.kernel_size), dtype)
        self.b: NDArray[Any] = np.zeros(self.out_channels, dtype)
        self.initialize(_checks.generator("rng", rng))

    def initialize(self, rng: np.random.Generator) -> None:
        fan_in = self.in_channels * self.kernel_size[0] * self.kernel_size[1]
        fan_out = self.out_channels * self.kernel_size[0] * self.kernel_size[1]
        std = {"matconvnet": self.scale, "he": np.sqrt(2.0 / fan_in), "glorot": np.sqrt(2.0 / (fan_in + fan_out))}
        if self.init not in std:
            raise ValueError(f"unknown init {self.init!r}; choose 'matconvnet', 'he' or 'glorot'")
        with np.errstate(over="ignore"):
            self.w[...] = std[self.init] * rng.standard_normal(self.w.shape)
        if not np.isfinite(self.w).all():
            raise ValueError(f"scale {self.scale} is too large for {self.w.dtype} weights")
        self.b[...] = 0.0

    def params(self) -> Mapping[str, Array]:
        return {"w": self.w, "b": self.b}

    def out_shape(self, shape: Sequence[int]) -> tuple[int, int, int, int]:
        if len(shape) != 4:
            raise ValueError(f"{type(self).__name__} takes batches of images (N, H, W, C) (NHWC), got shape {tuple(shape)}")
        N, H, W, _ = shape
        (kh, kw), (sh, sw), (pt, pb, pl, pr) = self.kernel_size, self.stride, self.pad
        return (N, (H + pt + pb - kh) // sh + 1, (W + pl + pr - kw) // sw + 1, self.out_channels)

    def forward(self, x: Any, train: bool = False, relu: bool = False,
                activation: tuple[str, float] | None = None) -> Any:
        """y = conv(x, w) + b, then sigma(y) as it is stored: activation (name, slope) of hdl.ops.ACTIVATIONS, or
        the ReLU with relu=True."""
        if relu and activation is not None:
            raise ValueError(f"{type(self).__name__}.forward: relu=True and activation={activation!r} ask for two")
        y = self._buffer("y", self.out_shape(x.shape), x)
        name, slope = activation or ("relu" if relu else "linear", 0.0)
        return backend.ops_for(x).conv2d(x, self.w, self.b, self.stride, self.pad, layout="NHWC", out=y,
                                         activation=name, slope=slope)

    def backward(self, dy: Any, x: Any, y: Any, need_dx: bool = True) -> Any:
        dx = self._buffer("dx", x.shape, x) if need_dx else None
        dx, self.grads["w"], self.grads["b"] = backend.ops_for(x).conv2d_backward(
            dy, x, self.w, self.stride, self.pad, want_dx=need_dx, layout="NHWC", dx_out=dx)
        return dx


class FullyConnected(Conv2d):
    """A fully connected layer W a + b on (N, h, w, C) inputs, as MatConvNet writes one: a
    convolution whose filter covers the whole input, giving (N, 1, 1, out_features)."""

    def __init__(self, in_channels: int, out_features: int, input_size: Sequence[int] = (1, 1), **kwargs: Any):
        out_features = _checks.size("out_features", out_features)
        super().__init__(in_channels, out_features, _checks.pair("input_size", input_size), **kwargs)

    def config(self) -> dict[str, Any]:
        return {"type": "FullyConnected", "in_channels": self.in_channels, "out_features": self.out_channels,
                "input_size": list(self.kernel_size), "init": self.init, "scale": self.scale,
                "lr_mults": list(self.lr_mults), "decay_mults": list(self.decay_mults)}
