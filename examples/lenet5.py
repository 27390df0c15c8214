"""LeNet-5 on Fashion-MNIST (or MNIST: the same IDX files): convolutions (Section 7.1), max pooling and ReLU,
then three fully connected layers, trained on the softmax log-loss (7.4) with momentum, weight decay (8.2)
and a step learning-rate schedule; the test set's top-1 and top-5 errors and confusion matrix (Section 7.4).

    python examples/lenet5.py [--data /usr/share/datasets/fashion-mnist] [--limit 10000] [--epochs 10]
"""
import argparse

import numpy as np

import hdl
from hdl import schedules
from hdl.data.idx import FASHION_MNIST, load_fashion_mnist
from hdl.layers import Conv2d, Dense, Flatten, MaxPool2d, ReLU
from hdl.metrics import confusion_matrix
from hdl.train import evaluate, fit

FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                   "Ankle boot"]


def load(folder, limit=None):
    """((train images, labels), (test images, labels)), at most `limit` of each; images float32 (N, 28, 28, 1)
    in [0, 1], less the training set's mean pixel."""
    try:
        (x, y), (xt, yt) = load_fashion_mnist(folder)
    except (OSError, ValueError) as err:  # missing or damaged files
        raise SystemExit(f"{err}\nInstall Debian's dataset-fashion-mnist, or give --data DIR: a folder of the four "
                         "IDX files (train-images-idx3-ubyte, ..., gzipped or not)")
    x, xt = (a[:limit].astype(np.float32) / 255 for a in (x, xt))
    mean = x.mean()
    return (x - mean, y[:limit]), (xt - mean, yt[:limit])


def lenet5(seed=0):
    """28x28x1 -> conv 5x5 (6, pad 2) -> pool -> conv 5x5 (16) -> pool -> 120 -> 84 -> 10 class scores."""
    rng = np.random.default_rng(seed)
    return hdl.Model([
        Conv2d(1, 6, 5, pad=2, init="he", rng=rng), ReLU(), MaxPool2d(2),   # 28x28x6 -> 14x14x6
        Conv2d(6, 16, 5, init="he", rng=rng), ReLU(), MaxPool2d(2),         # 10x10x16 -> 5x5x16
        Flatten(),
        Dense(16 * 5 * 5, 120, "relu", rng=rng, dtype=np.float32),
        Dense(120, 84, "relu", rng=rng, dtype=np.float32),
        Dense(84, 10, "linear", rng=rng, dtype=np.float32)])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=str(FASHION_MNIST), help="folder of the four IDX files")
    p.add_argument("--limit", type=int, default=None, help="use at most N training and N test images")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=0.02, help="the rate before the step; a tenth of it after")
    args = p.parse_args(argv)

    train, (x_test, y_test) = load(args.data, args.limit)
    model = lenet5()
    print(model.summary((28, 28, 1)))
    schedule = schedules.Step(args.lr, milestones=[int(0.75 * args.epochs)], gamma=0.1)  # eta / 10 at 3/4
    history = fit(model, train, epochs=args.epochs, batch_size=args.batch, lr=schedule, momentum=0.9,
                  weight_decay=5e-4, progress=False)
    print(f"trained {len(history.epochs)} epochs, rates {sorted(set(history.lr), reverse=True)}, "
          f"{history.images_per_second[-1]:.0f} images/s")

    errors = evaluate(model, x_test, y_test)
    print(f"test: top-1 error {100 * errors['top1']:.1f}%, top-5 error {100 * errors['top5']:.1f}%, "
          f"objective {errors['objective']:.3f}")
    M = confusion_matrix(model.predict(x_test), y_test, 10)
    print("confusion matrix: M[i, j] = images of class j predicted as i")
    print("     " + "".join(f"{j:5d}" for j in range(10)))
    for i, row in enumerate(M):
        print(f"{i:5d}" + "".join(f"{v:5d}" for v in row))
    print("Fashion-MNIST's classes: " + ", ".join(f"{k} {name}" for k, name in enumerate(FASHION_CLASSES)))
    return errors


if __name__ == "__main__":
    main()
