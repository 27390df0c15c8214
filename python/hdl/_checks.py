"""Checks at the Python boundary: every public entry point names what is wrong."""
from __future__ import annotations

import math
import numbers

import numpy as np

from hdl import _C

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def float_dtype(dtype) -> np.dtype:
    dt = np.dtype(dtype)
    if dt not in FLOAT_DTYPES:
        raise TypeError(f"dtype must be float32 or float64, got {dt}")
    return dt


def matrix(name: str, X, dtype: np.dtype, rows: int | None = None, finite: bool = True,
           any_order: bool = False) -> np.ndarray:
    """X as a C-contiguous (rows, m) array of dtype; columns are data points. With any_order, an
    F-contiguous X (data.T of an (m, rows) array: each point contiguous) is kept as it is."""
    if not isinstance(X, np.ndarray):
        X = np.asarray(X)
        if X.dtype.kind in "iub":  # Python lists of numbers
            X = X.astype(dtype)
    if X.dtype.kind != "f":
        raise TypeError(f"{name} must hold floating-point numbers ({dtype}), got dtype {X.dtype}")
    if X.dtype != dtype:
        raise TypeError(f"{name} has dtype {X.dtype} but the network is {dtype}; convert with {name}.astype(np.{dtype})")
    if X.ndim == 1 and rows is not None and X.shape[0] == rows:
        X = X[:, None]  # one point given as a vector
    if X.ndim != 2:
        raise ValueError(f"{name} must be a matrix of shape ({rows if rows is not None else 'n'}, m) whose columns are "
                         f"data points, got shape {X.shape}")
    if rows is not None and X.shape[0] != rows:
        raise ValueError(f"{name} must have {rows} rows (one per neuron of its layer), got shape {X.shape}")
    if X.shape[1] == 0:
        raise ValueError(f"{name} has no columns (no data points)")
    if finite and not all_finite(X):
        bad = np.argwhere(~np.isfinite(X))[0]
        raise ValueError(f"{name} contains NaN or infinity (first at row {bad[0]}, column {bad[1]})")
    if any_order and X.flags.f_contiguous:
        return X
    return np.ascontiguousarray(X)


def all_finite(a: np.ndarray) -> bool:
    """Whether no element of a is NaN or infinite: one pass on all threads, no temporary array, for the
    contiguous float arrays the kernels take (np.isfinite(a).all() for the rest)."""
    if a.dtype in FLOAT_DTYPES and (a.flags.c_contiguous or a.flags.f_contiguous):
        return bool(_C.all_finite(a))
    return bool(np.isfinite(a).all())


def positive(name: str, value, integer: bool = False, allow_zero: bool = False):
    kind = numbers.Integral if integer else numbers.Real
    if isinstance(value, bool) or not isinstance(value, kind):
        raise TypeError(f"{name} must be {'an integer' if integer else 'a real number'}, got {value!r}")
    if not _finite(value) or value < 0 or (value == 0 and not allow_zero):
        raise ValueError(f"{name} must be {'non-negative' if allow_zero else 'positive'} and finite, got {value!r}")
    return int(value) if integer else float(value)


def size(name: str, value) -> int:
    """A positive int that numpy can use as an array extent (a layer's width, a channel count)."""
    value = positive(name, value, integer=True)
    if value >= 2**62:
        raise ValueError(f"{name} is too large, got {value}")
    return value


def _finite(value: numbers.Real) -> bool:
    return isinstance(value, numbers.Integral) or bool(np.isfinite(value))  # np.isfinite refuses ints past int64


def pair(name: str, value) -> tuple[int, int]:
    """An int or a pair of ints (a window, a stride, a kernel size) as a pair."""
    if type(value) is tuple and len(value) == 2 and type(value[0]) is int and type(value[1]) is int:
        return value  # already checked (a layer's own attribute): the per-call path stays short
    v = (value, value) if isinstance(value, (int, np.integer)) else _tuple(value)
    if v is None or len(v) != 2 or not all(isinstance(i, (int, np.integer)) and not isinstance(i, bool) for i in v):
        raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}")
    return _int64s(name, v)


def pad4(pad) -> tuple[int, int, int, int]:
    """pad as an int or a 4-tuple (top, bottom, left, right)."""
    if type(pad) is tuple and len(pad) == 4 and type(pad[0]) is type(pad[1]) is type(pad[2]) is type(pad[3]) is int:
        return pad  # already checked (a layer's own attribute)
    p = (pad,) * 4 if isinstance(pad, (int, np.integer)) else _tuple(pad)
    if p is None or len(p) != 4 or not all(isinstance(i, (int, np.integer)) and not isinstance(i, bool) for i in p):
        raise TypeError(f"pad must be an int or a 4-tuple (top, bottom, left, right), got {pad!r}")
    return _int64s("pad", p)


def _tuple(value) -> tuple | None:
    """tuple(value), or None when value is no sequence (a float, None)."""
    if isinstance(value, (str, bytes)):
        return None
    try:
        return tuple(value)
    except TypeError:
        return None


def _int64s(name: str, values) -> tuple:
    """The ints of values, each within the kernels' 64-bit range."""
    if not all(-2**62 <= i < 2**62 for i in values):
        raise ValueError(f"{name} is out of range, got {tuple(values)}")
    return tuple(int(i) for i in values)


def pool_args(window, stride, pad) -> tuple:
    """(window_h, window_w, stride_h, stride_w, top, bottom, left, right); stride defaults to the window."""
    return (*pair("window", window), *pair("stride", window if stride is None else stride), *pad4(pad))


def real(name: str, value) -> float:
    """A finite real number (a setting whose sign the formulas allow either way: a slope, a scale)."""
    if type(value) is float and math.isfinite(value):
        return value  # the per-call path of every layer (numbers.Real's isinstance and np.isfinite took 4 us)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    if not _finite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return float(value)


def rate(name: str, value) -> float:
    """A probability in [0, 1) (a dropout rate)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number in [0, 1), got {value!r}")
    if not 0.0 <= value < 1.0:  # NaN fails too
        raise ValueError(f"{name} must be in [0, 1), got {value!r}")
    return float(value)


def generator(name: str, value) -> np.random.Generator:
    """np.random.default_rng(value), its errors naming the argument (a seed: a non-negative int, or a Generator)."""
    try:
        return np.random.default_rng(value)
    except (TypeError, ValueError) as err:
        raise type(err)(f"{name} must be None, a non-negative integer seed or a numpy Generator, got {value!r} "
                        f"({err})") from None
