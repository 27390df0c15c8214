"""The model file of a classification experiment (hdl cifar10, cifar100, mnist, fashion-mnist), which
hdl evaluate and hdl predict read: Model.save's .npz (the parameters and the JSON description, no
pickle) with, in its metadata, the data set (name, class names, input shape, label kind), the
preprocessing and the run's summary; the preprocessing's arrays (the mean image, the whitening) are
stored beside the parameters (Model.save's arrays, model.arrays once loaded). Model.load reads such a
file as any other.

Files written by hdl cifar10 before the data set was recorded (metadata: network and summary only)
are read as CIFAR-10 models whose preprocessing must be recomputed from the training set."""
from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

@dataclass
class Classifier:
    """A trained model with what evaluating and predicting need."""

    model: object
    dataset: str  # 'cifar10', 'cifar100', 'mnist', 'fashion-mnist'
    classes: tuple
    input_shape: tuple  # (H, W, C)
    label: str = "fine"  # CIFAR-100: 'fine' or 'coarse'
    preprocessing: dict = field(default_factory=dict)  # apply_stats's statistics; {} to recompute
    path: str = ""

    @property
    def needs_statistics(self) -> bool:
        return not self.preprocessing

    def statistics(self, images) -> dict:
        """The preprocessing statistics; for a model file of an earlier hdl cifar10, which did not save them,
        recomputed from the training set of `images`."""
        if not self.needs_statistics:
            return self.preprocessing
        from hdl.data.preprocess import matconvnet_cifar
        return matconvnet_cifar(images.x, images.xt, return_stats=True)[2]


def save(model, path, *, dataset, classes, input_shape, stats, summary, label="fine"):
    """Writes the model file atomically (Model.save, with the preprocessing's arrays beside the parameters)."""
    numbers = {k: v for k, v in stats.items() if not isinstance(v, np.ndarray)}
    arrays = {k: v for k, v in stats.items() if isinstance(v, np.ndarray)}
    extra = {"summary": summary, "preprocessing": numbers,
             "dataset": {"name": dataset, "classes": list(classes), "input_shape": list(input_shape), "label": label}}
    model.save(path, extra=extra, arrays=arrays)
    return os.fspath(path)


def _wrong_kind(path, meta):
    if "history" in meta:
        return (f"{path} is a training checkpoint (written after every epoch for --resume), not a trained model; "
                "use the model file the run wrote at its end (model*.npz)")
    return (f"{path} is an hdl model without a record of its data set (not written by hdl cifar10, cifar100, mnist "
            "or fashion-mnist), so hdl cannot tell which test set and preprocessing it needs")


def load(path) -> Classifier:
    """The Classifier a model file holds; a ValueError saying what is wrong with any other file."""
    from hdl.data.cifar10 import CLASSES
    from hdl.model import Model

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such model file")
    model = Model.load(path)  # ModelFileError (a ValueError) naming the file for anything else
    meta = model.meta
    info = meta.get("dataset")
    if info is None:
        if meta.get("summary", {}).get("experiment") != "cifar10":
            raise ValueError(_wrong_kind(path, meta))
        return Classifier(model, "cifar10", CLASSES, (32, 32, 3), path=path)  # an earlier hdl cifar10's file
    stats = {**meta.get("preprocessing", {}), **model.arrays}
    return Classifier(model, info["name"], tuple(info["classes"]), tuple(info["input_shape"]),
                      info.get("label", "fine"), stats, path)


def load_or_train(path=None, data=None, out="trained", limit=5000, epochs=3, seed=0, verify=True):
    """(Classifier, ImageSet): the CIFAR-10 model file `path` (written by hdl cifar10) with its data set; without
    a path, a small cifar_net trained here by run_cifar10 on the first `limit` training images for `epochs`
    epochs (its model file is written into `out`), for the Section 8 experiments that need a trained network."""
    from hdl.experiments import datasets

    if path is None:
        from hdl.experiments.cifar import run_cifar10
        path = run_cifar10(data=data, out=out, epochs=epochs, limit=limit, seed=seed, lr=0.05, plot=False,
                           progress=False, verify=verify)["model"]
    clf = load(path)
    images = datasets.load(clf.dataset, data, clf.label, verify=verify)
    if images.input_shape != clf.input_shape or len(images.classes) != len(clf.classes):
        raise ValueError(f"{clf.path} takes {clf.input_shape} images in {len(clf.classes)} classes, but the data "
                         f"found are {images.input_shape} images in {len(images.classes)} classes")
    if clf.needs_statistics:
        clf.preprocessing = clf.statistics(images)
    return clf, images
