"""The functional API: one call per kernel of hdl._C, numpy arrays in and out.

Fully connected layers follow the paper: a mini-batch is a matrix whose columns
are the data points, W is (n_out, n_in), b is (n_out,). Arrays must be
C-contiguous float32 or float64, one dtype per call; the kernels check shapes.
"""
from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike

from hdl import _C, _checks, autotune
from hdl._checks import pad4, pair, pool_args

Window = int | Sequence[int]  # an int or a pair (kernel size, window, stride)
Pad = int | Sequence[int]  # an int or (top, bottom, left, right)
_pool_args: Callable[[Any, Any, Any], tuple[int, int, int, int, int, int, int, int]] = pool_args  # its 8 ints

# the activations sigma of the dense layers and of conv2d's store (hdl/common.hpp's Activation)
ACTIVATIONS = {"linear": 0, "sigmoid": 1, "relu": 2, "leaky_relu": 3, "step": 4, "tanh": 5}


def activation_code(name: str) -> int:
    try:
        return ACTIVATIONS[name]
    except (KeyError, TypeError):  # TypeError: an unhashable name (a list)
        raise ValueError(f"unknown activation {name!r}; choose from {sorted(ACTIVATIONS)}") from None


def conv_activation(relu: bool, activation: str) -> str:
    """conv2d's activation by name, relu=True being 'relu'; ValueError for an unknown one or for two."""
    if relu and activation not in ("linear", "relu"):
        raise ValueError(f"conv2d: relu=True and activation={activation!r} ask for two activations")
    activation_code(activation)
    return "relu" if relu else activation


def dense_forward(W: np.ndarray, b: np.ndarray, a: np.ndarray, activation: str = "sigmoid",
                  slope: float = 0.01) -> np.ndarray:
    """sigma(W a + b): (5.2)-(5.3). a is (n_in, m); returns (n_out, m)."""
    return _C.dense_forward(W, b, a, activation_code(activation), _checks.real("slope", slope))


def dense_backward(g: np.ndarray, a_out: np.ndarray, W: np.ndarray, a_in: np.ndarray, activation: str = "sigmoid",
                   slope: float = 0.01, scale: float = 1.0, want_g_in: bool = True
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """Back propagation through one layer (Lemma 5.1), given g = dC/da_out of shape (n_out, m).

    Returns (delta, dW, db, g_in): delta = sigma'(z) o g (5.5)/(5.6), dW = scale delta a_in^T (5.8),
    db = scale sum_columns delta (5.7), and g_in = W^T delta = dC/da_in (None unless want_g_in).
    sigma'(z) is computed from a_out = sigma(z).
    """
    return _C.dense_backward(g, a_out, W, a_in, activation_code(activation), _checks.real("slope", slope),
                             _checks.real("scale", scale), want_g_in)


def quadratic_cost(a: np.ndarray, y: np.ndarray, scale: float = 1.0) -> tuple[float, np.ndarray]:
    """(scale * sum_columns 1/2 ||y - a||^2, scale * (a - y)): the cost (3.3) with scale = 1/N, and dC/da."""
    return _C.quadratic_cost(a, y, _checks.real("scale", scale))


# -- Section 7: pooling, ReLU, dropout, softmax log-loss, SGD with momentum (NCHW arrays) ------------

LAYOUTS = ("NCHW", "NHWC")


def _to_nhwc(name: str, x: np.ndarray, layout: str) -> np.ndarray:
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be 'NCHW' or 'NHWC', got {layout!r}")
    if layout == "NHWC":
        return x
    if not isinstance(x, np.ndarray) or x.ndim != 4:
        raise ValueError(f"{name} must be a 4-d array (N, C, H, W), got shape {np.shape(x)}")
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1))


def _from_nhwc(y: np.ndarray, layout: str) -> np.ndarray:
    return y if layout == "NHWC" else np.ascontiguousarray(y.transpose(0, 3, 1, 2))


def _out(out: np.ndarray | None, layout: str) -> np.ndarray | None:
    """Outputs can be written into a given array (no fresh pages) in the kernels' own layout."""
    if out is not None and layout != "NHWC":
        raise ValueError("out= needs layout='NHWC' (an NCHW result is a transposed copy)")
    return out


def conv2d(x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: Window = 1, pad: Pad = 0, layout: str = "NCHW",
           relu: bool = False, out: np.ndarray | None = None, activation: str = "linear",
           slope: float = 0.01) -> np.ndarray:
    """y[n, o, i, j] = sigma(b[o] + sum_{c,u,v} w[o, c, u, v] x[n, c, i*sh - pt + u, j*sw - pl + v]) (Section 7.1;
    cross-correlation, zero padding). x (N, C, H, W), or (N, H, W, C) with layout='NHWC', the kernels' own
    layout, which skips two transposes; w (out_channels, C, kh, kw); b (out_channels,); pad an int or
    (top, bottom, left, right). sigma is the activation (ACTIVATIONS; slope the leaky ReLU's), 'linear' for
    none, relu=True the same as activation='relu': the ReLU and the leaky ReLU in registers as y is stored, the
    others as one GEMM stores y (dense layers, 1x1 and covering filters) or in one pass over y. out (NHWC only)
    receives y. The first call of a shape may time the algorithms that could serve it (hdl.autotune)."""
    autotune.ensure_loaded()
    act = ACTIVATIONS[conv_activation(relu, activation)]
    slope = _checks.real("slope", slope)
    if layout == "NHWC":  # the layers' call: no transposes
        return _C.conv2d(x, w, b, *pair("stride", stride), *pad4(pad), act, slope, out)
    y = _C.conv2d(_to_nhwc("x", x, layout), w, b, *pair("stride", stride), *pad4(pad), act, slope,
                  _out(out, layout))
    return _from_nhwc(y, layout)


def conv2d_backward(dy: np.ndarray, x: np.ndarray, w: np.ndarray, stride: Window = 1, pad: Pad = 0,
                    want_dx: bool = True, layout: str = "NCHW", dx_out: np.ndarray | None = None
                    ) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """(dx, dw, db) from dy = dC/dy; dx is None unless want_dx (the first layer needs none)."""
    autotune.ensure_loaded()
    if layout == "NHWC":
        return _C.conv2d_backward(dy, x, w, *pair("stride", stride), *pad4(pad), want_dx, dx_out)
    dx, dw, db = _C.conv2d_backward(_to_nhwc("dy", dy, layout), _to_nhwc("x", x, layout), w,
                                    *pair("stride", stride), *pad4(pad), want_dx, _out(dx_out, layout))
    return (None if dx is None else _from_nhwc(dx, layout)), dw, db


def max_pool2d(x: np.ndarray, window: Window, stride: Window | None = None, pad: Pad = 0, layout: str = "NCHW",
               out: np.ndarray | None = None, relu: bool = False, return_argmax: bool = False,
               argmax_out: np.ndarray | None = None) -> Any:
    """Max over each window of x (N, C, H, W) (or (N, H, W, C) with layout='NHWC'); padding never wins
    (MatConvNet). window and stride: an int or a pair (stride defaults to window); pad: an int or
    (top, bottom, left, right), each smaller than the window. relu=True fuses the ReLU that follows
    (max(y, 0)). return_argmax=True also returns, per output, the index r*W + q within its image of the
    first maximal cell (-1 where the fused ReLU cut it), an int32 array shaped as y, for
    max_pool2d_backward(argmax=...); argmax_out (NHWC only) receives it."""
    y = _C.max_pool2d(_to_nhwc("x", x, layout), *_pool_args(window, stride, pad), _out(out, layout), relu,
                      return_argmax, _out(argmax_out, layout))
    if return_argmax:
        return _from_nhwc(y[0], layout), _from_nhwc(y[1], layout)
    return _from_nhwc(y, layout)


def max_pool2d_backward(dy: np.ndarray, x: np.ndarray, window: Window, stride: Window | None = None, pad: Pad = 0,
                        layout: str = "NCHW", out: np.ndarray | None = None,
                        argmax: np.ndarray | None = None) -> np.ndarray:
    """dC/dx: each dy goes to the first maximal cell of its window (row-major order). With the argmax of
    the forward pass (max_pool2d(..., return_argmax=True)) the windows are not searched again."""
    at = None if argmax is None else _to_nhwc("argmax", argmax, layout)
    return _from_nhwc(_C.max_pool2d_backward(_to_nhwc("dy", dy, layout), _to_nhwc("x", x, layout),
                                             *_pool_args(window, stride, pad), _out(out, layout), at), layout)


def avg_pool2d(x: np.ndarray, window: Window, stride: Window | None = None, pad: Pad = 0, layout: str = "NCHW",
               out: np.ndarray | None = None) -> np.ndarray:
    """Mean over the cells of each window that lie inside the image (MatConvNet)."""
    return _from_nhwc(_C.avg_pool2d(_to_nhwc("x", x, layout), *_pool_args(window, stride, pad), _out(out, layout)),
                      layout)


def avg_pool2d_backward(dy: np.ndarray, x: np.ndarray, window: Window, stride: Window | None = None, pad: Pad = 0,
                        layout: str = "NCHW", out: np.ndarray | None = None) -> np.ndarray:
    return _from_nhwc(_C.avg_pool2d_backward(_to_nhwc("dy", dy, layout), _to_nhwc("x", x, layout),
                                             *_pool_args(window, stride, pad), _out(out, layout)), layout)


@contextlib.contextmanager
def keeping_filters() -> Iterator[None]:
    """Within it, this thread's convolutions keep their packed or Winograd-transformed filters between calls
    and read them again while the filters hold the same values (compared in full, so a weight changed in
    place is never missed): inference, whose weights stay put from batch to batch, skips that work
    (Model.forward uses it). Filters are kept from the second pass that finds them unchanged (a sample of
    256 weights), and such a pass chooses its algorithms for filters read kept (Winograd on a few tiles, the
    autotune timing them so); filters that change between passes (an inference after each training step)
    run as training runs them. At most 64 MB are kept, the least recently used given up first."""
    was = _C.keep_filters(True)
    try:
        yield
    finally:
        _C.keep_filters(was)


def relu(x: np.ndarray, slope: float = 0.0, out: np.ndarray | None = None) -> np.ndarray:
    """max(x, 0) (7.3); with slope > 0 the leaky ReLU of Section 8 (slope * x for x <= 0). Any layout;
    out may be x itself."""
    return _C.relu(x, _checks.real("slope", slope), out)


def relu_backward(dy: np.ndarray, x: np.ndarray, slope: float = 0.0, out: np.ndarray | None = None) -> np.ndarray:
    """dy where x > 0, slope * dy elsewhere (x may be the ReLU's output: the signs agree)."""
    return _C.relu_backward(dy, x, _checks.real("slope", slope), out)


def _activation(name: str) -> tuple[Callable[..., np.ndarray], Callable[..., np.ndarray]]:
    """ops.<name>(x, out=None) and ops.<name>_backward(dy, y, out=None) for an activation of hdl._C."""
    forward_kernel, backward_kernel = getattr(_C, name), getattr(_C, f"{name}_backward")

    def forward(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        return forward_kernel(x, out)

    def backward(dy: np.ndarray, y: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        return backward_kernel(dy, y, out)
    forward.__name__ = forward.__qualname__ = name
    backward.__name__ = backward.__qualname__ = f"{name}_backward"
    forward.__doc__ = (f"y = {name}(x), elementwise, any layout (the formula: csrc/include/hdl/activations.hpp); "
                       "out may be x itself.")
    backward.__doc__ = (f"dy * {name}'(x), from the output y = {name}(x) (the layer keeps it); out may be dy "
                        "itself.")
    return forward, backward


# sigmoid (2.1) and its backward pass (2.2), tanh, ...: one pair per line of HDL_ACTIVATIONS
# (csrc/include/hdl/kernel_list.hpp); the sigmoid saturates (1, or about 1e-38 in float32) without overflow.
ACTIVATION_KERNELS = tuple(_C.activations)
for _name in ACTIVATION_KERNELS:
    globals()[_name], globals()[f"{_name}_backward"] = _activation(_name)

if TYPE_CHECKING:  # what the loop defines, for type checkers (tests/test_types.py holds it to hdl._C.activations)
    def sigmoid(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray: ...
    def sigmoid_backward(dy: np.ndarray, y: np.ndarray, out: np.ndarray | None = None) -> np.ndarray: ...
    def tanh(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray: ...
    def tanh_backward(dy: np.ndarray, y: np.ndarray, out: np.ndarray | None = None) -> np.ndarray: ...


def dropout(x: np.ndarray, rate: float, seed: int, out: np.ndarray | None = None,
            mask_out: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Inverted dropout at training time: (y, mask), each element zeroed with probability rate and the
    survivors scaled by 1/(1 - rate); mask holds those factors. At test time dropout is the identity.
    Any layout; out and mask_out (x's shape and dtype) receive y and the mask."""
    return _C.dropout(x, _checks.rate("rate", rate), _checks.positive("seed", seed, integer=True, allow_zero=True),
                      out, mask_out)


def dropout_backward(dy: np.ndarray, mask: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """dy * mask (the mask of dropout's forward pass); out may be dy itself."""
    return np.multiply(dy, mask, out=out)


def softmax_log_loss(v: np.ndarray, labels: ArrayLike) -> tuple[float, np.ndarray]:
    """(loss, dv) for scores v of shape (N, K) or (N, K, 1, 1): the mean over the batch of
    -log softmax(v_i)[label_i] (7.4), by log-sum-exp, and its gradient (softmax - one-hot) / N."""
    _array("v", v)
    shape = v.shape
    if v.ndim == 4 and shape[2:] == (1, 1):
        v = v.reshape(shape[0], shape[1])
    labels = np.asarray(labels)
    if labels.dtype.kind not in "iu" and labels.size:  # a cast would truncate 1.5, and turn NaN into garbage
        raise TypeError(f"softmax_log_loss: labels must be integers, got dtype {labels.dtype}")
    loss, dv = _C.softmax_log_loss(v, np.ascontiguousarray(labels, dtype=np.int64))
    return loss, dv.reshape(shape)


def _array(name: str, a: Any) -> None:
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name} must be a numpy array, got {type(a).__name__}")


def top_k(v: np.ndarray, k: int) -> np.ndarray:
    """(N, k) indices of the k largest scores of each row, largest first."""
    _array("v", v)
    k = _checks.positive("k", k, integer=True)
    if v.ndim == 4 and v.shape[2:] == (1, 1):
        v = v.reshape(v.shape[0], v.shape[1])
    return _C.top_k(v, k)


MOMENTUM_FORMS = {"matconvnet": 0, "pytorch": 1}


def sgd_momentum_(params: Sequence[np.ndarray], grads: Sequence[np.ndarray], velocities: Sequence[np.ndarray],
                  lr: float, momentum: float = 0.9, weight_decay: float = 0.0, lr_mults: Sequence[float] | None = None,
                  decay_mults: Sequence[float] | None = None, form: str = "matconvnet") -> None:
    """One fused pass over all tensors, in place, with eta = lr * lr_mult and lam = weight_decay * decay_mult:

    form='matconvnet':  v = mu v - (g + lam w);  w = w + eta v
    form='pytorch':     v = mu v + (g + lam w);  w = w - eta v
    """
    if not isinstance(form, str) or form not in MOMENTUM_FORMS:
        raise ValueError(f"form must be one of {sorted(MOMENTUM_FORMS)}, got {form!r}")
    n = len(params)
    lr_mults = [1.0] * n if lr_mults is None else [_checks.real("lr_mults", m) for m in lr_mults]
    decay_mults = [1.0] * n if decay_mults is None else [_checks.real("decay_mults", m) for m in decay_mults]
    for name, value in (("lr", lr), ("momentum", momentum), ("weight_decay", weight_decay)):
        _checks.positive(name, value, allow_zero=True)
    _C.sgd_momentum(list(params), list(grads), list(velocities), lr_mults, decay_mults, float(lr), float(momentum),
                    float(weight_decay), MOMENTUM_FORMS[form])
