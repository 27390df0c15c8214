"""DeviceArray: a C-contiguous array in GPU memory that owns it (hdl's caching allocator over
cudaMalloc) or keeps alive the producer it was imported from, with both interchange protocols:

* ``__cuda_array_interface__`` (version 3, with hdl's stream) for Numba, CuPy and PyTorch;
* ``__dlpack__`` / ``__dlpack_device__`` (DLPack 0.8 and 1.0 capsules) and ``from_dlpack(obj)``,
  so ``torch.from_dlpack(a)``, ``cupy.from_dlpack(a)`` and ``hdl.cuda.from_dlpack(t)`` share memory.

All device work runs on one stream of hdl's, on one GPU (``hdl.cuda.set_device``); a DLPack consumer's
stream is made to wait for it. Exported memory is marked so that hdl's allocator does not hand it out
again while another library's streams may still read it.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

from hdl import cuda as _pkg

Shape = int | Sequence[int]

_DLPACK_CODES = {"i": 0, "u": 1, "f": 2, "b": 6}  # numpy kind -> DLPack type code
_FROM_DLPACK = {(0, 8): np.int8, (0, 16): np.int16, (0, 32): np.int32, (0, 64): np.int64, (1, 8): np.uint8,
                (1, 16): np.uint16, (1, 32): np.uint32, (1, 64): np.uint64, (2, 16): np.float16,
                (2, 32): np.float32, (2, 64): np.float64, (6, 8): np.bool_}
KDLCUDA, KDLCUDA_MANAGED = 2, 13


def _module() -> Any:
    _pkg.require()
    return _pkg._cuda


def _shape_of(shape: Shape) -> tuple[int, ...]:
    shape = (int(shape),) if isinstance(shape, (int, np.integer)) else tuple(int(s) for s in shape)
    if any(s < 0 for s in shape):
        raise ValueError(f"negative dimension in shape {shape}")
    return shape


class DeviceArray:
    """An (shape) array of dtype in GPU memory, C-contiguous. Make one with ``empty``, ``zeros``,
    ``DeviceArray.from_numpy`` or ``from_dlpack``; ``numpy()`` copies it back."""

    __slots__ = ("shape", "dtype", "ptr", "device", "_owner", "__weakref__")
    shape: tuple[int, ...]
    dtype: np.dtype[Any]
    ptr: int
    device: int  # the GPU's number

    def __init__(self, shape: Shape, dtype: DTypeLike, ptr: int, owner: object, device: int = 0):
        self.shape, self.dtype, self.ptr, self._owner = _shape_of(shape), np.dtype(dtype), int(ptr), owner
        self.device = int(device)

    # -- making and copying -----------------------------------------------------------------------
    @classmethod
    def empty(cls, shape: Shape, dtype: DTypeLike = np.float32) -> DeviceArray:
        shape, dtype = _shape_of(shape), np.dtype(dtype)
        cuda = _module()
        buf = cuda.Buffer(math.prod(shape) * dtype.itemsize)
        return cls(shape, dtype, buf.ptr, buf, cuda.current_device())

    @classmethod
    def from_numpy(cls, a: ArrayLike) -> DeviceArray:
        """A device copy of a host array (made C-contiguous first)."""
        a = np.ascontiguousarray(a)
        d = cls.empty(a.shape, a.dtype)
        if a.nbytes:
            _pkg._cuda.copy_to_device(d.ptr, a.reshape(-1).view(np.uint8), a.nbytes)
        return d

    def numpy(self) -> NDArray[Any]:
        """A host copy (waits for the queued work that writes this array)."""
        out = np.empty(self.shape, self.dtype)
        if out.nbytes:
            _pkg._cuda.copy_to_host(out.reshape(-1).view(np.uint8), self.ptr, out.nbytes)
        return out

    def copy(self) -> DeviceArray:
        d = DeviceArray.empty(self.shape, self.dtype)
        d.copy_(self)
        return d

    def copy_(self, src: DeviceArray | ArrayLike) -> DeviceArray:
        """Writes src (a DeviceArray or host array of the same shape and dtype) into this array."""
        if isinstance(src, DeviceArray):
            if src.shape != self.shape or src.dtype != self.dtype:
                raise ValueError(f"copy_: source {src.shape} {src.dtype} into {self.shape} {self.dtype}")
            if self.nbytes:
                _pkg._cuda.copy_device(self.ptr, src.ptr, self.nbytes)
        else:
            a = np.ascontiguousarray(src, dtype=self.dtype)
            if a.shape != self.shape:
                a = np.ascontiguousarray(np.broadcast_to(a, self.shape))
            if self.nbytes:
                _pkg._cuda.copy_to_device(self.ptr, a.reshape(-1).view(np.uint8), self.nbytes)
        return self

    def zero_(self) -> DeviceArray:
        if self.nbytes:
            _pkg._cuda.memset(self.ptr, 0, self.nbytes)
        return self

    def __setitem__(self, key: object, value: DeviceArray | ArrayLike) -> None:
        if key is not Ellipsis and key != slice(None):
            raise IndexError("DeviceArray supports only a[...] = value (whole-array copies)")
        self.copy_(value)

    # -- views ------------------------------------------------------------------------------------
    def reshape(self, *shape: Any) -> DeviceArray:
        """A view of another shape (one entry may be -1)."""
        if len(shape) == 1 and not isinstance(shape[0], (int, np.integer)):
            shape = tuple(shape[0])
        dims = [int(s) for s in shape]
        if dims.count(-1) == 1:
            rest = math.prod(s for s in dims if s != -1)
            dims[dims.index(-1)] = self.size // rest if rest else 0
        if any(s < 0 for s in dims) or math.prod(dims) != self.size:
            raise ValueError(f"cannot reshape {self.shape} into {tuple(dims)}")
        return DeviceArray(dims, self.dtype, self.ptr, self._owner, self.device)

    def __getitem__(self, key: int | np.integer[Any] | slice) -> DeviceArray:
        """Contiguous views along the first axis: a[i] and a[i:j]."""
        n = self.shape[0] if self.shape else 0
        row = math.prod(self.shape[1:]) * self.dtype.itemsize
        if isinstance(key, (int, np.integer)):
            i = int(key) + (n if key < 0 else 0)
            if not 0 <= i < n:
                raise IndexError(f"index {key} out of range for axis 0 of size {n}")
            return DeviceArray(self.shape[1:], self.dtype, self.ptr + i * row, self._owner, self.device)
        if isinstance(key, slice) and key.step in (None, 1):
            i, j, _ = key.indices(n)
            j = max(i, j)
            return DeviceArray((j - i, *self.shape[1:]), self.dtype, self.ptr + i * row, self._owner, self.device)
        raise IndexError("DeviceArray views are a[i] and a[i:j] (contiguous along axis 0)")

    # -- facts ------------------------------------------------------------------------------------
    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        return self.size * self.dtype.itemsize

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __len__(self) -> int:
        if not self.shape:
            raise TypeError("len() of a 0-d DeviceArray")
        return self.shape[0]

    def __float__(self) -> float:
        if self.size != 1:
            raise TypeError(f"only one-element arrays convert to float, this one is {self.shape}")
        return float(self.numpy().reshape(()))

    def __repr__(self) -> str:
        return f"DeviceArray(shape={self.shape}, dtype={self.dtype}, device={self.device}, ptr=0x{self.ptr:x})"

    # -- interchange ------------------------------------------------------------------------------
    def _mark_exported(self) -> None:
        """Another library may now read this memory on its own streams: hdl's allocator will not reuse
        it, once freed, before the whole device is idle."""
        if hasattr(self._owner, "mark_exported"):
            self._owner.mark_exported()

    @property
    def __cuda_array_interface__(self) -> dict[str, Any]:
        """Version 3, with hdl's stream (consumers synchronise with it). The interface has no device
        field: consumers find the GPU (``self.device``) from the pointer."""
        self._mark_exported()
        return {"shape": self.shape, "typestr": self.dtype.str, "data": (self.ptr, False), "version": 3,
                "strides": None, "stream": int(_pkg._cuda.stream_handle())}

    def __dlpack_device__(self) -> tuple[int, int]:
        return (KDLCUDA, self.device)

    def __dlpack__(self, *, stream: int | None = None, max_version: tuple[int, int] | None = None,
                   dl_device: tuple[int, int] | None = None, copy: bool | None = None) -> Any:
        """A DLPack capsule of this array (1.0 when the consumer asks for max_version >= (1, 0), else 0.8).
        stream: the consumer's CUDA stream (None: the legacy default stream, -1: no synchronisation)."""
        if copy:
            raise BufferError("DeviceArray.__dlpack__: copy=True is not supported (export shares memory)")
        if dl_device is not None and tuple(dl_device) != self.__dlpack_device__():
            raise BufferError(f"DeviceArray.__dlpack__: cannot export to device {tuple(dl_device)}")
        if self.dtype.kind not in _DLPACK_CODES:
            raise BufferError(f"DeviceArray.__dlpack__: dtype {self.dtype} has no DLPack code")
        cuda = _module()
        if stream is None:
            stream = 1  # cudaStreamLegacy
        if stream != -1:
            cuda.stream_wait_for_hdl(int(stream))
        self._mark_exported()
        versioned = max_version is not None and int(max_version[0]) >= 1
        return cuda.dlpack_export(self, self.ptr, list(self.shape), _DLPACK_CODES[self.dtype.kind],
                                  self.dtype.itemsize * 8, KDLCUDA, self.device, versioned)


def from_dlpack(obj: Any) -> DeviceArray:
    """A DeviceArray sharing the memory of a CUDA tensor from any DLPack producer (PyTorch, CuPy,
    JAX...). The producer is asked to make its pending writes visible on hdl's stream. The tensor
    must be C-contiguous; host arrays are refused (copy them with DeviceArray.from_numpy)."""
    cuda = _module()
    if not hasattr(obj, "__dlpack__"):
        raise TypeError(f"from_dlpack: {type(obj).__name__} has no __dlpack__ method")
    device = tuple(obj.__dlpack_device__())
    if device[0] not in (KDLCUDA, KDLCUDA_MANAGED):
        raise ValueError(f"from_dlpack: the tensor is on DLPack device {device} (1 is the CPU), not a CUDA GPU; "
                         "copy host data with DeviceArray.from_numpy")
    if device[1] != cuda.current_device():
        raise ValueError(f"from_dlpack: the tensor is on GPU {device[1]}; hdl uses GPU {cuda.current_device()} "
                         "(hdl.cuda.set_device, HDL_DEVICE)")
    stream = int(cuda.stream_handle())
    try:
        capsule = obj.__dlpack__(stream=stream, max_version=(1, 0))
    except TypeError:  # a producer of the DLPack 0.x protocol
        capsule = obj.__dlpack__(stream=stream)
    return _wrap_capsule(cuda.dlpack_import(capsule))


def _wrap_capsule(info: dict[str, Any]) -> DeviceArray:
    """A DeviceArray over an imported tensor; its keeper gives the tensor back to the producer once
    hdl's stream is done with it."""
    code, bits, lanes = info["dtype"]
    if lanes != 1 or (code, bits) not in _FROM_DLPACK:
        raise TypeError(f"from_dlpack: unsupported DLPack dtype (code {code}, bits {bits}, lanes {lanes})")
    dtype = np.dtype(_FROM_DLPACK[code, bits])
    shape, strides = info["shape"], info["strides"]
    if strides is not None:
        expect = 1
        for n, s in zip(reversed(shape), reversed(strides)):
            if n != 1 and s != expect:
                raise ValueError(f"from_dlpack: the tensor of shape {shape} has strides {strides} (in elements); "
                                 "hdl needs C-contiguous tensors (call .contiguous() first)")
            expect *= n
    return DeviceArray(shape, dtype, info["ptr"], info["keeper"], info["device"][1])


def empty(shape: Shape, dtype: DTypeLike = np.float32) -> DeviceArray:
    return DeviceArray.empty(shape, dtype)


def zeros(shape: Shape, dtype: DTypeLike = np.float32) -> DeviceArray:
    return DeviceArray.empty(shape, dtype).zero_()


class Uploader:
    """Asynchronous uploads of host batches: each batch is copied into one of `depth` pinned host
    buffers, then to one of `depth` device buffers by cudaMemcpyAsync on hdl's copy stream, which runs
    beside the kernels. Ordering, by events: the kernels queued after an upload wait for its copy; the
    copy into a device buffer waits for the kernels that read its previous batch, which the caller
    queued before the following upload (so a batch stays valid until `depth` uploads later, and
    copying batch k+1 overlaps the kernels of batch k); a pinned buffer is refilled only after its
    copy has finished. With ``out=`` the copy goes there instead, after all work queued so far."""

    def __init__(self, depth: int = 2):
        if depth < 2:
            raise ValueError(f"Uploader: depth must be at least 2, got {depth}")
        self._pinned: list[Any] = [None] * depth
        self._device: list[DeviceArray | None] = [None] * depth
        self._turn = 0
        self._queued: Any = None  # hdl's stream at the previous upload

    def __call__(self, a: ArrayLike, out: DeviceArray | None = None) -> DeviceArray:
        cuda = _module()
        a = np.asarray(a)
        now = cuda.Event(False)
        now.record()  # hdl's stream: everything queued so far
        i = self._turn
        self._turn = (i + 1) % len(self._pinned)
        after = now
        if out is None:
            out = self._device[i]
            if out is None or out.shape != a.shape or out.dtype != a.dtype:
                out = self._device[i] = DeviceArray.empty(a.shape, a.dtype)  # a cached block: wait for all
            elif self._queued is not None:
                after = self._queued  # this buffer's last batch was read by work queued before it
        elif out.shape != a.shape or out.dtype != a.dtype:
            raise ValueError(f"upload: {a.shape} {a.dtype} into {out.shape} {out.dtype}")
        self._queued = now
        buf = self._pinned[i]
        if buf is None or buf.nbytes < a.nbytes:
            buf = self._pinned[i] = cuda.PinnedBuffer(max(a.nbytes, 1))
        buf.wait()
        np.copyto(np.frombuffer(buf, np.uint8, a.nbytes).view(a.dtype).reshape(a.shape), a)
        buf.upload(out.ptr, a.nbytes, after)
        return out
