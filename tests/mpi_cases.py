"""The models, data and runs that tests/mpi_worker.py trains on two ranks and tests/test_distributed.py on one,
so that both sides build exactly the same things."""
import numpy as np

from hdl.layers import Conv2d, Dense, Flatten, MaxPool2d, ReLU
from hdl.model import Model


def small_net(seed=0):
    """A conv layer, a pool and a dense layer: every kind of parameter fit reduces."""
    return Model([Conv2d(2, 4, 3, pad=1, init="he", rng=seed), ReLU(), MaxPool2d(2), Flatten(),
                  Dense(4 * 4 * 4, 3, "linear", rng=seed + 1, dtype=np.float32)])


def blobs(n, seed=0):
    """n images (n, 8, 8, 2) in 3 classes told apart by the mean of a quadrant; labels (n,)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    x = rng.standard_normal((n, 8, 8, 2)).astype(np.float32)
    x[y == 1, :4, :4, 0] += 1.5
    x[y == 2, 4:, 4:, 1] += 1.5
    return x, y


FIT = dict(epochs=4, batch_size=30, lr=0.05, momentum=0.9, weight_decay=1e-4, flips=True, seed=3, progress=False)
