"""hdl.gradcheck: a layer's (or a model's) backward pass held to central differences in float64, as a
user who writes a layer would check it (torch.autograd.gradcheck's idea).

For a layer, the scalar is C = sum(dy * layer(x)) for a fixed random dy, so that backward(dy, x, y)
must give dC/dx and grads[name] = dC/d(param); for a model, C is the softmax log-loss (7.4) of
loss_and_gradients. Each derivative is checked at `samples` random entries of x and of every parameter
(all of them when there are fewer), with (C(p + h) - C(p - h)) / 2h.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

if TYPE_CHECKING:
    from hdl.layers.base import Layer
    from hdl.model import Model


class GradcheckError(AssertionError):
    """backward disagrees with central differences; the message names the array and the entry."""


def _entries(a: NDArray[Any], samples: int, rng: np.random.Generator) -> Iterable[int]:
    if a.size <= samples:
        return range(a.size)
    return rng.choice(a.size, samples, replace=False)


def _compare(name: str, flat: NDArray[Any], analytic: NDArray[Any], f: Callable[[], float], eps: float, rtol: float,
             atol: float, samples: int, rng: np.random.Generator, report: dict[str, float]) -> None:
    worst = 0.0
    for k in _entries(flat, samples, rng):
        old = flat[k]
        flat[k] = old + eps
        up = f()
        flat[k] = old - eps
        down = f()
        flat[k] = old
        numeric = (up - down) / (2 * eps)
        err = abs(numeric - analytic[k])
        worst = max(worst, err / (atol + rtol * abs(numeric)))
        if err > atol + rtol * abs(numeric):
            raise GradcheckError(f"{name}[{np.unravel_index(k, analytic.shape) if analytic.ndim else k}]: backward "
                                 f"gives {analytic[k]:.10g}, central differences {numeric:.10g} (|error| {err:.3g} > "
                                 f"atol {atol:g} + rtol {rtol:g} * |numeric|)")
    report[name] = worst


def gradcheck(obj: Layer | Model, x: ArrayLike, labels: ArrayLike | None = None, *, eps: float = 1e-6,
              rtol: float = 1e-5, atol: float = 1e-8, samples: int = 30, seed: int = 0) -> dict[str, float]:
    """Checks obj's backward pass at x in float64; returns {array name: largest error / tolerance} and
    raises GradcheckError at the first entry outside atol + rtol * |numeric|. obj: a layer (hdl.layers
    protocol) or a model (hdl.model.Model; labels default to random classes). Its parameters and x must
    be float64 (build the layer with dtype=np.float64)."""
    o: Any = obj  # a Layer or a Model, told apart by their methods (duck typing)
    rng = np.random.default_rng(seed)
    x = np.array(x, dtype=np.float64, copy=True)
    params = o.parameters() if hasattr(o, "loss_and_gradients") else list(o.params().values())
    if any(p.dtype != np.float64 for p in params):
        raise TypeError("gradcheck needs float64 parameters (central differences in float32 are noise); "
                        "build the layer or model with dtype=np.float64")
    report: dict[str, float] = {}
    if hasattr(o, "loss_and_gradients"):  # a model: C = the mean softmax log-loss
        if labels is None:
            K = o.forward(x).shape[1]
            labels = rng.integers(0, K, len(x))
        labels = np.asarray(labels, dtype=np.int64)
        o.loss_and_gradients(x, labels)
        model_grads = [np.array(g, dtype=np.float64) for g in o.parameter_gradients()]
        f = lambda: o.loss_and_gradients(x, labels)[0]  # noqa: E731
        for i, (p, g) in enumerate(zip(params, model_grads)):
            _compare(f"parameter {i} {p.shape}", p.reshape(-1), g.reshape(-1), f, eps, rtol, atol, samples, rng,
                     report)
        return report
    y = np.array(o.run_forward(x, True), copy=True)
    dy = rng.standard_normal(y.shape)
    dx = o.run_backward(dy.copy(), x, y.copy(), need_dx=True)
    grads = {name: np.array(o.grads[name], copy=True) for name in o.params()} if params else {}
    f = lambda: float(np.sum(dy * o.run_forward(x, True)))  # noqa: E731
    _compare("dx", x.reshape(-1), np.asarray(dx, dtype=np.float64).reshape(-1), f, eps, rtol, atol, samples, rng,
             report)
    for name, p in o.params().items():
        _compare(name, p.reshape(-1), grads[name].reshape(-1), f, eps, rtol, atol, samples, rng, report)
    return report
