"""A dense autoencoder (Section 8): an encoder F from 784 pixels to a code of 64 numbers and a decoder G back,
one hdl.Network 784 -> 64 -> 784 (ReLU, then a sigmoid output in [0, 1]) trained by the stochastic gradient
method so that G(F(x)) reproduces x: the quadratic cost (3.3) with the images themselves as the targets.
It prints the reconstruction error on the test images before and after, and can draw a few of them.

    python examples/autoencoder.py [--data /usr/share/datasets/fashion-mnist] [--limit 10000] [--epochs 10]
                                   [--code 64] [--figure reconstructions.png]
"""
import argparse

import numpy as np

import hdl
from hdl.data.idx import FASHION_MNIST, load_fashion_mnist


def load(folder, limit=None):
    """(training images, test images) as columns (784, N) of float32 pixels in [0, 1], as the paper writes
    data points; at most `limit` of each. The labels are not needed."""
    try:
        (x, _), (xt, _) = load_fashion_mnist(folder)
    except (OSError, ValueError) as err:  # missing or damaged files
        raise SystemExit(f"{err}\nInstall Debian's dataset-fashion-mnist, or give --data DIR: a folder of the four "
                         "IDX files (train-images-idx3-ubyte, ..., gzipped or not)")
    return [np.ascontiguousarray(a[:limit].reshape(len(a[:limit]), -1).T / np.float32(255)) for a in (x, xt)]


def reconstruction_error(net, X):
    """The mean squared error per pixel, 2 Cost (3.3) / pixels: Cost = 1/N sum_i 1/2 ||x_i - G(F(x_i))||^2."""
    return 2 * net.cost(X, X) / X.shape[0]


def draw(net, X, path, count=8):
    """Originals (top row) above their reconstructions G(F(x)) (bottom row)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = X[:, :count]
    recon = net.forward(shown)
    fig, axes = plt.subplots(2, count, figsize=(1.5 * count, 3.2))
    for k in range(count):
        for row, image in enumerate((shown[:, k], recon[:, k])):
            axes[row, k].imshow(image.reshape(28, 28), cmap="gray", vmin=0, vmax=1)
            axes[row, k].axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=str(FASHION_MNIST), help="folder of the four IDX files")
    p.add_argument("--limit", type=int, default=None, help="use at most N training and N test images")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--code", type=int, default=64, help="the size of the code F(x)")
    p.add_argument("--batch", type=int, default=50)
    p.add_argument("--eta", type=float, default=0.05)
    p.add_argument("--figure", default=None, help="draw originals and reconstructions into this PNG")
    args = p.parse_args(argv)

    X, X_test = load(args.data, args.limit)
    n = X.shape[0]  # 784 pixels
    net = hdl.Network([n, args.code, n], activation=["relu", "sigmoid"], init="he", dtype=np.float32, seed=0)
    print(f"network {n} -> {args.code} -> {n}: W[2] {net.W[2].shape} encodes, W[3] {net.W[3].shape} decodes")

    before = reconstruction_error(net, X_test)
    hist = hdl.stochastic_gradient(net, X, X, eta=args.eta, epochs=args.epochs, batch_size=args.batch,
                                   replacement=False, record_every=0, seed=0)  # the targets are the inputs
    after = reconstruction_error(net, X_test)
    print(f"{args.epochs} epochs on {X.shape[1]} images in {hist.seconds:.1f} s")
    print(f"test reconstruction error {before:.4f} -> {after:.4f} (mean squared error per pixel)")
    if args.figure:
        draw(net, X_test, args.figure)
        print(f"originals and reconstructions in {args.figure}")
    return before, after


if __name__ == "__main__":
    main()
