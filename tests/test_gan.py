"""Section 8's GAN [12]: the logistic loss and its gradient, the generator's gradient back-propagated through
the discriminator (Model.cost_gradients with need_dx) against float64 central differences, and a GAN that learns."""
import numpy as np
import pytest

from hdl.experiments import gan
from hdl.layers import Dense, Tanh
from hdl.losses import logistic_loss
from hdl.model import Model


def test_logistic_loss_value_and_gradient():
    rng = np.random.default_rng(0)
    s = rng.standard_normal((7, 1)) * 3
    t = rng.random((7, 1))
    C, g = logistic_loss(s, t)
    p = 1 / (1 + np.exp(-s))
    assert C == pytest.approx(np.mean(-t * np.log(p) - (1 - t) * np.log(1 - p)))
    h = 1e-6
    for k in range(7):
        e = np.zeros_like(s)
        e[k] = h
        assert g[k, 0] == pytest.approx((logistic_loss(s + e, t)[0] - logistic_loss(s - e, t)[0]) / (2 * h), rel=1e-6)
    C, g = logistic_loss(np.array([[1000.0], [-1000.0]]), 1.0)  # no overflow
    assert np.isfinite(C) and C == pytest.approx(500.0) and np.allclose(g, [[0.0], [-0.5]])
    with pytest.raises(ValueError, match="t "):
        logistic_loss(s, 2.0)
    with pytest.raises(ValueError, match="s must"):
        logistic_loss(np.zeros((3, 2)), 1.0)


def _nets():
    G = Model([Dense(3, 5, "leaky_relu", slope=0.2, rng=0, dtype=np.float64), Dense(5, 4, "linear", rng=1, dtype=np.float64),
               Tanh()])
    D = Model([Dense(4, 6, "leaky_relu", slope=0.2, rng=2, dtype=np.float64), Dense(6, 1, "linear", rng=3, dtype=np.float64)])
    return G, D


def test_generator_gradient_through_discriminator_matches_central_differences():
    rng = np.random.default_rng(1)
    G, D = _nets()
    z = rng.standard_normal((5, 3))

    def cost_G():
        return logistic_loss(D.forward(G.forward(z)), 1.0)[0]
    C, _ = G.cost_gradients(z, lambda images: D.cost_gradients(images, lambda s: logistic_loss(s, 1.0), need_dx=True))
    assert C == pytest.approx(cost_G())
    for layer in G.layers:
        for name, p in layer.params().items():
            flat, grad = p.reshape(-1), layer.grads[name].reshape(-1)
            for k in range(flat.size):
                old = flat[k]
                flat[k] = old + 1e-6
                up = cost_G()
                flat[k] = old - 1e-6
                down = cost_G()
                flat[k] = old
                assert grad[k] == pytest.approx((up - down) / 2e-6, rel=1e-5, abs=1e-10), (layer, name, k)


def test_gradients_checks_the_cost_it_is_given():
    G, D = _nets()
    with pytest.raises(ValueError, match="dC/d"):
        D.cost_gradients(np.zeros((2, 4)), lambda s: (0.0, np.zeros((2, 2))))


def test_gan_learns_a_pattern():
    """Real rows are one pattern plus small noise: after training, G's samples lie near it (far closer than at
    the start), and the two losses were recorded for every epoch."""
    rng = np.random.default_rng(2)
    pattern = np.where(rng.random(16) < 0.5, -0.8, 0.8).astype(np.float32)
    x = (pattern + 0.05 * rng.standard_normal((320, 16))).astype(np.float32)
    z = rng.standard_normal((200, 8)).astype(np.float32)
    G0 = gan.generator(8, 32, 16, seed=0)
    before = np.abs(G0.forward(z) - pattern).mean()
    G, D, history = gan.train_gan(x, epochs=6, batch_size=32, code=8, hidden=32, lr=0.05, seed=0)
    after = np.abs(G.forward(z) - pattern).mean()
    assert after < 0.3 * before and after < 0.2
    assert len(history["discriminator"]) == len(history["generator"]) == 6
    with pytest.raises(ValueError, match="x must"):
        gan.train_gan(x.astype(np.float64), epochs=1)
