"""A layer of your own inside a model with built-in ones: Swish, x * sigmoid(x), written with forward and
backward only, checked by hdl.gradcheck, trained with Conv2d and Dense layers, saved and loaded by name.

The task, made up here so that the script needs no data: tell 12x12 grey images of a horizontal bar from
images of a vertical one, under noise.

    python examples/custom_layer.py [--epochs 4] [--images 2000]
"""
import argparse
import tempfile
from pathlib import Path

import numpy as np

import hdl
from hdl.layers import Conv2d, Dense, Flatten, Layer, MaxPool2d, ReLU
from hdl.train import fit


class Swish(Layer):
    """y = x sigma(x); dy/dx = sigma(x) (1 + x (1 - sigma(x)))."""

    def forward(self, x):
        self.s = 1.0 / (1.0 + np.exp(-x))
        return x * self.s

    def backward(self, dy, x, y):
        return dy * self.s * (1.0 + x * (1.0 - self.s))


def bars(n, rng):
    """n noisy 12x12 images (NHWC, float32): label 0 a horizontal bar, 1 a vertical one."""
    x = 0.3 * rng.standard_normal((n, 12, 12, 1)).astype(np.float32)
    labels = rng.integers(0, 2, n)
    where = rng.integers(2, 10, n)
    for i in range(n):
        if labels[i] == 0:
            x[i, where[i], 2:10, 0] += 1.0
        else:
            x[i, 2:10, where[i], 0] += 1.0
    return x, labels


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--images", type=int, default=2000)
    args = p.parse_args(argv)

    report = hdl.gradcheck(Swish(), np.random.default_rng(0).standard_normal((3, 5)))
    print(f"gradcheck of Swish: worst error {report['dx']:.2e} of the tolerance")

    rng = np.random.default_rng(1)
    train, test = bars(args.images, rng), bars(500, rng)
    model = hdl.Model([Conv2d(1, 8, 3, pad=1, init="he", rng=0), ReLU(), MaxPool2d(2),
                       Conv2d(8, 8, 3, pad=1, init="he", rng=1), Swish(), MaxPool2d(2), Flatten(),
                       Dense(8 * 3 * 3, 2, "linear", rng=2, dtype=np.float32)])
    print(model.summary((12, 12, 1)))
    history = fit(model, train, test, epochs=args.epochs, batch_size=50, lr=0.05, weight_decay=0.0,
                 progress=False)
    accuracy = float(np.mean(model.predict(test[0]) == test[1]))
    print(f"test accuracy after {args.epochs} epochs: {100 * accuracy:.1f}% "
          f"({history.images_per_second[-1]:.0f} images/s in the last epoch)")

    with tempfile.TemporaryDirectory() as tmp:  # saved and loaded by name: Swish is in the registry
        path = Path(tmp) / "bars.npz"
        model.save(path)
        again = hdl.Model.load(path)
        assert type(again.layers[4]) is Swish
        assert np.array_equal(again.predict(test[0]), model.predict(test[0]))
    print("saved and loaded: the same predictions")
    return accuracy


if __name__ == "__main__":
    main()
