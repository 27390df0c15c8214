"""A stand-in for the module hdl._cuda in which "device" memory is host memory and every kernel
runs through the host emulation of the CUDA sources (emu.py). With it patched in, the whole Python
side of the backend (DeviceArray, hdl.cuda.ops, a Model moved by to("cuda"), the pinned uploads, hdl.train.fit)
runs where there is no GPU. Pointers are host addresses; copies are memmove."""
from __future__ import annotations

import ctypes

import numpy as np

from cuda_emu import emu
from hdl import _C

I64, F32, F64 = ctypes.c_int64, ctypes.c_float, ctypes.c_double
_lib = None
_live = {}  # ptr -> numpy array owning it
_stats = {"in_use_bytes": 0, "cached_bytes": 0, "cuda_mallocs": 0}


def lib():
    global _lib
    if _lib is None:
        _lib = emu.load()
    return _lib


def _vp(ptr):
    return ctypes.c_void_p(int(ptr) or None)


# -- device facts, stream ------------------------------------------------------------------------
def availability():
    return (1, "")


def device_name(device):
    return ("host emulation of the CUDA kernels", 0, 0, 1, 0)


def runtime_version():
    return 0


def stream_handle():
    return 0


def synchronize():
    pass


def stream_wait_for_hdl(consumer):
    pass


_tf32 = [False]


def set_tf32(on):  # the emulation then rounds the products' operands to TF32
    _tf32[0] = bool(on)
    lib().emu_set_tf32(int(on))


def tf32():
    return _tf32[0]


def set_gemm_tiles(square):
    lib().emu_set_gemm_tiles(int(square))


def empty_cache():
    pass


def memory_stats():
    return dict(_stats)


# -- memory ----------------------------------------------------------------------------------------
class Buffer:
    def __init__(self, nbytes):
        self._a = np.zeros(max(int(nbytes), 1) + 64, np.uint8)
        self.ptr = (self._a.ctypes.data + 63) // 64 * 64  # aligned, as cudaMalloc's
        self.nbytes = int(nbytes)
        _stats["in_use_bytes"] += self.nbytes
        _stats["cuda_mallocs"] += 1

    def __del__(self):
        _stats["in_use_bytes"] -= self.nbytes

    def mark_exported(self):
        pass


class PinnedBuffer(bytearray):
    def __init__(self, nbytes):
        super().__init__(int(nbytes))

    @property
    def nbytes(self):
        return len(self)

    def upload(self, dst, nbytes):
        ctypes.memmove(int(dst), np.frombuffer(self, np.uint8).ctypes.data, int(nbytes))

    def wait(self):
        pass


class Event:
    def record(self):
        pass

    def synchronize(self):
        pass

    def elapsed_ms(self, later):
        return 0.0


def _addr(buf):
    return np.frombuffer(buf, np.uint8).ctypes.data


def copy_to_device(dst, src, nbytes):
    ctypes.memmove(int(dst), _addr(src), int(nbytes))


def copy_to_host(dst, src, nbytes):
    ctypes.memmove(_addr(dst), int(src), int(nbytes))


def copy_device(dst, src, nbytes):
    ctypes.memmove(int(dst), int(src), int(nbytes))


def memset(dst, value, nbytes):
    ctypes.memset(int(dst), int(value), int(nbytes))


# -- kernels: the bindings of csrc/bindings_cuda/kernels.cpp over the emulation --------------------
def _shape(values):
    a = np.ascontiguousarray(values, np.int64)
    return a, ctypes.c_void_p(a.ctypes.data)


def dense_forward(a_out, W, b, a_in, n_out, n_in, m, act, slope):
    lib().emu_dense_forward(_vp(a_out), _vp(W), _vp(b), _vp(a_in), I64(n_out), I64(n_in), I64(m), int(act),
                            F32(slope))


def dense_backward(delta, dW, db, g_in, g, a_out, W, a_in, n_out, n_in, m, act, slope, scale):
    lib().emu_dense_backward(_vp(delta), _vp(dW), _vp(db), _vp(g_in), _vp(g), _vp(a_out), _vp(W), _vp(a_in),
                             I64(n_out), I64(n_in), I64(m), int(act), F32(slope), F32(scale))


def conv2d_forward(y, x, w, b, shape, relu):
    keep, s = _shape(shape)
    lib().emu_conv2d_forward(_vp(y), _vp(x), _vp(w), _vp(b), s, int(relu))


def conv2d_backward(dx, dw, db, dy, x, w, shape):
    keep, s = _shape(shape)
    lib().emu_conv2d_backward(_vp(dx), _vp(dw), _vp(db), _vp(dy), _vp(x), _vp(w), s)


def max_pool2d_forward(y, argmax, x, shape, relu):
    keep, s = _shape(shape)
    lib().emu_max_pool2d_forward(_vp(y), _vp(argmax), _vp(x), s, int(relu))


def max_pool2d_backward_argmax(dx, dy, argmax, shape):
    keep, s = _shape(shape)
    lib().emu_max_pool2d_backward_argmax(_vp(dx), _vp(dy), _vp(argmax), s)


def max_pool2d_backward(dx, dy, x, shape):
    keep, s = _shape(shape)
    lib().emu_max_pool2d_backward(_vp(dx), _vp(dy), _vp(x), s)


def avg_pool2d_forward(y, x, shape):
    keep, s = _shape(shape)
    lib().emu_avg_pool2d_forward(_vp(y), _vp(x), s)


def avg_pool2d_backward(dx, dy, shape):
    keep, s = _shape(shape)
    lib().emu_avg_pool2d_backward(_vp(dx), _vp(dy), s)


def relu_forward(y, x, n, slope):
    lib().emu_relu_forward(_vp(y), _vp(x), I64(n), F32(slope))


def relu_backward(dx, dy, x, n, slope):
    lib().emu_relu_backward(_vp(dx), _vp(dy), _vp(x), I64(n), F32(slope))


def dropout_forward(y, mask, x, n, rate, seed):
    lib().emu_dropout_forward(_vp(y), _vp(mask), _vp(x), I64(n), F64(rate), ctypes.c_uint64(seed))


def dropout_backward(dx, dy, mask, n):
    lib().emu_dropout_backward(_vp(dx), _vp(dy), _vp(mask), I64(n))


def _activation(name):  # <name>_forward and <name>_backward of hdl._cuda, for each of HDL_ACTIVATIONS
    def forward(y, x, n):
        getattr(lib(), f"emu_{name}_forward")(_vp(y), _vp(x), I64(n))

    def backward(dx, dy, y, n):
        getattr(lib(), f"emu_{name}_backward")(_vp(dx), _vp(dy), _vp(y), I64(n))
    return forward, backward


for _name in _C.activations:
    globals()[f"{_name}_forward"], globals()[f"{_name}_backward"] = _activation(_name)


def softmax_log_loss(dv, loss, v, labels, N, K):
    lib().emu_softmax_log_loss(_vp(dv), _vp(loss), _vp(v), _vp(labels), I64(N), I64(K))


def top_k(idx, v, N, K, k):
    lib().emu_top_k(_vp(idx), _vp(v), I64(N), I64(K), I64(k))


def sgd_momentum(slots, eta, mu, lam, form):
    n = len(slots)
    arr = lambda i: (ctypes.c_void_p * n)(*[s[i] for s in slots])  # noqa: E731
    sizes = np.ascontiguousarray([s[3] for s in slots], np.int64)
    lr = np.ascontiguousarray([s[4] for s in slots], np.float64)
    dec = np.ascontiguousarray([s[5] for s in slots], np.float64)
    lib().emu_sgd_momentum(n, arr(0), arr(1), arr(2), ctypes.c_void_p(sizes.ctypes.data),
                           ctypes.c_void_p(lr.ctypes.data), ctypes.c_void_p(dec.ctypes.data), F64(eta), F64(mu),
                           F64(lam), int(form))


def __getattr__(name):  # DLPack capsules: the real module's (they do not touch the GPU)
    from hdl import _cuda
    return getattr(_cuda, name)
