"""hdl's public API as a user writes it, for the type checker: tests/test_types.py runs mypy on this file (pytest
does not collect it: its name is not test_*.py) and also runs it, so that it stays true. assert_type pins the
types that user code relies on; a change that breaks them (a return type, a parameter, an export) fails the check.

    python -m mypy                          # this file and python/hdl, with pyproject.toml's [tool.mypy]
    python tests/typing_public_api.py       # the same calls, run (a few seconds on the CPU)
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

import hdl
import hdl.callbacks
import hdl.cuda
import hdl.metrics
import hdl.ops
import hdl.schedules
import hdl.train
from hdl.history import History
from hdl.layers import AvgPool2d, Conv2d, Dense, Dropout, Flatten, Layer, LeakyReLU, MaxPool2d, ReLU, Sigmoid, Tanh
from hdl.lsq import LeastSquaresResult
from hdl.network import ByLayer

if sys.version_info >= (3, 11):
    from typing import assert_type
else:  # mypy's own dependency on Python 3.10
    from typing_extensions import assert_type


def ten_points() -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """The data of Figure 2.1: columns are points (x, y), two categories."""
    x1 = [0.1, 0.3, 0.1, 0.6, 0.4, 0.6, 0.5, 0.9, 0.4, 0.7]
    x2 = [0.1, 0.4, 0.5, 0.9, 0.2, 0.3, 0.6, 0.2, 0.4, 0.6]
    X = np.array([x1, x2])
    Y = np.array([[1.0] * 5 + [0.0] * 5, [0.0] * 5 + [1.0] * 5])
    return X, Y


class UserSwish(Layer):
    """A user's layer, annotated for numpy alone: the protocol takes Any, so the narrower types are accepted."""

    def forward(self, x: NDArray[np.float64], train: bool = False) -> NDArray[np.float64]:
        return x / (1.0 + np.exp(-x))

    def backward(self, dy: NDArray[np.float64], x: NDArray[np.float64], y: NDArray[np.float64],
                 need_dx: bool = True) -> NDArray[np.float64]:
        s = 1.0 / (1.0 + np.exp(-x))
        return dy * (s + x * s * (1.0 - s))


@hdl.register(name="typing_public_api.Scale")
class Scale(Layer):
    """A user's layer with a parameter, registered under another name (the decorator keeps the class's type)."""

    def __init__(self, n: int, dtype: Any = np.float64):
        self.n = n
        self.a = np.ones(n, dtype)

    def params(self) -> dict[str, NDArray[Any]]:  # a dict of numpy arrays is a Mapping[str, Array]
        return {"a": self.a}

    def forward(self, x: NDArray[Any], train: bool = False) -> NDArray[Any]:
        return x * self.a

    def backward(self, dy: NDArray[Any], x: NDArray[Any], y: NDArray[Any], need_dx: bool = True) -> NDArray[Any]:
        self.grads["a"] = (dy * x).sum(axis=0)
        return dy * self.a


class StopAfter(hdl.callbacks.Callback):
    def __init__(self, epochs: int):
        self.epochs = epochs

    def on_epoch_end(self, epoch: int, model: hdl.Model, history: History) -> bool:
        return epoch >= self.epochs


def paper_network(tmp: Path) -> None:
    """Sections 2-6: the network of Figure 2.3, trained by (4.6), by epochs, by steepest descent, least squares."""
    X, Y = ten_points()
    net = hdl.Network([2, 2, 3, 2], seed=1)
    assert_type(net, hdl.Network)
    hist = hdl.stochastic_gradient(net, X, Y, eta=0.05, iterations=2000, seed=1, record_every=100)
    assert_type(hist, History)
    assert_type(hist.cost, NDArray[np.floating[Any]] | None)
    assert_type(hist.iterations, NDArray[np.int64] | None)
    assert_type(hist.final_cost, float | None)
    assert_type(hist.seconds, float)
    assert_type(net.W, ByLayer)
    assert_type(net.W[2], NDArray[Any])
    assert_type(net.b[4], NDArray[Any])
    assert_type(net.sizes, list[int])
    assert_type(net.num_params, int)
    assert_type(net.cost(X, Y), float)
    assert_type(net.cost(X, Y, lam=1e-3), float)
    assert_type(net.forward(X), NDArray[Any])
    assert_type(net(X), NDArray[Any])
    assert_type(net.forward(X, return_all=True), list[NDArray[Any]])
    assert_type(net.predict(X), NDArray[np.intp])
    assert_type(net.scores(X), NDArray[Any])
    dW, db = net.gradients(X, Y, reduction="sum")
    assert_type(dW[2], NDArray[Any])
    assert_type(net.get_params(), NDArray[Any])
    net.set_params(net.get_params())
    assert_type(net.copy(), hdl.Network)
    assert_type(net.to("cpu"), hdl.Network)
    net.save(tmp / "net.npz")
    assert_type(hdl.Network.load(tmp / "net.npz"), hdl.Network)
    assert_type(hdl.Network.from_config(net.config()), hdl.Network)

    relu_net = hdl.Network([2, 8, 2], activation=["relu", "sigmoid"], dtype=np.float32, init="he", seed=0)
    callbacks: list[hdl.callbacks.Callback] = [
        hdl.callbacks.EarlyStopping(patience=50, monitor="train/objective"), StopAfter(3),
        hdl.callbacks.CSVLogger(tmp / "log.csv"), hdl.callbacks.JSONLinesLogger(str(tmp / "log.jsonl"))]
    seen: list[int] = []
    hist = hdl.stochastic_gradient(relu_net, X.astype(np.float32), Y.astype(np.float32), 0.1, epochs=5, batch_size=2,
                                   replacement=False, callbacks=callbacks, checkpoint=tmp / "ckpt.npz",
                                   on_epoch=lambda epoch, h: seen.append(epoch))
    assert_type(hist.epochs, list[int])
    assert_type(hist.train["objective"], list[float])
    assert_type(hist.lr, list[float])
    assert hist.epochs == seen == [1, 2, 3]

    assert_type(hdl.steepest_descent(net, X, Y, 0.5, 10, lam=1e-4), History)
    result = hdl.least_squares(net, X, Y, max_nfev=5)
    assert_type(result, LeastSquaresResult)
    assert_type(result.cost, float)
    assert_type(result.nfev, int)


def convolutional_model(tmp: Path) -> None:
    """Section 7: a Model of layers on NHWC batches, trained by hdl.train.fit."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((20, 8, 8, 1)).astype(np.float32)
    labels = rng.integers(0, 3, 20)
    model = hdl.Model([Conv2d(1, 4, 3, pad=1, rng=0), ReLU(), MaxPool2d(2), Dropout(0.1), Flatten(),
                       Dense(4 * 4 * 4, 3, "linear", dtype=np.float32)])
    assert_type(model.layers, list[Layer])
    assert_type(model.forward(x), NDArray[Any])
    assert_type(model(x), NDArray[Any])
    loss, scores = model.loss_and_gradients(x, labels, dropout_seed=1)
    assert_type(loss, float)
    assert_type(scores, NDArray[Any])
    model.step(0.01, momentum=0.9, weight_decay=1e-4)
    assert_type(model.predict(x), NDArray[np.intp])
    assert_type(model.predict_proba(x), NDArray[np.float64])
    assert_type(model.scores(x, batch_size=7), NDArray[Any])
    assert_type(model.summary((8, 8, 1)), str)
    assert_type(model.to("cpu"), hdl.Model)
    assert_type(model.dtype, np.dtype[Any])
    assert_type(model.config(), dict[str, Any])

    hist = hdl.train.fit(model, (x, labels), (x, labels), epochs=3, batch_size=5,
                         lr=hdl.schedules.PerEpoch([0.01, 0.005]), flips=True, progress=False, patience=5,
                         checkpoint=str(tmp / "model.npz"), callbacks=[StopAfter(2)])
    assert_type(hist.val["top1"], list[float])
    assert_type(hist.best_epoch, int)
    assert_type(hist.to_dict(), dict[str, Any])
    assert_type(History.from_dict(hist.to_dict()), History)
    assert len(hist.epochs) == 2
    hdl.train.fit(model, (x, labels), epochs=1, lr=hdl.schedules.Step(0.01, [10]), progress=False)
    hdl.train.fit(model, (x, labels), epochs=1, lr=[0.01], sampling="replacement", progress=False)
    assert_type(hdl.train.evaluate(model, x, labels), dict[str, float])
    assert_type(hdl.schedules.make(0.1)(1), float)
    model.save(tmp / "model2.npz", extra={"note": "typed"})
    loaded = hdl.Model.load(tmp / "model2.npz")
    assert_type(loaded, hdl.Model)
    assert_type(loaded.meta, dict[str, Any])

    model = hdl.Model([Flatten(), Dense(64, 16, "relu", dtype=np.float64, rng=1), UserSwish(), Scale(16),
                       Dense(16, 8, "linear", dtype=np.float64), LeakyReLU(0.1), Tanh(), Sigmoid(),
                       Dense(8, 3, "linear", dtype=np.float64)])
    x64 = x.astype(np.float64)
    assert_type(hdl.gradcheck(model, x64[:4], labels[:4]), dict[str, float])
    assert_type(hdl.gradcheck(Scale(5), rng.standard_normal((3, 5))), dict[str, float])
    assert_type(Scale(2), Scale)
    assert_type(AvgPool2d(2, stride=1).out_shape((1, 4, 4, 2)), tuple[int, int, int, int])


def functions() -> None:
    """hdl.ops, hdl.metrics, hdl.cuda: the functional API."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 6, 6, 3)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    b = np.zeros(4, np.float32)
    assert_type(hdl.ops.conv2d(x, w, b, stride=1, pad=(1, 1, 1, 1), layout="NHWC", relu=True), np.ndarray)
    assert_type(hdl.ops.relu(x), np.ndarray)
    assert_type(hdl.ops.sigmoid(x), np.ndarray)
    assert_type(hdl.ops.tanh_backward(x, x), np.ndarray)
    loss, dv = hdl.ops.softmax_log_loss(rng.standard_normal((5, 3)), [0, 1, 2, 0, 1])
    assert_type(loss, float)
    assert_type(hdl.metrics.top_k_error(dv, [0, 1, 2, 0, 1], k=2), float)
    assert_type(hdl.metrics.confusion_matrix([0, 1], [1, 1], 2), NDArray[np.int64])
    assert_type(hdl.cuda.is_available(), bool)
    assert_type(hdl.cuda.why_unavailable(), str | None)
    assert_type(hdl.get_num_threads(), int)
    assert_type(hdl.isa(), str)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        paper_network(Path(tmp))
        convolutional_model(Path(tmp))
    functions()


if __name__ == "__main__":
    main()
