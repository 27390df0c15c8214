"""Section 8, random labels [37] (Zhang, Bengio, Hardt, Recht & Vinyals, "Understanding deep learning
requires rethinking generalization"): the paper's CIFAR-10 network (hdl.convnet.cifar_net) trained by the
same stochastic gradient method on images whose labels were randomised, beside the same network trained
on the true labels. The training error of the randomised run falls as the network learns the noise by
heart, while its test error (measured against the true test labels) stays near 90%, no better than chance.

A fraction p of the training labels (all with p = 1) is replaced by labels drawn uniformly from the ten
classes, once, before training; the test labels are never changed. On a CPU shared with others the full
training set takes too long to memorise, so the runs use the first `subset` training images (a documented
slice, recorded in the summary) and the test set (or its first `test_limit` images: each epoch evaluates it)."""
from __future__ import annotations

import json
import os
import time

import numpy as np

from hdl.experiments import datasets


def randomize_labels(y, fraction, classes, seed=0):
    """(labels, changed): a copy of y in which a fraction `fraction` of the entries, chosen at random, are
    replaced by labels drawn uniformly from range(classes) ([37]: 'partially corrupted labels'); changed
    marks the chosen entries (a drawn label may equal the true one, with probability 1/classes)."""
    y = np.asarray(y)
    if y.ndim != 1 or y.dtype.kind not in "iu":
        raise ValueError(f"y must be a 1-d array of integer labels, got {y.dtype} {y.shape}")
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 <= fraction <= 1:
        raise ValueError(f"fraction must be a number in [0, 1], got {fraction!r}")
    if isinstance(classes, bool) or not isinstance(classes, (int, np.integer)) or classes < 2:
        raise ValueError(f"classes must be an integer >= 2, got {classes!r}")
    rng = np.random.default_rng(seed)
    changed = np.zeros(len(y), bool)
    changed[rng.permutation(len(y))[:int(round(fraction * len(y)))]] = True
    out = y.astype(np.int64)
    out[changed] = rng.integers(0, classes, int(changed.sum()))
    return out, changed


def run_random_labels(data=None, out="random_labels", subset=5000, fraction=1.0, epochs=60, batch_size=100,
                      lr=0.05, seed=0, threads=None, plot=True, progress=False, verify=True, test_limit=None,
                      true_run=True) -> dict:
    """Trains cifar_net on the first `subset` CIFAR-10 training images with a fraction `fraction` of their
    labels randomised, and (true_run) on the same images with the true labels; momentum 0.9, no weight decay
    and no flips (as [37]'s memorisation runs), a constant rate lr with the paper's per-layer multipliers.
    Writes the error curves (figure) and summary.json into `out`; returns the summary."""
    import hdl
    from hdl.convnet import cifar_net
    from hdl.data.preprocess import matconvnet_cifar
    from hdl.train import fit

    if isinstance(subset, bool) or not isinstance(subset, int) or subset < 100:
        raise ValueError(f"subset must be an integer >= 100 (training images), got {subset!r}")
    if plot:
        from hdl.plot import _pyplot
        _pyplot()
    if threads:
        hdl.set_num_threads(threads)
    start = time.perf_counter()
    images = datasets.load("cifar10", data, verify=verify)
    if subset > len(images.x):
        raise ValueError(f"subset {subset} is more than the {len(images.x)} training images")
    xt_raw, yt = images.xt[:test_limit], images.yt[:test_limit]
    x, xt = matconvnet_cifar(images.x[:subset], xt_raw)  # statistics of the slice that is trained on
    y = images.y[:subset].astype(np.int64)
    noisy, changed = randomize_labels(y, fraction, len(images.classes), seed)
    runs = {}
    for name, labels in (("random", noisy), ("true", y)) if true_run else (("random", noisy),):
        net = cifar_net(seed=seed)
        h = fit(net, (x, labels), (xt, yt), epochs=epochs, batch_size=batch_size, lr=lr, momentum=0.9,
                weight_decay=0.0, flips=False, seed=seed, progress=progress)
        runs[name] = {"train_error": [float(e) for e in h.train["top1"]], "test_error": [float(e) for e in h.val["top1"]],
                      "train_objective": [float(e) for e in h.train["objective"]],
                      "final_train_error": float(np.mean(net.predict(x) != labels)),
                      "final_test_error": float(np.mean(net.predict(xt) != yt))}
    summary = {"experiment": "random_labels", "reference": "[37] Zhang et al., ICLR 2017", "network": "cifar_net",
               "training_images": subset, "training_slice": f"the first {subset} of the 50,000 CIFAR-10 training "
               "images (not the full set: time on a shared CPU)", "test_images": len(xt), "fraction": fraction,
               "labels_changed": int(np.sum(noisy != y)), "epochs": epochs, "batch_size": batch_size, "lr": lr,
               "momentum": 0.9, "weight_decay": 0.0, "seed": seed, "runs": runs,
               "seconds": time.perf_counter() - start, "figures": {}}
    os.makedirs(out, exist_ok=True)
    if plot:
        summary["figures"]["errors"] = os.path.join(out, "random_labels.png")
        _figure(summary, summary["figures"]["errors"])
    with open(os.path.join(out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    return summary


def _figure(summary, path):
    from hdl.plot import _pyplot

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.2))
    styles = {"true": ("tab:blue", "true labels"), "random": ("tab:red", f"{100 * summary['fraction']:.0f}% random labels")}
    for name, run in summary["runs"].items():
        color, label = styles[name]
        epochs = np.arange(1, len(run["train_error"]) + 1)
        ax.plot(epochs, 100 * np.array(run["train_error"]), "-", color=color, label=f"{label}: training")
        ax.plot(epochs, 100 * np.array(run["test_error"]), "--", color=color, label=f"{label}: test")
    ax.axhline(90, color="0.5", lw=0.8, ls=":")
    ax.set_xlabel("epoch")
    ax.set_ylabel("top-1 error (%)")
    ax.set_ylim(0, 100)
    ax.set_title(f"Random labels [37]: cifar_net on {summary['training_images']:,} CIFAR-10 training images")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
