"""The bookkeeping of a training run, one for both trainers: hdl.train.fit (a Python loop over the
batches of a Model) and hdl.stochastic_gradient (the compiled loop of Section 4, which calls back after
every epoch and about every 0.1 s). It keeps the History's per-epoch records, runs the callbacks and
honours their stop, draws the progress bar (batches, loss, images/s) and words the divergence stop.
"""
from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from hdl.callbacks import Callback, Checkpoint, EarlyStopping
from hdl.history import History

if TYPE_CHECKING:
    from hdl.model import Model

#: on_epoch(epoch, history), called after the callbacks at the end of every epoch.
OnEpoch = Callable[[int, History], object]


class TrainingDiverged(FloatingPointError):
    """The objective became NaN or infinite; the message names the epoch and the batch."""


def callbacks_of(callbacks: Iterable[Callback] = (), patience: int | None = None,
                 checkpoint: str | os.PathLike[str] | None = None) -> list[Callback]:
    """The callbacks list, with the shorthands patience=k (EarlyStopping(k)) and checkpoint=path
    (Checkpoint(path) after every epoch) appended."""
    out = list(callbacks)
    if patience is not None:
        out.append(EarlyStopping(patience))
    if checkpoint:
        out.append(Checkpoint(checkpoint))
    for cb in out:
        if not isinstance(cb, Callback):
            raise TypeError(f"callbacks must be hdl.callbacks.Callback objects, got {cb!r}")
    return out


class Run:
    """One run: `model` trained for epochs first_epoch..epochs of `batches` batches each, into `history`."""

    def __init__(self, model: Model, history: History, callbacks: Iterable[Callback], *, epochs: int, batches: int,
                 first_epoch: int = 1, progress: bool = False, on_epoch: OnEpoch | None = None):
        self.model, self.history, self.callbacks, self.on_epoch = model, history, list(callbacks), on_epoch
        self.epochs, self.batches = epochs, batches
        self.bar = _progress_bar(progress, (epochs - first_epoch + 1) * batches)
        self.t0 = time.perf_counter()

    def start_epoch(self) -> None:
        self.t0 = time.perf_counter()

    def show(self, batches_done: int, epoch: int, loss: float | None, images: int) -> None:
        """Moves the bar to batches_done of this epoch, with the loss so far (if known) and images/s."""
        if self.bar is None:
            return
        self.bar.update(max(0, (epoch - 1) * self.batches + batches_done - self.bar.n))
        seconds = max(time.perf_counter() - self.t0, 1e-9)
        text: dict[str, object] = {"epoch": epoch} if loss is None else {"epoch": epoch, "loss": f"{loss:.4g}"}
        self.bar.set_postfix(**text, img_s=f"{images / seconds:.0f}", refresh=False)

    def end_epoch(self, epoch: int, lr: float, images: int, train: Mapping[str, float],
                  val: Mapping[str, float] | None = None, seconds: float | None = None) -> bool:
        """Records the epoch, then calls every callback (each sees every epoch) and on_epoch; True stops."""
        h = self.history
        seconds = time.perf_counter() - self.t0 if seconds is None else seconds
        h.epochs.append(epoch)
        h.lr.append(lr)
        for k, v in train.items():
            h.train[k].append(v)
        h.epoch_seconds.append(seconds)
        h.seconds += seconds
        h.images_per_second.append(images / max(seconds, 1e-9))
        if val:
            for k, v in val.items():
                h.val[k].append(v)
            if h.val["top1"] and h.val["top1"][-1] < min(h.val["top1"][:-1], default=float("inf")):
                h.best_epoch = epoch
        stop = [cb.on_epoch_end(epoch, self.model, h) for cb in self.callbacks]
        if self.on_epoch is not None:
            self.on_epoch(epoch, h)
        self.start_epoch()
        return any(stop)

    def diverged(self, what: str, value: object, epoch: int, batch: int, rate: str, applied: bool) -> TrainingDiverged:
        """The error for a non-finite `what` at (epoch, batch); rate names the learning rate ('eta=0.1')."""
        state = ("an earlier update already left non-finite parameters, which are no longer usable" if applied else
                 "the network is left as it was before that batch is applied")
        return TrainingDiverged(f"the {what} became {value} at epoch {epoch}, batch {batch} of {self.batches} "
                                f"({rate}, probably too large); {state}, and the last checkpoint holds an earlier "
                                "epoch")

    def finish(self) -> None:
        for cb in self.callbacks:
            cb.on_train_end(self.model, self.history)
        self.close()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _progress_bar(enabled: bool, total: int) -> Any:
    if not enabled:
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, unit="batch", dynamic_ncols=True, leave=False)
