"""The labelled image sets of the classification experiments, by name, and the pieces of a run that
they share: the data (raw uint8 images), the CSV log beside the checkpoint, the test report."""
from __future__ import annotations

import csv
import os
from dataclasses import dataclass

import numpy as np

NAMES = ("cifar10", "cifar100", "mnist", "fashion-mnist")


@dataclass
class ImageSet:
    x: np.ndarray  # training images uint8 (N, H, W, C)
    y: np.ndarray
    xt: np.ndarray  # test images
    yt: np.ndarray
    classes: tuple

    @property
    def input_shape(self) -> tuple:
        return tuple(int(d) for d in self.x.shape[1:])

    def limited(self, limit: int | None, test_share: int = 5) -> "ImageSet":
        """The first `limit` training and limit // test_share test images (a quick look)."""
        if not limit:
            return self
        t = max(limit // test_share, 1)
        return ImageSet(self.x[:limit], self.y[:limit], self.xt[:t], self.yt[:t], self.classes)


def load(name: str, data=None, label: str = "fine", verify: bool = True) -> ImageSet:
    """The data set `name` (NAMES) from the folder `data` (else where its loader looks)."""
    if name == "cifar10":
        from hdl.data.cifar10 import CLASSES, load_cifar10
        (x, y), (xt, yt) = load_cifar10(data, verify=verify)
        return ImageSet(x, y, xt, yt, CLASSES)
    if name == "cifar100":
        from hdl.data.cifar100 import load_cifar100
        (x, y), (xt, yt), classes = load_cifar100(data, label=label, verify=verify, with_names=True)
        return ImageSet(x, y, xt, yt, classes)
    if name in ("mnist", "fashion-mnist"):
        from hdl.data.idx import DATASETS, load_idx_dataset
        (x, y), (xt, yt) = load_idx_dataset(name, data, verify=verify)
        return ImageSet(x, y, xt, yt, DATASETS[name]["classes"])
    raise ValueError(f"unknown data set {name!r}; choose one of {', '.join(NAMES)}")


def training_log(path: str, resume: bool, checkpoint: str):
    """A CSVLogger for `path`: a fresh file for a new run; on --resume the rows of the epochs after the
    checkpoint's last (written before a run was stopped) are dropped, so that each epoch has one row."""
    from hdl.callbacks import CSVLogger

    if not resume and os.path.exists(path):
        os.remove(path)
    elif resume and os.path.exists(path):
        last = _checkpoint_epoch(checkpoint)
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
        keep = [r for r in rows if int(r["epoch"]) <= last]
        if len(keep) < len(rows):
            with open(path, "w", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=list(rows[0]))
                writer.writeheader()
                writer.writerows(keep)
    return CSVLogger(path)


def _checkpoint_epoch(checkpoint: str) -> int:
    if not os.path.exists(checkpoint):
        return 0
    from hdl.model import Model
    epochs = Model.load(checkpoint).meta.get("history", {}).get("epochs", [])
    return epochs[-1] if epochs else 0


def test_report(net, xt, yt, classes) -> dict:
    """Accuracy, top-5 error, the confusion matrix (M[i, j]: predicted i for true j) and the accuracy of
    each class of the test images xt (preprocessed) with labels yt."""
    from hdl.metrics import confusion_matrix, top_k_error

    scores = net.scores(xt)
    predicted = scores.argmax(axis=1)
    M = confusion_matrix(predicted, yt, len(classes))
    return {"test_accuracy": float(np.mean(predicted == yt)), "test_top5_error": top_k_error(scores, yt, 5),
            "per_class_accuracy": {c: float(M[i, i] / max(M[:, i].sum(), 1)) for i, c in enumerate(classes)},
            "confusion_matrix": M.tolist(), "predicted": predicted}


def move(net, device: str):
    """net on `device` ('cpu' or 'cuda'); a RuntimeError saying why when hdl has no GPU."""
    if device == "cuda":
        from hdl import cuda
        cuda.require()
    return net.to(device)
