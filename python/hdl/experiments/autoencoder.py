"""Section 8's autoencoder: an encoder F to a small code and a decoder G back, trained so that
G(F(x)) reproduces x, by minimising the quadratic cost (3.3) sum ||x - G(F(x))||^2 with the
stochastic gradient method. A fully connected network in the paper's notation (columns are
images), on Fashion-MNIST (Debian's dataset-fashion-mnist) or, without it, CIFAR-10 in grey."""
from __future__ import annotations

import os
import time

import numpy as np

import hdl
from hdl.callbacks import CSVLogger


def load_images(data=None, limit=None):
    """(train, test, side): images as (pixels, N) float32 columns in [0, 1]."""
    from hdl.data.idx import FASHION_MNIST, load_fashion_mnist

    fashion = os.path.join(data, "train-images-idx3-ubyte.gz") if data else None
    if (fashion and os.path.exists(fashion)) or (data is None and FASHION_MNIST.exists()):
        (x, _), (xt, _) = load_fashion_mnist(data or FASHION_MNIST)
        side = 28
    else:
        from hdl.data.cifar10 import load_cifar10

        (x, _), (xt, _) = load_cifar10(data)
        x, xt = (a.mean(axis=3, keepdims=True) for a in (x, xt))  # grey
        side = 32
    if limit:
        x, xt = x[:limit], xt[:max(limit // 6, 16)]
    to_columns = lambda a: np.ascontiguousarray((a.reshape(len(a), -1).T / 255.0).astype(np.float32))  # noqa
    return to_columns(x), to_columns(xt), side


def run_autoencoder(data=None, out="autoencoder", code=32, hidden=256, epochs=10, batch_size=50, eta=0.05,
                    seed=0, limit=None, plot=True, progress=False) -> dict:
    if plot:  # no matplotlib: say so now, not after the training
        from hdl.plot import _pyplot
        _pyplot()
    X, Xt, side = load_images(data, limit)
    n = X.shape[0]
    net = hdl.Network([n, hidden, code, hidden, n], activation=["relu", "relu", "relu", "sigmoid"], init="he",
                      dtype=np.float32, seed=seed)
    os.makedirs(out, exist_ok=True)
    log = os.path.join(out, "log.csv")  # a row per epoch: the mean mini-batch cost, seconds, images/s
    if os.path.exists(log):  # this run's rows only (CSVLogger appends)
        os.remove(log)
    start = time.perf_counter()
    hist = hdl.stochastic_gradient(net, X, X, eta=eta, epochs=epochs, batch_size=batch_size, replacement=False,
                                   record_every=0, seed=seed, callbacks=[CSVLogger(log)], progress=progress)
    seconds = time.perf_counter() - start
    train_cost = net.cost(X, X)
    summary = {"experiment": "autoencoder", "pixels": n, "code": code, "epochs": epochs,
               "train_cost": train_cost, "test_cost": net.cost(Xt, Xt), "seconds": seconds,
               "final_cost": train_cost, "figures": {}, "log": log}
    if plot:
        from hdl.plot import _pyplot

        plt = _pyplot()
        shown = Xt[:, :8]
        recon = net.forward(shown)
        fig, axes = plt.subplots(2, 8, figsize=(12, 3.3))
        for k in range(8):
            for row, img in enumerate((shown[:, k], recon[:, k])):
                axes[row, k].imshow(img.reshape(side, side), cmap="gray", vmin=0, vmax=1)
                axes[row, k].axis("off")
        axes[0, 0].set_title("original", loc="left", fontsize=9)
        axes[1, 0].set_title(f"G(F(x)), code of {code}", loc="left", fontsize=9)
        fig.tight_layout()
        path = os.path.join(out, "autoencoder.png")
        fig.savefig(path, dpi=120)
        plt.close(fig)
        summary["figures"]["reconstructions"] = path
    return summary
