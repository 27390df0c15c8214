"""Section 7.4: the MatConvNet CIFAR-10 network trained as in the paper: batch 100, momentum
0.9, weight decay 1e-4, 45 epochs at 0.05 (30), 0.005 (10), 0.0005 (5), filters at 0.1x and
biases at 2x the rate, MatConvNet's preprocessing; optionally dropout 0.15, 0.15, 0.15, 0.35
after blocks 1-4, and random left-right flips of the training images (MatConvNet's cnn_cifar.m flips
each batch as a whole with probability 1/2; hdl flips each image with probability 1/2). The official
test set serves as the validation set, as in MatConvNet's code."""
from __future__ import annotations

import json
import os
import time

import numpy as np

import hdl
from hdl import schedules
from hdl.convnet import cifar_net
from hdl.data.cifar10 import CLASSES, load_cifar10
from hdl.data.preprocess import matconvnet_cifar
from hdl.metrics import confusion_matrix, top_k_error
from hdl.train import fit


def run_cifar10(data=None, out="cifar10", epochs=45, batch_size=100, lr=None, dropout=False, seed=0,
                threads=None, flips=True, resume=False, progress=True, plot=True, limit=None) -> dict:
    """Trains and evaluates; writes the figures, summary.json and the model into `out`."""
    start = time.perf_counter()
    if threads:
        hdl.set_num_threads(threads)
    (x, y), (xt, yt) = load_cifar10(data)
    if limit:  # a quick look on part of the data
        x, y, xt, yt = x[:limit], y[:limit], xt[:limit // 5], yt[:limit // 5]
    raw_test = xt
    x, xt = matconvnet_cifar(x, xt)
    prep_seconds = time.perf_counter() - start
    net = cifar_net(dropout=dropout, seed=seed)
    os.makedirs(out, exist_ok=True)
    tag = "dropout" if dropout else "plain"
    schedule = schedules.PerEpoch.paper() if lr is None else schedules.make(lr)
    history = fit(net, (x, y), (xt, yt), epochs=epochs, batch_size=batch_size, lr=schedule, momentum=0.9,
                  weight_decay=1e-4, flips=flips, seed=seed, checkpoint=os.path.join(out, f"checkpoint_{tag}.npz"),
                  resume=resume, progress=progress)
    scores = net.scores(xt)
    predicted = scores.argmax(axis=1)
    M = confusion_matrix(predicted, yt, 10)
    total = time.perf_counter() - start
    summary = {
        "experiment": "cifar10", "dropout": dropout, "epochs": epochs, "batch_size": batch_size, "seed": seed,
        "test_accuracy": float(np.mean(predicted == yt)), "test_top5_error": top_k_error(scores, yt, 5),
        "per_class_accuracy": {c: float(M[i, i] / max(M[:, i].sum(), 1)) for i, c in enumerate(CLASSES)},
        "final": {"train": {k: v[-1] for k, v in history.train.items()},
                  "val": {k: v[-1] for k, v in history.val.items()}},
        "seconds_total": total, "seconds_preprocessing": prep_seconds, "seconds_training": sum(history.epoch_seconds),
        "images_per_second": float(np.mean(history.images_per_second)), "threads": hdl.get_num_threads(),
        "isa": hdl.isa(), "confusion_matrix": M.tolist(),
    }
    model = os.path.join(out, f"model_{tag}.npz")
    net.save(model, extra={"summary": summary})
    summary["model"] = model
    figures = {}
    if plot:
        from hdl import plot_cnn

        n = "7.3" if dropout else "7.2"
        figures["curves"] = os.path.join(out, f"figure_{n.replace('.', '_')}_errors.png")
        plot_cnn.training_curves(history, figures["curves"], f"Figure {n}: CIFAR-10 ({tag})")
        n = "7.5" if dropout else "7.4"
        figures["confusion"] = os.path.join(out, f"figure_{n.replace('.', '_')}_confusion.png")
        plot_cnn.confusion(M, CLASSES, figures["confusion"],
                           f"Figure {n}: test confusion matrix ({tag}), accuracy {100 * summary['test_accuracy']:.1f}%")
        figures["misclassified"] = os.path.join(out, f"figure_7_6_misclassified_{tag}.png")
        plot_cnn.misclassified(raw_test, predicted, yt, CLASSES, figures["misclassified"], seed=seed)
    summary["figures"] = figures
    with open(os.path.join(out, f"summary_{tag}.json"), "w") as f:
        json.dump(summary, f, indent=2)
    return summary
