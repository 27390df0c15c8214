"""hdl on NVIDIA GPUs: device arrays and the kernels of hdl.ops in NHWC on the device (hdl.cuda.ops).
A model runs here when its arrays do: ``model.to("cuda")`` (or ``hdl.convnet.cifar_net(device="cuda")``)
moves its parameters, and its layers then call hdl.cuda.ops (hdl.backend chooses by the arrays).

Importing this package never fails: without the compiled module (hdl built with HDL_CUDA=OFF, or
no nvcc at build time) or without a GPU, ``is_available()`` is False and ``why_unavailable()``
says why; creating device memory then raises RuntimeError with that reason.

    import hdl.cuda
    if hdl.cuda.is_available():
        x = hdl.cuda.DeviceArray.from_numpy(images)         # (N, H, W, C) float32
        y = hdl.cuda.ops.conv2d(x, w, b, 1, 2, relu=True)   # w, b DeviceArrays too
        t = torch.from_dlpack(y)                            # no copy (also cupy.asarray(y))
"""
from __future__ import annotations

from typing import Any

import numpy as np

try:
    from hdl import _cuda as _cuda  # type: ignore[attr-defined]  # compiled with HDL_CUDA=ON only; no stub
except ImportError as e:  # built without CUDA, or the module does not load
    _cuda = None
    _import_error = "the module hdl._cuda is missing" if "_cuda" in str(e) and "symbol" not in str(e) else str(e)

from hdl.cuda.array import DeviceArray, Uploader, empty, from_dlpack, zeros


def why_unavailable() -> str | None:
    """None when a GPU can be used, else the reason (never raises)."""
    if _cuda is None:
        return f"hdl was built without CUDA ({_import_error}); rebuild with HDL_CUDA=ON and nvcc on the PATH"
    count, why = _cuda.availability()
    return None if count > 0 else f"no CUDA device ({why})"


def is_available() -> bool:
    """Whether hdl can run on a GPU here: built with CUDA, a driver, at least one device."""
    return why_unavailable() is None


def require() -> None:
    """Raises RuntimeError saying why no GPU can be used, if none can."""
    why = why_unavailable()
    if why is not None:
        raise RuntimeError(why)


def device_name() -> str:
    require()
    name, major, minor, sms, mem = _cuda.device_name(_cuda.current_device())
    return f"{name} (sm_{major}{minor}, {sms} SMs, {mem / 2**30:.0f} GiB)"


def set_device(device: int) -> None:
    """Runs hdl on GPU `device` (0, 1, ...; the environment variable HDL_DEVICE sets the first choice).
    One GPU per process: choose it before the first device array; raises ValueError for a GPU this
    machine lacks, RuntimeError when hdl already holds memory on another."""
    require()
    if not isinstance(device, (int, np.integer)) or isinstance(device, bool):
        raise TypeError(f"set_device: the GPU's number must be an int, got {type(device).__name__}")
    _cuda.set_device(int(device))


def current_device() -> int:
    """The number of the GPU hdl runs on."""
    require()
    return int(_cuda.current_device())


def sync_launches(on: bool) -> None:
    """Synchronise and check after every kernel launch, so that a failing kernel is named where it
    fails (slow; for debugging). The environment variable HDL_CUDA_SYNC=1 turns it on at start."""
    require()
    _cuda.set_sync_launches(bool(on))


def synchronize() -> None:
    """Waits for every kernel and copy queued on hdl's stream."""
    require()
    _cuda.synchronize()


def allow_tf32(on: bool) -> None:
    """TensorFloat-32 tensor cores in the dense and convolution products (10-bit mantissas in, float32
    sums): faster, with relative errors near 1e-3 instead of 1e-6. Off by default."""
    if _cuda is not None:
        _cuda.set_tf32(bool(on))


set_tf32 = allow_tf32  # the earlier name


def tf32() -> bool:
    return bool(_cuda is not None and _cuda.tf32())


def set_gemm_tiles(shape: str) -> None:
    """'auto' (default): the dense and convolution products pick a 128x32 or 32x128 tile for outputs
    32 wide or less, 64x64 otherwise; 'square': 64x64 always (to time one against the other)."""
    if shape not in ("auto", "square"):
        raise ValueError(f"set_gemm_tiles: 'auto' or 'square', got {shape!r}")
    if _cuda is not None:
        _cuda.set_gemm_tiles(shape == "square")


def memory_stats() -> dict[str, int]:
    """Bytes in use and cached by hdl's caching allocator, how many cudaMalloc calls it made, bytes of
    exported arrays freed but not yet reusable, and the device-wide waits that made them reusable."""
    require()
    return _cuda.memory_stats()


def empty_cache() -> None:
    """Gives the cached, unused device blocks back to CUDA."""
    if _cuda is not None and is_available():
        _cuda.empty_cache()


def __getattr__(name: str) -> Any:  # hdl.cuda.ops loads on first use
    if name == "ops":
        import importlib
        return importlib.import_module(f"hdl.cuda.{name}")
    raise AttributeError(name)


__all__ = ["DeviceArray", "Uploader", "allow_tf32", "current_device", "device_name", "empty", "empty_cache",
           "from_dlpack", "is_available", "memory_stats", "require", "set_device", "set_gemm_tiles", "set_tf32",
           "sync_launches", "synchronize", "tf32", "why_unavailable", "zeros"]
