"""Section 8, generative adversarial networks [12] (Goodfellow et al., 2014): a generator G, mapping noise
z ~ N(0, I) to images, pitted against a discriminator D, mapping an image to the logit of the probability
that it is real. Both are hdl Models of Dense layers, and both learn by the same fused SGD-momentum step
(Model.step) as every other model of hdl. One step on a batch of B real images x and B noise vectors z:

  D: minimise  C_D = logistic_loss(D([x; G(z)]), [1; 0])      (real ones labelled 1, generated ones 0)
  G: minimise  C_G = logistic_loss(D(G(z)), 1)                  (the 'non-saturating' cost of [12], Sec. 3)

G's gradient is back-propagated through D (D.cost_gradients(..., need_dx=True) gives dC_G/d(G(z))) and then
through G (G.cost_gradients with that cost). The images are Fashion-MNIST's (Debian's dataset-fashion-mnist) or
MNIST's, scaled to [-1, 1], which G's final Tanh produces."""
from __future__ import annotations

import json
import os
import time

import numpy as np

from hdl.losses import logistic_loss
from hdl.model import Model


def generator(code=64, hidden=256, pixels=784, seed=0, dtype=np.float32) -> Model:
    """z (N, code) -> images (N, pixels) in (-1, 1): two leaky-ReLU layers, then a linear one and Tanh."""
    from hdl.layers import Dense, Tanh

    rng = np.random.default_rng([seed, 1])
    return Model([Dense(code, hidden, "leaky_relu", slope=0.2, rng=rng, dtype=dtype),
                  Dense(hidden, 2 * hidden, "leaky_relu", slope=0.2, rng=rng, dtype=dtype),
                  Dense(2 * hidden, pixels, "linear", init="glorot", rng=rng, dtype=dtype), Tanh()])


def discriminator(pixels=784, hidden=256, seed=0, dtype=np.float32) -> Model:
    """images (N, pixels) -> logits (N, 1): two leaky-ReLU layers and a linear one."""
    from hdl.layers import Dense

    rng = np.random.default_rng([seed, 2])
    return Model([Dense(pixels, 2 * hidden, "leaky_relu", slope=0.2, rng=rng, dtype=dtype),
                  Dense(2 * hidden, hidden, "leaky_relu", slope=0.2, rng=rng, dtype=dtype),
                  Dense(hidden, 1, "linear", init="glorot", rng=rng, dtype=dtype)])


def gan_step(G: Model, D: Model, x, z, lr, momentum=0.5):
    """One step of [12]'s alternating training on real rows x (B, pixels) and noise z (B, code): D's step,
    then G's. Returns (C_D, C_G)."""
    fake = G.forward(z, train=True)
    B = len(x)
    t = np.concatenate([np.ones((B, 1)), np.zeros((len(fake), 1))])
    c_d, _ = D.cost_gradients(np.concatenate([x, fake]), lambda s: logistic_loss(s, t))
    D.step(lr, momentum)
    c_g, _ = G.cost_gradients(z, lambda images: D.cost_gradients(images, lambda s: logistic_loss(s, 1.0), need_dx=True))
    G.step(lr, momentum)
    return c_d, c_g


def load_images(dataset="fashion-mnist", data=None, limit=None, verify=False):
    """Training images as float32 rows (N, 784) in [-1, 1]."""
    from hdl.data.idx import load_idx_dataset

    if dataset not in ("fashion-mnist", "mnist"):
        raise ValueError(f"dataset must be 'fashion-mnist' or 'mnist', got {dataset!r}")
    if data is None and dataset == "fashion-mnist":
        from hdl.data.idx import FASHION_MNIST
        data = FASHION_MNIST if FASHION_MNIST.exists() else None
    (x, _), _ = load_idx_dataset(dataset, data, verify=verify)
    x = x[:limit]
    return (x.reshape(len(x), -1).astype(np.float32) / 127.5 - 1).astype(np.float32)


def train_gan(x, epochs=20, batch_size=64, code=64, hidden=256, lr=0.02, momentum=0.5, seed=0, on_epoch=None):
    """(G, D, history): trains on rows x (N, pixels) in [-1, 1]; history holds the mean C_D and C_G of each
    epoch; on_epoch(epoch, G) is called after every epoch (the sample grids)."""
    if not (isinstance(x, np.ndarray) and x.ndim == 2 and x.dtype == np.float32 and len(x) >= batch_size):
        raise ValueError(f"x must be float32 rows (N, pixels) with N >= batch_size, got {getattr(x, 'dtype', '')} "
                         f"{getattr(x, 'shape', '')}")
    G = generator(code, hidden, x.shape[1], seed)
    D = discriminator(x.shape[1], hidden, seed)
    history = {"discriminator": [], "generator": [], "seconds": []}
    for epoch in range(1, epochs + 1):
        rng = np.random.default_rng([seed, epoch])
        order = rng.permutation(len(x))
        start, cd, cg = time.perf_counter(), [], []
        for b in range(len(x) // batch_size):
            xb = x[np.sort(order[b * batch_size:(b + 1) * batch_size])]
            z = rng.standard_normal((batch_size, code)).astype(np.float32)
            c_d, c_g = gan_step(G, D, xb, z, lr, momentum)
            if not (np.isfinite(c_d) and np.isfinite(c_g)):
                raise FloatingPointError(f"the GAN diverged in epoch {epoch}, batch {b + 1} (lr {lr})")
            cd.append(c_d)
            cg.append(c_g)
        history["discriminator"].append(float(np.mean(cd)))
        history["generator"].append(float(np.mean(cg)))
        history["seconds"].append(time.perf_counter() - start)
        if on_epoch:
            on_epoch(epoch, G)
    return G, D, history


def run_gan(dataset="fashion-mnist", data=None, out="gan", epochs=20, batch_size=64, code=64, hidden=256, lr=0.02,
            momentum=0.5, seed=0, limit=None, plot=True, every=1) -> dict:
    """Trains the GAN; writes a grid of samples (the same noise each time) every `every` epochs, the losses
    figure and summary.json into `out`."""
    if plot:
        from hdl.plot import _pyplot
        _pyplot()
    start = time.perf_counter()
    x = load_images(dataset, data, limit)
    os.makedirs(out, exist_ok=True)
    z_fixed = np.random.default_rng([seed, 0]).standard_normal((64, code)).astype(np.float32)
    grids = {}

    def on_epoch(epoch, G):
        if plot and (epoch % every == 0 or epoch == epochs):
            grids[epoch] = os.path.join(out, f"samples_epoch{epoch:03d}.png")
            sample_grid(G.forward(z_fixed), grids[epoch], f"GAN [12] on {dataset}: generated samples, epoch {epoch}")

    G, D, history = train_gan(x, epochs, batch_size, code, hidden, lr, momentum, seed, on_epoch)
    fake = G.forward(z_fixed)
    summary = {"experiment": "gan", "reference": "[12] Goodfellow et al., NIPS 2014", "dataset": dataset,
               "training_images": len(x), "epochs": epochs, "batch_size": batch_size, "code": code,
               "hidden": hidden, "lr": lr, "momentum": momentum, "seed": seed, "update": "Model.step (SGD momentum)",
               "losses": history, "final_discriminator_loss": history["discriminator"][-1],
               "final_generator_loss": history["generator"][-1],
               "D_on_real": float(np.mean(D.forward(x[:1000]) > 0)), "D_on_generated": float(np.mean(D.forward(fake) > 0)),
               "seconds": time.perf_counter() - start, "figures": {}}
    if plot:
        summary["figures"]["samples"] = grids[max(grids)]
        summary["figures"]["sample_grids"] = grids
        summary["figures"]["losses"] = os.path.join(out, "gan_losses.png")
        _losses_figure(history, summary["figures"]["losses"], dataset)
    G.save(os.path.join(out, "generator.npz"), extra={"gan": {k: v for k, v in summary.items() if k != "losses"}})
    summary["model"] = os.path.join(out, "generator.npz")
    with open(os.path.join(out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    return summary


def sample_grid(images, path, title="", side=28):
    """An 8 x 8 grid (or smaller) of rows in [-1, 1] as grey images."""
    from hdl.plot import _pyplot

    plt = _pyplot()
    n = min(len(images), 64)
    cols = min(n, 8)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 0.9, rows * 0.9 + 0.4), squeeze=False)
    for k, ax in enumerate(axes.ravel()):
        ax.axis("off")
        if k < n:
            ax.imshow(images[k].reshape(side, side), cmap="gray", vmin=-1, vmax=1)
    if title:
        fig.suptitle(title, fontsize=8)
    fig.tight_layout(pad=0.2, rect=(0, 0, 1, 0.95 if title else 1))
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _losses_figure(history, path, dataset):
    from hdl.plot import _pyplot

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    epochs = np.arange(1, len(history["discriminator"]) + 1)
    ax.plot(epochs, history["discriminator"], "o-", ms=3, label="discriminator C_D")
    ax.plot(epochs, history["generator"], "s-", ms=3, label="generator C_G")
    ax.axhline(np.log(2), color="0.5", ls=":", lw=0.8, label="log 2 (D cannot tell)")
    ax.set_xlabel("epoch")
    ax.set_ylabel("mean cross-entropy")
    ax.set_title(f"GAN [12] on {dataset}: the two losses")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
