"""The figures of Section 7.4: training curves (7.2, 7.3), the confusion matrix (7.4, 7.5) and
misclassified test images (7.6)."""
from __future__ import annotations

import numpy as np

from hdl.plot import _pyplot


def training_curves(history, path, title=""):
    """Objective, top-1 and top-5 error per epoch: circles for training, crosses for validation."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    epochs = history.epochs
    for ax, key, label in zip(axes, ("objective", "top1", "top5"), ("objective", "top1err", "top5err")):
        scale = 1.0 if key == "objective" else 100.0
        ax.plot(epochs, np.array(history.train[key]) * scale, "o-", ms=4, mfc="none", label="train")
        if history.val[key]:
            ax.plot(epochs, np.array(history.val[key]) * scale, "x-", ms=5, label="val")
        ax.set_xlabel("epoch")
        ax.set_title(label if key == "objective" else f"{label} (%)")
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)


def confusion(M, classes, path, title=""):
    """The matrix with counts and percentages, and the 'all' row and column, as the paper draws it:
    M[i, j] = predicted class i for true class j. Beyond 20 classes (CIFAR-100) the cells carry no text:
    the matrix is drawn as an image of each true class's share."""
    plt = _pyplot()
    K = len(classes)
    if K > 20:
        return _confusion_image(plt, M, path, title)
    total = M.sum()
    fig, ax = plt.subplots(figsize=(11, 10))
    ax.set_xlim(-0.5, K + 0.5)
    ax.set_ylim(K + 0.5, -0.5)
    share = M / max(total, 1)
    for i in range(K + 1):
        for j in range(K + 1):
            if i < K and j < K:
                color = (0.75, 0.9, 0.75) if i == j else ((1.0, 0.8, 0.8) if M[i, j] else (1, 1, 1))
                text = f"{M[i, j]}\n{100 * share[i, j]:.1f}%"
            else:
                if i < K:  # row summary: of the images predicted as class i, how many were right
                    n, right = M[i].sum(), M[i, i]
                elif j < K:  # column summary: of the images of class j, how many were found
                    n, right = M[:, j].sum(), M[j, j]
                else:
                    n, right = total, np.trace(M)
                color = (0.85, 0.85, 0.85)
                text = f"{100 * right / max(n, 1):.1f}%\n{100 - 100 * right / max(n, 1):.1f}%"
            ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, facecolor=color, edgecolor="0.6"))
            ax.text(j, i, text, ha="center", va="center", fontsize=7.5)
    names = list(classes) + ["all"]
    ax.set_xticks(range(K + 1), names, rotation=45, ha="right")
    ax.set_yticks(range(K + 1), names)
    _save_confusion(plt, fig, ax, path, title)


def _confusion_image(plt, M, path, title):
    share = M / np.maximum(M.sum(axis=0, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(9, 8))
    im = ax.imshow(share, cmap="viridis", vmin=0, vmax=1)
    fig.colorbar(im, ax=ax, label="share of the true class")
    _save_confusion(plt, fig, ax, path, title)


def _save_confusion(plt, fig, ax, path, title):
    ax.set_xlabel("true class")
    ax.set_ylabel("predicted class")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)


def misclassified(images, predicted, labels, classes, path, count=16, seed=0):
    """Figure 7.6: `count` misclassified images, 'predicted (true)' above each (grey images (N, H, W, 1)
    in grey); a figure that says so when none is misclassified."""
    plt = _pyplot()
    wrong = np.flatnonzero(predicted != labels)
    if len(wrong) == 0:
        fig, ax = plt.subplots(figsize=(4, 1.5))
        ax.axis("off")
        ax.text(0.5, 0.5, "no test image misclassified", ha="center", va="center")
        fig.savefig(path, dpi=130)
        plt.close(fig)
        return
    pick = np.random.default_rng(seed).choice(wrong, min(count, len(wrong)), replace=False)
    cols = 4
    rows = -(-len(pick) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.4 * cols, 2.5 * rows))
    for ax in np.ravel(axes):
        ax.axis("off")
    for ax, k in zip(np.ravel(axes), pick):
        image = images[k]
        grey = image.ndim == 3 and image.shape[2] == 1
        ax.imshow(image[..., 0] if grey else image, interpolation="nearest", cmap="gray" if grey else None)
        ax.set_title(f"{classes[predicted[k]]} ({classes[labels[k]]})", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)
