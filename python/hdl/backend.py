"""Where an array lives chooses the kernels that run on it: numpy arrays on hdl.ops (the CPU),
hdl.cuda.DeviceArray on hdl.cuda.ops (the GPU). The two modules offer the same functions with the
same keywords (layout='NHWC', out=, relu=, ...), so a layer is written once:

    ops = backend.ops_for(x)
    y = ops.relu(x, out=...)

hdl.cuda is imported only when a device array is met (or asked for), so `import hdl` stays light.
"""
from __future__ import annotations

from types import ModuleType
from typing import TYPE_CHECKING, Any, Union, cast

import numpy as np
from numpy.typing import DTypeLike, NDArray

if TYPE_CHECKING:
    from hdl.cuda.array import DeviceArray

DEVICES = ("cpu", "cuda")

#: An array on either device: a numpy array (the CPU) or an hdl.cuda.DeviceArray (the GPU).
Array = Union[NDArray[Any], "DeviceArray"]


def _device_array_type() -> type[DeviceArray]:
    from hdl.cuda.array import DeviceArray
    return DeviceArray


def device_of(a: object) -> str:
    """'cpu' for a numpy array, 'cuda' for an hdl.cuda.DeviceArray."""
    if isinstance(a, np.ndarray):
        return "cpu"
    if type(a).__name__ == "DeviceArray" and isinstance(a, _device_array_type()):
        return "cuda"
    raise TypeError(f"expected a numpy array or an hdl.cuda.DeviceArray, got {type(a).__name__}")


def check_device(device: str) -> str:
    if device not in DEVICES:
        raise ValueError(f"device must be one of {DEVICES}, got {device!r}")
    return device


_MODULES: dict[str, ModuleType] = {}


def ops_for(a_or_device: Array | str) -> ModuleType:
    """The kernel module for an array's device (or for a device name)."""
    if type(a_or_device) is np.ndarray:  # the common case first: a layer runs this on every call
        device = "cpu"
    else:
        device = check_device(a_or_device) if isinstance(a_or_device, str) else device_of(a_or_device)
    module = _MODULES.get(device)
    if module is None:
        import importlib
        module = _MODULES[device] = importlib.import_module("hdl.ops" if device == "cpu" else "hdl.cuda.ops")
    return module


def to_device(a: Array, device: str) -> Array:
    """a on `device`: the array itself when it is there already, else a copy."""
    if device_of(a) == check_device(device):
        return a
    if device == "cuda":
        return _device_array_type().from_numpy(cast("NDArray[Any]", a))  # a is on the CPU
    return to_numpy(a)  # a is a DeviceArray


def to_numpy(a: Array) -> NDArray[Any]:
    """A host view (numpy) or copy (device) of a."""
    return a if isinstance(a, np.ndarray) else a.numpy()


def empty(shape: int | tuple[int, ...], dtype: DTypeLike, device: str) -> Array:
    if check_device(device) == "cpu":
        return np.empty(shape, dtype)
    return _device_array_type().empty(shape, dtype)


def contiguous(a: Array) -> Array:
    """a, C-contiguous (device arrays always are)."""
    return np.ascontiguousarray(a) if isinstance(a, np.ndarray) else a
