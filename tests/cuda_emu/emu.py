"""The CUDA kernels' bodies on the CPU: tests/cuda_emu/emulate.cu compiled with nvcc into a shared
library (cached by the hash of the sources) and called through ctypes, behind the signatures of
hdl.ops in NHWC (numpy in, numpy out). Runs wherever nvcc is installed, GPU or not."""
from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np

from hdl import _C, _checks, ops

ROOT = Path(__file__).resolve().parents[2]
SOURCES = sorted((ROOT / "csrc" / "cuda").glob("*.cu*")) + sorted((ROOT / "csrc" / "include" / "hdl").rglob("*.h*")) \
    + [Path(__file__).with_name("emulate.cu")]
NVCC = shutil.which("nvcc") or ("/usr/local/cuda/bin/nvcc" if os.path.exists("/usr/local/cuda/bin/nvcc") else None)

_lib = None


def load():
    """The compiled library (built on first use, about 10 s), or raises RuntimeError."""
    global _lib
    if _lib is not None:
        return _lib
    if NVCC is None:
        raise RuntimeError("no nvcc")
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in SOURCES)).hexdigest()[:16]
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "hdl-cuda-emu"
    cache.mkdir(parents=True, exist_ok=True)
    so = cache / f"emulate-{digest}.so"
    if not so.exists():
        tmp = so.with_suffix(f".{os.getpid()}.tmp")
        cmd = [NVCC, "-shared", "-Xcompiler", "-fPIC", "-std=c++17", "-O1", "-arch=sm_80", "--expt-relaxed-constexpr",
               "-I", str(ROOT / "csrc" / "include"), str(Path(__file__).with_name("emulate.cu")), "-o", str(tmp)]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        if done.returncode:
            raise RuntimeError(f"nvcc failed:\n{done.stderr}")
        os.replace(tmp, so)
    _lib = ctypes.CDLL(str(so))
    return _lib


def _p(a):
    return None if a is None else ctypes.c_void_p(a.ctypes.data)


def _i64(values):
    return np.ascontiguousarray(values, np.int64)


def _f32(a):
    a = np.ascontiguousarray(a)
    if a.dtype != np.float32:
        raise TypeError(f"the CUDA kernels are float32, got {a.dtype}")
    return a


I64, F32, F64 = ctypes.c_int64, ctypes.c_float, ctypes.c_double


class Checked:
    """The library's emu_ functions, raising RuntimeError with the C++ exception's message when one fails."""

    def __init__(self, lib):
        self._lib = lib
        lib.emu_last_error.restype = ctypes.c_char_p

    def __getattr__(self, name):
        f = getattr(self._lib, name)

        def call(*args):
            if f(*args):
                raise RuntimeError(self._lib.emu_last_error().decode())
        return call


class Emulated:
    """hdl.cuda.ops' signatures, NHWC numpy arrays, the kernels run on the host."""

    def __init__(self):
        self.lib = Checked(load())

    def _conv(self, x, w, stride, pad):
        shape, ys = _C.conv_shape("conv2d", x.shape, w.shape, *_checks.pair("stride", stride), *_checks.pad4(pad))
        return _i64(shape), ys

    def conv2d(self, x, w, b, stride=1, pad=0, relu=False):
        x, w, b = _f32(x), _f32(w), _f32(b)
        shape, ys = self._conv(x, w, stride, pad)
        y = np.empty(ys, np.float32)
        self.lib.emu_conv2d_forward(_p(y), _p(x), _p(w), _p(b), _p(shape), int(relu))
        return y

    def conv2d_backward(self, dy, x, w, stride=1, pad=0, want_dx=True):
        dy, x, w = _f32(dy), _f32(x), _f32(w)
        shape, _ = self._conv(x, w, stride, pad)
        dx = np.empty_like(x) if want_dx else None
        dw, db = np.empty_like(w), np.empty(w.shape[0], np.float32)
        self.lib.emu_conv2d_backward(_p(dx), _p(dw), _p(db), _p(dy), _p(x), _p(w), _p(shape))
        return dx, dw, db

    def _pool(self, x, window, stride, pad):
        shape, ys = _C.pool_shape("pool2d", x.shape, *_checks.pool_args(window, stride, pad))
        return _i64(shape), ys

    def max_pool2d(self, x, window, stride=None, pad=0, relu=False, return_argmax=False):
        x = _f32(x)
        shape, ys = self._pool(x, window, stride, pad)
        y = np.empty(ys, np.float32)
        argmax = np.empty(ys, np.int32) if return_argmax else None
        self.lib.emu_max_pool2d_forward(_p(y), _p(argmax), _p(x), _p(shape), int(relu))
        return (y, argmax) if return_argmax else y

    def avg_pool2d(self, x, window, stride=None, pad=0):
        x = _f32(x)
        shape, ys = self._pool(x, window, stride, pad)
        y = np.empty(ys, np.float32)
        self.lib.emu_avg_pool2d_forward(_p(y), _p(x), _p(shape))
        return y

    def max_pool2d_backward(self, dy, x, window, stride=None, pad=0, argmax=None):
        dy, x = _f32(dy), _f32(x)
        shape, _ = self._pool(x, window, stride, pad)
        dx = np.empty_like(x)
        if argmax is None:
            self.lib.emu_max_pool2d_backward(_p(dx), _p(dy), _p(x), _p(shape))
        else:
            argmax = np.ascontiguousarray(argmax, np.int32)
            self.lib.emu_max_pool2d_backward_argmax(_p(dx), _p(dy), _p(argmax), _p(shape))
        return dx

    def avg_pool2d_backward(self, dy, x, window, stride=None, pad=0):
        dy, x = _f32(dy), _f32(x)
        shape, _ = self._pool(x, window, stride, pad)
        dx = np.empty_like(x)
        self.lib.emu_avg_pool2d_backward(_p(dx), _p(dy), _p(shape))
        return dx

    def relu(self, x, slope=0.0):
        x = _f32(x)
        y = np.empty_like(x)
        self.lib.emu_relu_forward(_p(y), _p(x), I64(x.size), F32(slope))
        return y

    def relu_backward(self, dy, x, slope=0.0):
        dy, x = _f32(dy), _f32(x)
        dx = np.empty_like(x)
        self.lib.emu_relu_backward(_p(dx), _p(dy), _p(x), I64(x.size), F32(slope))
        return dx

    def dropout(self, x, rate, seed):
        x = _f32(x)
        y, mask = np.empty_like(x), np.empty_like(x)
        self.lib.emu_dropout_forward(_p(y), _p(mask), _p(x), I64(x.size), F64(rate), ctypes.c_uint64(seed))
        return y, mask

    def dropout_backward(self, dy, mask):
        dy, mask = _f32(dy), _f32(mask)
        dx = np.empty_like(dy)
        self.lib.emu_dropout_backward(_p(dx), _p(dy), _p(mask), I64(dy.size))
        return dx

    def softmax_log_loss(self, v, labels):
        v, labels = _f32(v), _i64(labels)
        N, K = v.shape[0], v.size // v.shape[0]
        dv, loss = np.empty_like(v), np.empty((), np.float64)
        self.lib.emu_softmax_log_loss(_p(dv), _p(loss), _p(v), _p(labels), I64(N), I64(K))
        return float(loss), dv

    def top_k(self, v, k):
        v = _f32(v)
        N, K = v.shape[0], v.size // v.shape[0]
        idx = np.empty((N, k), np.int64)
        self.lib.emu_top_k(_p(idx), _p(v), I64(N), I64(K), I64(k))
        return idx

    def dense_forward(self, W, b, a, activation="sigmoid", slope=0.01):
        W, b, a = _f32(W), _f32(b), _f32(a)
        y = np.empty((W.shape[0], a.shape[1]), np.float32)
        self.lib.emu_dense_forward(_p(y), _p(W), _p(b), _p(a), I64(W.shape[0]), I64(W.shape[1]), I64(a.shape[1]),
                                   ops.activation_code(activation), F32(slope))
        return y

    def dense_backward(self, g, a_out, W, a_in, activation="sigmoid", slope=0.01, scale=1.0, want_g_in=True):
        g, a_out, W, a_in = _f32(g), _f32(a_out), _f32(W), _f32(a_in)
        n_out, n_in = W.shape
        m = g.shape[1]
        delta, dW, db = np.empty((n_out, m), np.float32), np.empty((n_out, n_in), np.float32), \
            np.empty(n_out, np.float32)
        g_in = np.empty((n_in, m), np.float32) if want_g_in else None
        self.lib.emu_dense_backward(_p(delta), _p(dW), _p(db), _p(g_in), _p(g), _p(a_out), _p(W), _p(a_in),
                                    I64(n_out), I64(n_in), I64(m), ops.activation_code(activation), F32(slope),
                                    F32(scale))
        return delta, dW, db, g_in

    def sgd_momentum_(self, params, grads, velocities, lr, momentum=0.9, weight_decay=0.0, lr_mults=None,
                      decay_mults=None, form="matconvnet"):
        n = len(params)
        ptrs = lambda arrays: (ctypes.c_void_p * n)(*[a.ctypes.data for a in arrays])  # noqa: E731
        sizes = _i64([p.size for p in params])
        lr_m = np.ascontiguousarray([1.0] * n if lr_mults is None else lr_mults, np.float64)
        dec_m = np.ascontiguousarray([1.0] * n if decay_mults is None else decay_mults, np.float64)
        self.lib.emu_sgd_momentum(n, ptrs(params), ptrs(grads), ptrs(velocities), _p(sizes), _p(lr_m), _p(dec_m),
                                  F64(lr), F64(momentum), F64(weight_decay), ops.MOMENTUM_FORMS[form])


def gemm(a, b, parts=1):
    """a @ b by the CUDA GEMM with the dense layers' loaders, each operand read where it lies: a view whose
    rows are contiguous as stored (Plain), one whose columns are as a transpose (Transposed), at its own
    address and row spacing (misaligned views included). K is cut into about `parts` slices (split-K),
    summed here. Returns the product and (float4 loads, misaligned float4 loads) of the run."""
    lib = Checked(load())
    (M, K), N = a.shape, b.shape[1]
    split = (ctypes.c_int * 2)()
    lib._lib.emu_split_k(K, parts, split)
    part = np.zeros((split[1], M, N), np.float32)
    count = (ctypes.c_longlong * 2)()
    lib._lib.emu_vec4_count(count)  # from zero
    lib.emu_gemm(M, N, K, _p(a), *_layout(a), _p(b), *_layout(b), _p(part), split[0], split[1])
    lib._lib.emu_vec4_count(count)
    return part.sum(0, dtype=np.float32), (count[0], count[1])


def _layout(x):
    """(row spacing, transposed) of a float32 matrix view with one unit stride, as the loaders take them."""
    if x.dtype != np.float32:
        raise TypeError(f"the CUDA GEMM is float32, got {x.dtype}")
    if x.strides[1] == 4 or x.shape[1] == 1:
        return x.strides[0] // 4, 0
    if x.strides[0] == 4:
        return x.strides[1] // 4, 1
    raise ValueError(f"a view with one unit stride, got strides {x.strides}")


def _activation_methods(name):
    """Emulated.<name>(x) and <name>_backward(dy, y) for an activation of HDL_ACTIVATIONS."""
    def forward(self, x):
        x = _f32(x)
        y = np.empty_like(x)
        getattr(self.lib, f"emu_{name}_forward")(_p(y), _p(x), I64(x.size))
        return y

    def backward(self, dy, y):
        dy, y = _f32(dy), _f32(y)
        dx = np.empty_like(y)
        getattr(self.lib, f"emu_{name}_backward")(_p(dx), _p(dy), _p(y), I64(y.size))
        return dx
    return forward, backward


for _name in _C.activations:
    _f, _b = _activation_methods(_name)
    setattr(Emulated, _name, _f)
    setattr(Emulated, f"{_name}_backward", _b)
