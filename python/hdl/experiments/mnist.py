"""MNIST and Fashion-MNIST with a LeNet-style network (LeCun et al., 1998), built from hdl's layers:
conv 5x5 -> ReLU -> max pool 2 -> conv 5x5 -> ReLU -> max pool 2 -> fully connected -> ReLU -> fully
connected, the sizes of MatConvNet's cnn_mnist example (20 and 50 filters, 500 hidden units), trained
by hdl.train.fit (SGD with momentum 0.9, weight decay 5e-4) on images scaled to [0, 1] and standardised
with the training set's mean and standard deviation. The test set serves as the validation set."""
from __future__ import annotations

import json
import os
import time

import numpy as np

import hdl
from hdl.data.preprocess import standardize
from hdl.experiments import datasets, modelfile
from hdl.layers import Conv2d, FullyConnected, MaxPool2d, ReLU
from hdl.model import Model
from hdl.train import fit

TITLES = {"mnist": "MNIST", "fashion-mnist": "Fashion-MNIST"}


def lenet(input_shape=(28, 28, 1), classes=10, seed=0) -> Model:
    """The LeNet-style network for (H, W, C) images: two 5x5 convolutions (20, 50 filters), each with
    a ReLU and a 2x2 max pool, then 500 hidden units and `classes` outputs; He initialisation."""
    rng = np.random.default_rng(seed)
    h, w, c = input_shape
    side = lambda n: ((n - 4) // 2 - 4) // 2  # noqa: E731  (5x5 valid convolutions, 2x2 pools)
    return Model([Conv2d(c, 20, 5, init="he", rng=rng), ReLU(), MaxPool2d(2),
                  Conv2d(20, 50, 5, init="he", rng=rng), ReLU(), MaxPool2d(2),
                  FullyConnected(50, 500, (side(h), side(w)), init="he", rng=rng), ReLU(),
                  FullyConnected(500, classes, init="glorot", rng=rng)])


def run_mnist(dataset="mnist", data=None, out=None, epochs=10, batch_size=100, lr=0.01, seed=0, threads=None,
              resume=False, progress=True, plot=True, limit=None, device="cpu", verify=True, comm=None) -> dict:
    """Trains and evaluates; writes the figures, summary.json, log.csv, checkpoint.npz and model.npz
    into `out` (default: the data set's name). comm: an hdl.distributed.World to train data-parallel on its
    ranks (only rank 0 writes)."""
    if plot:  # no matplotlib: say so now, not after the training
        from hdl.plot import _pyplot
        _pyplot()
    start = time.perf_counter()
    out = out or dataset
    if threads:
        hdl.set_num_threads(threads)
    images = datasets.load(dataset, data, verify=verify).limited(limit)
    x, xt, stats = standardize(images.x, images.xt)
    net = datasets.move(lenet(images.input_shape, len(images.classes), seed), device)
    writer = comm is None or comm.rank == 0
    if writer:
        os.makedirs(out, exist_ok=True)
    checkpoint, log = os.path.join(out, "checkpoint.npz"), os.path.join(out, "log.csv")
    history = fit(net, (x, images.y), (xt, images.yt), epochs=epochs, batch_size=batch_size, lr=lr, momentum=0.9,
                  weight_decay=5e-4, seed=seed, checkpoint=checkpoint, resume=resume, progress=progress,
                  callbacks=[datasets.training_log(log, resume, checkpoint)] if writer else [], comm=comm)
    report = datasets.test_report(net, xt, images.yt, images.classes)
    predicted = report.pop("predicted")
    summary = {"experiment": dataset, "dataset": dataset, "epochs": epochs, "epochs_run": history.epochs,
               "batch_size": batch_size, "lr": lr, "seed": seed, "device": device, "training_images": len(x),
               "test_images": len(xt), **report,
               "final": {"train": {k: v[-1] for k, v in history.train.items() if v},
                         "val": {k: v[-1] for k, v in history.val.items() if v}},
               "seconds_total": time.perf_counter() - start, "seconds_training": sum(history.epoch_seconds),
               "images_per_second": float(np.mean(history.images_per_second)) if history.images_per_second else 0.0,
               "threads": hdl.get_num_threads(), "ranks": 1 if comm is None else comm.size, "log": log,
               "checkpoint": checkpoint}
    if not writer:
        return summary
    model = modelfile.save(net, os.path.join(out, "model.npz"), dataset=dataset, classes=images.classes,
                           input_shape=images.input_shape, stats=stats, summary=summary)
    summary["model"] = model
    summary["figures"] = _figures(out, dataset, history, summary, images, predicted) if plot else {}
    with open(os.path.join(out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    return summary


def _figures(out, dataset, history, summary, images, predicted) -> dict:
    from hdl import plot_cnn

    title = TITLES[dataset]
    figures = {"curves": os.path.join(out, "curves.png"), "confusion": os.path.join(out, "confusion.png"),
               "misclassified": os.path.join(out, "misclassified.png")}
    plot_cnn.training_curves(history, figures["curves"], f"{title}: LeNet-style network")
    plot_cnn.confusion(np.array(summary["confusion_matrix"]), images.classes, figures["confusion"],
                       f"{title}: test confusion matrix, accuracy {100 * summary['test_accuracy']:.1f}%")
    plot_cnn.misclassified(images.xt, predicted, images.yt, images.classes, figures["misclassified"])
    return figures
