"""The paper's figures for the fully connected experiments (matplotlib, imported on use)."""
from __future__ import annotations

import numpy as np


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise ImportError("figures need matplotlib: pip install 'hdl-higham[plot]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def cost_history(iterations, cost, path, title="Stochastic gradient: cost against iteration", every=10_000):
    """Figure 6.1: the cost on a log scale against the iteration, every `every`-th value."""
    plt = _pyplot()
    iterations, cost = np.asarray(iterations), np.asarray(cost)
    keep = iterations % every == 0
    fig, ax = plt.subplots(figsize=(6, 4.2))
    ax.semilogy(iterations[keep], cost[keep], "b-", lw=1.2)
    ax.set_xlabel("Iteration Number")
    ax.set_ylabel("Value of cost function")
    ax.set_xlim(0, max(int(iterations[-1]), 1))
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="major", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=150)
    plt.close(fig)


def classifier_region(net, X, labels, path, title="", grid=501):
    """Figures 2.4, 2.5, 6.2, 6.3: the region where F1(x) > F2(x) shaded on a grid x grid
    mesh of the unit square, circles for category A, crosses for category B."""
    plt = _pyplot()
    t = np.linspace(0, 1, grid, dtype=net.dtype)
    x1, x2 = np.meshgrid(t, t)
    F = net.forward(np.stack([x1.ravel(), x2.ravel()]))
    region = (F[0] > F[1]).reshape(grid, grid)
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.contourf(x1, x2, region.astype(float), levels=[0.5, 1.5], colors=["0.8"])
    a, b = labels == 0, labels == 1
    ax.plot(X[0, a], X[1, a], "ro", ms=11, mfc="none", mew=2, label="A")
    ax.plot(X[0, b], X[1, b], "bx", ms=11, mew=2, label="B")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_aspect("equal")
    ax.set_xticks(np.linspace(0, 1, 6))
    ax.set_yticks(np.linspace(0, 1, 6))
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=150)
    plt.close(fig)
