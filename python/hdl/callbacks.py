"""What a training run does after every epoch besides training: stop early, save checkpoints, log.

A callback subclasses Callback and overrides on_epoch_end(epoch, model, history), returning True to
stop the run, and on_train_end(model, history). hdl.train.fit and hdl.stochastic_gradient (given epochs)
call every callback after every epoch, in order (hdl.run.Run).
"""
from __future__ import annotations

import csv
import json
import math
import os
from typing import TYPE_CHECKING, Any

from hdl.history import KEYS, History

if TYPE_CHECKING:
    from hdl.backend import Array
    from hdl.model import Model


class Callback:
    #: True for a callback that writes files: in data-parallel training (hdl.distributed) only rank 0 runs it.
    writes_files = False

    def on_epoch_end(self, epoch: int, model: Model, history: History) -> bool:
        return False

    def on_train_end(self, model: Model, history: History) -> None:
        pass


class EarlyStopping(Callback):
    """Stops when `monitor` (default: the validation top-1 error, else the training objective) has not
    improved for `patience` epochs, and puts back the weights of the best epoch (restore_best)."""

    def __init__(self, patience: int, monitor: str | None = None, restore_best: bool = True):
        if int(patience) < 1:
            raise ValueError(f"patience must be a positive number of epochs, got {patience}")
        self.patience, self.monitor, self.restore_best = int(patience), monitor, restore_best
        self.best: float = math.inf
        self.best_epoch = 0
        self.weights: list[Array] | None = None

    def _value(self, history: History) -> float:
        monitor = self.monitor or ("val/top1" if history.val["top1"] else "train/objective")
        group, key = monitor.split("/")
        values = getattr(history, group)[key]
        if not values:
            raise ValueError(f"EarlyStopping: nothing recorded under {monitor!r} (give fit a validation set?)")
        return values[-1]

    def on_epoch_end(self, epoch: int, model: Model, history: History) -> bool:
        value = self._value(history)
        if value < self.best:
            self.best, self.best_epoch = value, epoch
            if self.restore_best:
                self.weights = [p.copy() for p in model.parameters()]
        return epoch - self.best_epoch >= self.patience

    def on_train_end(self, model: Model, history: History) -> None:
        if self.restore_best and self.weights is not None:
            for p, keep in zip(model.parameters(), self.weights):
                p[...] = keep


class Checkpoint(Callback):
    """Saves the model with its velocities and the history every `every` epochs (and after the last),
    atomically: a run killed mid-save leaves the previous checkpoint; resume=True of fit and stochastic_gradient
    continues from it (stochastic_gradient's with its recorded costs and its sampler's state, History.arrays)."""

    writes_files = True

    def __init__(self, path: str | os.PathLike[str], every: int = 1):
        if int(every) < 1:
            raise ValueError(f"every must be a positive number of epochs, got {every}")
        self.path, self.every = os.fspath(path), int(every)
        self.saved = 0

    def _save(self, model: Model, history: History) -> None:
        model.save(self.path, extra={"history": history.to_dict()}, with_velocities=True, arrays=history.arrays())
        self.saved = history.epochs[-1] if history.epochs else 0

    def on_epoch_end(self, epoch: int, model: Model, history: History) -> bool:
        if epoch % self.every == 0:
            self._save(model, history)
        return False

    def on_train_end(self, model: Model, history: History) -> None:
        if history.epochs and self.saved != history.epochs[-1]:
            self._save(model, history)


def _row(epoch: int, history: History) -> dict[str, Any]:
    i = history.epochs.index(epoch)
    row: dict[str, Any] = {"epoch": epoch, "lr": history.lr[i], "seconds": history.epoch_seconds[i],
           "images_per_second": history.images_per_second[i]}
    for group in ("train", "val"):
        for k in KEYS:
            values = getattr(history, group)[k]
            row[f"{group}_{k}"] = values[i] if i < len(values) else ""
    return row


class CSVLogger(Callback):
    """One row per epoch (epoch, lr, seconds, images/s, training and validation objective and errors),
    appended to a CSV file that a spreadsheet opens; the header is written when the file is new."""

    writes_files = True

    def __init__(self, path: str | os.PathLike[str]):
        self.path = os.fspath(path)

    def on_epoch_end(self, epoch: int, model: Model, history: History) -> bool:
        row = _row(epoch, history)
        new = not os.path.exists(self.path) or os.path.getsize(self.path) == 0
        with open(self.path, "a", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(row))
            if new:
                writer.writeheader()
            writer.writerow(row)
        return False


class JSONLinesLogger(Callback):
    """One JSON object per epoch and line (the same fields as CSVLogger)."""

    writes_files = True

    def __init__(self, path: str | os.PathLike[str]):
        self.path = os.fspath(path)

    def on_epoch_end(self, epoch: int, model: Model, history: History) -> bool:
        with open(self.path, "a") as f:
            f.write(json.dumps(_row(epoch, history)) + "\n")
        return False
