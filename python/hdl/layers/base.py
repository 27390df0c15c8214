"""The one layer protocol of hdl, with defaults that make a user's subclass work.

A layer maps a batch x (the first axis is the batch) to y = layer(x):

    forward(x, train=False) -> y
    backward(dy, x, y, need_dx=True) -> dx = dC/dx, given dy = dC/dy; the gradients of the
        parameters go into self.grads (a dict with the keys of params())
    params() -> {name: array}: the learnable arrays, updated in place by the trainer

Everything else has a default: no parameters; learning-rate and weight-decay multipliers of 1 per
parameter (lr_mults, decay_mults); config() from the __init__ arguments stored under their own names;
repr from config(); a registry by class name, which Model.load uses to rebuild the layer. forward
may omit `train` and backward `need_dx`. A subclass is registered when it is defined; register()
gives it another name.

Devices: a layer runs where its inputs live (hdl.backend): numpy arrays on the CPU, hdl.cuda
DeviceArrays on the GPU. `devices` lists where a layer's code can run (a user's layer: the CPU, unless
it declares more because it calls only hdl.backend.ops_for(x)'s functions); to(device) moves the
arrays params() names, which live in the attributes of the same names.
"""
from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar, overload

import numpy as np
from numpy.typing import DTypeLike

from hdl import backend
from hdl.backend import Array

if TYPE_CHECKING:
    from typing_extensions import Self

LAYER_TYPES: dict[str, type[Layer]] = {}

L = TypeVar("L", bound="type[Layer]")


@overload
def register(cls: L, *, name: str | None = None) -> L: ...
@overload
def register(cls: None = None, *, name: str | None = None) -> Callable[[L], L]: ...


def register(cls: L | None = None, *, name: str | None = None) -> L | Callable[[L], L]:
    """Registers a layer class for loading under `name` (default: its class name); a decorator. The
    last class registered under a name wins (a class redefined in a notebook replaces the old one)."""
    def add(c: L) -> L:
        key = name or c.__name__
        LAYER_TYPES[key] = c
        c.type_name = key
        return c
    return add(cls) if cls is not None else add


def layer_type(name: str) -> type[Layer]:
    if name not in LAYER_TYPES:
        raise ValueError(f"unknown layer type {name!r}: define (or import) its class before loading, or "
                         f"register it with hdl.layers.register; known: {sorted(LAYER_TYPES)}")
    return LAYER_TYPES[name]


def _takes(method: Callable[..., Any], arg: str) -> bool:
    params = inspect.signature(method).parameters
    return arg in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


class Layer:
    """Base class and protocol of every layer (the module docstring says what to define).

    Batches and parameters are numpy arrays on the CPU and hdl.cuda.DeviceArrays on the GPU; forward and
    backward take and give Any of them, so that a layer written for one device may annotate its own."""

    type_name: str = "Layer"
    fuses_relu: bool = False  # forward(x, train, relu=True) computes max(layer(x), 0) in one pass
    # forward(x, train, activation=(name, slope)) computes sigma(layer(x)) in one pass, for every sigma of
    # hdl.ops.ACTIVATIONS (the ReLU, leaky ReLU, sigmoid and tanh layers that follow it: activation_of)
    fuses_activation: bool = False
    devices: tuple[str, ...] = ("cpu",)  # where forward and backward can run
    _forward_train: bool
    _forward_activation: bool  # forward takes activation= (a subclass's own forward may not)
    _backward_need_dx: bool

    def __init_subclass__(cls, **kwargs: Any):
        super().__init_subclass__(**kwargs)
        cls._forward_train = _takes(cls.forward, "train")
        cls._forward_activation = _takes(cls.forward, "activation")
        cls._backward_need_dx = _takes(cls.backward, "need_dx")
        if not cls.__name__.startswith("_"):
            register(cls)

    # -- what a layer defines ------------------------------------------------------------------
    def forward(self, x: Any, train: bool = False) -> Any:
        raise NotImplementedError(f"{type(self).__name__} defines no forward(x)")

    def backward(self, dy: Any, x: Any, y: Any, need_dx: bool = True) -> Any:
        raise NotImplementedError(f"{type(self).__name__} defines no backward(dy, x, y)")

    def params(self) -> Mapping[str, Array]:
        return {}

    # -- defaults ------------------------------------------------------------------------------
    def run_forward(self, x: Any, train: bool = False) -> Any:
        """forward, with `train` passed when this layer's forward takes it."""
        return self.forward(x, train) if self._forward_train else self.forward(x)

    def run_backward(self, dy: Any, x: Any, y: Any, need_dx: bool = True) -> Any:
        """backward, with `need_dx` passed when this layer's backward takes it."""
        return self.backward(dy, x, y, need_dx) if self._backward_need_dx else self.backward(dy, x, y)

    @property
    def grads(self) -> dict[str, Array]:
        return self.__dict__.setdefault("_grads", {})

    @grads.setter
    def grads(self, value: Mapping[str, Array]) -> None:
        self.__dict__["_grads"] = dict(value)

    def _mults(self, key: str) -> tuple[float, ...]:
        return self.__dict__.get(key) or (1.0,) * len(self.params())

    lr_mults = property(lambda self: self._mults("_lr_mults"),
                        lambda self, v: self.__dict__.__setitem__("_lr_mults", tuple(map(float, v))),
                        doc="Learning-rate multiplier per parameter (in params() order); 1 unless set.")
    decay_mults = property(lambda self: self._mults("_decay_mults"),
                           lambda self, v: self.__dict__.__setitem__("_decay_mults", tuple(map(float, v))),
                           doc="Weight-decay multiplier per parameter (in params() order); 1 unless set.")

    def config(self) -> dict[str, Any]:
        """{'type': registered name, **__init__ arguments}: each argument read from the attribute of
        the same name (tuples and arrays as lists). Define config() when they are stored otherwise."""
        out: dict[str, Any] = {"type": type(self).type_name}
        if type(self).__init__ is object.__init__:
            return out
        for name, p in inspect.signature(type(self).__init__).parameters.items():
            if name in ("self", "rng", "dtype") or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                continue
            if not hasattr(self, name):
                raise TypeError(f"{type(self).__name__}.config(): the __init__ argument {name!r} is not stored as "
                                f"self.{name}; store it so, or define config()")
            value = getattr(self, name)
            out[name] = value.tolist() if isinstance(value, np.ndarray) else list(value) if isinstance(value, tuple) \
                else value
        return out

    def __repr__(self) -> str:
        try:
            args = ", ".join(f"{k}={v!r}" for k, v in self.config().items() if k != "type")
        except TypeError:
            args = "..."
        return f"{type(self).__name__}({args})"

    def supports(self, device: str) -> bool:
        """Whether this layer can run on device ('cpu' or 'cuda')."""
        return device in self.devices

    def to(self, device: str) -> Self:
        """Moves the parameters to device (each params() entry is the attribute of that name); the
        gradients and buffers, which belong to the old device, are dropped. Returns the layer."""
        backend.check_device(device)
        if not self.supports(device):
            raise NotImplementedError(f"{self!r} cannot run on {device!r} (it runs on {', '.join(self.devices)})")
        for name, a in self.params().items():
            if not hasattr(self, name):
                raise TypeError(f"{type(self).__name__}.to(): parameter {name!r} is not the attribute self.{name}; "
                                "define to() for this layer")
            setattr(self, name, backend.to_device(a, device))
        self.__dict__.pop("_buffers", None)
        self.grads = {}
        return self

    def _buffer(self, name: str, shape: tuple[int, ...], like: Array, dtype: DTypeLike | None = None) -> Any:
        """An uninitialised array of this shape on like's device (dtype: like's unless given): the front
        of one grow-only block per name, so that a batch of any size reuses warm pages and computes on
        its own size only (inference at batch 1 after training and inferring at 64 allocates nothing), and
        memory stays that of the largest batch seen. While a model lends this name (a PingPong), the block
        is the model's: valid until the next layer has run, as the pass needs it."""
        lent = self.__dict__.get("_lent")
        if lent is not None and lent.name == name:
            return lent.take(shape, like, dtype)
        return _front(self.__dict__.setdefault("_buffers", {}), name, shape, like, dtype)


def _front(cache: dict[Any, Any], name: Any, shape: tuple[int, ...], like: Array, dtype: DTypeLike | None) -> Any:
    """The front of cache's grow-only block (name, dtype, device), as an array of shape."""
    device = backend.device_of(like)
    dtype, n = like.dtype if dtype is None else np.dtype(dtype), math.prod(shape)
    block = cache.get((name, dtype, device))
    if block is None or block.size < n:
        block = cache[(name, dtype, device)] = _empty(n, dtype, device)
    return block[:n].reshape(shape)


def _empty(n: int, dtype: np.dtype[Any], device: str) -> Any:
    """n values on device, on the CPU from a 64-byte boundary: numpy's large arrays start 16 or 32 bytes past
    one, so that each vector of a pixel's channels the kernels load or store spans two cache lines. Measured
    with and without, alternating in one process (batch 64): inference 1.00-1.09x, steps 0.99-1.05x; and a
    process whose two blocks (PingPong) fell badly ran a 1x1-bottleneck net's inference 1.7x slower with them
    than without, until they were aligned (three runs of each)."""
    if device != "cpu":
        return backend.empty(n, dtype, device)  # device memory: hdl.cuda's allocator
    raw = np.empty(n * dtype.itemsize + 64, np.uint8)
    first = -raw.ctypes.data % 64
    return raw[first:first + n * dtype.itemsize].view(dtype)


class PingPong:
    """Two grow-only blocks (per dtype and device) that the layers of one pass take their `name` buffers
    from, while a model lends them (Model.lending): before each layer the model names its input (avoid), and
    the layer's buffers are the front of the block that does not hold it. For passes whose intermediate arrays
    die as soon as the next layer has read them: Model.forward in inference ('y') and the gradients of
    back-propagation ('dx'). Such a pass touches two blocks instead of one per layer, so its arrays stay in
    cache (inference 1.06-1.23x on networks of megabyte activations), and holds the memory of the two largest,
    not of every layer. A layer may ask for its buffer more than once in a call (the same memory each time)
    and may return its input instead; one that needs its input or output after the next layer has run (none of
    hdl's) must copy it."""

    def __init__(self, name: str):
        self.name = name
        self._blocks: dict[Any, Any] = {}
        self._turn = 0
        self._taken: Any = None  # the block last handed out, until a layer reads from it

    def avoid(self, a: Any) -> None:
        """The next layer reads a: its buffers come from the block that does not hold a."""
        if self._taken is not None and _overlap(self._taken, a):
            self._turn ^= 1
            self._taken = None

    def take(self, shape: tuple[int, ...], like: Array, dtype: DTypeLike | None = None) -> Any:
        y = _front(self._blocks, self._turn, shape, like, dtype)
        self._taken = y
        return y


def _overlap(a: Any, b: Any) -> bool:
    """Whether arrays a and b (numpy or device arrays) may share memory."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and bool(np.may_share_memory(a, b))
    return bool(a.ptr < b.ptr + b.nbytes and b.ptr < a.ptr + a.nbytes)
