"""ConvNet layers and networks: gradients by central differences (float64), fusion, files."""
import numpy as np
import pytest

import hdl

from hdl import ops
from hdl.convnet import (AvgPool2d, Conv2d, ConvNet, Dropout, FullyConnected, LeakyReLU, MaxPool2d, ReLU, Sigmoid,
                         cifar_net)


def tiny_net(dropout=0.0, dtype=np.float64):
    rng = np.random.default_rng(0)
    layers = [Conv2d(3, 4, 3, 1, 1, init="he", rng=rng, dtype=dtype), ReLU(), MaxPool2d(3, 2, (0, 1, 0, 1)),
              Conv2d(4, 5, 3, 2, (1, 0, 0, 1), init="glorot", rng=rng, dtype=dtype), LeakyReLU(0.1),
              AvgPool2d(2, 1), Sigmoid(), Conv2d(5, 3, (2, 1), init="he", rng=rng, dtype=dtype)]
    if dropout:
        layers.insert(3, Dropout(dropout))
    for layer in layers:  # nonzero biases, so that their gradients are tested too
        if isinstance(layer, Conv2d):
            layer.b[...] = rng.standard_normal(layer.b.shape) * 0.1
    return ConvNet(layers)


@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_network_gradients_by_central_differences(dropout):
    net = tiny_net(dropout)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 12, 11, 3))
    labels = np.array([0, 2, 1])
    scores = net.forward(x)
    assert scores.shape == (3, 3)
    hdl.gradcheck(net, x, labels, samples=6)  # the same dropout masks in every pass (dropout_seed 0)


def test_fused_conv_relu_equals_the_separate_layers():
    net = tiny_net()
    x = np.random.default_rng(2).standard_normal((2, 12, 11, 3))
    conv, relu = net.layers[0], net.layers[1]
    separate = relu.forward(ops.conv2d(x, conv.w, conv.b, 1, 1, layout="NHWC").copy())
    acts = net._forward(x, train=False)
    np.testing.assert_allclose(acts[2], separate, rtol=1e-14)


def test_max_pool_then_relu_runs_fused_with_exact_gradients():
    """MatConvNet's order conv -> max pool -> ReLU: the pool takes the ReLU in (its argmax marks the cut),
    the ReLU layer's own backward pass is skipped, and the gradients still match central differences."""
    rng = np.random.default_rng(5)
    net = ConvNet([Conv2d(2, 3, 3, 1, 1, init="he", rng=rng, dtype=np.float64), MaxPool2d(3, 2, (0, 1, 0, 1)),
                   ReLU(), FullyConnected(3, 4, (4, 4), init="he", rng=rng, dtype=np.float64)])
    net.layers[0].b[...] = [0.3, -0.2, 0.1]
    x, labels = rng.standard_normal((2, 8, 8, 2)), np.array([1, 3])
    acts = net._forward(x, train=False)
    np.testing.assert_array_equal(acts[2], np.maximum(ops.max_pool2d(acts[1], 3, 2, (0, 1, 0, 1), layout="NHWC"), 0))
    hdl.gradcheck(net, x, labels, samples=10**6)  # every entry of every parameter


def test_dropout_is_identity_at_test_time_and_seeded_in_training():
    d = Dropout(0.5)
    x = np.ones((4, 3, 3, 2))
    assert d.forward(x, train=False) is x
    d.seed = 3
    a = d.forward(x, train=True).copy()
    d.seed = 3
    np.testing.assert_array_equal(d.forward(x, train=True), a)
    assert set(np.unique(a)) <= {0.0, 2.0}
    with pytest.raises(ValueError, match="rate"):
        Dropout(1.0)


def test_cifar_net_matches_the_paper():
    net = cifar_net()
    shapes = [p.shape for p in net.parameters()]
    assert shapes == [(32, 3, 5, 5), (32,), (32, 32, 5, 5), (32,), (64, 32, 5, 5), (64,), (64, 64, 4, 4), (64,),
                      (10, 64, 1, 1), (10,)]
    assert np.std(net.parameters()[0]) == pytest.approx(0.01, rel=0.1)
    assert np.std(net.parameters()[2]) == pytest.approx(0.05, rel=0.05)
    assert net.multipliers() == ([0.1, 2.0] * 4 + [0.01, 0.2], [1.0] * 10)
    assert net.forward(np.zeros((2, 32, 32, 3), np.float32)).shape == (2, 10)
    assert sum(isinstance(layer, Dropout) for layer in cifar_net(dropout=True).layers) == 4


def test_fully_connected_layer_is_W_a_plus_b(tmp_path):
    rng = np.random.default_rng(3)
    fc = FullyConnected(4, 6, input_size=(2, 3), init="he", rng=rng, dtype=np.float64)
    fc.b[...] = rng.standard_normal(6)
    x = rng.standard_normal((5, 2, 3, 4))
    W = fc.w.transpose(0, 2, 3, 1).reshape(6, -1)  # (out, h*w*C) in NHWC order
    np.testing.assert_allclose(fc.forward(x).reshape(5, 6), x.reshape(5, -1) @ W.T + fc.b, rtol=1e-13)
    net = ConvNet([fc, ReLU(), FullyConnected(6, 3, init="he", dtype=np.float64)])
    net.save(tmp_path / "fc.npz")
    again = ConvNet.load(tmp_path / "fc.npz")
    np.testing.assert_allclose(again.forward(x), net.forward(x), rtol=1e-15)


def test_save_and_load(tmp_path):
    net = tiny_net(0.2)
    net.velocities[0][...] = 1.5
    net.save(tmp_path / "n.npz", extra={"note": "x"}, with_velocities=True)
    again = ConvNet.load(tmp_path / "n.npz", with_velocities=True)
    meta = again.meta
    assert meta["note"] == "x"
    for a, b in zip(net.parameters() + net.velocities, again.parameters() + again.velocities):
        np.testing.assert_array_equal(a, b)
    x = np.random.default_rng(0).standard_normal((2, 12, 11, 3))
    np.testing.assert_array_equal(net.forward(x), again.forward(x))


def test_bad_inputs():
    net = tiny_net()
    with pytest.raises(ValueError, match=r"\(N, H, W, C\)"):
        net.forward(np.zeros((12, 11, 3)))
    with pytest.raises(TypeError, match="float32"):
        net.forward(np.zeros((1, 12, 11, 3), np.float32))
    with pytest.raises(ValueError, match="smaller than the window"):
        MaxPool2d(2, 2, 2)
    with pytest.raises(ValueError, match="unknown init"):
        Conv2d(1, 1, 1, init="zeros")
    with pytest.raises(ValueError, match="outside"):
        net.loss_and_gradients(np.zeros((2, 12, 11, 3)), np.array([0, 7]))


def test_cifar_net_golden_curve():
    """The first losses of the paper's network on a fixed batch, stored when this test was written
    (float32; the tolerance covers the instruction sets' different summation orders)."""
    net = cifar_net(seed=0)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((20, 32, 32, 3)).astype(np.float32)
    y = rng.integers(0, 10, 20)
    losses = []
    for _ in range(5):
        losses.append(net.loss_and_gradients(x, y)[0])
        net.step(0.05, 0.9, 1e-4)
    golden = [2.3022114761061845, 2.299427889151881, 2.2944636637941707, 2.287819289444419, 2.279605631151642]
    np.testing.assert_allclose(losses, golden, rtol=2e-5)


def _cached_bytes(net):
    return sum(a.nbytes for layer in net.layers for a in layer.__dict__.get("_buffers", {}).values())


def test_buffers_stay_those_of_the_largest_batch_whatever_the_batch_sizes():
    """Each layer keeps one grow-only block per buffer: batches of every size from 1 to 9 (and training
    between them) hold no more memory than batch 9 alone, and give the same scores as a fresh network."""
    net, fresh = tiny_net(dtype=np.float32), tiny_net(dtype=np.float32)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((9, 12, 11, 3)).astype(np.float32)
    net.loss_and_gradients(x, rng.integers(0, 3, 9))
    net.forward(x)
    largest = _cached_bytes(net)
    for n in range(1, 10):
        np.testing.assert_array_equal(net.forward(x[:n]), fresh.forward(x[:n]))
        net.loss_and_gradients(x[:n], rng.integers(0, 3, n))
    assert _cached_bytes(net) == largest


def test_forward_returns_an_array_the_next_call_does_not_overwrite():
    net = tiny_net(dtype=np.float32)
    x = np.random.default_rng(4).standard_normal((2, 12, 11, 3)).astype(np.float32)
    first = net.forward(x[:1])
    kept = first.copy()
    net.forward(x[1:])
    loss, scores = net.loss_and_gradients(x[1:], np.array([0]))
    net.forward(x[:1] + 1)
    np.testing.assert_array_equal(first, kept)
    assert not np.shares_memory(scores, net.forward(x[1:]))


@pytest.mark.filterwarnings("error")
def test_sigmoid_saturates_without_overflow_warnings():
    x = np.array([[[[-1000.0, -90.0, 0.0, 90.0, 1000.0]]]], np.float32)
    np.testing.assert_allclose(Sigmoid().forward(x).ravel(), [0.0, 0.0, 0.5, 1.0, 1.0], atol=1e-30)
