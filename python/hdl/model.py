"""One sequential model for every network: dense, convolutional, or both, with the layers of
hdl.layers (a user's own included). Batches have the batch on the first axis (images NHWC).

    model = Model([Conv2d(1, 8, 3, pad=1, rng=0), ReLU(), MaxPool2d(2), Flatten(), Dense(8 * 14 * 14, 10,
                   "linear", dtype=np.float32)])
    loss, scores = model.loss_and_gradients(x, labels)   # softmax log-loss (7.4), gradients in layer.grads
    model.step(lr=0.01, momentum=0.9)                    # the fused SGD-momentum update
    model.predict(x), model.predict_proba(x), model.summary((28, 28, 1)), model.save(path), Model.load(path)

A layer that fuses the activation after it computes both in one pass: Conv2d and a linear Dense any ReLU,
leaky ReLU, sigmoid or tanh layer (in the product's store), MaxPool2d a ReLU.
hdl.Network is a Model: the paper's constructor of a dense net, in column notation, on the same Dense layers.

The model runs where its parameters live: model.to("cuda") moves them (and the velocities) into GPU
memory, and every layer then runs hdl.cuda.ops on the device arrays (hdl.backend); host batches go up
through pinned buffers, and only the loss and the scores come back. model.to("cpu") moves them back.
"""
from __future__ import annotations

import contextlib
import inspect
import json
import os
import zipfile
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, overload

import numpy as np
from numpy.typing import ArrayLike, NDArray

from hdl import backend, ops
from hdl.backend import Array
from hdl.layers import Dropout, Layer, ReLU, layer_type
from hdl.layers.pointwise import fused_activation
from hdl.layers.base import PingPong

if TYPE_CHECKING:
    from collections.abc import Iterator

    from typing_extensions import Self

    from hdl.cuda.array import DeviceArray, Uploader


# Batches of fewer bytes than this run without the two blocks (Model.lending): their arrays fit the caches
# either way, and lending costs a few microseconds a pass (a 5-layer MLP's 31-us inference at batch 16 took
# 35 us with them).
LEND_BYTES = 1 << 16


def _worth_lending(x: Array) -> bool:
    return int(getattr(x, "nbytes", 0)) >= LEND_BYTES


class Model:
    """A chain of layers ending in K class scores, trained with the softmax log-loss (7.4).

    forward(x) gives the scores (N, K); loss_and_gradients(x, labels) runs forward and backward and
    leaves every layer's parameter gradients in layer.grads; step() applies the fused momentum update
    in the form `momentum_form` names (hdl.ops.sgd_momentum_).
    """

    _skip_backward: set[int]  # set by every forward pass in training

    def __init__(self, layers: Iterable[Layer], momentum_form: str = "matconvnet"):
        self.layers: list[Layer] = list(layers)
        if not self.layers:
            raise ValueError("a model needs layers")
        wrong = [i for i, layer in enumerate(self.layers) if not isinstance(layer, Layer)]
        if wrong:
            raise TypeError(f"a model's layers must be hdl.layers.Layer objects; layer {wrong[0]} is "
                            f"{type(self.layers[wrong[0]]).__name__}")
        if not isinstance(momentum_form, str) or momentum_form not in ops.MOMENTUM_FORMS:
            raise ValueError(f"momentum_form must be one of {sorted(ops.MOMENTUM_FORMS)}")
        self.momentum_form = momentum_form
        params = self.parameters()
        self.device = backend.device_of(params[0]) if params else "cpu"
        self.velocities: list[Array] = [backend.to_device(np.zeros(p.shape, p.dtype), self.device) for p in params]
        self.meta: dict[str, Any] = {}  # what a loaded file said beside the network (Model.save's extra)
        self.arrays: dict[str, NDArray[Any]] = {}  # the arrays a loaded file held beside the parameters
        self._uploads: dict[str, Uploader] = {}

    # -- parameters ------------------------------------------------------------------------------
    def parameters(self) -> list[Array]:
        """Every layer's params(), in order: numpy arrays, or hdl.cuda.DeviceArrays on the GPU."""
        return [p for layer in self.layers for p in layer.params().values()]

    def multipliers(self) -> tuple[list[float], list[float]]:
        lr: list[float] = []
        decay: list[float] = []
        for layer in self.layers:
            n = len(layer.params())
            if len(layer.lr_mults) != n or len(layer.decay_mults) != n:
                raise ValueError(f"{layer!r}: {n} parameters but lr_mults {layer.lr_mults} and decay_mults "
                                 f"{layer.decay_mults}")
            lr += layer.lr_mults
            decay += layer.decay_mults
        return lr, decay

    @property
    def dtype(self) -> np.dtype[Any]:
        params = self.parameters()
        return params[0].dtype if params else np.dtype(np.float32)

    # -- forward, loss, backward -----------------------------------------------------------------
    def check_batch(self, x: Array) -> Array:
        """x, checked, on the model's device (a host batch is uploaded when the model is on the GPU)."""
        try:
            device = backend.device_of(x)
        except TypeError:
            device = None
        if device not in ("cpu", self.device) or x.ndim < 2 or x.shape[0] == 0:
            raise ValueError(f"a batch must be an array of shape (N, ...) (images (N, H, W, C)) on the host or the "
                             f"model's device ({self.device}), got {type(x).__name__} of shape {getattr(x, 'shape', None)}")
        if x.dtype != self.dtype:
            raise TypeError(f"the batch is {x.dtype} but the model is {self.dtype}")
        if device == self.device:
            return backend.contiguous(x)
        return self._upload("input", np.ascontiguousarray(x))  # a host batch for a model on the GPU

    def _upload(self, name: str, a: NDArray[Any]) -> DeviceArray:
        """a host array on the device, through this model's pinned buffers (asynchronous)."""
        from hdl.cuda import Uploader
        if name not in self._uploads:
            self._uploads[name] = Uploader()  # two device buffers, so that the next upload overlaps this step
        return self._uploads[name](a)

    def _labels(self, labels: Any, n: int, K: int) -> Any:
        """Valid host labels go up to the device with the batch; anything else is left to the loss to check."""
        if self.device == "cpu" or not isinstance(labels, (np.ndarray, list, tuple)):
            return labels
        a = np.asarray(labels)
        if a.shape == (n,) and a.dtype.kind in "iu" and n and 0 <= a.min() and a.max() < K:
            return self._upload("labels", np.ascontiguousarray(a, np.int64))
        return a

    def _forward(self, x: Array, train: bool, lent: PingPong | None = None) -> list[Any]:
        """Activations [x, y1, y2, ...]; a layer that fuses an activation (fuses_activation, fuses_relu) and the
        activation layer after it run as one: the activation's output is the layer's buffer. With lent
        (Model.lending's), each layer's outputs are in the block its input is not in: only the last one is
        whole at the end."""
        acts = [self.check_batch(x)]
        self._skip_backward = set()  # ReLUs whose cut the layer before carries (a max pool's argmax)
        i = 0
        while i < len(self.layers):
            layer = self.layers[i]
            if lent is not None:
                lent.avoid(acts[-1])
            nxt = self.layers[i + 1] if i + 1 < len(self.layers) else None
            sigma = fused_activation(layer, nxt)
            if sigma is not None:
                y = layer.forward(acts[-1], train, activation=sigma)  # type: ignore[call-arg]  # it takes activation=
                acts += [y, y]  # the activation's backward pass reads only its output
                i += 2
            elif layer.fuses_relu and type(nxt) is ReLU:
                y = layer.forward(acts[-1], train, relu=True)  # type: ignore[call-arg]  # fuses_relu: takes relu=
                acts += [y, y]
                if getattr(layer, "relu_in_backward", False):
                    self._skip_backward.add(i + 1)
                i += 2
            else:
                acts.append(layer.run_forward(acts[-1], train))
                i += 1
        return acts

    @overload
    def forward(self, x: NDArray[Any], train: bool = False) -> NDArray[Any]: ...
    @overload
    def forward(self, x: DeviceArray, train: bool = False) -> DeviceArray: ...

    def forward(self, x: Array, train: bool = False) -> Array:
        """The outputs (N, K) (class scores), an array of the caller's own: numpy for a host batch, a
        device array for a batch on the model's device."""
        # in inference no output outlives the next layer's reading of it, and the weights stay as they are:
        # the convolutions keep their packed filters for the next batch (ops.keeping_filters)
        keep = contextlib.nullcontext() if train else ops.keeping_filters()
        with self.lending("y" if not train and _worth_lending(x) else None) as lent, keep:
            y = self._forward(x, train, lent)[-1]
        y = y.reshape(y.shape[0], -1)
        return y.copy() if backend.device_of(x) == backend.device_of(y) else backend.to_numpy(y)

    __call__ = forward

    def scores(self, x: NDArray[Any], batch_size: int = 500) -> NDArray[Any]:
        """Class scores (N, K) for many inputs, batch by batch."""
        return np.concatenate([self.forward(x[i:i + batch_size]) for i in range(0, len(x), batch_size)])

    def predict_proba(self, x: NDArray[Any], batch_size: int = 500) -> NDArray[np.float64]:
        """softmax of the scores: the probability of each class (N, K)."""
        s = self.scores(x, batch_size).astype(np.float64)
        s = np.exp(s - s.max(axis=1, keepdims=True))
        return s / s.sum(axis=1, keepdims=True)

    def predict(self, x: NDArray[Any], batch_size: int = 500) -> NDArray[np.intp]:
        """The class of largest score for each input (N,)."""
        return np.argmax(self.scores(x, batch_size), axis=1)

    @overload
    def loss_and_gradients(self, x: Array, labels: ArrayLike | DeviceArray, dropout_seed: int = 0,
                           sync: Literal[True] = True,
                           after_backward: Callable[[int], object] | None = None) -> tuple[float, NDArray[Any]]: ...
    @overload
    def loss_and_gradients(self, x: Array, labels: ArrayLike | DeviceArray, dropout_seed: int = 0,
                           sync: bool = True, after_backward: Callable[[int], object] | None = None
                           ) -> tuple[float | DeviceArray, NDArray[Any] | DeviceArray]: ...

    def loss_and_gradients(self, x: Array, labels: ArrayLike | DeviceArray, dropout_seed: int = 0,
                           sync: bool = True, after_backward: Callable[[int], object] | None = None
                           ) -> tuple[float | DeviceArray, NDArray[Any] | DeviceArray]:
        """(loss, scores): the mean softmax log-loss (7.4) of the batch; gradients in layer.grads.
        With sync (the default) loss is a float and scores a host array; on the GPU, sync=False leaves
        both on the device (a 0-d array and an (N, K) array) and nothing waits for the GPU.
        after_backward(i), if given, is called as soon as layer i's gradients are in layer.grads (last layer
        first): hdl.distributed starts reducing them while the layers below run backward."""
        for i, layer in enumerate(self.layers):
            if isinstance(layer, Dropout):
                layer.seed = (dropout_seed * 1_000_003 + i) & 0x7FFF_FFFF_FFFF_FFFF
        acts = self._forward(x, train=True)
        n = acts[0].shape[0]
        scores = acts[-1].reshape(n, -1)
        loss, g = backend.ops_for(scores).softmax_log_loss(scores, self._labels(labels, n, scores.shape[1]))
        self._backward(acts, g.reshape(acts[-1].shape), need_dx=False, after_backward=after_backward)
        if self.device == "cpu":
            return loss, scores.copy()
        return (float(loss), scores.numpy()) if sync else (loss, scores.copy())

    def _backward(self, acts: list[Any], g: Any, need_dx: bool,
                  after_backward: Callable[[int], object] | None = None) -> Any:
        """Back-propagation (5.1)-(5.4) of g = dC/d(output) through every layer: parameter gradients into
        layer.grads (after_backward(i) called as soon as layer i's are there); returns dC/dx when need_dx
        (the first layer's backward is asked for it), else None. The layers' gradients dC/dx, each read by
        the layer below only, take turns in two blocks (PingPong); the first layer's, which the caller may
        keep, is in that layer's own buffer (valid until the next pass that asks for it)."""
        with self.lending("dx" if _worth_lending(acts[0]) else None, self.layers[1:]) as lent:
            for i in reversed(range(len(self.layers))):
                if lent is not None:
                    lent.avoid(g)
                if i not in self._skip_backward:
                    g = self.layers[i].run_backward(g, acts[i], acts[i + 1], need_dx=need_dx or i > 0)
                if after_backward is not None:
                    after_backward(i)
        return g if need_dx else None

    @contextlib.contextmanager
    def lending(self, name: str | None, layers: Sequence[Layer] | None = None) -> Iterator[PingPong | None]:
        """While it lasts, `layers` (default: all of them) take their `name` buffers (Layer._buffer) from this
        model's PingPong of that name, which it yields (None, and nothing lent, for name None): for a pass in
        which each layer's such array is read by the next layer only. The pass calls its avoid(input) before
        each layer."""
        if name is None:
            yield None
            return
        pingpongs = self.__dict__.setdefault("_pingpongs", {})
        lent = pingpongs.get(name)
        if lent is None:
            lent = pingpongs[name] = PingPong(name)
        layers = self.layers if layers is None else layers
        try:
            for layer in layers:
                layer.__dict__["_lent"] = lent
            yield lent
        finally:
            for layer in layers:
                layer.__dict__.pop("_lent", None)

    def cost_gradients(self, x: Array, cost: Callable[[Any], tuple[float, Any]], need_dx: bool = False,
                  train: bool = True) -> tuple[float, Any]:
        """(C, dC/dx or None) for any cost of the outputs: runs x forward (in training mode unless train=False),
        calls cost(outputs (N, K)) -> (C, dC/d(outputs)), back-propagates that through every layer (parameter
        gradients into layer.grads, as loss_and_gradients leaves them for step) and returns dC/dx (x's shape)
        when need_dx. loss_and_gradients is this with the softmax log-loss (7.4); a GAN's generator [12] learns
        through a cost that is its discriminator's cost_gradients(fake, ..., need_dx=True)."""
        acts = self._forward(x, train)
        n = acts[0].shape[0]
        scores = acts[-1].reshape(n, -1)
        C, g = cost(scores)
        if tuple(g.shape) != tuple(scores.shape) or g.dtype != self.dtype:
            raise ValueError(f"cost must return dC/d(outputs) as {self.dtype} of the outputs' shape "
                             f"{tuple(scores.shape)}, got {g.dtype} {tuple(g.shape)}")
        dx = self._backward(acts, backend.contiguous(g).reshape(acts[-1].shape), need_dx)
        return float(C), dx

    def input_gradient(self, x: Array, labels: ArrayLike) -> tuple[float, Array]:
        """(loss, dC/dx): the mean softmax log-loss (7.4) of the batch and its gradient with respect to the
        inputs x (x's shape), back-propagated through the whole network (the first layer's backward asked
        for need_dx); the fast gradient sign method moves x along its sign. Inference mode (no dropout);
        the parameter gradients are left in layer.grads as a by-product."""
        n = self.check_batch(x).shape[0]

        def cost(scores: Any) -> tuple[float, Any]:
            return backend.ops_for(scores).softmax_log_loss(scores, self._labels(labels, n, scores.shape[1]))
        loss, dx = self.cost_gradients(x, cost, need_dx=True, train=False)
        return loss, dx.copy()  # the first layer's buffer, reused by its next backward

    def features(self, x: NDArray[Any], upto: int, batch_size: int = 500) -> NDArray[Any]:
        """The activations after the first `upto` layers (inference mode), each flattened: (N, features).
        features(x, len(model.layers) - 1) gives the last hidden layer's outputs, the input of the last layer."""
        if not (isinstance(upto, int) and 0 <= upto <= len(self.layers)):
            raise ValueError(f"upto must be an integer in 0..{len(self.layers)}, got {upto!r}")
        out = []
        for i in range(0, len(x), batch_size):
            a = self.check_batch(x[i:i + batch_size])
            for layer in self.layers[:upto]:
                a = layer.run_forward(a, False)
            out.append(backend.to_numpy(a).reshape(a.shape[0], -1).copy())
        return np.concatenate(out)

    def parameter_gradients(self) -> list[Array]:
        """The gradient of every parameter (parameters() order) from the last loss_and_gradients."""
        out: list[Array] = []
        for layer in self.layers:
            for name in layer.params():
                if name not in layer.grads:
                    raise ValueError(f"{layer!r}: backward() left no gradient for its parameter {name!r} "
                                     f"(set self.grads[{name!r}])")
                out.append(layer.grads[name])
        return out

    def step(self, lr: float, momentum: float = 0.9, weight_decay: float = 0.0) -> None:
        """The fused SGD-momentum update of every parameter with its multipliers."""
        lr_mults, decay_mults = self.multipliers()
        backend.ops_for(self.device).sgd_momentum_(
            self.parameters(), self.parameter_gradients(), self.velocities, lr=lr, momentum=momentum,
            weight_decay=weight_decay, lr_mults=lr_mults, decay_mults=decay_mults, form=self.momentum_form)

    def to(self, device: str) -> Self:
        """Moves the model (parameters, velocities) to 'cpu' or 'cuda', in place; returns it. Every layer
        must run there (layer.supports(device)); the GPU runs float32."""
        backend.check_device(device)
        if device == self.device:
            return self
        if device == "cuda":
            from hdl import cuda
            cuda.require()
            if self.dtype != np.float32:
                raise TypeError(f"the CUDA backend runs float32 models, this one is {self.dtype}")
        cannot = [repr(layer) for layer in self.layers if not layer.supports(device)]
        if cannot:
            raise NotImplementedError(f"these layers cannot run on {device!r}: {', '.join(cannot)}")
        for layer in self.layers:
            layer.to(device)
        self.velocities = [backend.to_device(v, device) for v in self.velocities]
        self.device, self._uploads = device, {}
        self.__dict__.pop("_pingpongs", None)  # blocks of the old device
        return self

    def summary(self, input_shape: Sequence[int]) -> str:
        """A table of the layers, their output shapes (for inputs of input_shape, without the batch) and
        parameter counts, found by running one zero input through the model."""
        x = self.check_batch(np.zeros((1, *input_shape), self.dtype))
        rows = [("layer", "output shape", "parameters")]
        for layer in self.layers:
            x = layer.run_forward(x, False)
            rows.append((repr(layer), str(tuple(x.shape[1:])), f"{sum(p.size for p in layer.params().values()):,}"))
        total = sum(p.size for p in self.parameters())
        width = [max(len(r[k]) for r in rows) for k in range(3)]
        lines = ["  ".join(c.ljust(w) for c, w in zip(r, width)).rstrip() for r in rows]
        return "\n".join([*lines, f"{total:,} parameters ({self.dtype})"])

    # -- files ----------------------------------------------------------------------------------
    def config(self) -> dict[str, Any]:
        return {"format": "hdl-convnet", "version": 1, "dtype": str(self.dtype), "momentum_form": self.momentum_form,
                "layers": [layer.config() for layer in self.layers]}

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Self:
        if config.get("format") != "hdl-convnet":
            hint = "; load it with hdl.Network.load" if config.get("format") == "hdl-network" else ""
            raise ValueError(f"not an hdl model description (format {config.get('format')!r}, "
                             f"expected 'hdl-convnet'{hint})")
        layers = []
        for spec in config["layers"]:
            spec = dict(spec)
            kind = layer_type(spec.pop("type"))
            params: Mapping[str, inspect.Parameter] = (inspect.signature(kind.__init__).parameters
                                                       if kind.__init__ is not object.__init__ else {})
            if "dtype" in params or any(p.kind is p.VAR_KEYWORD for p in params.values()):
                spec["dtype"] = config["dtype"]
            layers.append(kind(**spec))
        return cls(layers, config.get("momentum_form", "matconvnet"))

    def state_arrays(self, with_velocities: bool = False) -> dict[str, NDArray[Any]]:
        arrays = {f"param{i}": backend.to_numpy(p) for i, p in enumerate(self.parameters())}
        if with_velocities:
            arrays.update({f"velocity{i}": backend.to_numpy(v) for i, v in enumerate(self.velocities)})
        return arrays

    def load_state_arrays(self, data: Mapping[str, NDArray[Any]], with_velocities: bool = False) -> None:
        for name, group in (("param", self.parameters()), ("velocity", self.velocities)):
            if name == "velocity" and not with_velocities:
                continue
            for i, arr in enumerate(group):
                stored = data[f"{name}{i}"]
                if stored.shape != arr.shape:
                    raise ValueError(f"{name}{i}: stored shape {stored.shape}, expected {arr.shape}")
                arr[...] = stored

    def save(self, path: str | os.PathLike[str], extra: Mapping[str, Any] | None = None,
             with_velocities: bool = False, arrays: Mapping[str, NDArray[Any]] | None = None) -> None:
        """An .npz of the parameters (and velocities) with the JSON description, written atomically. extra: more
        JSON metadata (Model.load gives it back in model.meta); arrays: more named arrays (model.arrays)."""
        path = os.fspath(path)
        meta = {"network": self.config(), **(extra or {})}
        stored: dict[str, Any] = {"meta": np.array(json.dumps(meta)), **self.state_arrays(with_velocities)}
        for name, value in (arrays or {}).items():
            if not (isinstance(name, str) and name.isidentifier()):
                raise ValueError(f"array names must be identifiers, got {name!r}")
            stored[ARRAY_PREFIX + name] = np.asarray(value)
        tmp = path + ".tmp"
        with open(tmp, "wb") as f:
            np.savez(f, **stored)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: str | os.PathLike[str], with_velocities: bool = False) -> Self:
        """The model a file written by save holds (no pickle); its metadata in model.meta. A file that is not
        one (truncated, damaged, another kind of .npz) raises ModelFileError naming it."""
        with model_file(path) as data:
            try:
                meta = json.loads(str(data["meta"]))
                config = meta["network"]
                if not isinstance(config, Mapping):
                    raise TypeError(f"its 'network' is a JSON {type(config).__name__}, not an object")
            except (KeyError, TypeError, json.JSONDecodeError) as err:
                raise ModelFileError(f"{os.fspath(path)}: no model description in it ({err!r}); "
                                     "not written by Model.save") from err
            try:
                model = cls.from_config(config)
            except (ValueError, TypeError, KeyError) as err:
                raise ModelFileError(f"{os.fspath(path)}: {err}") from err
            except MemoryError as err:  # a description edited to ask for layers of absurd sizes
                raise ModelFileError(f"{os.fspath(path)}: its description asks for more memory than there is "
                                     f"({err})") from err
            try:
                model.load_state_arrays(data, with_velocities)
            except ValueError as err:  # a stored shape that is not the description's
                raise ModelFileError(f"{os.fspath(path)}: {err}") from err
            except KeyError as err:
                missing = err.args[0] if err.args else err
                raise ModelFileError(f"{os.fspath(path)}: {missing}" + (" (saved without velocities; load with "
                                     "with_velocities=False)" if "velocity" in str(err) else "")) from err
            model.arrays = {k[len(ARRAY_PREFIX):]: data[k] for k in data.files if k.startswith(ARRAY_PREFIX)}
        model.meta = meta
        return model

    def __repr__(self) -> str:
        return f"{type(self).__name__}([\n" + "".join(f"  {layer!r},\n" for layer in self.layers) + "])"


ARRAY_PREFIX = "array_"  # the file's name of an array given to Model.save(arrays=...)


class ModelFileError(ValueError):
    """A file that Model.load (or Network.load) cannot read as a saved model; the message names it."""


@contextlib.contextmanager
def model_file(path: str | os.PathLike[str]) -> Iterator[Any]:
    """The arrays of an .npz written by Model.save, opened without pickle; a file cut short, damaged (a bad
    checksum) or holding something else raises ModelFileError naming the file."""
    name = os.fspath(path)
    try:
        data = np.load(name, allow_pickle=False)
        if not isinstance(data, np.lib.npyio.NpzFile):
            raise ModelFileError(f"{name}: a single array, not a model file written by Model.save")
        with data:
            yield data
    except (zipfile.BadZipFile, zlib.error, EOFError) as err:  # cut short, or a byte changed
        raise ModelFileError(f"{name}: damaged or not a model file ({err})") from err
    except ValueError as err:
        if isinstance(err, ModelFileError) or "pickle" not in str(err):
            raise
        raise ModelFileError(f"{name}: not a model file written by Model.save (not an .npz of arrays; hdl never "
                             "unpickles)") from err
