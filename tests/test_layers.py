"""The one layer protocol: a user's layers train, check, save and load by name; every built-in layer
passes hdl.gradcheck; the model's results belong to the caller."""
import numpy as np
import pytest

import hdl
from hdl.layers import (AvgPool2d, Conv2d, Dense, Dropout, Flatten, FullyConnected, Layer, LeakyReLU, MaxPool2d,
                        ReLU, Sigmoid, Tanh)
from hdl.model import Model


class Swish(Layer):
    """x * sigmoid(x): a user's layer with forward and backward only."""

    def forward(self, x):
        return x / (1 + np.exp(-x))

    def backward(self, dy, x, y):
        s = 1 / (1 + np.exp(-x))
        return dy * (s + x * s * (1 - s))


class Scale(Layer):
    """A learnable scale per channel: a user's layer with a parameter."""

    def __init__(self, channels, dtype=np.float32):
        self.channels = channels
        self.gamma = np.ones(channels, dtype)

    def params(self):
        return {"gamma": self.gamma}

    def forward(self, x, train=False):
        return x * self.gamma

    def backward(self, dy, x, y, need_dx=True):
        self.grads["gamma"] = (dy * x).reshape(-1, self.channels).sum(axis=0)
        return dy * self.gamma


def small_model(dtype=np.float32, seed=0):
    rng = np.random.default_rng(seed)
    return Model([Conv2d(1, 4, 3, pad=1, init="he", rng=rng, dtype=dtype), Swish(), Scale(4, dtype), MaxPool2d(2),
                  Flatten(), Dense(4 * 4 * 4, 16, "linear", rng=rng, dtype=dtype), ReLU(),
                  Dense(16, 3, "linear", rng=rng, dtype=dtype)])


def test_user_layers_train_check_save_and_load(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((24, 8, 8, 1)).astype(np.float32)
    labels = (x[:, :4].sum(axis=(1, 2, 3)) > 0).astype(np.int64) + (x[:, 4:].sum(axis=(1, 2, 3)) > 0)
    model = small_model()
    first, _ = model.loss_and_gradients(x, labels)
    for _ in range(60):
        model.loss_and_gradients(x, labels)
        model.step(lr=0.05, momentum=0.9)
    last, _ = model.loss_and_gradients(x, labels)
    assert last < 0.5 * first
    assert not np.all(model.layers[2].gamma == 1)  # the user's parameter trained
    assert "Swish()" in repr(model) and "Scale(channels=4)" in repr(model)
    summary = model.summary((8, 8, 1))
    assert "(8, 8, 4)" in summary and "(4, 4, 4)" in summary and f"{sum(p.size for p in model.parameters()):,}" in summary
    model.save(tmp_path / "m.npz", extra={"note": "user layers"})
    again = Model.load(tmp_path / "m.npz")
    assert isinstance(again, Model) and again.meta["note"] == "user layers"
    np.testing.assert_array_equal(again.forward(x), model.forward(x))
    hdl.gradcheck(Swish(), rng.standard_normal((2, 3, 3, 2)))
    hdl.gradcheck(Scale(2, np.float64), rng.standard_normal((2, 3, 3, 2)))
    hdl.gradcheck(small_model(np.float64), rng.standard_normal((3, 8, 8, 1)))


def test_unknown_layer_names_the_type(tmp_path):
    model = Model([Flatten(), Dense(4, 2, "linear", dtype=np.float32)])
    model.save(tmp_path / "m.npz")
    import json
    with np.load(tmp_path / "m.npz") as data:
        meta = json.loads(str(data["meta"]))
        arrays = {k: data[k] for k in data.files if k != "meta"}
    meta["network"]["layers"][0]["type"] = "Nowhere"
    np.savez(tmp_path / "bad.npz", meta=np.array(json.dumps(meta)), **arrays)
    with pytest.raises(ValueError, match="unknown layer type 'Nowhere'"):
        Model.load(tmp_path / "bad.npz")


def test_a_wrong_backward_fails_gradcheck():
    class Wrong(Swish):
        def backward(self, dy, x, y):
            return dy * 0.9 / (1 + np.exp(-x))

    with pytest.raises(hdl.GradcheckError, match=r"dx\["):
        hdl.gradcheck(Wrong(), np.random.default_rng(0).standard_normal((2, 5)))
    with pytest.raises(TypeError, match="float64"):
        hdl.gradcheck(Dense(3, 2, dtype=np.float32), np.ones((1, 3)))


LAYERS = [  # (layer, input shape): awkward shapes among them (stride 2, asymmetric padding, overhanging windows)
    (lambda: Conv2d(3, 4, 3, stride=2, pad=(1, 0, 2, 1), init="he", rng=0, dtype=np.float64), (2, 7, 6, 3)),
    (lambda: Conv2d(2, 3, 1, init="he", rng=1, dtype=np.float64), (1, 4, 5, 2)),
    (lambda: FullyConnected(2, 5, input_size=(3, 2), init="he", rng=2, dtype=np.float64), (3, 3, 2, 2)),
    (lambda: Dense(6, 4, "sigmoid", rng=3), (5, 6)),
    (lambda: Dense(6, 4, "leaky_relu", rng=4), (5, 6)),
    (lambda: Dense(12, 3, "linear", rng=5), (2, 2, 3, 2)),
    (lambda: AvgPool2d(3, 2, (0, 1, 0, 1)), (2, 6, 5, 3)),
    (lambda: MaxPool2d(2), (2, 4, 6, 3)),
    (lambda: Sigmoid(), (2, 3, 3, 2)),
    (lambda: Tanh(), (2, 3, 3, 2)),
    (lambda: LeakyReLU(0.1), (2, 3, 3, 2)),
    (lambda: Flatten(), (2, 3, 3, 2)),
]


@pytest.mark.parametrize("make,shape", LAYERS, ids=[f"{i}" for i in range(len(LAYERS))])
def test_built_in_layers_pass_gradcheck(make, shape):
    layer = make()
    x = np.random.default_rng(len(shape)).permutation(np.prod(shape)).reshape(shape) / np.prod(shape) - 0.37
    report = hdl.gradcheck(layer, x)  # distinct values: a max and a kink are never tied
    assert report["dx"] <= 1.0


def test_results_belong_to_the_caller_and_predict_gives_labels(tmp_path):
    model = small_model()
    rng = np.random.default_rng(2)
    x1, x2 = rng.standard_normal((2, 5, 8, 8, 1)).astype(np.float32)
    a = model.forward(x1)
    b = model.forward(x2)
    assert not np.array_equal(a, b)
    np.testing.assert_array_equal(model.predict(x1), a.argmax(axis=1))
    p = model.predict_proba(x1)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_array_equal(p.argmax(axis=1), a.argmax(axis=1))


def test_network_is_built_on_the_same_dense_layers():
    net = hdl.Network([3, 5, 2], activation=["relu", "sigmoid"], seed=0)
    assert isinstance(net, Model) and all(type(layer) is Dense for layer in net.layers)
    assert "(5,)" in net.summary((3,)) and "32 parameters" in net.summary((3,))
    X = np.random.default_rng(0).standard_normal((3, 7))
    model = Model(net.layers)  # the very layers, in a model on rows
    np.testing.assert_allclose(model.forward(np.ascontiguousarray(X.T)), net.forward(X).T, rtol=1e-13)
    np.testing.assert_array_equal(net.predict(X), net.scores(X).argmax(axis=1))  # labels of the columns
    np.testing.assert_allclose(net.predict_proba(X).sum(axis=1), 1.0, rtol=1e-12)


def test_layer_defaults():
    s = Scale(3)
    assert s.lr_mults == (1.0,) and s.decay_mults == (1.0,)
    s.lr_mults = (0.5,)
    assert s.lr_mults == (0.5,)
    assert Dropout(0.3).config() == {"type": "Dropout", "rate": 0.3}

    class Forgetful(Layer):
        def __init__(self, k):
            self.other = k

    with pytest.raises(TypeError, match="'k' is not stored"):
        Forgetful(2).config()


def test_backend_follows_the_arrays_and_models_stay_where_they_are():
    from hdl import backend, ops
    assert backend.ops_for(np.ones(2)) is ops and backend.ops_for("cpu") is ops
    assert backend.device_of(np.ones(2)) == "cpu"
    with pytest.raises(TypeError, match="numpy array or an hdl.cuda.DeviceArray"):
        backend.ops_for([1.0, 2.0])
    with pytest.raises(ValueError, match="device must be one of"):
        backend.ops_for("tpu")
    model = hdl.Model([hdl.layers.Flatten(), hdl.Dense(4, 3, "relu", rng=0, dtype=np.float32)])
    assert model.device == "cpu" and model.to("cpu") is model
    with pytest.raises(ValueError, match="device must be one of"):
        model.to("gpu")
    with pytest.raises(ValueError, match="on the host or the model's device"):
        model.forward([[1.0, 2.0, 3.0, 4.0]])
