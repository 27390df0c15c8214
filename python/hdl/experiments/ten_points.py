"""Sections 2 and 6: the 2-2-3-2 sigmoid network on the ten points of Figure 2.1.

run_netbp: Listing 6.1 (netbp.m): weights and biases 0.5 N(0,1), eta = 0.05, 10^6
single-point steps chosen with replacement (4.6), the cost monitored after every
step as the authors did, sum_i ||y(x_i) - F(x_i)||^2 = 2N Cost (3.3). Figures
6.1 and 6.2 (6.3 with the extra point).
run_lsq: the same network fitted by nonlinear least squares (lsqnonlin):
Figures 2.4 and 2.5.
"""
from __future__ import annotations

import os

import numpy as np

import hdl

SIZES = [2, 2, 3, 2]


def _summary(net, X, Y, cost, seconds, **extra):
    wrong = int(np.sum(net.predict(X) != Y.argmax(0)))
    return {"points": int(X.shape[1]), "final_cost": float(cost), "misclassified": wrong, "seconds": seconds,
            **extra}


def run_netbp(iterations: int = 10**6, eta: float = 0.05, seed: int = 1, extra_point: bool = False,
              out: str | None = "figures", plot: bool = True, progress: bool = False) -> dict:
    """Trains as netbp.m does; returns a summary dict (and writes the figures to `out`). progress: a bar."""
    X, Y = hdl.data.ten_points(extra_point=extra_point)
    net = hdl.Network(SIZES, activation="sigmoid", init="normal", scale=0.5, seed=seed)
    hist = hdl.stochastic_gradient(net, X, Y, eta=eta, iterations=iterations, batch_size=1, replacement=True,
                                   record_every=1, seed=seed, progress=progress)
    scaled = 2 * X.shape[1]  # the authors' cost: sum of squared norms, 2N times (3.3)
    files = {}
    if plot and out:
        from hdl import plot as figures

        os.makedirs(out, exist_ok=True)
        tag = "6.3" if extra_point else "6.2"
        files["cost"] = os.path.join(out, "figure_6_1_cost.png" if not extra_point else "figure_6_1_cost_extra.png")
        files["region"] = os.path.join(out, f"figure_{tag.replace('.', '_')}_region.png")
        figures.cost_history(hist.iterations, scaled * hist.cost, files["cost"],
                             title=f"Figure 6.1: stochastic gradient, eta={eta}, seed={seed}")
        figures.classifier_region(net, X, Y.argmax(0), files["region"],
                                  title=f"Figure {tag}: trained by stochastic gradient")
    return _summary(net, X, Y, scaled * hist.final_cost, hist.seconds, experiment="netbp", iterations=iterations,
                    eta=eta, seed=seed, extra_point=extra_point, initial_cost=float(scaled * hist.cost[0]),
                    steps_per_second=iterations / hist.seconds, isa=hdl.isa(), figures=files)


def run_lsq(seed: int = 1, extra_point: bool = False, method: str = "trf", out: str | None = "figures",
            plot: bool = True) -> dict:
    """Fits the network by nonlinear least squares; Figures 2.4 (2.5 with the extra point)."""
    X, Y = hdl.data.ten_points(extra_point=extra_point)
    net = hdl.Network(SIZES, activation="sigmoid", init="normal", scale=0.5, seed=seed)
    scaled = 2 * X.shape[1]
    initial = scaled * net.cost(X, Y)
    result = hdl.least_squares(net, X, Y, method=method)
    files = {}
    if plot and out:
        from hdl import plot as figures

        os.makedirs(out, exist_ok=True)
        tag = "2.5" if extra_point else "2.4"
        files["region"] = os.path.join(out, f"figure_{tag.replace('.', '_')}_region.png")
        figures.classifier_region(net, X, Y.argmax(0), files["region"],
                                  title=f"Figure {tag}: trained by nonlinear least squares")
    return _summary(net, X, Y, scaled * result.cost, result.seconds, experiment="lsq", method=method, seed=seed,
                    extra_point=extra_point, initial_cost=float(initial), evaluations=result.nfev,
                    message=result.message, figures=files)
