"""The buffers a model lends its layers (hdl.layers.base.PingPong): in inference the layers' outputs, in
back-propagation their input gradients, take turns in two blocks, and nothing computed changes."""
import contextlib

import numpy as np
import pytest

from hdl.layers import (AvgPool2d, Conv2d, Dense, Dropout, Flatten, FullyConnected, Layer, MaxPool2d, ReLU, Sigmoid)
import hdl.model
from hdl.model import Model


@pytest.fixture(autouse=True)
def lend_at_every_size(monkeypatch):
    """The tests' batches are small: lend at every size (hdl.model.LEND_BYTES), as large batches do."""
    monkeypatch.setattr(hdl.model, "LEND_BYTES", 0)


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


class AddInput(Conv2d):
    """A user's layer that asks for its 'y' twice in one call (y = x + conv(x), finished in place)."""

    def forward(self, x, train=False, relu=False):
        h = super().forward(x, train)
        y = self._buffer("y", h.shape, x)  # the same memory as h
        y[...] = h
        y += x
        return y


class Gate(Layer):
    """A user's layer that takes its buffer and then, switched off, passes its input through (forward and
    backward)."""

    def forward(self, x, train=False):
        self._buffer("y", x.shape, x)
        return x

    def backward(self, dy, x, y):
        self._buffer("dx", x.shape, x)
        return dy


class Unlent(Model):
    """The same model, every layer in its own buffers (no lending)."""

    @contextlib.contextmanager
    def lending(self, name, layers=None):
        yield None


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
    assert own_buffers(Model(lent.layers[1:]), "dx") == []  # the first layer's dC/dx is its own (the caller's)
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


@pytest.mark.parametrize("make", [
    lambda: [Conv2d(3, 3, 3, pad=1, rng=0, dtype=np.float64), AddInput(3, 3, 3, pad=1, rng=1, dtype=np.float64),
             Flatten(), Dense(108, 3, "linear", rng=2)],
    lambda: [Conv2d(3, 4, 3, pad=1, rng=0, dtype=np.float64), Gate(), MaxPool2d(3, stride=1, pad=1), Gate(),
             Flatten(), Dense(144, 3, "linear", rng=2)]], ids=["buffer-asked-twice", "pass-through"])
def test_user_layers_that_ask_twice_or_pass_their_input_through(make):
    """A layer's buffer is the block its input is not in, the same one each time it asks: a layer may finish
    in place, or return its input, and the next layer still writes apart from what it reads."""
    x = np.random.default_rng(4).standard_normal((2, 6, 6, 3))
    lent, unlent = Model(make()), Unlent(make())
    np.testing.assert_array_equal(lent.forward(x), unlent.forward(x))
    labels = [0, 2]
    assert lent.loss_and_gradients(x, labels)[0] == unlent.loss_and_gradients(x, labels)[0]
    for a, b in zip(lent.parameter_gradients(), unlent.parameter_gradients()):
        np.testing.assert_array_equal(a, b)


def test_the_input_gradient_returned_outlives_other_passes():
    """dC/dx of cost_gradients(need_dx=True) (a GAN's dC/d(fake)) is the first layer's own buffer, as before the
    lending: training steps and inference on other batches leave it alone."""
    model = Model([Dense(6, 8, "relu", rng=0, dtype=np.float64), Dense(8, 8, "relu", rng=1, dtype=np.float64),
                   Dense(8, 3, "linear", rng=2, dtype=np.float64)])
    rng = np.random.default_rng(5)
    x, x2 = rng.standard_normal((4, 6)), rng.standard_normal((9, 6))
    _, dx = model.cost_gradients(x, lambda s: (0.0, np.ones_like(s)), need_dx=True)
    saved = dx.copy()
    model.loss_and_gradients(x2, [0, 1, 2, 0, 1, 2, 0, 1, 2])
    model.forward(x2)
    np.testing.assert_array_equal(dx, saved)


def test_on_the_gpu_emulated(monkeypatch):
    """Device arrays: the blocks are device memory, told apart by their pointers (the host emulation of the
    CUDA backend, tests/cuda_emu); host and device batches, training, dC/dx, moving back."""
    from cuda_emu import emu
    if emu.NVCC is None:
        pytest.skip("no nvcc to build the host emulation of the CUDA kernels")
    import hdl.cuda
    from cuda_emu import fake_cuda
    monkeypatch.setattr(hdl.cuda, "_cuda", fake_cuda)
    cuda_layers = lambda: [layer for layer in layers(np.float32) if not isinstance(layer, Halve)]  # noqa: E731
    lent, unlent = Model(cuda_layers()).to("cuda"), Unlent(cuda_layers()).to("cuda")
    rng = np.random.default_rng(6)
    for n in (4, 2, 6):
        x = rng.standard_normal((n, 12, 12, 3)).astype(np.float32)
        labels = rng.integers(0, 5, n)
        np.testing.assert_array_equal(lent.forward(x), unlent.forward(x))
        xd = hdl.cuda.DeviceArray.from_numpy(x)
        np.testing.assert_array_equal(lent.forward(xd).numpy(), unlent.forward(xd).numpy())
        assert lent.loss_and_gradients(x, labels, dropout_seed=1)[0] == \
            unlent.loss_and_gradients(x, labels, dropout_seed=1)[0]
        for a, b in zip(lent.parameter_gradients(), unlent.parameter_gradients()):
            np.testing.assert_array_equal(a.numpy(), b.numpy())
        np.testing.assert_array_equal(lent.input_gradient(x, labels)[1].numpy(),
                                      unlent.input_gradient(x, labels)[1].numpy())
    lent.to("cpu")
    assert "_pingpongs" not in lent.__dict__
    x = rng.standard_normal((3, 12, 12, 3)).astype(np.float32)
    np.testing.assert_array_equal(lent.forward(x), unlent.to("cpu").forward(x))


def test_small_batches_keep_their_own_buffers(monkeypatch):
    """Below LEND_BYTES a batch runs without the blocks (its arrays fit the caches, and lending costs a few
    microseconds a pass); from it on, with them."""
    monkeypatch.setattr(hdl.model, "LEND_BYTES", 1 << 16)
    model = Model(layers(np.float32))
    small = np.zeros((2, 12, 12, 3), np.float32)  # 3.5 KB
    model.forward(small)
    model.loss_and_gradients(small, [0, 1])
    assert "_pingpongs" not in model.__dict__
    large = np.zeros((40, 12, 12, 3), np.float32)  # 69 KB
    model.forward(large)
    model.loss_and_gradients(large, [0] * 40)
    assert set(model.__dict__["_pingpongs"]) == {"y", "dx"}


def test_buffers_and_blocks_start_on_cache_lines():
    """Every layer buffer and block starts at a 64-byte boundary (numpy's large arrays start 16 or 32 bytes past
    one), whatever the batch."""
    model = Model(layers(np.float32))
    rng = np.random.default_rng(7)
    for n in (3, 40, 5):
        x = rng.standard_normal((n, 12, 12, 3)).astype(np.float32)
        model.loss_and_gradients(x, rng.integers(0, 5, n))
        model.forward(x)
    blocks = [b for layer in model.layers for b in layer.__dict__.get("_buffers", {}).values()]
    blocks += [b for pp in model._pingpongs.values() for b in pp._blocks.values()]
    assert len(blocks) > 10 and all(b.ctypes.data % 64 == 0 for b in blocks)
