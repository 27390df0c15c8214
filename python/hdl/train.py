"""The training loop of Section 7: mini-batch SGD with momentum and weight decay on a Model,
a validation pass after every epoch, and a history of the objective (7.4) and the top-1 and
top-5 errors on both sets (training figures averaged over the epoch's batches, as MatConvNet's).

Every epoch's randomness (shuffle, flips, dropout) comes from (seed, epoch) alone, and a
checkpoint (parameters, velocities, history) is written atomically after every epoch, so a run
resumed from it continues exactly as if it had not stopped.
"""
from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from hdl import backend, schedules
from hdl.callbacks import Callback
from hdl.history import KEYS, History
from hdl.metrics import top_k_error
from hdl.model import Model
from hdl.run import OnEpoch, Run, TrainingDiverged, callbacks_of

#: A data set as fit takes it: (inputs (N, ...), integer labels (N,)).
Data = tuple[NDArray[Any], ArrayLike]

__all__ = ["TrainingDiverged", "evaluate", "fit"]


def evaluate(net: Model, x: NDArray[Any], y: NDArray[np.integer[Any]], batch_size: int = 500) -> dict[str, float]:
    """Objective (7.4) and top-1/top-5 errors of net on (x, y)."""
    from hdl import ops

    losses, top1, top5 = [], [], []
    for i in range(0, len(x), batch_size):
        scores = net.forward(x[i:i + batch_size])
        labels = y[i:i + batch_size]
        losses.append(ops.softmax_log_loss(scores, labels)[0] * len(labels))
        top1.append(top_k_error(scores, labels, 1) * len(labels))
        top5.append(top_k_error(scores, labels, 5) * len(labels))
    n = len(x)
    return {"objective": sum(losses) / n, "top1": sum(top1) / n, "top5": sum(top5) / n}


def _check_data(net: Model, x: NDArray[Any], y: ArrayLike, name: str) -> tuple[NDArray[Any], NDArray[np.int64]]:
    if not isinstance(x, np.ndarray) or x.ndim < 2:
        raise ValueError(f"{name} inputs must be an (N, ...) array (images (N, H, W, C)), got shape {np.shape(x)}")
    if x.dtype != net.dtype:
        raise TypeError(f"{name} inputs are {x.dtype} but the network is {net.dtype}")
    y = np.asarray(y)
    if len(x) == 0:
        raise ValueError(f"the {name} data holds no samples")
    if y.shape != (len(x),) or y.dtype.kind not in "iu":
        raise ValueError(f"{name} labels must be integers of shape ({len(x)},), got {y.dtype} {y.shape}")
    # A NaN in an input makes the filters it meets NaN, and a ReLU or max pool after them hides that from the loss.
    for i in range(0, len(x), 1024):  # in slices: no temporary the size of the data set
        finite = np.isfinite(x[i:i + 1024]).reshape(len(x[i:i + 1024]), -1).all(axis=1)
        if not finite.all():
            raise ValueError(f"{name} inputs contain NaN or infinity (first in sample {i + int(np.argmin(finite))})")
    return x, y.astype(np.int64)


def _check_parameters(net: Model, epoch: int, eta: float) -> None:
    """TrainingDiverged when a parameter is no longer finite although every batch's objective was: a ReLU or a
    max pool maps NaN to 0, so the loss does not always show it. Once per epoch, before the callbacks save it."""
    for i, p in enumerate(net.parameters()):
        if not np.isfinite(backend.to_numpy(p)).all():
            raise TrainingDiverged(f"parameter {i} became NaN or infinite during epoch {epoch} (learning rate {eta}, "
                                   "probably too large) although every batch's objective stayed finite; the network's "
                                   "parameters are no longer usable, and the last checkpoint holds an earlier epoch")


def fit(net: Model, train: Data, val: Data | None = None, *, epochs: int, batch_size: int = 100,
        lr: float | Sequence[float] | schedules.Schedule = 0.05, momentum: float = 0.9, weight_decay: float = 1e-4,
        sampling: str = "shuffle", flips: bool = False, seed: int = 0, patience: int | None = None,
        checkpoint: str | os.PathLike[str] | None = None, resume: bool = False, progress: bool = True,
        on_epoch: OnEpoch | None = None, callbacks: Iterable[Callback] = ()) -> History:
    """Trains net in place. train and val are (inputs (N, ...), labels (N,)): images (N, H, W, C), or
    rows (N, D) for a dense model.

    lr: a number, a list of per-epoch rates or an hdl.schedules.Schedule. sampling: 'shuffle'
    (each epoch a new order) or 'replacement' (batches drawn with replacement, (4.8)). flips: mirror
    each training image left-right with probability 1/2. callbacks: hdl.callbacks objects, called
    after every epoch (EarlyStopping, Checkpoint, CSVLogger, JSONLinesLogger, or your own Callback).
    Shorthands: patience=k is EarlyStopping(k) (restoring the best weights); checkpoint=path is
    Checkpoint(path) after every epoch, from which resume=True continues exactly; on_epoch(epoch,
    history) is called after the callbacks. Inputs holding NaN or infinity are refused (ValueError
    naming the first such sample); a non-finite objective stops the run with TrainingDiverged, naming
    the epoch and the batch, and a parameter no longer finite at the end of an epoch stops it too,
    naming the epoch (before the callbacks, so that no checkpoint keeps it). The run's bookkeeping (History, callbacks,
    progress bar) is hdl.run.Run, the same as stochastic_gradient's.
    """
    x, y = _check_data(net, *train, "training")
    if val is not None:
        val = _check_data(net, *val, "validation")
    if sampling not in ("shuffle", "replacement"):
        raise ValueError(f"sampling must be 'shuffle' or 'replacement', got {sampling!r}")
    if not (isinstance(epochs, int) and epochs > 0 and isinstance(batch_size, int) and batch_size > 0):
        raise ValueError(f"epochs and batch_size must be positive integers, got {epochs}, {batch_size}")
    if not (math.isfinite(momentum) and 0 <= momentum < 1 and math.isfinite(weight_decay) and weight_decay >= 0):
        raise ValueError(f"need 0 <= momentum < 1 and weight_decay >= 0, got {momentum}, {weight_decay}")
    schedule = schedules.make(lr)
    callbacks = callbacks_of(callbacks, patience, checkpoint)
    history, start = History(method=f"fit: SGD with momentum ({net.momentum_form} form)", seed=seed), 1
    if resume and checkpoint and os.path.exists(checkpoint):
        loaded = Model.load(checkpoint, with_velocities=True)
        for mine, theirs in zip(net.parameters() + net.velocities, loaded.parameters() + loaded.velocities):
            mine[...] = theirs
        history = History.from_dict(loaded.meta["history"])
        start = history.epochs[-1] + 1 if history.epochs else 1
    N = len(x)
    batches = -(-N // batch_size)
    run = Run(net, history, callbacks, epochs=epochs, batches=batches, first_epoch=start, progress=progress,
              on_epoch=on_epoch)
    try:
        for epoch in range(start, epochs + 1):
            rng = np.random.default_rng([seed, epoch])
            eta = schedule(epoch)
            order = rng.permutation(N) if sampling == "shuffle" else rng.integers(0, N, N)
            flip = rng.random(N) < 0.5 if flips else None
            sums = dict.fromkeys(KEYS, 0.0)
            run.start_epoch()
            for b in range(batches):
                idx = np.sort(order[b * batch_size:(b + 1) * batch_size])
                xb, yb = x[idx], y[idx]
                if flip is not None:  # flips
                    f = flip[idx]
                    xb[f] = xb[f, :, ::-1]
                loss, scores = net.loss_and_gradients(xb, yb, dropout_seed=(seed << 20) ^ (epoch << 12) ^ b)
                if not math.isfinite(loss):
                    raise run.diverged("objective", loss, epoch, b + 1, f"learning rate {eta}", applied=False)
                net.step(eta, momentum, weight_decay)
                n = len(yb)
                sums["objective"] += loss * n
                sums["top1"] += top_k_error(scores, yb, 1) * n
                sums["top5"] += top_k_error(scores, yb, 5) * n
                if b % 20 == 19 or b == batches - 1:  # redrawing the text costs more than a batch's bookkeeping
                    seen = b * batch_size + n
                    run.show(b + 1, epoch, sums["objective"] / seen, seen)
            _check_parameters(net, epoch, eta)
            val_errors = evaluate(net, *val) if val is not None else None
            if run.end_epoch(epoch, eta, N, {k: sums[k] / N for k in KEYS}, val_errors):
                break
        run.finish()
    finally:
        run.close()
    return history
