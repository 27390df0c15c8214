"""Section 7.4: the MatConvNet CIFAR-10 network trained as in the paper: batch 100, momentum
0.9, weight decay 1e-4, 45 epochs at 0.05 (30), 0.005 (10), 0.0005 (5), filters at 0.1x and
biases at 2x the rate, MatConvNet's preprocessing; optionally dropout 0.15, 0.15, 0.15, 0.35
after blocks 1-4, and random left-right flips of the training images (MatConvNet's cnn_cifar.m flips
each batch as a whole with probability 1/2; hdl flips each image with probability 1/2). The official
test set serves as the validation set, as in MatConvNet's code.

dataset='cifar100' trains the same network with 100 outputs (20 with label='coarse') on CIFAR-100."""
from __future__ import annotations

import json
import os
import time

import numpy as np

import hdl
from hdl import schedules
from hdl.convnet import cifar_net
from hdl.data.preprocess import matconvnet_cifar
from hdl.experiments import datasets, modelfile
from hdl.layers import Conv2d
from hdl.model import Model
from hdl.train import fit


def network(classes=10, dropout=False, seed=0) -> Model:
    """cifar_net with `classes` outputs: its last 1x1 convolution widened for CIFAR-100."""
    net = cifar_net(dropout=dropout, seed=seed)
    if classes == 10:
        return net
    last = net.layers[-1]
    head = Conv2d(last.in_channels, classes, 1, scale=last.scale, lr_mults=last.lr_mults,
                  decay_mults=last.decay_mults, rng=np.random.default_rng([seed, classes]))
    return Model(net.layers[:-1] + [head])


def run_cifar10(data=None, out="cifar10", epochs=45, batch_size=100, lr=None, dropout=False, seed=0,
                threads=None, flips=True, resume=False, progress=True, plot=True, limit=None, dataset="cifar10",
                label="fine", device="cpu", verify=True, comm=None) -> dict:
    """Trains and evaluates; writes the figures, summary, CSV log, checkpoint and model into `out`. comm: an
    hdl.distributed.World to train data-parallel on its ranks (batch_size is the global batch; only rank 0
    writes)."""
    if plot:  # no matplotlib: say so now, not after the training
        from hdl.plot import _pyplot
        _pyplot()
    start = time.perf_counter()
    if threads:
        hdl.set_num_threads(threads)
    images = datasets.load(dataset, data, label, verify).limited(limit)
    x, xt, stats = matconvnet_cifar(images.x, images.xt, return_stats=True)
    prep_seconds = time.perf_counter() - start
    net = datasets.move(network(len(images.classes), dropout, seed), device)
    writer = comm is None or comm.rank == 0
    if writer:
        os.makedirs(out, exist_ok=True)
    tag = "dropout" if dropout else "plain"
    checkpoint = os.path.join(out, f"checkpoint_{tag}.npz")
    log = os.path.join(out, f"log_{tag}.csv")
    schedule = schedules.PerEpoch.paper() if lr is None else schedules.make(lr)
    history = fit(net, (x, images.y), (xt, images.yt), epochs=epochs, batch_size=batch_size, lr=schedule,
                  momentum=0.9, weight_decay=1e-4, flips=flips, seed=seed, checkpoint=checkpoint, resume=resume,
                  progress=progress, callbacks=[datasets.training_log(log, resume, checkpoint)] if writer else [],
                  comm=comm)
    report = datasets.test_report(net, xt, images.yt, images.classes)
    predicted, M = report.pop("predicted"), np.array(report["confusion_matrix"])
    summary = {
        "experiment": dataset, "dataset": dataset, "dropout": dropout, "epochs": epochs,
        "epochs_run": history.epochs, "batch_size": batch_size, "seed": seed, "device": device, **report,
        "final": {"train": {k: v[-1] for k, v in history.train.items()},
                  "val": {k: v[-1] for k, v in history.val.items()}},
        "seconds_total": time.perf_counter() - start, "seconds_preprocessing": prep_seconds,
        "seconds_training": sum(history.epoch_seconds),
        "images_per_second": float(np.mean(history.images_per_second)) if history.images_per_second else 0.0,
        "threads": hdl.get_num_threads(), "ranks": 1 if comm is None else comm.size, "isa": hdl.isa(), "log": log,
        "checkpoint": checkpoint,
    }
    if dataset == "cifar100":
        summary["label"] = label
    model = os.path.join(out, f"model_{tag}.npz")
    if not writer:
        return {**summary, "model": model}
    modelfile.save(net, model, dataset=dataset, classes=images.classes, input_shape=images.input_shape,
                   stats=stats, summary=summary, label=label)
    summary["model"] = model
    summary["figures"] = _figures(out, tag, dropout, dataset, history, M, images, predicted, summary, seed) \
        if plot else {}
    with open(os.path.join(out, f"summary_{tag}.json"), "w") as f:
        json.dump(summary, f, indent=2)
    return summary


def _figures(out, tag, dropout, dataset, history, M, images, predicted, summary, seed) -> dict:
    """Figures 7.2/7.3 (curves), 7.4/7.5 (confusion matrix), 7.6 (misclassified test images)."""
    from hdl import plot_cnn

    title = "CIFAR-10" if dataset == "cifar10" else "CIFAR-100"
    figures = {}
    n = "7.3" if dropout else "7.2"
    figures["curves"] = os.path.join(out, f"figure_{n.replace('.', '_')}_errors.png")
    plot_cnn.training_curves(history, figures["curves"], f"Figure {n}: {title} ({tag})")
    n = "7.5" if dropout else "7.4"
    figures["confusion"] = os.path.join(out, f"figure_{n.replace('.', '_')}_confusion.png")
    plot_cnn.confusion(M, images.classes, figures["confusion"],
                       f"Figure {n}: test confusion matrix ({tag}), accuracy {100 * summary['test_accuracy']:.1f}%")
    figures["misclassified"] = os.path.join(out, f"figure_7_6_misclassified_{tag}.png")
    plot_cnn.misclassified(images.xt, predicted, images.yt, images.classes, figures["misclassified"], seed=seed)
    return figures


def run_cifar100(data=None, out="cifar100", label="fine", **kwargs) -> dict:
    """run_cifar10 on CIFAR-100 (fine labels, or the 20 coarse ones with label='coarse')."""
    return run_cifar10(data=data, out=out, dataset="cifar100", label=label, **kwargs)
