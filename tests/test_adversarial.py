"""Section 8's adversarial perturbations: the input gradient through the whole network and through the
preprocessing against float64 central differences, FGSM lowering the accuracy of a trained model, the
one-pixel attack changing one pixel, and the Wilson interval."""
import numpy as np
import pytest

from hdl.convnet import cifar_net
from hdl.data.preprocess import apply_stats, apply_stats_vjp, matconvnet_cifar
from hdl.experiments import adversarial
from hdl.layers import AvgPool2d, Conv2d, Dense, Flatten, MaxPool2d, ReLU
from hdl.model import Model


def _central(f, x, entries, h=1e-5):
    flat = x.reshape(-1)
    out = []
    for k in entries:
        old = flat[k]
        flat[k] = old + h
        up = f(x)
        flat[k] = old - h
        down = f(x)
        flat[k] = old
        out.append((up - down) / (2 * h))
    return np.array(out)


def _stats(rng, n=40, side=32):
    images = rng.integers(0, 256, (n, side, side, 3)).astype(np.uint8)
    return matconvnet_cifar(images, images[:2], return_stats=True)[2]


def test_input_gradient_of_cifar_net_matches_central_differences():
    """Model.input_gradient through the paper's whole network (conv, fused max pool + ReLU, avg pools), float64."""
    rng = np.random.default_rng(0)
    net = cifar_net(seed=1, dtype=np.float64)
    for layer in net.layers:  # larger filters than MatConvNet's start, so that the scores depend visibly on x
        for p in layer.params().values():
            p *= 8
    x = rng.standard_normal((1, 32, 32, 3))
    labels = np.array([3])
    loss, dx = net.input_gradient(x, labels)
    assert dx.shape == x.shape and dx.dtype == np.float64
    entries = rng.choice(x.size, 10, replace=False)
    numeric = _central(lambda a: net.input_gradient(a, labels)[0], x.copy(), entries)
    np.testing.assert_allclose(dx.reshape(-1)[entries], numeric, rtol=1e-5, atol=1e-9 * np.abs(dx).max())
    assert loss == pytest.approx(net.input_gradient(x, labels)[0])


def test_preprocessing_vjp_matches_central_differences():
    rng = np.random.default_rng(1)
    stats = _stats(rng, n=300, side=8)
    images = rng.integers(0, 256, (2, 8, 8, 3)).astype(np.float64)
    images[1] = 100 + 0.2 * (images[1] - 128)  # low contrast: the floor of the contrast step holds
    dz = rng.standard_normal(images.shape)
    g = apply_stats_vjp(images, dz, stats)
    entries = rng.choice(images.size, 20, replace=False)
    numeric = _central(lambda a: float(np.sum(dz * apply_stats(a, stats))), images.copy(), entries, h=1e-3)
    np.testing.assert_allclose(g.reshape(-1)[entries], numeric, rtol=1e-6, atol=1e-9)


def test_pixel_gradient_matches_central_differences():
    rng = np.random.default_rng(2)
    stats = _stats(rng, side=8)
    net = Model([Conv2d(3, 4, 3, pad=1, scale=0.3, rng=0, dtype=np.float64), MaxPool2d(2), ReLU(), Flatten(),
                 Dense(4 * 4 * 4, 3, "linear", rng=1, dtype=np.float64)])
    images = rng.integers(0, 256, (3, 8, 8, 3)).astype(np.float64)
    labels = np.array([0, 1, 2])
    g = adversarial.pixel_gradient(net, images, labels, stats)

    def cost(a):
        return net.input_gradient(apply_stats(a, stats), labels)[0]
    entries = rng.choice(images.size, 20, replace=False)
    np.testing.assert_allclose(g.reshape(-1)[entries], _central(cost, images.copy(), entries, h=1e-4),
                               rtol=1e-5, atol=1e-10)


@pytest.fixture(scope="module")
def trained():
    """A small model trained on images whose class is which half (left, right) is brighter."""
    from hdl.train import fit
    rng = np.random.default_rng(3)
    n = 400
    y = rng.integers(0, 2, n)
    images = rng.integers(60, 196, (n, 8, 8, 3)).astype(np.float64)
    images[y == 0, :, :4] += 40
    images[y == 1, :, 4:] += 40
    stats = {"kind": "standardize", "mean": float(images.mean() / 255), "std": float(images.std() / 255)}
    images = images.astype(np.uint8)
    net = Model([Conv2d(3, 6, 3, pad=1, scale=0.1, rng=0), AvgPool2d(2), ReLU(), Flatten(),
                 Dense(4 * 4 * 6, 2, "linear", rng=1, dtype=np.float32)])
    fit(net, (apply_stats(images, stats), y), epochs=6, batch_size=50, lr=0.05, weight_decay=0, progress=False)
    return net, images, y, stats


def test_fgsm_lowers_accuracy_and_stays_within_eps(trained):
    net, images, y, stats = trained
    clean = np.mean(adversarial.predict(net, images, stats) == y)
    assert clean > 0.9
    rows = adversarial.fgsm_sweep(net, images, y, stats, [0.0, 0.05, 0.2])
    assert rows[0][1] == pytest.approx(clean)
    assert rows[2][1] < 0.3 and rows[2][1] < rows[1][1] < clean  # accuracy falls as eps grows
    adv = adversarial.fgsm(net, images, y, stats, 0.05)
    assert np.abs(adv - images).max() <= 255 * 0.05 + 1e-3 and adv.min() >= 0 and adv.max() <= 255
    hit = adversarial.fgsm_sweep(net, images[y == 0], y[y == 0], stats, [0.2], target=1)[0][2]
    assert hit > 0.7  # the targeted form sends class 0 to class 1


def test_one_pixel_attack_changes_one_pixel(trained):
    net, images, y, stats = trained
    r = adversarial.one_pixel_attack(net, images[0], int(y[0]), stats, maxiter=3, popsize=10, seed=0)
    changed = np.any(r["image"] != images[0], axis=-1)
    assert changed.sum() <= 1
    assert r["probability_after"] <= r["probability_before"] + 1e-9  # DE keeps its best, the clean pixel included
    assert r["success"] == (r["predicted"] != y[0])


def test_wilson_interval():
    low, high = adversarial.wilson_interval(0, 10)
    assert low == 0 and 0.25 < high < 0.32  # 0.2775
    low, high = adversarial.wilson_interval(50, 100)
    assert low == pytest.approx(0.4038, abs=1e-3) and high == pytest.approx(0.5962, abs=1e-3)
    with pytest.raises(ValueError, match="successes"):
        adversarial.wilson_interval(11, 10)


def test_bad_arguments_are_named(trained):
    net, images, y, stats = trained
    with pytest.raises(ValueError, match="eps"):
        adversarial.fgsm(net, images, y, stats, 2.0)
    with pytest.raises(ValueError, match="labels"):
        adversarial.fgsm(net, images, y[:3], stats, 0.1)
    with pytest.raises(ValueError, match="dz"):
        apply_stats_vjp(images, np.zeros((1, 2)), stats)
