"""Section 8's on-the-fly corrector [13]: the whitening, a corrector that fixes its error and changes few other
points (stochastic separation in high dimension), and Model.features."""
import numpy as np
import pytest

from hdl.experiments.corrector import fit_corrector, whitening
from hdl.layers import Dense, ReLU
from hdl.model import Model


def test_whitening_gives_identity_covariance():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((500, 6)) @ rng.standard_normal((6, 6)) + 3
    mu, Wh = whitening(X)
    np.testing.assert_allclose(mu, X.mean(axis=0))
    np.testing.assert_allclose(Wh @ np.cov(X, rowvar=False) @ Wh.T, np.eye(6), atol=1e-9)


def test_corrector_fixes_its_target_and_changes_few_others():
    """Features of 64 dimensions (as cifar_net's last hidden layer), non-negative and correlated: the corrector
    fires on its error and on under 1% of fresh points from the same distribution."""
    rng = np.random.default_rng(1)
    A = rng.standard_normal((64, 64)) / 8
    draw = lambda n: np.maximum(rng.standard_normal((n, 64)) @ A + 0.3, 0)  # noqa: E731
    reference, test = draw(4000), draw(4000)
    predicted = rng.integers(0, 10, len(test))
    error = draw(1)[0]
    c = fit_corrector(reference, error, label=7)
    assert c.fires(error[None])[0] and c.separated
    new = c.apply(np.vstack([error, test]), np.concatenate([[3], predicted]))
    assert new[0] == 7
    assert np.mean(new[1:] != predicted) < 0.01
    assert np.mean(c.fires(reference)) == 0  # separated from every reference point


def test_corrector_arguments():
    rng = np.random.default_rng(2)
    ref = rng.standard_normal((50, 4))
    with pytest.raises(ValueError, match="error"):
        fit_corrector(ref, np.zeros(5), 1)
    with pytest.raises(ValueError, match="label"):
        fit_corrector(ref, np.ones(4), -1)
    with pytest.raises(ValueError, match="reference"):
        whitening(np.zeros(4))


def test_model_features_are_the_last_hidden_layer():
    rng = np.random.default_rng(3)
    net = Model([Dense(5, 7, "linear", rng=0, dtype=np.float32), ReLU(), Dense(7, 3, "linear", rng=1, dtype=np.float32)])
    x = rng.standard_normal((11, 5)).astype(np.float32)
    f = net.features(x, 2, batch_size=4)
    W, b = net.layers[0].W, net.layers[0].b
    np.testing.assert_allclose(f, np.maximum(x @ W.T + b, 0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(f @ net.layers[2].W.T + net.layers[2].b, net.forward(x), rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="upto"):
        net.features(x, 4)
