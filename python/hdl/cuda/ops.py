"""The functional API on the GPU: hdl.ops's kernels on DeviceArrays, NHWC layout, float32.

The functions are hdl.ops's, with the same keywords (hdl.backend picks one module or the other by where
the arrays live); `layout` is accepted for that, and must be 'NHWC'.

Each function checks its arguments (DeviceArray, float32, shapes) and raises TypeError/ValueError
naming them, then queues the kernel on hdl's stream and returns at once; results are DeviceArrays
(``.numpy()`` waits and copies). Formulas, shapes and border rules are those of hdl.ops, where they
are written out; ``out=`` arguments receive results without new allocations.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from hdl import _C as _host_C
from hdl import _checks
from hdl import ops as _host_ops
from hdl.cuda import array as _array
from hdl.cuda.array import DeviceArray

_INT32_LIMIT = 2**31 - 1  # the kernels index with 32-bit integers
Window = int | Sequence[int]  # an int or a pair
Pad = int | Sequence[int]  # an int or (top, bottom, left, right)


def _C() -> Any:
    return _array._module()


def _shape_str(shape: Sequence[int | None]) -> str:
    return "(" + ", ".join("*" if d is None else str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def _check(fn: str, name: str, a: object, shape: Sequence[int | None] | None = None,
           dtype: DTypeLike = np.float32) -> int:
    """a as a DeviceArray of dtype and, where given, shape (None matches any extent)."""
    if not isinstance(a, DeviceArray):
        raise TypeError(f"{fn}: {name} must be an hdl.cuda.DeviceArray, got {type(a).__name__} "
                        "(copy host arrays with DeviceArray.from_numpy)")
    if a.dtype != np.dtype(dtype):
        raise TypeError(f"{fn}: {name} must be {np.dtype(dtype)}, got {a.dtype}")
    if shape is not None and (len(a.shape) != len(shape) or
                              any(want is not None and got != want for got, want in zip(a.shape, shape))):
        raise ValueError(f"{fn}: {name} must have shape {_shape_str(shape)}, got {a.shape}")
    if a.size > _INT32_LIMIT:
        raise ValueError(f"{fn}: {name} has {a.size} elements; the CUDA kernels take fewer than 2^31")
    return a.ptr


def _nhwc(fn: str, layout: str) -> None:
    if layout != "NHWC":
        raise ValueError(f"{fn}: arrays on the GPU are NHWC, got layout={layout!r} (transpose on the host first)")


def _output(fn: str, out: DeviceArray | None, shape: Sequence[int], dtype: DTypeLike = np.float32) -> DeviceArray:
    if out is None:
        return DeviceArray.empty(shape, dtype)
    _check(fn, "out", out, shape, dtype)
    return out


# -- fully connected layers (Sections 2-5), batch in columns -----------------------------------------

def dense_forward(W: DeviceArray, b: DeviceArray, a: DeviceArray, activation: str = "sigmoid", slope: float = 0.01,
                  out: DeviceArray | None = None) -> DeviceArray:
    """sigma(W a + b) (5.2)-(5.3): W (n_out, n_in), b (n_out,), a (n_in, m) -> (n_out, m)."""
    fn = "dense_forward"
    _check(fn, "W", W, (None, None))
    n_out, n_in = W.shape
    _check(fn, "b", b, (n_out,))
    _check(fn, "a", a, (n_in, None))
    m = a.shape[1]
    y = _output(fn, out, (n_out, m))
    _C().dense_forward(y.ptr, W.ptr, b.ptr, a.ptr, n_out, n_in, m, _host_ops.activation_code(activation), slope)
    return y


def dense_backward(g: DeviceArray, a_out: DeviceArray, W: DeviceArray, a_in: DeviceArray, activation: str = "sigmoid",
                   slope: float = 0.01, scale: float = 1.0, want_g_in: bool = True
                   ) -> tuple[DeviceArray, DeviceArray, DeviceArray, DeviceArray | None]:
    """(delta, dW, db, g_in) of Lemma 5.1, as hdl.ops.dense_backward; g_in is None unless want_g_in."""
    fn = "dense_backward"
    _check(fn, "W", W, (None, None))
    n_out, n_in = W.shape
    _check(fn, "g", g, (n_out, None))
    m = g.shape[1]
    _check(fn, "a_out", a_out, (n_out, m))
    _check(fn, "a_in", a_in, (n_in, m))
    delta, dW, db = DeviceArray.empty((n_out, m)), DeviceArray.empty((n_out, n_in)), DeviceArray.empty((n_out,))
    g_in = DeviceArray.empty((n_in, m)) if want_g_in else None
    _C().dense_backward(delta.ptr, dW.ptr, db.ptr, g_in.ptr if g_in is not None else 0, g.ptr, a_out.ptr, W.ptr,
                        a_in.ptr, n_out, n_in, m, _host_ops.activation_code(activation), slope, scale)
    return delta, dW, db, g_in


# -- convolution (Section 7.1), NHWC ------------------------------------------------------------------

def _conv_shape(fn: str, x: DeviceArray, w: DeviceArray, stride: Window, pad: Pad
                ) -> tuple[list[int], tuple[int, int, int, int]]:
    """(the shape's fields for the kernels, y's shape), checked by the CPU's rules (hdl/shapes.hpp)."""
    sh, sw = _checks.pair("stride", stride)
    pt, pb, pl, pr = _checks.pad4(pad)
    _check(fn, "x", x)
    _check(fn, "w", w)
    shape, (N, Ho, Wo, O) = _host_C.conv_shape(fn, x.shape, w.shape, sh, sw, pt, pb, pl, pr)
    _, H, W, C = x.shape
    kh, kw = w.shape[2:]
    if max(N * Ho * Wo * kh * kw * O, N * H * W * kh * kw * C) > _INT32_LIMIT:
        raise ValueError(f"{fn}: the implicit column matrices of x {x.shape} and w {w.shape} need 64-bit indices")
    return shape, (N, Ho, Wo, O)


def conv2d(x: DeviceArray, w: DeviceArray, b: DeviceArray, stride: Window = 1, pad: Pad = 0, layout: str = "NHWC",
           relu: bool = False, out: DeviceArray | None = None, activation: str = "linear",
           slope: float = 0.01) -> DeviceArray:
    """y (N, out_h, out_w, O) = sigma(conv(x (N, H, W, C), w (O, C, kh, kw)) + b), as hdl.ops.conv2d: the
    ReLU in the product's store, the other activations by their kernels over y after."""
    _nhwc("conv2d", layout)
    activation = _host_ops.conv_activation(relu, activation)
    if activation == "step":
        raise ValueError("conv2d: the step activation has no GPU kernel")
    slope = _checks.real("slope", slope)
    shape, yshape = _conv_shape("conv2d", x, w, stride, pad)
    _check("conv2d", "b", b, (shape[4],))
    y = _output("conv2d", out, yshape)
    _C().conv2d_forward(y.ptr, x.ptr, w.ptr, b.ptr, shape, activation == "relu")
    return _activate(y, activation, slope)


def conv2d_backward(dy: DeviceArray, x: DeviceArray, w: DeviceArray, stride: Window = 1, pad: Pad = 0,
                    want_dx: bool = True, layout: str = "NHWC", dx_out: DeviceArray | None = None,
                    dw_out: DeviceArray | None = None, db_out: DeviceArray | None = None
                    ) -> tuple[DeviceArray | None, DeviceArray, DeviceArray]:
    """(dx, dw, db) from dy = dC/dy (N, out_h, out_w, O); dx is None unless want_dx."""
    fn = "conv2d_backward"
    _nhwc(fn, layout)
    shape, yshape = _conv_shape(fn, x, w, stride, pad)
    _check(fn, "dy", dy, yshape)
    dx = _output(fn, dx_out, x.shape) if want_dx else None
    dw, db = _output(fn, dw_out, w.shape), _output(fn, db_out, (w.shape[0],))
    _C().conv2d_backward(dx.ptr if dx is not None else 0, dw.ptr, db.ptr, dy.ptr, x.ptr, w.ptr, shape)
    return dx, dw, db


# -- pooling (MatConvNet's borders), NHWC --------------------------------------------------------------

def _pool_shape(fn: str, x: DeviceArray, window: Window, stride: Window | None, pad: Pad
                ) -> tuple[list[int], tuple[int, int, int, int]]:
    """(the shape's fields for the kernels, y's shape), checked by the CPU's rules (hdl/shapes.hpp)."""
    args = _checks.pool_args(window, stride, pad)
    _check(fn, "x", x)
    return _host_C.pool_shape(fn, x.shape, *args)


def max_pool2d(x: DeviceArray, window: Window, stride: Window | None = None, pad: Pad = 0, layout: str = "NHWC",
               out: DeviceArray | None = None, relu: bool = False, return_argmax: bool = False,
               argmax_out: DeviceArray | None = None) -> Any:
    """Max over each window (padding never wins); relu=True fuses the ReLU that follows. With
    return_argmax, (y, argmax): int32, per output the index r*W + q in its image of the first maximal
    cell, -1 where the fused ReLU cut it, for max_pool2d_backward(argmax=...). As hdl.ops.max_pool2d."""
    _nhwc("max_pool2d", layout)
    shape, yshape = _pool_shape("max_pool2d", x, window, stride, pad)
    y = _output("max_pool2d", out, yshape)
    argmax = _output("max_pool2d", argmax_out, yshape, np.int32) if return_argmax else None
    _C().max_pool2d_forward(y.ptr, argmax.ptr if argmax is not None else 0, x.ptr, shape, bool(relu))
    return (y, argmax) if return_argmax else y


def max_pool2d_backward(dy: DeviceArray, x: DeviceArray, window: Window, stride: Window | None = None, pad: Pad = 0,
                        layout: str = "NHWC", out: DeviceArray | None = None,
                        argmax: DeviceArray | None = None) -> DeviceArray:
    """dC/dx: each dy to the first maximal cell of its window; from the forward pass's argmax when
    given (no window search; x then only gives the shape)."""
    _nhwc("max_pool2d_backward", layout)
    shape, yshape = _pool_shape("max_pool2d_backward", x, window, stride, pad)
    _check("max_pool2d_backward", "dy", dy, yshape)
    dx = _output("max_pool2d_backward", out, x.shape)
    if argmax is None:
        _C().max_pool2d_backward(dx.ptr, dy.ptr, x.ptr, shape)
    else:
        _check("max_pool2d_backward", "argmax", argmax, yshape, np.int32)
        _C().max_pool2d_backward_argmax(dx.ptr, dy.ptr, argmax.ptr, shape)
    return dx


def avg_pool2d(x: DeviceArray, window: Window, stride: Window | None = None, pad: Pad = 0, layout: str = "NHWC",
               out: DeviceArray | None = None) -> DeviceArray:
    _nhwc("avg_pool2d", layout)
    shape, yshape = _pool_shape("avg_pool2d", x, window, stride, pad)
    y = _output("avg_pool2d", out, yshape)
    _C().avg_pool2d_forward(y.ptr, x.ptr, shape)
    return y


def avg_pool2d_backward(dy: DeviceArray, x: DeviceArray, window: Window, stride: Window | None = None, pad: Pad = 0,
                        layout: str = "NHWC", out: DeviceArray | None = None) -> DeviceArray:
    _nhwc("avg_pool2d_backward", layout)
    shape, yshape = _pool_shape("avg_pool2d_backward", x, window, stride, pad)
    _check("avg_pool2d_backward", "dy", dy, yshape)
    dx = _output("avg_pool2d_backward", out, x.shape)
    _C().avg_pool2d_backward(dx.ptr, dy.ptr, shape)
    return dx


# -- pointwise ------------------------------------------------------------------------------------------

def relu(x: DeviceArray, slope: float = 0.0, out: DeviceArray | None = None) -> DeviceArray:
    """max(x, 0) (7.3), or the leaky ReLU with slope > 0; out may be x."""
    _check("relu", "x", x)
    y = _output("relu", out, x.shape)
    _C().relu_forward(y.ptr, x.ptr, x.size, float(slope))
    return y


def relu_backward(dy: DeviceArray, x: DeviceArray, slope: float = 0.0, out: DeviceArray | None = None) -> DeviceArray:
    _check("relu_backward", "x", x)
    _check("relu_backward", "dy", dy, x.shape)
    dx = _output("relu_backward", out, x.shape)
    _C().relu_backward(dx.ptr, dy.ptr, x.ptr, x.size, float(slope))
    return dx


def dropout(x: DeviceArray, rate: float, seed: int, out: DeviceArray | None = None,
            mask_out: DeviceArray | None = None) -> tuple[DeviceArray, DeviceArray]:
    """(y, mask) of inverted dropout, the same mask as hdl.ops.dropout for the same seed."""
    rate = float(rate)
    if not (np.isfinite(rate) and 0.0 <= rate < 1.0):
        raise ValueError(f"dropout: rate must be in [0, 1), got {rate}")
    _check("dropout", "x", x)
    y, mask = _output("dropout", out, x.shape), _output("dropout", mask_out, x.shape)
    _C().dropout_forward(y.ptr, mask.ptr, x.ptr, x.size, rate, int(seed) & 0xFFFF_FFFF_FFFF_FFFF)
    return y, mask


def dropout_backward(dy: DeviceArray, mask: DeviceArray, out: DeviceArray | None = None) -> DeviceArray:
    _check("dropout_backward", "mask", mask)
    _check("dropout_backward", "dy", dy, mask.shape)
    dx = _output("dropout_backward", out, mask.shape)
    _C().dropout_backward(dx.ptr, dy.ptr, mask.ptr, mask.size)
    return dx


def _activation(name: str) -> tuple[Callable[..., DeviceArray], Callable[..., DeviceArray]]:
    """<name>(x, out=None) and <name>_backward(dy, y, out=None) on the device, for each of hdl._C.activations."""
    def forward(x: DeviceArray, out: DeviceArray | None = None) -> DeviceArray:
        _check(name, "x", x)
        y = _output(name, out, x.shape)
        getattr(_C(), f"{name}_forward")(y.ptr, x.ptr, x.size)
        return y

    def backward(dy: DeviceArray, y: DeviceArray, out: DeviceArray | None = None) -> DeviceArray:
        fn = f"{name}_backward"
        _check(fn, "y", y)
        _check(fn, "dy", dy, y.shape)
        dx = _output(fn, out, y.shape)
        getattr(_C(), fn)(dx.ptr, dy.ptr, y.ptr, y.size)
        return dx
    forward.__name__ = forward.__qualname__ = name
    backward.__name__ = backward.__qualname__ = f"{name}_backward"
    forward.__doc__ = f"y = {name}(x) on the device, as hdl.ops.{name}; out may be x."
    backward.__doc__ = f"dy * {name}'(x) from y = {name}(x), as hdl.ops.{name}_backward; out may be dy."
    return forward, backward


for _name in _host_C.activations:
    globals()[_name], globals()[f"{_name}_backward"] = _activation(_name)


if TYPE_CHECKING:  # what the loop defines, for type checkers (tests/test_types.py holds it to hdl._C.activations)
    def sigmoid(x: DeviceArray, out: DeviceArray | None = None) -> DeviceArray: ...
    def sigmoid_backward(dy: DeviceArray, y: DeviceArray, out: DeviceArray | None = None) -> DeviceArray: ...
    def tanh(x: DeviceArray, out: DeviceArray | None = None) -> DeviceArray: ...
    def tanh_backward(dy: DeviceArray, y: DeviceArray, out: DeviceArray | None = None) -> DeviceArray: ...


def _activate(y: DeviceArray, activation: str, slope: float) -> DeviceArray:
    """y = sigma(y) in place for the activations conv2d's kernel does not fuse (all but linear and ReLU)."""
    if activation == "leaky_relu":
        return relu(y, slope, out=y)
    if activation in _host_C.activations:
        return globals()[activation](y, out=y)
    return y


# -- loss ----------------------------------------------------------------------------------------------

def _labels(fn: str, labels: DeviceArray | ArrayLike, N: int, K: int) -> DeviceArray:
    if isinstance(labels, DeviceArray):  # trusted to lie in [0, K): an outside label gives a NaN loss
        _check(fn, "labels", labels, (N,), np.int64)
        return labels
    labels = np.ascontiguousarray(labels)
    if labels.dtype.kind not in "iu":
        raise TypeError(f"{fn}: labels must be integers, got {labels.dtype}")
    if labels.shape != (N,):
        raise ValueError(f"{fn}: labels must have shape ({N},), got {labels.shape}")
    bad = np.flatnonzero((labels < 0) | (labels >= K))
    if bad.size:
        raise ValueError(f"{fn}: label {labels[bad[0]]} at {bad[0]} is outside [0, {K})")
    return DeviceArray.from_numpy(labels.astype(np.int64))


def softmax_log_loss(v: DeviceArray, labels: DeviceArray | ArrayLike, dv_out: DeviceArray | None = None,
                     loss_out: DeviceArray | None = None) -> tuple[DeviceArray, DeviceArray]:
    """(loss, dv) for scores v (N, K) or (N, 1, 1, K): loss a 0-d float64 DeviceArray (float(loss) waits
    for it) holding the batch mean of -log softmax(v_i)[label_i] (7.4); dv = (softmax - one-hot) / N."""
    fn = "softmax_log_loss"
    _check(fn, "v", v)
    if v.ndim == 4 and v.shape[1:3] == (1, 1):
        N, K = v.shape[0], v.shape[3]
    elif v.ndim == 2:
        N, K = v.shape
    else:
        raise ValueError(f"{fn}: v must be (N, K) or (N, 1, 1, K), got {v.shape}")
    if N == 0 or K == 0:
        raise ValueError(f"{fn}: v must have N, K > 0, got {v.shape}")
    lab = _labels(fn, labels, N, K)
    dv = _output(fn, dv_out, v.shape)
    loss = _output(fn, loss_out, (), np.float64)
    _C().softmax_log_loss(dv.ptr, loss.ptr, v.ptr, lab.ptr, N, K)
    return loss, dv


def top_k(v: DeviceArray, k: int) -> DeviceArray:
    """(N, k) int64 DeviceArray: the k largest scores of each row, largest first, ties to the lower index."""
    _check("top_k", "v", v)
    N, K = v.shape[0], v.size // max(v.shape[0], 1)
    if not 1 <= k <= K:
        raise ValueError(f"top_k: k must be in [1, {K}], got {k}")
    idx = DeviceArray.empty((N, k), np.int64)
    _C().top_k(idx.ptr, v.ptr, N, K, int(k))
    return idx


# -- SGD with momentum ------------------------------------------------------------------------------------

def sgd_momentum_(params: Sequence[DeviceArray], grads: Sequence[DeviceArray], velocities: Sequence[DeviceArray],
                  lr: float, momentum: float = 0.9, weight_decay: float = 0.0, lr_mults: Sequence[float] | None = None,
                  decay_mults: Sequence[float] | None = None, form: str = "matconvnet") -> None:
    """One fused update of every tensor in one kernel launch, in place (formulas: hdl.ops.sgd_momentum_):

    form='matconvnet':  v = mu v - (g + lam w);  w = w + eta v
    form='pytorch':     v = mu v + (g + lam w);  w = w - eta v
    """
    if form not in _host_ops.MOMENTUM_FORMS:
        raise ValueError(f"form must be one of {sorted(_host_ops.MOMENTUM_FORMS)}, got {form!r}")
    n = len(params)
    if len(grads) != n or len(velocities) != n:
        raise ValueError("sgd_momentum_: need one gradient and velocity per parameter (grads, velocities)")
    lr_mults = [1.0] * n if lr_mults is None else [float(m) for m in lr_mults]
    decay_mults = [1.0] * n if decay_mults is None else [float(m) for m in decay_mults]
    if len(lr_mults) != n or len(decay_mults) != n:
        raise ValueError("sgd_momentum_: need one lr_mult and decay_mult per parameter")
    for name, value in (("lr", lr), ("momentum", momentum), ("weight_decay", weight_decay)):
        if not np.isfinite(value) or value < 0:
            raise ValueError(f"{name} must be non-negative and finite, got {value!r}")
    slots = []
    for i, (w, g, v) in enumerate(zip(params, grads, velocities)):
        _check("sgd_momentum_", f"params[{i}]", w)
        _check("sgd_momentum_", f"grads[{i}]", g, w.shape)
        _check("sgd_momentum_", f"velocities[{i}]", v, w.shape)
        slots.append((w.ptr, g.ptr, v.ptr, w.size, lr_mults[i], decay_mults[i]))
    _C().sgd_momentum(slots, float(lr), float(momentum), float(weight_decay), _host_ops.MOMENTUM_FORMS[form])
