"""The buffers a model lends its layers (hdl.layers.base.PingPong): in inference the layers' outputs, in
back-propagation their input gradients, take turns in two blocks, and nothing computed changes."""
import contextlib

import numpy as np
import pytest

from hdl.layers import (AvgPool2d, Conv2d, Dense, Dropout, Flatten, FullyConnected, Layer, MaxPool2d, ReLU, Sigmoid)
from hdl.model import Model


class Halve(Layer):
    """A user's layer that writes into a buffer of its own name 'y', as hdl's layers do."""

    def forward(self, x, train=False):
        y = self._buffer("y", x.shape, x)
        np.multiply(x, 0.5, out=y)
        return y

    def backward(self, dy, x, y):
        dx = self._buffer("dx", x.shape, x)
        np.multiply(dy, 0.5, out=dx)
        return dx


class Unlent(Model):
    """The same model, every layer in its own buffers (no lending)."""

    @contextlib.contextmanager
    def lending(self, name):
        yield


def layers(dtype, seed=0):
    """Fused conv+ReLU, an unfused activation, max and average pools, a user's layer, dropout (a no-op
    in inference), a view (Flatten) and dense layers: outputs of several sizes, some views of others."""
    return [Conv2d(3, 8, 3, pad=1, rng=seed, dtype=dtype), ReLU(), MaxPool2d(2), Halve(),
            Conv2d(8, 6, 3, stride=2, pad=(0, 1, 1, 0), rng=seed + 1, dtype=dtype), Sigmoid(), AvgPool2d(2, stride=1),
            Dropout(0.3), FullyConnected(6, 12, input_size=(2, 2), rng=seed + 2, dtype=dtype), ReLU(), Flatten(),
            Dense(12, 5, "linear", rng=seed + 3, dtype=dtype)]


def twins(dtype):
    return Model(layers(dtype)), Unlent(layers(dtype))


def own_buffers(model, name):
    return [key for layer in model.layers for key in layer.__dict__.get("_buffers", {}) if key[0] == name]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_inference_gives_what_every_layer_in_its_own_buffers_gives(dtype):
    lent, unlent = twins(dtype)
    rng = np.random.default_rng(1)
    for n in (4, 1, 7):  # growing, shrinking, growing again
        x = rng.standard_normal((n, 12, 12, 3)).astype(dtype)
        y = lent.forward(x)
        np.testing.assert_array_equal(y, unlent.forward(x))
        assert not np.shares_memory(y, lent.forward(x))  # the caller's own
    assert own_buffers(lent, "y") == []  # every output came from the model's two blocks
    blocks = lent._pingpongs["y"]._blocks
    assert len(blocks) == 2 and max(b.size for b in blocks.values()) == 7 * 12 * 12 * 8  # the largest output


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_back_propagation_gives_the_same_gradients(dtype):
    lent, unlent = twins(dtype)
    rng = np.random.default_rng(2)
    for n in (5, 2):
        x = rng.standard_normal((n, 12, 12, 3)).astype(dtype)
        labels = rng.integers(0, 5, n)
        assert lent.loss_and_gradients(x, labels, dropout_seed=3)[0] == \
            unlent.loss_and_gradients(x, labels, dropout_seed=3)[0]
        for a, b in zip(lent.parameter_gradients(), unlent.parameter_gradients()):
            np.testing.assert_array_equal(a, b)
        # dC/dx through the whole network (a lent block, valid until the next backward pass)
        np.testing.assert_array_equal(lent.input_gradient(x, labels)[1], unlent.input_gradient(x, labels)[1])
        assert lent.cost_gradients(x, lambda s: (0.0, np.ones_like(s)), need_dx=True)[1].shape == x.shape
    assert own_buffers(lent, "dx") == []
    assert len(lent._pingpongs["dx"]._blocks) == 2


def test_training_keeps_every_activation_and_lends_nothing_after():
    """Training's forward pass keeps each layer's output for backward (no lending there), and no layer is
    left holding the model's blocks when a pass ends, even one that raised."""
    model = Model(layers(np.float32))
    x = np.random.default_rng(3).standard_normal((3, 12, 12, 3)).astype(np.float32)
    model.loss_and_gradients(x, [0, 1, 2])
    assert own_buffers(model, "y")  # the activations backward read
    with pytest.raises(ValueError):
        model.forward(x[:, :5])  # too small for the dense layer at the end
    assert all("_lent" not in layer.__dict__ for layer in model.layers)
    np.testing.assert_array_equal(model.forward(x), Unlent(model.layers).forward(x))


def test_moving_the_model_drops_its_blocks():
    model = Model(layers(np.float32))
    model.forward(np.zeros((2, 12, 12, 3), np.float32))
    assert "_pingpongs" in model.__dict__
    model.to("cpu")  # already there: nothing moves
    assert "_pingpongs" in model.__dict__
    model.device = "cuda"  # as if it lived there: moving it to the CPU drops the blocks of the old device
    model.to("cpu")
    assert "_pingpongs" not in model.__dict__
