"""A multilayer perceptron on Fashion-MNIST: Dense layers with ReLU (7.3), trained on the softmax log-loss
(7.4) by hdl.train.fit (mini-batch SGD with momentum), one CSV row per epoch, the test accuracy at the end.

The data: Debian's dataset-fashion-mnist (apt-get install dataset-fashion-mnist), or any folder holding the
four IDX files (train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-
idx1-ubyte); MNIST comes in the same format.

    python examples/fashion_mnist_mlp.py [--data DIR] [--limit 6000] [--epochs 10] [--log mlp_log.csv]
"""
import argparse
from pathlib import Path

import numpy as np

import hdl
from hdl.callbacks import CSVLogger
from hdl.data.idx import FASHION_MNIST, load_fashion_mnist
from hdl.layers import Dense, Flatten
from hdl.train import fit


def load(folder, limit=None):
    """((train images, labels), (test images, labels)), at most `limit` of each; images float32 in [0, 1],
    shape (N, 28, 28, 1)."""
    try:
        train, test = load_fashion_mnist(folder)
    except (OSError, ValueError) as err:  # missing or damaged files
        raise SystemExit(f"{err}\nInstall Debian's dataset-fashion-mnist, or give --data DIR: a folder of the four "
                         "IDX files (train-images-idx3-ubyte, ..., gzipped or not)")
    return [((x[:limit] / 255.0).astype(np.float32), y[:limit]) for x, y in (train, test)]


def mlp(seed=0):
    """784 -> 256 -> 128 -> 10: two ReLU layers (7.3), then linear class scores for the softmax (7.4)."""
    return hdl.Model([Flatten(),  # (N, 28, 28, 1) images -> (N, 784) rows
                      Dense(784, 256, "relu", rng=seed, dtype=np.float32),
                      Dense(256, 128, "relu", rng=seed + 1, dtype=np.float32),
                      Dense(128, 10, "linear", rng=seed + 2, dtype=np.float32)])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=str(FASHION_MNIST), help="folder of the four IDX files")
    p.add_argument("--limit", type=int, default=None, help="use at most N training and N test images")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch", type=int, default=100)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--log", default="mlp_log.csv", help="the CSV log, one row per epoch")
    args = p.parse_args(argv)
    if args.limit is not None and args.limit < 20:
        p.error("--limit must be at least 20 (a tenth of the training images is held out for validation)")

    (x, y), (x_test, y_test) = load(args.data, args.limit)
    n_val = len(x) // 10  # the last tenth of the training set checks each epoch; the test set is kept apart
    train, val = (x[:-n_val], y[:-n_val]), (x[-n_val:], y[-n_val:])
    model = mlp()
    print(model.summary((28, 28, 1)))

    Path(args.log).unlink(missing_ok=True)  # CSVLogger appends: start this run's log afresh
    history = fit(model, train, val, epochs=args.epochs, batch_size=args.batch, lr=args.lr, momentum=0.9,
                  weight_decay=1e-4, callbacks=[CSVLogger(args.log)], progress=False)
    print(f"{len(history.epochs)} epochs on {len(train[0])} images, validation error "
          f"{100 * history.val['top1'][-1]:.1f}%, {history.images_per_second[-1]:.0f} images/s; log in {args.log}")

    accuracy = float(np.mean(model.predict(x_test) == y_test))
    print(f"test accuracy: {100 * accuracy:.1f}% on {len(x_test)} images")
    return accuracy


if __name__ == "__main__":
    main()
