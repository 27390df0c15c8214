"""The paper's ten points (Sections 2 and 6) three ways: the stochastic gradient method of (4.6) as netbp.m
runs it, mini-batches by epochs with callbacks (early stopping, a CSV log, a checkpoint), and nonlinear least
squares (the paper's lsqnonlin); then the trained network saved and loaded.

    python examples/ten_points.py [--out ten_points]
"""
import argparse
from pathlib import Path

import numpy as np

import hdl
from hdl.callbacks import Checkpoint, CSVLogger, EarlyStopping


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="ten_points")
    p.add_argument("--iterations", type=int, default=10**6)
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    X, Y = hdl.data.ten_points()  # (2, 10) points, (2, 10) one-hot categories; columns are the points

    # (4.6): one point at a time, chosen with replacement; the cost over all ten points after every step
    net = hdl.Network([2, 2, 3, 2], seed=1)
    hist = hdl.stochastic_gradient(net, X, Y, eta=0.05, iterations=args.iterations, record_every=1000, seed=1)
    print(f"stochastic gradient: cost {hist.cost[0]:.4f} -> {hist.final_cost:.6f} in {hist.seconds:.2f} s, "
          f"{int(np.sum(net.predict(X) != Y.argmax(axis=0)))} misclassified")

    # (4.7)-(4.8): epochs of shuffled mini-batches, a callback after every epoch
    net2 = hdl.Network([2, 2, 3, 2], seed=1)
    hist2 = hdl.stochastic_gradient(net2, X, Y, eta=0.5, epochs=3000, batch_size=5, replacement=False, seed=2,
                                    callbacks=[EarlyStopping(patience=200), CSVLogger(out / "epochs.csv"),
                                               Checkpoint(out / "checkpoint.npz", every=500)])
    print(f"mini-batches: {len(hist2.epochs)} epochs, last mean batch cost {hist2.train['objective'][-1]:.6f}, "
          f"log in {out / 'epochs.csv'}")

    # Section 2's lsqnonlin: all 23 parameters at once by nonlinear least squares
    net3 = hdl.Network([2, 2, 3, 2], seed=1)
    hist3 = hdl.least_squares(net3, X, Y)
    print(f"least squares: cost {hist3.cost:.2e} after {hist3.nfev} evaluations ({hist3.message})")

    net.save(out / "net.npz")
    again = hdl.Network.load(out / "net.npz")
    assert np.array_equal(again.forward(X), net.forward(X))
    print(f"saved {out / 'net.npz'} and loaded it: W[2] = {again.W[2].round(3).tolist()}")
    return net, hist2


if __name__ == "__main__":
    main()
