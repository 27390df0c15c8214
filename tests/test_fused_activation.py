"""Activations applied in the convolution's store (ops.conv2d(activation=...)) on every path, and the Model's
fusion of a Conv2d or linear Dense layer with the activation layer after it."""
import numpy as np
import pytest

import hdl
from hdl import ops
from hdl.layers import Conv2d, Dense, Flatten, FullyConnected, LeakyReLU, MaxPool2d, ReLU, Sigmoid, Tanh
from hdl.layers.pointwise import activation_of
from hdl.reference import cnn

# sigma in float64 (the oracle's), by the textbook formulas
SIGMA = {"linear": lambda z, s: z, "relu": lambda z, s: np.maximum(z, 0), "leaky_relu": lambda z, s: np.where(z > 0, z, s * z),
         "sigmoid": lambda z, s: 1 / (1 + np.exp(-z)), "tanh": lambda z, s: np.tanh(z),
         "step": lambda z, s: (z > 0).astype(z.dtype)}

# (path, environment, x (N, C, H, W), w (O, C, kh, kw), stride, pad): each of conv2d_forward's paths
PATHS = [
    ("one GEMM, 1x1", {}, (2, 16, 6, 5), (24, 16, 1, 1), 1, 0),
    ("one GEMM, a filter covering its input", {}, (3, 8, 4, 4), (40, 8, 4, 4), 1, 0),
    ("implicit GEMM", {"HDL_CONV_IMPLICIT": "1", "HDL_CONV_WINOGRAD": "0"}, (2, 5, 9, 8), (20, 5, 3, 3), 2, (1, 0, 2, 1)),
    ("direct", {"HDL_CONV_IMPLICIT": "0", "HDL_CONV_WINOGRAD": "0"}, (2, 6, 9, 7), (37, 6, 5, 3), 1, 2),
    ("Winograd F(4x4, 3x3)", {"HDL_CONV_WINOGRAD": "1"}, (2, 16, 12, 11), (24, 16, 3, 3), 1, 1),
    ("space to depth", {"HDL_CONV_WINOGRAD": "1"}, (2, 16, 16, 16), (32, 16, 4, 4), 2, 1),
    ("one input channel", {}, (3, 1, 14, 13), (6, 1, 5, 5), 1, 2),
]
ACTIVATIONS = [("sigmoid", 0.0), ("tanh", 0.0), ("leaky_relu", 0.1), ("step", 0.0), ("relu", 0.0), ("linear", 0.0)]


@pytest.fixture
def env(monkeypatch):
    monkeypatch.setenv("HDL_AUTOTUNE", "0")  # the paths the switches force, not measured ones

    def set_(values):
        for k, v in values.items():
            monkeypatch.setenv(k, v)
    return set_


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("path,switches,xs,ws,stride,pad", PATHS, ids=[p[0] for p in PATHS])
def test_conv_activation_on_every_path(env, path, switches, xs, ws, stride, pad, dtype):
    """sigma(conv + b) against the oracle's convolution and the float64 formula, and against the
    stand-alone activation of the same path's linear output (the same z: equal to its last place)."""
    env(switches)
    rng = np.random.default_rng(sum(xs) + sum(ws))
    x, w, b = (rng.standard_normal(s).astype(dtype) for s in (xs, ws, ws[:1]))
    z64 = cnn.conv2d(*(a.astype(np.float64) for a in (x, w, b)), stride, pad)
    z = ops.conv2d(x, w, b, stride, pad)
    tol = 1e-12 if dtype == np.float64 else 2e-5
    for name, slope in ACTIVATIONS:
        y = ops.conv2d(x, w, b, stride, pad, activation=name, slope=slope)
        assert y.dtype == dtype and y.shape == z.shape
        if name == "step":  # rounding may flip it where z is near 0
            sure = np.abs(z64) > 1e-3
            np.testing.assert_array_equal(y[sure], SIGMA[name](z64, slope)[sure], err_msg=path)
        else:
            np.testing.assert_allclose(y, SIGMA[name](z64, slope), rtol=tol, atol=tol * max(1.0, np.abs(z64).max()),
                                       err_msg=f"{path}: {name}")
        alone = {"linear": z, "relu": ops.relu(z), "leaky_relu": ops.relu(z, slope), "step": (z > 0).astype(dtype)}
        want = alone[name] if name in alone else getattr(ops, name)(z)
        np.testing.assert_allclose(y, want, rtol=4 * np.finfo(dtype).eps, atol=4 * np.finfo(dtype).eps,
                                   err_msg=f"{path}: {name} against the stand-alone activation")


@pytest.mark.parametrize("path,switches,xs,ws,stride,pad", PATHS, ids=[p[0] for p in PATHS])
def test_conv_activation_keeps_nan(env, path, switches, xs, ws, stride, pad):
    """A NaN in x reaches y through every activation but the step, fused as unfused (the ReLUs in registers
    included: NaN < 0 is false)."""
    env(switches)
    rng = np.random.default_rng(5)
    x, w, b = (rng.standard_normal(s) for s in (xs, ws, ws[:1]))
    x[-1, 0, xs[2] // 2, xs[3] // 2] = np.nan
    z = ops.conv2d(x, w, b, stride, pad)
    assert np.isnan(z).any()
    for name, slope in ACTIVATIONS:
        y = ops.conv2d(x, w, b, stride, pad, activation=name, slope=slope)
        if name == "step":
            assert not np.isnan(y).any()
        else:
            np.testing.assert_array_equal(np.isnan(y), np.isnan(z), err_msg=f"{path}: {name}")


def test_conv_activation_in_the_nhwc_layout_and_into_out():
    rng = np.random.default_rng(3)
    x, w, b = rng.standard_normal((2, 7, 6, 3)), rng.standard_normal((5, 3, 3, 3)), rng.standard_normal(5)
    out = np.empty((2, 3, 3, 5))
    y = ops.conv2d(x, w, b, 2, (1, 0, 0, 1), layout="NHWC", activation="tanh", out=out)
    assert y is out or np.shares_memory(y, out)
    z = ops.conv2d(x, w, b, 2, (1, 0, 0, 1), layout="NHWC")
    np.testing.assert_allclose(out, np.tanh(z), rtol=1e-13, atol=1e-15)


def test_conv_activation_refuses_bad_settings():
    x, w, b = np.ones((1, 2, 4, 4)), np.ones((3, 2, 3, 3)), np.ones(3)
    with pytest.raises(ValueError, match="unknown activation 'softplus'"):
        ops.conv2d(x, w, b, activation="softplus")
    with pytest.raises(ValueError, match="two activations"):
        ops.conv2d(x, w, b, relu=True, activation="sigmoid")
    with pytest.raises(ValueError, match="slope must be finite"):
        ops.conv2d(x, w, b, activation="leaky_relu", slope=float("nan"))
    with pytest.raises(ValueError, match="unknown activation code 6"):
        hdl._C.conv2d(np.ones((1, 4, 4, 2)), w, b, 1, 1, 0, 0, 0, 0, 6, 0.0)
    with pytest.raises(ValueError, match="unknown activation code 340282366920938463463374607431768211456"):
        hdl._C.conv2d(np.ones((1, 4, 4, 2)), w, b, 1, 1, 0, 0, 0, 0, 2**128, 0.0)
    with pytest.raises(ValueError, match="slope must be finite"):
        hdl._C.conv2d(np.ones((1, 4, 4, 2)), w, b, 1, 1, 0, 0, 0, 0, 3, float("inf"))
    with pytest.raises(ValueError, match="activation must be an int code .* got True"):  # once the `relu` flag
        hdl._C.conv2d(np.ones((1, 4, 4, 2)), w, b, 1, 1, 0, 0, 0, 0, True, 0.0)


def test_activation_of_names_hdl_own_layers_only():
    class _MySigmoid(Sigmoid):  # a user's subclass may compute something else: never fused
        def forward(self, x, train=False):
            return 2 * super().forward(x, train)
    assert activation_of(ReLU()) == ("relu", 0.0)
    assert activation_of(LeakyReLU(0.2)) == ("leaky_relu", 0.2)
    assert activation_of(Sigmoid()) == ("sigmoid", 0.0) and activation_of(Tanh()) == ("tanh", 0.0)
    assert activation_of(_MySigmoid()) is None and activation_of(Flatten()) is None


# the same activation layers as subclasses, which the Model runs apart (activation_of: None); their names
# begin with _, so that they do not replace hdl's own in the registry of layer types
class _ReLU(ReLU):
    pass


class _LeakyReLU(LeakyReLU):
    pass


class _Sigmoid(Sigmoid):
    pass


class _Tanh(Tanh):
    pass


def _net(unfused: bool, dtype):
    relu, leaky, sigmoid, tanh = (_ReLU, _LeakyReLU, _Sigmoid, _Tanh) if unfused else (ReLU, LeakyReLU, Sigmoid, Tanh)
    return hdl.Model([
        Conv2d(3, 8, 3, pad=1, init="he", rng=0, dtype=dtype), sigmoid(),
        Conv2d(8, 16, 3, stride=2, pad=(1, 0, 0, 1), init="he", rng=1, dtype=dtype), tanh(),
        MaxPool2d(2), Conv2d(16, 16, 1, init="he", rng=2, dtype=dtype), leaky(0.1),
        FullyConnected(16, 12, (2, 2), init="he", rng=3, dtype=dtype), relu(),
        Flatten(), Dense(12, 9, "linear", rng=4, dtype=dtype), tanh(),
        Dense(9, 7, "tanh", rng=5, dtype=dtype), Dense(7, 5, "linear", rng=6, dtype=dtype)])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_model_fuses_activations_to_the_same_answers(dtype):
    """A Model whose Conv2d and linear Dense layers take in the sigmoid, tanh, leaky ReLU and ReLU after them
    gives the unfused model's outputs, loss and gradients, and trains the same."""
    fused, unfused = _net(False, dtype), _net(True, dtype)
    activations = [layer for layer in fused.layers if activation_of(layer) is not None]
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 9, 8, 3)).astype(dtype)
    labels = rng.integers(0, 5, 6)
    tol = dict(rtol=1e-11, atol=1e-12) if dtype == np.float64 else dict(rtol=2e-5, atol=2e-6)
    np.testing.assert_allclose(fused.forward(x), unfused.forward(x), **tol)
    for _ in range(3):
        (lf, gf), (lu, gu) = fused.loss_and_gradients(x, labels), unfused.loss_and_gradients(x, labels)
        assert lf == pytest.approx(lu, rel=tol["rtol"])
        np.testing.assert_allclose(gf, gu, **tol)
        for a, b in zip(fused.layers, unfused.layers):
            for name in a.grads:
                np.testing.assert_allclose(a.grads[name], b.grads[name], **tol, err_msg=f"{a!r} {name}")
        fused.step(0.05, 0.9)
        unfused.step(0.05, 0.9)
    np.testing.assert_allclose(fused.forward(x), unfused.forward(x), **tol)
    # each activation ran inside the layer before it (it never made an output buffer of its own); apart, each did
    assert len(activations) == 5 and not any("_buffers" in vars(layer) for layer in activations)
    assert all("_buffers" in vars(layer) for layer in unfused.layers if isinstance(layer, (_ReLU, _Sigmoid, _Tanh)))


def test_a_subclass_whose_forward_takes_no_activation_runs_apart():
    """A user's Conv2d written to the older protocol (forward(x, train, relu)) keeps working before a sigmoid:
    the model runs the two apart."""
    class _Shifted(Conv2d):
        def forward(self, x, train=False, relu=False):
            return super().forward(x, train, relu) + 1.0

    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 5, 5, 3))
    layer = _Shifted(3, 4, 3, pad=1, init="he", rng=0, dtype=np.float64)
    model = hdl.Model([layer, Sigmoid(), Flatten(), Dense(100, 3, "linear", rng=1, dtype=np.float64)])
    z = ops.conv2d(x, layer.w, layer.b, 1, 1, layout="NHWC") + 1.0
    want = 1 / (1 + np.exp(-z.reshape(2, -1))) @ model.layers[3].W.T + model.layers[3].b
    np.testing.assert_allclose(model.forward(x), want, rtol=1e-12)
    loss, _ = model.loss_and_gradients(x, [0, 2])
    assert np.isfinite(loss)


def test_layers_refuse_two_activations():
    x = np.ones((1, 4, 4, 2))
    with pytest.raises(ValueError, match="ask for two"):
        Conv2d(2, 3, 3, dtype=np.float64).forward(x, relu=True, activation=("tanh", 0.0))
    with pytest.raises(ValueError, match="has its own activation"):
        Dense(32, 3, "sigmoid", dtype=np.float64).forward(x, activation=("tanh", 0.0))


def test_model_gradients_through_fused_activations_by_central_differences():
    """float64 central differences of the loss against the fused model's gradients."""
    model = _net(False, np.float64)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 9, 8, 3))
    labels = rng.integers(0, 5, 3)
    model.loss_and_gradients(x, labels)
    h = 1e-6
    for layer in model.layers:
        for name, p in layer.params().items():
            grad = layer.grads[name].copy()
            for flat in rng.choice(p.size, min(4, p.size), replace=False):
                idx = np.unravel_index(flat, p.shape)
                old = p[idx]
                p[idx] = old + h
                up = model.loss_and_gradients(x, labels)[0]
                p[idx] = old - h
                down = model.loss_and_gradients(x, labels)[0]
                p[idx] = old
                assert grad[idx] == pytest.approx((up - down) / (2 * h), rel=1e-5, abs=1e-8), (layer, name, idx)


def test_dense_tanh_layer_matches_the_formula():
    layer = Dense(5, 4, "tanh", rng=0)
    x = np.random.default_rng(2).standard_normal((3, 5))
    np.testing.assert_allclose(layer.forward(x), np.tanh(x @ layer.W.T + layer.b), rtol=1e-13, atol=1e-15)
    dy = np.ones((3, 4))
    y = layer.forward(x)
    dx = layer.backward(dy, x, y)
    np.testing.assert_allclose(dx, (dy * (1 - y**2)) @ layer.W, rtol=1e-12)
