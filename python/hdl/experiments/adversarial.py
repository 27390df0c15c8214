"""Section 8, adversarial perturbations: "small and seemingly unimportant perturbations to an image can change
its predicted class, including cases where one pixel is altered [33]".

Fast gradient sign method (Goodfellow, Shlens & Szegedy, 2015): x' = clip(x + eps sign(grad_x C(x, y)), 0, 1)
with C the softmax log-loss (7.4) of the true label y (untargeted), or x' = clip(x - eps sign(grad_x C(x, t)))
towards a target t. The gradient is taken with respect to the raw pixels (eps in units of the pixel range
[0, 1]; eps = 8/255 is eight grey levels): back-propagated through the whole network (Model.input_gradient)
and then through the preprocessing (hdl.data.preprocess.apply_stats_vjp).

One-pixel attack [33] (Su, Vargas & Sakurai, 2019): differential evolution (scipy.optimize.differential_evolution)
over one pixel's position and colour (row, column, R, G, B), minimising the probability of the true class
(untargeted, success when the predicted class changes) or maximising that of a target class (success when it
is predicted).

Images here are raw (N, H, W, C) arrays of pixel values 0..255; `stats` are the preprocessing statistics a
model file holds (hdl.experiments.modelfile.Classifier.preprocessing)."""
from __future__ import annotations

import math

import numpy as np


def _check(model, images, labels, stats):
    if not (isinstance(images, np.ndarray) and images.ndim == 4 and len(images)):
        raise ValueError(f"images must be a non-empty (N, H, W, C) array, got {getattr(images, 'shape', images)!r}")
    labels = np.asarray(labels)
    if labels.shape != (len(images),) or labels.dtype.kind not in "iu":
        raise ValueError(f"labels must be integers of shape ({len(images)},), got {labels.dtype} {labels.shape}")
    if not isinstance(stats, dict) or "kind" not in stats:
        raise TypeError("stats must be a preprocessing statistics dict (apply_stats's)")
    return labels.astype(np.int64)


def pixel_gradient(model, images, labels, stats):
    """dC/d(pixels) (float64, images' shape) of the mean softmax log-loss (7.4) of model on the preprocessed
    images: Model.input_gradient, then the preprocessing's transposed Jacobian (apply_stats_vjp). A float64
    model and float64 images give it in float64 throughout (as the test against central differences does)."""
    from hdl.data.preprocess import apply_stats, apply_stats_vjp

    labels = _check(model, images, labels, stats)
    z = apply_stats(images.astype(np.float64 if model.dtype == np.float64 else np.float32), stats)
    _, dz = model.input_gradient(z.astype(model.dtype), labels)
    return apply_stats_vjp(images.astype(np.float64), np.asarray(dz, np.float64), stats)


def fgsm(model, images, labels, stats, eps, target=None, batch_size=250):
    """The images moved eps (in [0, 1] pixel units) along the sign of the loss gradient, clipped to 0..255
    (float32 (N, H, W, C)). Untargeted (target None): up the loss of `labels`; targeted: down the loss of
    `target` (an int or (N,) labels)."""
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not 0 <= eps <= 1:
        raise ValueError(f"eps must be a number in [0, 1] (a fraction of the pixel range), got {eps!r}")
    labels = _check(model, images, labels, stats)
    goal = labels if target is None else np.broadcast_to(np.asarray(target, np.int64), labels.shape)
    sign = 1.0 if target is None else -1.0
    out = np.empty(images.shape, np.float32)
    for i in range(0, len(images), batch_size):
        s = slice(i, i + batch_size)
        g = pixel_gradient(model, images[s], goal[s], stats)
        out[s] = np.clip(images[s].astype(np.float32) + np.float32(sign * 255 * eps) * np.sign(g), 0, 255)
    return out


def predict(model, images, stats, batch_size=500):
    from hdl.data.preprocess import apply_stats
    return np.concatenate([model.predict(apply_stats(images[i:i + batch_size], stats).astype(model.dtype))
                           for i in range(0, len(images), batch_size)])


def fgsm_sweep(model, images, labels, stats, epsilons, target=None):
    """[(eps, accuracy, target hit rate or None)] for each eps (accuracy: fraction still predicted as labels)."""
    labels = _check(model, images, labels, stats)
    rows = []
    for eps in epsilons:
        p = predict(model, fgsm(model, images, labels, stats, float(eps), target), stats)
        hit = None if target is None else float(np.mean(p == np.broadcast_to(target, labels.shape)))
        rows.append((float(eps), float(np.mean(p == labels)), hit))
    return rows


def wilson_interval(successes, n, z=1.959964):
    """The Wilson score interval (low, high) for a binomial proportion successes / n (95% for z = 1.96)."""
    if not (isinstance(n, (int, np.integer)) and n > 0 and 0 <= successes <= n):
        raise ValueError(f"need 0 <= successes <= n and n > 0, got {successes}, {n}")
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def one_pixel_attack(model, image, label, stats, target=None, maxiter=30, popsize=40, seed=0):
    """[33]'s attack on one image (H, W, C) of pixel values 0..255 by differential evolution over (row, column,
    colour). Returns a dict: success, the attacked image (uint8), pixel (row, column), colour, the predicted
    class after the attack and the probability of the true (or target) class before and after."""
    from scipy.optimize import differential_evolution

    from hdl.data.preprocess import apply_stats

    if not (isinstance(image, np.ndarray) and image.ndim == 3):
        raise ValueError(f"image must be one (H, W, C) array, got {getattr(image, 'shape', image)!r}")
    H, W, C = image.shape
    goal = label if target is None else int(target)

    def perturbed(v):  # v: (5, P) candidates, vectorised
        v = np.atleast_2d(np.asarray(v).T)
        batch = np.repeat(image[None].astype(np.float32), len(v), axis=0)
        r, c = v[:, 0].astype(int).clip(0, H - 1), v[:, 1].astype(int).clip(0, W - 1)
        batch[np.arange(len(v)), r, c] = np.round(v[:, 2:2 + C])
        return batch

    def proba(batch):
        return model.predict_proba(apply_stats(batch, stats).astype(model.dtype))

    def objective(v):  # minimised: the true class's probability, or minus the target's
        p = proba(perturbed(v))[:, goal]
        return p if target is None else -p

    def done(p_row):
        k = int(np.argmax(p_row))
        return k != label if target is None else k == goal

    state = {}

    def callback(intermediate_result):
        p_row = proba(perturbed(intermediate_result.x[:, None]))[0]
        state["p"] = p_row
        return done(p_row)

    before = proba(image[None].astype(np.float32))[0]
    bounds = [(0, H - 1e-6), (0, W - 1e-6)] + [(0, 255)] * C
    res = differential_evolution(objective, bounds, maxiter=maxiter, popsize=popsize, seed=seed, polish=False,
                                 vectorized=True, updating="deferred", callback=callback, tol=0, recombination=1,
                                 mutation=0.5, init="random")
    attacked = perturbed(res.x[:, None])[0]
    after = proba(attacked[None])[0]
    return {"success": bool(done(after)), "image": attacked.astype(np.uint8), "pixel": (int(res.x[0]), int(res.x[1])),
            "colour": [int(round(c)) for c in res.x[2:2 + C]], "predicted": int(np.argmax(after)),
            "probability_before": float(before[goal]), "probability_after": float(after[goal]),
            "generations": int(res.nit)}


EPSILONS = (0.0, 1 / 255, 2 / 255, 4 / 255, 8 / 255, 16 / 255)


def run_adversarial(model=None, data=None, out="adversarial", epsilons=EPSILONS, fgsm_images=1000,
                    pixel_images=100, targeted=True, maxiter=30, popsize=40, seed=0, plot=True, verify=True) -> dict:
    """FGSM's accuracy against eps (untargeted, and targeted at a random other class) on the first
    `fgsm_images` test images, and the one-pixel attack [33] on `pixel_images` correctly classified test images
    drawn at random (untargeted, and targeted at a random other class): success fractions with 95% Wilson
    intervals, a gallery of attacked images. model: a model file of hdl cifar10 (default: train a small one)."""
    import json
    import os
    import time

    from hdl.experiments.modelfile import load_or_train

    if plot:
        from hdl.plot import _pyplot
        _pyplot()
    start = time.perf_counter()
    os.makedirs(out, exist_ok=True)
    clf, images = load_or_train(model, data, os.path.join(out, "trained"), verify=verify)
    net, stats, K = clf.model, clf.preprocessing, len(clf.classes)
    rng = np.random.default_rng(seed)
    xt, yt = images.xt[:fgsm_images], images.yt[:fgsm_images].astype(np.int64)
    other = (yt + rng.integers(1, K, len(yt))) % K  # a random class other than the true one
    sweep = fgsm_sweep(net, xt, yt, stats, epsilons)
    sweep_t = fgsm_sweep(net, xt, yt, stats, epsilons, target=other)
    summary = {"experiment": "adversarial", "model_file": clf.path, "fgsm_images": len(xt), "epsilons": list(epsilons),
               "fgsm": {"untargeted_accuracy": [a for _, a, _ in sweep],
                        "targeted_accuracy": [a for _, a, _ in sweep_t], "targeted_hit_rate": [h for _, _, h in sweep_t]},
               "clean_accuracy": sweep[0][1]}
    predicted = predict(net, images.xt, stats)
    correct = np.flatnonzero(predicted == images.yt)
    chosen = rng.choice(correct, min(pixel_images, len(correct)), replace=False)
    attacks = {}
    for mode in ("untargeted", "targeted") if targeted else ("untargeted",):
        results = []
        for i in chosen:
            y = int(images.yt[i])
            target = None if mode == "untargeted" else int((y + rng.integers(1, K)) % K)
            r = one_pixel_attack(net, images.xt[i], y, stats, target, maxiter, popsize, seed)
            results.append({"index": int(i), "label": y, "target": target, **{k: v for k, v in r.items() if k != "image"},
                            "_image": r["image"]})
        wins = sum(r["success"] for r in results)
        low, high = wilson_interval(wins, len(results))
        attacks[mode] = {"attempts": len(results), "successes": wins, "success_rate": wins / len(results),
                         "wilson_95": [low, high], "results": results}
    summary["one_pixel"] = {m: {k: v for k, v in a.items() if k != "results"} for m, a in attacks.items()}
    summary["one_pixel"]["maxiter"], summary["one_pixel"]["popsize"] = maxiter, popsize
    summary["one_pixel_attacks"] = {m: [{k: v for k, v in r.items() if k != "_image"} for r in a["results"]]
                                    for m, a in attacks.items()}
    summary["figures"] = {}
    if plot:
        summary["figures"]["fgsm"] = os.path.join(out, "fgsm_accuracy.png")
        _sweep_figure(summary, summary["figures"]["fgsm"])
        summary["figures"]["one_pixel"] = os.path.join(out, "one_pixel_gallery.png")
        _gallery(images, attacks, clf.classes, summary["figures"]["one_pixel"])
    summary["seconds"] = time.perf_counter() - start
    with open(os.path.join(out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    return summary


def _sweep_figure(summary, path):
    from hdl.plot import _pyplot

    plt = _pyplot()
    eps = 255 * np.array(summary["epsilons"])
    f = summary["fgsm"]
    fig, ax = plt.subplots(figsize=(6.5, 4))
    ax.plot(eps, 100 * np.array(f["untargeted_accuracy"]), "o-", label="untargeted: accuracy")
    ax.plot(eps, 100 * np.array(f["targeted_accuracy"]), "s-", label="targeted: accuracy")
    ax.plot(eps, 100 * np.array(f["targeted_hit_rate"]), "^--", label="targeted: target predicted")
    ax.axhline(10, color="0.5", ls=":", lw=0.8)
    ax.set_xlabel("eps (grey levels of 255)")
    ax.set_ylabel("% of test images")
    ax.set_ylim(0, 100)
    ax.set_title(f"FGSM on the CIFAR-10 network ({summary['fgsm_images']} test images)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _gallery(images, attacks, classes, path, n=8):
    """Original and attacked images with both labels (as Figure 7.6 labels its images), successes first."""
    from hdl.plot import _pyplot

    plt = _pyplot()
    shown = [(m, r) for m, a in attacks.items() for r in a["results"] if r["success"]][:n]
    if not shown:
        shown = [(m, r) for m, a in attacks.items() for r in a["results"]][:n]
    fig, axes = plt.subplots(2, max(len(shown), 1), figsize=(1.7 * max(len(shown), 1), 4.0), squeeze=False)
    for k, (mode, r) in enumerate(shown):
        axes[0, k].imshow(images.xt[r["index"]])
        axes[0, k].set_title(classes[r["label"]], fontsize=8)
        axes[1, k].imshow(r["_image"])
        row, col = r["pixel"]
        axes[1, k].add_patch(plt.Circle((col, row), 2.5, fill=False, color="yellow", lw=1))
        axes[1, k].set_title(f"{classes[r['predicted']]}\n({mode[:1]}, {100 * r['probability_after']:.0f}%)",
                             fontsize=7)
        for ax in axes[:, k]:
            ax.axis("off")
    fig.suptitle("One-pixel attack [33]: originals (top, true class), one pixel changed (bottom, predicted class)",
                 fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
