"""A stand-in for the module hdl._cuda in which "device" memory is host memory and every kernel
runs through the host emulation of the CUDA sources (emu.py). With it patched in, the whole Python
side of the backend (DeviceArray, hdl.cuda.ops, a Model moved by to("cuda"), the pinned uploads, hdl.train.fit)
runs where there is no GPU. Pointers are host addresses from hdl's caching allocator (memory.cu over
malloc); copies are memmove, done at once, and the streams' order is kept in `trace` for the tests."""
from __future__ import annotations

import ctypes

import numpy as np

from cuda_emu import emu
from hdl import _C

I64, F32, F64 = ctypes.c_int64, ctypes.c_float, ctypes.c_double
_lib = None
#: What the two streams were given, in order (the ordering checks of the tests read it): dicts with
#: "stream" ("compute" or "copy"), "op" ("kernel", "copy", "record", "wait"), "ptrs" or "event" (an index here).
trace = []


def lib():
    global _lib
    if _lib is None:
        _lib = emu.load()
        _lib.emu_last_error.restype = ctypes.c_char_p
        _lib.emu_log.restype = ctypes.c_char_p
    return _lib


def call(name, *args):
    """lib().<name>(*args), raising the C++ exception as pybind11 would (std::invalid_argument: ValueError)."""
    status = getattr(lib(), name)(*args)
    if status:
        raise (ValueError if status == 2 else RuntimeError)(lib().emu_last_error().decode())


def _vp(ptr):
    return ctypes.c_void_p(int(ptr) or None)


def _on(stream, op, **what):
    trace.append({"stream": stream, "op": op, **what})
    return len(trace) - 1


# -- device facts, streams, errors ---------------------------------------------------------------------
def availability():
    return (1, "")


def device_name(device):
    return ("host emulation of the CUDA kernels", 0, 0, 1, 0)


def runtime_version():
    return 0


def stream_handle():
    return 0


def synchronize():
    call("emu_synchronize")


def stream_wait_for_hdl(consumer):
    pass


def set_device(device):
    call("emu_set_device", int(device))


def current_device():
    d = ctypes.c_int()
    call("emu_device", ctypes.byref(d))
    return d.value


def set_sync_launches(on):
    call("emu_set_sync_launches", int(on))


_tf32 = [False]


def set_tf32(on):  # the emulation then rounds the products' operands to TF32
    _tf32[0] = bool(on)
    call("emu_set_tf32", int(on))


def tf32():
    return _tf32[0]


def set_gemm_tiles(square):
    call("emu_set_gemm_tiles", int(square))


def empty_cache():
    call("emu_empty_cache")


def memory_stats():
    v = (ctypes.c_size_t * 5)()
    lib().emu_allocator_stats(v)
    return dict(zip(("in_use_bytes", "cached_bytes", "cuda_mallocs", "exported_pending_bytes", "device_syncs"), v))


# -- memory: hdl's caching allocator (csrc/cuda/memory.cu) over malloc ----------------------------------
class Buffer:
    def __init__(self, nbytes):
        p = ctypes.c_void_p()
        call("emu_device_alloc", ctypes.c_size_t(int(nbytes)), ctypes.byref(p))
        self.ptr, self.nbytes = int(p.value), int(nbytes)

    def __del__(self):
        lib().emu_device_free(_vp(self.ptr))

    def mark_exported(self):
        call("emu_mark_exported", _vp(self.ptr))


class Event:
    def __init__(self, timing=True):
        self.at = None

    def record(self):
        self.at = _on("compute", "record")

    def synchronize(self):
        pass

    def elapsed_ms(self, later):
        return 0.0


class PinnedBuffer(bytearray):
    def __init__(self, nbytes):
        super().__init__(int(nbytes))

    @property
    def nbytes(self):
        return len(self)

    def upload(self, dst, nbytes, after):
        """As hdl._cuda's: the copy stream waits for `after`, copies, and hdl's stream waits for the copy."""
        _on("copy", "wait", event=after.at)
        _on("copy", "copy", ptrs={int(dst)})
        done = _on("copy", "record")
        _on("compute", "wait", event=done)
        ctypes.memmove(int(dst), np.frombuffer(self, np.uint8).ctypes.data, int(nbytes))

    def wait(self):
        pass


def _addr(buf):
    return np.frombuffer(buf, np.uint8).ctypes.data


def copy_to_device(dst, src, nbytes):
    call("emu_enter")  # as every call of hdl._cuda: an earlier fault is raised here
    ctypes.memmove(int(dst), _addr(src), int(nbytes))


def copy_to_host(dst, src, nbytes):
    call("emu_enter")  # as every call of hdl._cuda: an earlier fault is raised here
    ctypes.memmove(_addr(dst), int(src), int(nbytes))


def copy_device(dst, src, nbytes):
    call("emu_enter")  # as every call of hdl._cuda: an earlier fault is raised here
    ctypes.memmove(int(dst), int(src), int(nbytes))


def memset(dst, value, nbytes):
    call("emu_enter")  # as every call of hdl._cuda: an earlier fault is raised here
    ctypes.memset(int(dst), int(value), int(nbytes))


# -- kernels: the bindings of csrc/bindings_cuda/kernels.cpp over the emulation --------------------
def _kernel(name, *args):
    """A kernel on hdl's stream: traced with the device pointers it was given, run, errors raised."""
    _on("compute", "kernel", name=name, ptrs={a.value for a in args if isinstance(a, ctypes.c_void_p) and a.value})
    call(name, *args)


def _shape(values):
    a = np.ascontiguousarray(values, np.int64)
    return a, ctypes.c_void_p(a.ctypes.data)


def dense_forward(a_out, W, b, a_in, n_out, n_in, m, act, slope):
    _kernel("emu_dense_forward", _vp(a_out), _vp(W), _vp(b), _vp(a_in), I64(n_out), I64(n_in), I64(m), int(act),
                            F32(slope))


def dense_backward(delta, dW, db, g_in, g, a_out, W, a_in, n_out, n_in, m, act, slope, scale):
    _kernel("emu_dense_backward", _vp(delta), _vp(dW), _vp(db), _vp(g_in), _vp(g), _vp(a_out), _vp(W), _vp(a_in),
                             I64(n_out), I64(n_in), I64(m), int(act), F32(slope), F32(scale))


def conv2d_forward(y, x, w, b, shape, relu):
    keep, s = _shape(shape)
    _kernel("emu_conv2d_forward", _vp(y), _vp(x), _vp(w), _vp(b), s, int(relu))


def conv2d_backward(dx, dw, db, dy, x, w, shape):
    keep, s = _shape(shape)
    _kernel("emu_conv2d_backward", _vp(dx), _vp(dw), _vp(db), _vp(dy), _vp(x), _vp(w), s)


def max_pool2d_forward(y, argmax, x, shape, relu):
    keep, s = _shape(shape)
    _kernel("emu_max_pool2d_forward", _vp(y), _vp(argmax), _vp(x), s, int(relu))


def max_pool2d_backward_argmax(dx, dy, argmax, shape):
    keep, s = _shape(shape)
    _kernel("emu_max_pool2d_backward_argmax", _vp(dx), _vp(dy), _vp(argmax), s)


def max_pool2d_backward(dx, dy, x, shape):
    keep, s = _shape(shape)
    _kernel("emu_max_pool2d_backward", _vp(dx), _vp(dy), _vp(x), s)


def avg_pool2d_forward(y, x, shape):
    keep, s = _shape(shape)
    _kernel("emu_avg_pool2d_forward", _vp(y), _vp(x), s)


def avg_pool2d_backward(dx, dy, shape):
    keep, s = _shape(shape)
    _kernel("emu_avg_pool2d_backward", _vp(dx), _vp(dy), s)


def relu_forward(y, x, n, slope):
    _kernel("emu_relu_forward", _vp(y), _vp(x), I64(n), F32(slope))


def relu_backward(dx, dy, x, n, slope):
    _kernel("emu_relu_backward", _vp(dx), _vp(dy), _vp(x), I64(n), F32(slope))


def dropout_forward(y, mask, x, n, rate, seed):
    _kernel("emu_dropout_forward", _vp(y), _vp(mask), _vp(x), I64(n), F64(rate), ctypes.c_uint64(seed))


def dropout_backward(dx, dy, mask, n):
    _kernel("emu_dropout_backward", _vp(dx), _vp(dy), _vp(mask), I64(n))


def _activation(name):  # <name>_forward and <name>_backward of hdl._cuda, for each of HDL_ACTIVATIONS
    def forward(y, x, n):
        _kernel(f"emu_{name}_forward", _vp(y), _vp(x), I64(n))

    def backward(dx, dy, y, n):
        _kernel(f"emu_{name}_backward", _vp(dx), _vp(dy), _vp(y), I64(n))
    return forward, backward


for _name in _C.activations:
    globals()[f"{_name}_forward"], globals()[f"{_name}_backward"] = _activation(_name)


def softmax_log_loss(dv, loss, v, labels, N, K):
    _kernel("emu_softmax_log_loss", _vp(dv), _vp(loss), _vp(v), _vp(labels), I64(N), I64(K))


def top_k(idx, v, N, K, k):
    _kernel("emu_top_k", _vp(idx), _vp(v), I64(N), I64(K), I64(k))


def sgd_momentum(slots, eta, mu, lam, form):
    n = len(slots)
    arr = lambda i: (ctypes.c_void_p * n)(*[s[i] for s in slots])  # noqa: E731
    sizes = np.ascontiguousarray([s[3] for s in slots], np.int64)
    lr = np.ascontiguousarray([s[4] for s in slots], np.float64)
    dec = np.ascontiguousarray([s[5] for s in slots], np.float64)
    _kernel("emu_sgd_momentum", n, arr(0), arr(1), arr(2), ctypes.c_void_p(sizes.ctypes.data),
            ctypes.c_void_p(lr.ctypes.data), ctypes.c_void_p(dec.ctypes.data), F64(eta), F64(mu), F64(lam), int(form))


def __getattr__(name):  # DLPack capsules: the real module's (they do not touch the GPU)
    from hdl import _cuda
    return getattr(_cuda, name)
