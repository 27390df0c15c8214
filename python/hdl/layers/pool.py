"""Max and average pooling (Section 7) on NHWC batches."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from hdl import _checks, backend
from hdl.layers.base import Layer

__all__ = ["AvgPool2d", "MaxPool2d"]


class _Pool(Layer):
    kind: str = ""
    devices = ("cpu", "cuda")

    def __init__(self, window: int | Sequence[int], stride: int | Sequence[int] | None = None,
                 pad: int | Sequence[int] = 0):
        self.window = _checks.pair("window", window)
        self.stride = _checks.pair("stride", self.window if stride is None else stride)
        self.pad = _checks.pad4(pad)
        if min(self.window) < 1 or min(self.stride) < 1:
            raise ValueError(f"{type(self).__name__}: window and stride must be positive")
        if not (0 <= min(self.pad) and max(self.pad[:2]) < self.window[0] and max(self.pad[2:]) < self.window[1]):
            raise ValueError(f"{type(self).__name__}: padding {self.pad} must be smaller than the window "
                             f"{self.window}")

    def out_shape(self, shape: Sequence[int]) -> tuple[int, int, int, int]:
        if len(shape) != 4:
            raise ValueError(f"{type(self).__name__} takes batches of images (N, H, W, C) (NHWC), got shape {tuple(shape)}")
        N, H, W, C = shape
        (kh, kw), (sh, sw), (pt, pb, pl, pr) = self.window, self.stride, self.pad
        return (N, (H + pt + pb - kh) // sh + 1, (W + pl + pr - kw) // sw + 1, C)

    def forward(self, x: Any, train: bool = False) -> Any:
        f = getattr(backend.ops_for(x), f"{self.kind}_pool2d")
        return f(x, self.window, self.stride, self.pad, layout="NHWC", out=self._buffer("y", self.out_shape(x.shape), x))

    def backward(self, dy: Any, x: Any, y: Any, need_dx: bool = True) -> Any:
        f = getattr(backend.ops_for(x), f"{self.kind}_pool2d_backward")
        return f(dy, x, self.window, self.stride, self.pad, layout="NHWC", out=self._buffer("dx", x.shape, x))


class MaxPool2d(_Pool):
    """Max over windows; padding never wins (MatConvNet). A training forward pass keeps each window's
    argmax, so the backward pass does not search the windows again. relu=True fuses the ReLU that
    follows it (Model does so): the argmax is then -1 where the ReLU cut the maximum."""
    kind = "max"
    fuses_relu = True
    relu_in_backward = True  # in training the argmax carries the fused ReLU's cut (-1)

    def forward(self, x: Any, train: bool = False, relu: bool = False) -> Any:
        shape, ops = self.out_shape(x.shape), backend.ops_for(x)
        y = self._buffer("y", shape, x)
        self.relu = relu
        self.argmax = self._buffer("argmax", shape, x, np.int32) if train else None
        if not train:
            return ops.max_pool2d(x, self.window, self.stride, self.pad, layout="NHWC", out=y, relu=relu)
        return ops.max_pool2d(x, self.window, self.stride, self.pad, layout="NHWC", out=y, relu=relu,
                              return_argmax=True, argmax_out=self.argmax)[0]

    def backward(self, dy: Any, x: Any, y: Any, need_dx: bool = True) -> Any:
        argmax, ops = getattr(self, "argmax", None), backend.ops_for(x)
        if argmax is None and getattr(self, "relu", False):
            dy = ops.relu_backward(dy, y)  # y = max(pool, 0): the ReLU's part of the gradient
        return ops.max_pool2d_backward(dy, x, self.window, self.stride, self.pad, layout="NHWC",
                                       out=self._buffer("dx", x.shape, x), argmax=argmax)


class AvgPool2d(_Pool):
    """Mean over the in-image cells of each window (MatConvNet)."""
    kind = "avg"
