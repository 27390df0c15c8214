"""Section 8's random labels [37]: randomize_labels, and a network that learns random labels by heart while
its error on new points stays at chance."""
import numpy as np
import pytest

from hdl.experiments.random_labels import randomize_labels
from hdl.layers import Dense, ReLU
from hdl.model import Model
from hdl.train import fit


def test_randomize_labels_changes_the_fraction_asked():
    y = np.arange(1000) % 10
    noisy, changed = randomize_labels(y, 0.3, 10, seed=1)
    assert changed.sum() == 300 and np.all(noisy[~changed] == y[~changed])
    assert 0.2 < np.mean(noisy[changed] != y[changed]) * 0.3 < 0.3  # about 9/10 of the drawn labels differ
    assert np.array_equal(randomize_labels(y, 0.0, 10)[0], y)
    again, _ = randomize_labels(y, 0.3, 10, seed=1)
    assert np.array_equal(again, noisy)
    for bad, name in (((y, 1.5, 10), "fraction"), ((y, 0.5, 1), "classes"), ((y.astype(float), 0.5, 10), "y ")):
        with pytest.raises(ValueError, match=name):
            randomize_labels(*bad)


def test_a_network_memorises_random_labels_and_learns_nothing():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((300, 20)).astype(np.float32)
    xt = rng.standard_normal((2000, 20)).astype(np.float32)
    y, _ = randomize_labels(np.zeros(300, np.int64), 1.0, 5, seed=0)
    yt = rng.integers(0, 5, 2000)
    net = Model([Dense(20, 256, "linear", rng=0, dtype=np.float32), ReLU(), Dense(256, 5, "linear", rng=1, dtype=np.float32)])
    h = fit(net, (x, y), epochs=30, batch_size=50, lr=0.1, weight_decay=0, progress=False)
    assert h.train["top1"][0] > 0.6
    assert np.mean(net.predict(x) != y) < 0.1  # learnt by heart
    assert np.mean(net.predict(xt) != yt) > 0.7  # chance: 0.8
