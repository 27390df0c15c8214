"""Section 8, on-the-fly correction [13] (Gorban & Tyukin, "Stochastic separation theorems", 2017): "when a
trained network is seen to make a mistake on new data, it is tempting to fix this with a local perturbation
... rather than re-training from scratch", justified by measure concentration in high dimensions.

A corrector is a linear functional on the features of the network's last hidden layer (the input of its last
layer). From a set of reference points the network classifies correctly (training images) it takes the mean mu
and the whitening Wh (the inverse square root of their covariance, on the directions of non-negligible
variance); the error x_e, centred and whitened, gives the direction w = Wh (x_e - mu) / ||Wh (x_e - mu)||.
Fisher's discriminant h(x) = <w, Wh (x - mu)> is large for x_e and, by the separation theorems, small for
almost every other point; the threshold theta lies halfway between h(x_e) and the largest h of the reference
points (or just below h(x_e) when a reference point reaches it). Where h(x) >= theta the corrector fires and
the network's output is overridden to the error's correct class; elsewhere the network is left alone."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Corrector:
    """h(x) = <w, Wh (x - mu)> >= theta  =>  class `label`; mu (d,), Wh (r, d), w (r,)."""

    mu: np.ndarray
    Wh: np.ndarray
    w: np.ndarray
    theta: float
    label: int
    separated: bool  # the error's h exceeds every reference point's

    def score(self, features):
        return ((np.asarray(features, np.float64) - self.mu) @ self.Wh.T) @ self.w

    def fires(self, features):
        return self.score(features) >= self.theta

    def apply(self, features, predicted):
        """The predictions with the corrector applied: `label` where it fires."""
        out = np.array(predicted, copy=True)
        out[self.fires(features)] = self.label
        return out


def whitening(reference, rtol=1e-6):
    """(mu, Wh): the mean of the rows of reference (N, d) and Wh (r, d) with Wh C Wh^T = I for their covariance
    C, on the r eigen-directions of C with eigenvalue above rtol times the largest."""
    X = np.asarray(reference, np.float64)
    if X.ndim != 2 or len(X) < 2:
        raise ValueError(f"reference must be (N, d) features with N >= 2, got shape {X.shape}")
    mu = X.mean(axis=0)
    C = np.cov(X - mu, rowvar=False)
    lam, V = np.linalg.eigh(np.atleast_2d(C))
    keep = lam > rtol * max(lam.max(), 1e-300)
    return mu, (V[:, keep] / np.sqrt(lam[keep])).T


def fit_corrector(reference, error, label, whiten=None):
    """The Corrector separating the feature vector `error` (d,) from the rows of `reference` (N, d) (points
    classified correctly), overriding to class `label`; whiten: (mu, Wh) of whitening(reference), to share."""
    reference = np.asarray(reference, np.float64)
    error = np.asarray(error, np.float64)
    if error.shape != reference.shape[1:]:
        raise ValueError(f"error must be one feature vector of shape {reference.shape[1:]}, got {error.shape}")
    if isinstance(label, bool) or not isinstance(label, (int, np.integer)) or label < 0:
        raise ValueError(f"label must be a non-negative integer class, got {label!r}")
    mu, Wh = whiten if whiten is not None else whitening(reference)
    v = Wh @ (error - mu)
    norm = np.linalg.norm(v)
    if norm == 0:
        raise ValueError("the error's features are the reference mean: no direction separates it")
    w = v / norm
    h_err = norm  # <w, v>
    h_ref = ((reference - mu) @ Wh.T) @ w
    top = float(h_ref.max())
    separated = h_err > top
    theta = 0.5 * (h_err + top) if separated else h_err * (1 - 1e-9)
    return Corrector(mu, Wh, w, float(theta), int(label), bool(separated))


def run_corrector(model=None, data=None, out="corrector", errors=20, reference=10000, seed=0, plot=True,
                  verify=True) -> dict:
    """Fixes `errors` misclassified test images of a CIFAR-10 model (a file of hdl cifar10; default: train a small
    one), each by its own corrector built from the last hidden layer's features of the first `reference` training
    images the network classifies correctly; reports, for each, whether its error is fixed and how many of the
    other test predictions changed. Writes a figure and summary.json into `out`."""
    import json
    import os
    import time

    from hdl.data.preprocess import apply_stats
    from hdl.experiments.modelfile import load_or_train

    if plot:
        from hdl.plot import _pyplot
        _pyplot()
    start = time.perf_counter()
    os.makedirs(out, exist_ok=True)
    clf, images = load_or_train(model, data, os.path.join(out, "trained"), verify=verify)
    net, stats = clf.model, clf.preprocessing
    hidden = len(net.layers) - 1
    x = apply_stats(images.x[:reference], stats)
    feats = net.features(x, hidden)
    ok = net.predict(x) == images.y[:reference]
    ref = feats[ok]
    xt = apply_stats(images.xt, stats)
    ft = net.features(xt, hidden)
    pred = net.predict(xt)
    wrong = np.flatnonzero(pred != images.yt)
    rng = np.random.default_rng(seed)
    chosen = rng.choice(wrong, min(errors, len(wrong)), replace=False)
    shared = whitening(ref)
    rows = []
    for i in chosen:
        c = fit_corrector(ref, ft[i], int(images.yt[i]), shared)
        new = c.apply(ft, pred)
        others = np.ones(len(pred), bool)
        others[i] = False
        changed = int(np.sum(new[others] != pred[others]))
        rows.append({"index": int(i), "label": int(images.yt[i]), "predicted": int(pred[i]), "fixed": bool(new[i] == images.yt[i]),
                     "separated_from_reference": c.separated, "others_changed": changed,
                     "others_changed_fraction": changed / int(others.sum()),
                     "others_changed_to_wrong": int(np.sum((new != pred) & others & (new != images.yt))),
                     "others_changed_to_right": int(np.sum((new != pred) & others & (new == images.yt)))})
    fractions = [r["others_changed_fraction"] for r in rows]
    summary = {"experiment": "corrector", "reference": "[13] Gorban & Tyukin, 2017", "model_file": clf.path,
               "features": int(ft.shape[1]), "feature_layer": f"the input of layer {hidden} ({net.layers[hidden]!r})",
               "reference_points": int(ok.sum()), "test_images": len(pred), "test_accuracy": float(np.mean(pred == images.yt)),
               "errors_corrected": len(rows), "fixed": int(sum(r["fixed"] for r in rows)),
               "mean_others_changed_fraction": float(np.mean(fractions)), "max_others_changed_fraction": float(np.max(fractions)),
               "corrections": rows, "figures": {}}
    if plot:
        summary["figures"]["corrector"] = os.path.join(out, "corrector.png")
        c = fit_corrector(ref, ft[chosen[0]], int(images.yt[chosen[0]]), shared)
        _figure(c, ref, ft, chosen[0], rows, images, clf.classes, summary["figures"]["corrector"])
    summary["seconds"] = time.perf_counter() - start
    with open(os.path.join(out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    return summary


def _figure(c, ref, ft, i, rows, images, classes, path):
    from hdl.plot import _pyplot

    plt = _pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8), gridspec_kw={"width_ratios": [1, 2.2, 2.2]})
    axes[0].imshow(images.xt[i])
    axes[0].set_title(f"test image {i}: {classes[rows[0]['label']]}\n(network said {classes[rows[0]['predicted']]})",
                      fontsize=8)
    axes[0].axis("off")
    others = np.delete(c.score(ft), i)
    axes[1].hist(c.score(ref), bins=60, alpha=0.6, density=True, label="reference (training) points")
    axes[1].hist(others, bins=60, alpha=0.6, density=True, label="other test points")
    axes[1].axvline(c.theta, color="k", ls="--", lw=1, label="threshold theta")
    axes[1].axvline(c.score(ft[i:i + 1])[0], color="r", lw=1.5, label="the error x_e")
    axes[1].set_xlabel("Fisher discriminant h(x) on whitened features")
    axes[1].legend(fontsize=7)
    axes[2].bar(np.arange(len(rows)), [100 * r["others_changed_fraction"] for r in rows],
                color=["tab:green" if r["fixed"] else "tab:red" for r in rows])
    axes[2].axhline(1, color="0.5", ls=":", lw=0.8)
    axes[2].set_xlabel("corrected error (green: fixed)")
    axes[2].set_ylabel("% of other test predictions changed")
    fig.suptitle("On-the-fly correction [13]: one linear corrector per error on the last hidden layer", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
