"""The training loop of Section 7: mini-batch SGD with momentum and weight decay on a Model,
a validation pass after every epoch, and a history of the objective (7.4) and the top-1 and
top-5 errors on both sets (training figures averaged over the epoch's batches, as MatConvNet's).

Every epoch's randomness (shuffle, flips, dropout) comes from (seed, epoch) alone, and a
checkpoint (parameters, velocities, history) is written atomically after every epoch, so a run
resumed from it continues exactly as if it had not stopped.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import zlib
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from hdl import backend, schedules
from hdl.callbacks import Callback
from hdl.history import KEYS, History
from hdl.metrics import top_k_error
from hdl.model import Model
from hdl.run import OnEpoch, Run, TrainingDiverged, callbacks_of

if TYPE_CHECKING:
    from hdl.distributed import World
    from hdl.reducer import GradientReducer

#: A data set as fit takes it: (inputs (N, ...), integer labels (N,)).
Data = tuple[NDArray[Any], ArrayLike]

__all__ = ["TrainingDiverged", "evaluate", "fit"]


def evaluate(net: Model, x: NDArray[Any], y: NDArray[np.integer[Any]], batch_size: int = 500,
             comm: World | None = None) -> dict[str, float]:
    """Objective (7.4) and top-1/top-5 errors of net on (x, y); with comm, each rank evaluates its share
    of (x, y) and the sums are reduced over the ranks."""
    from hdl import ops

    lo, hi = (0, len(x)) if comm is None else _bounds(len(x), comm)
    sums = np.zeros(3)
    for i in range(lo, hi, batch_size):
        scores = net.forward(x[i:min(i + batch_size, hi)])
        labels = y[i:min(i + batch_size, hi)]
        sums += [ops.softmax_log_loss(scores, labels)[0] * len(labels), top_k_error(scores, labels, 1) * len(labels),
                 top_k_error(scores, labels, 5) * len(labels)]
    if comm is not None:
        sums = comm.sum(sums, "the validation sums")
    objective, top1, top5 = sums / len(x)
    return {"objective": float(objective), "top1": float(top1), "top5": float(top5)}


def _bounds(n: int, comm: World) -> tuple[int, int]:
    """This rank's contiguous share of range(n)."""
    return n * comm.rank // comm.size, n * (comm.rank + 1) // comm.size


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
        on_epoch: OnEpoch | None = None, callbacks: Iterable[Callback] = (), comm: World | None = None) -> History:
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

    comm: an hdl.distributed.World, for synchronous data-parallel training on its ranks, each given the same
    arguments: batch_size is the global batch, of which each rank computes a contiguous shard; the gradient is
    that of the mean loss over the global batch, summed over the ranks before the update, so the run is the
    one-process run up to rounding (except dropout, whose masks differ). Metrics are reduced over the ranks; only
    rank 0 draws progress and runs the callbacks that write files (Checkpoint, the loggers), and a checkpoint
    resumes on any number of ranks. Ranks given different data or models raise RanksDisagree together.
    """
    try:
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
    except (ValueError, TypeError) as err:
        if comm is not None:  # every rank raises, not only the one that failed
            comm.check_all(err, "fit's arguments")
        raise
    if comm is None:
        return _fit(net, x, y, val, epochs, batch_size, schedule, momentum, weight_decay, sampling, flips, seed,
                    checkpoint, resume, progress, on_epoch, callbacks, None)
    comm.check_all(None, "fit's arguments")
    comm.agree(_facts(net, x, y, val, [epochs, batch_size, [schedule(e) for e in range(1, epochs + 1)], momentum,
                                       weight_decay, sampling, flips, seed, resume]), "fit")
    if comm.rank != 0:  # only rank 0 writes
        callbacks = [cb for cb in callbacks if not cb.writes_files]
    with comm.abort_on_error():
        return _fit(net, x, y, val, epochs, batch_size, schedule, momentum, weight_decay, sampling, flips, seed,
                    checkpoint, resume, progress and comm.rank == 0, on_epoch, callbacks, comm)


def _fit(net: Model, x: NDArray[Any], y: NDArray[np.int64], val: tuple[NDArray[Any], NDArray[np.int64]] | None,
         epochs: int, batch_size: int, schedule: schedules.Schedule, momentum: float, weight_decay: float,
         sampling: str, flips: bool, seed: int,
         checkpoint: str | os.PathLike[str] | None, resume: bool, progress: bool, on_epoch: OnEpoch | None,
         callbacks: list[Callback], comm: World | None) -> History:
    history = _resumed(net, checkpoint if resume else None, seed, comm)
    start = history.epochs[-1] + 1 if history.epochs else 1
    reducer = None
    if comm is not None:
        from hdl.reducer import GradientReducer
        comm.broadcast_model(net)
        reducer = GradientReducer(comm, net)
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
            sums = np.zeros(3)  # objective, top1, top5, each times the samples
            run.start_epoch()
            for b in range(batches):
                idx = np.sort(order[b * batch_size:(b + 1) * batch_size])
                n = len(idx)
                mine = idx if comm is None else comm.shard(idx)  # this rank's shard of the global batch
                xb, yb = x[mine], y[mine]
                if flip is not None:  # flips
                    f = flip[mine]
                    xb[f] = xb[f, :, ::-1]
                dropout_seed = (seed << 20) ^ (epoch << 12) ^ b ^ (0 if comm is None else comm.rank << 40)
                if reducer is None:
                    loss, scores = net.loss_and_gradients(xb, yb, dropout_seed=dropout_seed)
                    stats = _batch_stats(loss, scores, yb)
                else:
                    stats = _reduced_gradients(net, reducer, xb, yb, n, dropout_seed)
                    loss = stats[0] / n
                if not math.isfinite(loss):
                    raise run.diverged("objective", loss, epoch, b + 1, f"learning rate {eta}", applied=False)
                net.step(eta, momentum, weight_decay)
                sums += stats
                if b % 20 == 19 or b == batches - 1:  # redrawing the text costs more than a batch's bookkeeping
                    seen = b * batch_size + n
                    run.show(b + 1, epoch, sums[0] / seen, seen)
            _check_parameters(net, epoch, eta)
            val_errors = evaluate(net, *val, comm=comm) if val is not None else None
            stop = run.end_epoch(epoch, eta, N, dict(zip(KEYS, (sums / N).tolist())), val_errors)
            if comm is not None:  # rank 0's callbacks decide for all
                stop = bool(comm.bcast_json(stop, "the decision to stop"))
            if stop:
                break
        run.finish()
    finally:
        run.close()
    return history


def _batch_stats(loss: float, scores: NDArray[Any], labels: NDArray[np.int64]) -> NDArray[np.float64]:
    """(objective, top-1, top-5 error), each times the batch's samples."""
    n = len(labels)
    return np.array([loss * n, top_k_error(scores, labels, 1) * n, top_k_error(scores, labels, 5) * n])


def _reduced_gradients(net: Model, reducer: GradientReducer, xb: NDArray[Any], yb: NDArray[np.int64], n: int,
                       dropout_seed: int) -> NDArray[np.float64]:
    """This rank's gradients on its shard (xb, yb) of a global batch of n samples, weighted by len(yb) / n and
    summed over the ranks into every layer's grads: the gradient of the mean loss over the global batch. Returns
    the batch's statistics summed over the ranks."""
    reducer.begin(len(yb) / n)
    stats = np.zeros(3)
    if len(yb):
        loss, scores = net.loss_and_gradients(xb, yb, dropout_seed=dropout_seed, after_backward=reducer.after_backward)
        stats = _batch_stats(loss, scores, yb)
    else:  # a last batch smaller than the number of ranks
        reducer.skip()
    reducer.finish()
    return reducer.world.sum(stats, "the batch's loss")


def _resumed(net: Model, checkpoint: str | os.PathLike[str] | None, seed: int,
             comm: World | None) -> History:
    """The history so far: a new one, or the checkpoint's (read by rank 0), whose weights and velocities go
    into net (on the other ranks by fit's broadcast)."""
    history = History(method=f"fit: SGD with momentum ({net.momentum_form} form)", seed=seed)
    reader = comm is None or comm.rank == 0
    saved = None
    if checkpoint and reader and os.path.exists(checkpoint):
        loaded = Model.load(checkpoint, with_velocities=True)
        for mine, theirs in zip(net.parameters() + net.velocities, loaded.parameters() + loaded.velocities):
            mine[...] = theirs
        saved = loaded.meta["history"]
    if comm is not None and checkpoint:
        saved = comm.bcast_json(saved, "the checkpoint's history")
    return history if saved is None else History.from_dict(saved)


def _facts(net: Model, x: NDArray[Any], y: NDArray[np.int64], val: Data | None, settings: list[Any]) -> dict[str, str]:
    """What every rank of a data-parallel run must agree on: the model, the data (shapes and a checksum of the
    labels and of up to 64 samples) and fit's settings."""
    def data(xs: NDArray[Any], ys: Any) -> str:
        step = max(1, len(xs) // 64)
        labels = zlib.crc32(np.ascontiguousarray(ys).tobytes())
        sample = zlib.crc32(np.ascontiguousarray(xs[::step]).tobytes())
        return f"{xs.shape} {xs.dtype}, labels crc32 {labels}, samples crc32 {sample}"

    config = json.dumps(net.config(), sort_keys=True)
    return {"model": f"{len(net.layers)} layers, {[tuple(p.shape) for p in net.parameters()]}, "
                     f"{net.dtype}, description sha256 {hashlib.sha256(config.encode()).hexdigest()[:16]}",
            "training data": data(x, y), "validation data": "none" if val is None else data(*val),
            "settings": repr(settings)}
