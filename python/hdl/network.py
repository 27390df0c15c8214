"""A network is a list of layers (Section 3): a[1] = x, a[l] = layer_l(a[l-1]).

Parameters are shown in the paper's notation, W[l] and b[l] for l = 2..L, as
views of the arrays the layers own (writing into them changes the network).
"""
from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, overload

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

from hdl import _checks, ops
from hdl.layers import Dense, Layer, layer_type
from hdl.model import Model, ModelFileError, model_file

if TYPE_CHECKING:
    from typing_extensions import Self


class ByLayer(Sequence[NDArray[Any]]):
    """Arrays indexed l = 2..L as in the paper (W[2] is the first weight matrix)."""

    def __init__(self, arrays: list[NDArray[Any]], name: str):
        self._arrays, self._name = arrays, name

    def _index(self, l: object) -> int:
        L = len(self._arrays) + 1
        if not isinstance(l, (int, np.integer)) or not 2 <= l <= L:
            raise IndexError(f"{self._name}[{l!r}]: layers are numbered 2..{L} as in the paper")
        return int(l) - 2

    def __getitem__(self, l: int) -> NDArray[Any]:  # type: ignore[override]  # no slices: l is a layer number
        return self._arrays[self._index(l)]

    def __setitem__(self, l: int, value: ArrayLike) -> None:
        target = self._arrays[self._index(l)]
        value = np.asarray(value)
        if value.shape != target.shape:
            raise ValueError(f"{self._name}[{l}] has shape {target.shape}, cannot assign shape {value.shape}")
        target[...] = value

    def __len__(self) -> int:
        return len(self._arrays)

    def __iter__(self) -> Iterator[NDArray[Any]]:
        return iter(self._arrays)

    def __reversed__(self) -> Iterator[NDArray[Any]]:  # Sequence's would index from 0
        return reversed(self._arrays)

    def items(self) -> list[tuple[int, NDArray[Any]]]:
        return [(l + 2, a) for l, a in enumerate(self._arrays)]

    def __repr__(self) -> str:
        return f"{self._name}: " + ", ".join(f"[{l}] {a.shape}" for l, a in self.items())


class Network(Model):
    """A network of layers. Network([2, 2, 3, 2]) is the sigmoid network of Figure 2.3.

    A Model (its layers, parameters, summary, to, loss_and_gradients on rows) whose own methods keep the
    paper's notation: columns are points, W[l] and b[l] for l = 2..L, Cost (3.3).

    Network(sizes, activation='sigmoid', dtype=np.float64, init='normal', scale=0.5, seed=None)
    builds fully connected layers; `activation` is one name or one per layer l = 2..L.
    Network(layers) takes a list of layer objects. Inputs are (n_1, m) matrices whose
    columns are the points; outputs are (n_L, m).
    """

    layers: list[Any]  # layers with the paper's column methods (Dense): forward_columns, backward_columns, W, b

    def __init__(self, sizes_or_layers: Iterable[int] | Iterable[Layer], activation: str | Sequence[str] = "sigmoid",
                 dtype: DTypeLike = np.float64, init: str = "normal", scale: float = 0.5,
                 seed: int | np.random.Generator | None = None):
        items: list[Any] = list(sizes_or_layers)
        if items and all(isinstance(n, (int, np.integer)) and not isinstance(n, bool) for n in items):
            if len(items) < 2:
                raise ValueError(f"a network needs at least 2 layer sizes (input and output), got {items}")
            acts = [activation] * (len(items) - 1) if isinstance(activation, str) else list(activation)
            if len(acts) != len(items) - 1:
                raise ValueError(f"need {len(items) - 1} activations (layers 2..{len(items)}), got {len(acts)}")
            rng = _checks.generator("seed", seed)  # one generator, drawn layer by layer
            layers = [Dense(items[i], items[i + 1], acts[i], init=init, scale=scale, rng=rng, dtype=dtype)
                      for i in range(len(items) - 1)]
        elif items and all(hasattr(layer, "forward") and hasattr(layer, "backward") for layer in items):
            layers = items
        else:
            raise TypeError("Network takes a list of layer sizes (ints, at least 2) or a list of layers")
        for below, above in zip(layers, layers[1:]):
            if below.n_out != above.n_in:
                raise ValueError(f"layer sizes do not chain: {below!r} gives {below.n_out} outputs, "
                                 f"{above!r} takes {above.n_in}")
        if len({layer.dtype for layer in layers}) != 1:
            raise TypeError("all layers of a network must share one dtype")
        super().__init__(layers)

    # -- the paper's notation -------------------------------------------------------------------
    @property
    def W(self) -> ByLayer:
        return ByLayer([layer.W for layer in self.layers], "W")

    @property
    def b(self) -> ByLayer:
        return ByLayer([layer.b for layer in self.layers], "b")

    @property
    def sizes(self) -> list[int]:
        return [self.layers[0].n_in] + [layer.n_out for layer in self.layers]

    @property
    def num_params(self) -> int:
        return sum(p.size for layer in self.layers for p in layer.params().values())

    def is_fully_connected(self) -> bool:
        return all(isinstance(layer, Dense) for layer in self.layers)

    def to(self, device: str) -> Self:
        """The paper's Network runs on the CPU (its column methods and stochastic_gradient's compiled loop);
        for the GPU, put the same Dense layers in a Model: Model(net.layers).to('cuda')."""
        if device != "cpu":
            raise NotImplementedError(f"hdl.Network runs on the CPU; for {device!r} use "
                                      f"hdl.Model(net.layers).to({device!r}) (rows, softmax log-loss)")
        return self

    # -- forward, cost, back propagation ----------------------------------------------------------
    @overload
    def check_inputs(self, X: ArrayLike, Y: None = None, any_order: bool = False) -> NDArray[Any]: ...
    @overload
    def check_inputs(self, X: ArrayLike, Y: ArrayLike, any_order: bool = False
                     ) -> tuple[NDArray[Any], NDArray[Any]]: ...

    def check_inputs(self, X: ArrayLike, Y: ArrayLike | None = None, any_order: bool = False
                     ) -> NDArray[Any] | tuple[NDArray[Any], NDArray[Any]]:
        """X (and Y) checked; C-contiguous unless any_order keeps an F-contiguous one (_checks.matrix)."""
        X = _checks.matrix("X", X, self.dtype, rows=self.sizes[0], any_order=any_order)
        if Y is None:
            return X
        Y = _checks.matrix("Y", Y, self.dtype, rows=self.sizes[-1], any_order=any_order)
        if Y.shape[1] != X.shape[1]:
            raise ValueError(f"X has {X.shape[1]} columns (points) but Y has {Y.shape[1]}")
        return X, Y

    # The paper's forward pass: X (n_1, m), columns as points; the second argument is return_all, not Model's train.
    @overload  # type: ignore[override]
    def forward(self, X: ArrayLike, return_all: Literal[False] = False) -> NDArray[Any]: ...
    @overload
    def forward(self, X: ArrayLike, return_all: Literal[True]) -> list[NDArray[Any]]: ...
    @overload
    def forward(self, X: ArrayLike, return_all: bool) -> NDArray[Any] | list[NDArray[Any]]: ...

    def forward(self, X: ArrayLike, return_all: bool = False) -> NDArray[Any] | list[NDArray[Any]]:
        """a[L] for the columns of X, (3.1)-(3.2); with return_all, the list [a[1], ..., a[L]]."""
        a = self._activations(self.check_inputs(X))
        return a if return_all else a[-1]

    def _activations(self, X: NDArray[Any]) -> list[NDArray[Any]]:
        """[a[1], ..., a[L]] for an X already checked."""
        a = [X]
        for layer in self.layers:
            a.append(layer.forward_columns(a[-1]))
        return a

    __call__ = forward  # type: ignore[assignment]

    def predict(self, X: ArrayLike, batch_size: int | None = None) -> NDArray[np.intp]:
        """Index of the largest output for each column: the category of Section 2."""
        return np.argmax(self.forward(X), axis=0)

    def scores(self, X: ArrayLike, batch_size: int | None = None) -> NDArray[Any]:
        """The outputs a[L] with one row per column of X, (N, n_L), as Model.scores gives them
        (predict_proba is their softmax)."""
        return np.ascontiguousarray(self.forward(X).T)

    def penalty(self, lam: float, N: int) -> float:
        """lam/N sum_l ||W[l]||_F^2, the regularisation term of (8.2)."""
        return lam / N * sum(float(np.sum(np.square(W, dtype=np.float64))) for W in self.W) if lam else 0.0

    def cost(self, X: ArrayLike, Y: ArrayLike, lam: float = 0.0) -> float:
        """Cost (3.3) = 1/N sum_i 1/2 ||y(x_i) - a[L](x_i)||^2, plus the penalty of (8.2) when lam > 0."""
        X, Y = self.check_inputs(X, Y)
        lam = _checks.positive("lam", lam, allow_zero=True)
        c, _ = ops.quadratic_cost(self._activations(X)[-1], Y, 1.0 / X.shape[1])
        return c + self.penalty(lam, X.shape[1])

    def backprop(self, X: NDArray[Any], Y: NDArray[Any], scale: float
                 ) -> tuple[list[NDArray[Any]], list[tuple[dict[str, NDArray[Any]], NDArray[Any]]]]:
        """Forward and backward passes over checked X, Y; returns (a list, [(grads, delta)] per layer)."""
        a = self._activations(X)
        _, g = ops.quadratic_cost(a[-1], Y, scale)  # dC/da[L] = scale (a[L] - y), giving (5.5)
        out: list[Any] = [None] * len(self.layers)
        for i in reversed(range(len(self.layers))):
            g, grads, delta = self.layers[i].backward_columns(g, a[i], a[i + 1], want_g_in=i > 0)
            out[i] = (grads, delta)
        return a, out

    def gradients(self, X: ArrayLike, Y: ArrayLike, lam: float = 0.0, reduction: str = "mean"
                  ) -> tuple[ByLayer, ByLayer]:
        """(dW, db): the gradient of Cost by back propagation (Lemma 5.1), indexed l = 2..L.

        reduction='mean' differentiates (3.3) (plus (8.2) when lam > 0); 'sum' the sum over the
        columns of C_x = 1/2 ||y - a[L]||^2 of (4.4).
        """
        X, Y = self.check_inputs(X, Y)
        lam = _checks.positive("lam", lam, allow_zero=True)
        if reduction not in ("mean", "sum"):
            raise ValueError(f"reduction must be 'mean' or 'sum', got {reduction!r}")
        N = X.shape[1]
        _, per_layer = self.backprop(X, Y, 1.0 / N if reduction == "mean" else 1.0)
        dW = [grads["W"] for grads, _ in per_layer]
        db = [grads["b"] for grads, _ in per_layer]
        if lam:
            for g, W in zip(dW, self.W):
                g += (2.0 * lam / N) * W
        return ByLayer(dW, "dW"), ByLayer(db, "db")

    # -- the parameters as one vector p (Section 4) -------------------------------------------------
    def get_params(self) -> NDArray[Any]:
        """p = (W[2], b[2], W[3], b[3], ...) flattened, a copy."""
        return np.concatenate([p.ravel() for layer in self.layers for p in layer.params().values()])

    def set_params(self, p: ArrayLike) -> None:
        p = np.asarray(p)
        if p.shape != (self.num_params,):
            raise ValueError(f"p must have shape ({self.num_params},), got {p.shape}")
        i = 0
        for layer in self.layers:
            for arr in layer.params().values():
                arr[...] = p[i:i + arr.size].reshape(arr.shape)
                i += arr.size

    # -- copies and files ---------------------------------------------------------------------------
    def config(self) -> dict[str, Any]:
        return {"format": "hdl-network", "version": 1, "dtype": str(self.dtype),
                "layers": [layer.config() for layer in self.layers]}

    def copy(self) -> Network:
        other = Network.from_config(self.config())
        other.set_params(self.get_params())
        return other

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Self:
        if config.get("format") != "hdl-network":
            raise ValueError("not an hdl network description (missing format: hdl-network)")
        layers = []
        for spec in config["layers"]:
            spec = dict(spec)
            kind: Callable[..., Layer] = layer_type(spec.pop("type"))
            layers.append(kind(**spec, dtype=config["dtype"]))
        return cls(layers)

    # save is Model's (parameters, velocities on request, the JSON description, written atomically)

    @classmethod
    def load(cls, path: str | os.PathLike[str], with_velocities: bool = False) -> Self:
        """A network written by save, or by hdl's earlier Network.save (its 'config' and layer arrays)."""
        with model_file(path) as data:
            if "config" not in data.files:
                return super().load(path, with_velocities)
            try:  # the earlier format
                net = cls.from_config(json.loads(str(data["config"])))
                for i, layer in enumerate(net.layers):
                    for name, arr in layer.params().items():
                        stored = data[f"layer{i}.{name}"]
                        if stored.shape != arr.shape:
                            raise ValueError(f"layer {i} {name}: stored shape {stored.shape}, expected {arr.shape}")
                        arr[...] = stored
            except (KeyError, ValueError, TypeError, AttributeError, MemoryError) as err:  # json's are ValueErrors;
                # AttributeError: a 'config' that is JSON but not an object; MemoryError: absurd sizes in it
                missing = err.args[0] if isinstance(err, KeyError) and err.args else err
                raise ModelFileError(f"{os.fspath(path)}: {missing}") from err
        return net

