"""Training by the stochastic gradient method in every form of Section 4.

Each call runs the whole loop inside hdl._C with the GIL released; the
network's W[l], b[l] are updated in place. Every form is one choice of
(batch_size, replacement):

  (4.6) one point chosen with replacement         batch_size=1, replacement=True
  (4.7) epochs: every point once, shuffled        batch_size=1, replacement=False
  (4.8) mini-batches, with or without replacement batch_size=m
  (4.3) steepest descent on the full batch        steepest_descent()

The gradient of each step is the mean of the gradients of its points; with lam > 0
the penalty lam/N sum ||W[l]||^2 of (8.2) adds 2 lam/N W[l] to it (biases are not
penalised). Cost (3.3) (with the penalty) over all N points is recorded before the
first step and after every record_every-th. By default that is once per epoch
(every ceil(N / batch_size) updates), so that recording costs about one forward pass
over the data per epoch rather than one per update; the paper's netbp run asks for
record_every=1 to draw Figure 6.1's cost after every step. record_every=0 records
nothing, not even the final cost (History.final_cost is None; History.batch_cost holds the
cost of the last mini-batch): no pass over all the data that the caller did not ask for.
"""
from __future__ import annotations

import math
import os
import secrets
import time
from collections.abc import Iterable
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from hdl import _C, _checks, ops
from hdl.callbacks import Callback
from hdl.history import History
from hdl.network import Network
from hdl.run import OnEpoch, Run, TrainingDiverged, callbacks_of


def _dense_arrays(net: Network) -> tuple[list[NDArray[Any]], list[NDArray[Any]], list[int], list[float]]:
    if not net.is_fully_connected():
        raise TypeError("the compiled training loop takes fully connected networks (Dense layers only)")
    return ([layer.W for layer in net.layers], [layer.b for layer in net.layers],
            [ops.activation_code(layer.activation) for layer in net.layers], [layer.slope for layer in net.layers])


def _resumed(net: Network, path: str | os.PathLike[str], method: str, seed: int | None,
             N: int) -> tuple[History, int, NDArray[np.uint64], NDArray[np.int64]]:
    """The history of the run a checkpoint holds (its parameters copied into net), the epochs it did, and its
    sampler's state and order."""
    loaded = Network.load(path)
    history = History.from_dict(loaded.meta.get("history", {}), loaded.arrays)
    if history.sampler_state is None or history.sampler_order is None or history.method != method:
        raise ValueError(f"checkpoint {os.fspath(path)} is not of a stochastic_gradient run of this form ({method}); "
                         f"it holds {history.method or 'another kind of run'!r}")
    state, order = history.sampler_state.astype(np.uint64), history.sampler_order.astype(np.int64)
    if state.shape != (6,) or order.shape != (N,):
        raise ValueError(f"checkpoint {os.fspath(path)} is of a run on {history.sampler_order.size} points, "
                         f"not on the {N} of X")
    if seed is not None and seed != history.seed:
        raise ValueError(f"seed={seed} but checkpoint {os.fspath(path)} is of a run with seed {history.seed} "
                         "(leave seed out to continue it)")
    if [p.shape for p in loaded.parameters()] != [p.shape for p in net.parameters()]:
        raise ValueError(f"checkpoint {os.fspath(path)} holds another network: {loaded.sizes} (this one "
                         f"{net.sizes})")
    for mine, theirs in zip(net.parameters(), loaded.parameters()):
        mine[...] = theirs
    return history, history.epochs[-1] if history.epochs else 0, state, order


def _run(net: Network, X: ArrayLike, Y: ArrayLike, *, eta: float, iterations: int | None, batch_size: int,
         replacement: bool, shuffle: bool, lam: float, record_every: int | None, seed: int | None, method: str,
         epochs: int | None = None, callbacks: Iterable[Callback] = (), progress: bool = False,
         on_epoch: OnEpoch | None = None, resume_from: str | os.PathLike[str] | None = None) -> History:
    X, Y = net.check_inputs(X, Y, any_order=True)  # data.T of (N, n) arrays is read in place
    eta = _checks.positive("eta", eta)
    iterations = _checks.positive("iterations", iterations, integer=True)
    batch_size = _checks.positive("batch_size", batch_size, integer=True)
    lam = _checks.positive("lam", lam, allow_zero=True)
    N = X.shape[1]
    epoch_length = -(-N // batch_size)  # updates per epoch
    if record_every is None:  # once per epoch
        record_every = epoch_length
    record_every = _checks.positive("record_every", record_every, integer=True, allow_zero=True)
    if seed is not None:
        seed = _checks.positive("seed", seed, integer=True, allow_zero=True)
    if callbacks and epochs is None:
        raise ValueError("callbacks run after every epoch: give epochs= rather than iterations=")
    Ws, bs, acts, slopes = _dense_arrays(net)
    done_epochs = 0
    if resume_from is not None and os.path.exists(resume_from):
        history, done_epochs, state, order = _resumed(net, resume_from, method, seed, N)
    else:
        seed = secrets.randbits(63) if seed is None else seed
        history = History(method=method, seed=seed)
        # The sampler's state: where the random choice of mini-batches stands; the compiled loop keeps it up to
        # date in these arrays before every epoch_end, so that a checkpoint holds it (History.sampler_*).
        state = np.array([*_C.rng_state(seed), N, 0], dtype=np.uint64)
        order = np.arange(N, dtype=np.int64)
    done = int(state[5])  # updates applied before this call (a resumed run's)
    iterations -= done
    # The costs recorded: a resumed run's before this call, then this call's (at the multiples of record_every,
    # counted from the run's start, from update first*record_every on), which the compiled loop writes into
    # the tail of `costs`; history.cost is a view of the part written so far.
    first = -(-done // record_every) if record_every else 0
    count = max(0, (done + iterations) // record_every - first + 1) if record_every else 0
    prior_steps = np.zeros(0, np.int64) if history.iterations is None else history.iterations.astype(np.int64)
    prior_costs = np.zeros(0) if history.cost is None else history.cost.astype(np.float64)
    before = prior_steps < first * record_every
    prior_steps, kept = prior_steps[before], int(before.sum())
    costs = np.empty(count)  # untouched pages until written: netbp --iters 10^9 asks for 8 GB of them
    if kept:
        costs = np.concatenate([prior_costs[before], costs])
    history.sampler_state, history.sampler_order = state, order
    run = Run(net, history, callbacks, epochs=epochs or 1, batches=epoch_length if epochs else iterations,
              first_epoch=done_epochs + 1, progress=progress, on_epoch=on_epoch)
    images = N if not replacement else epoch_length * batch_size  # points an epoch's updates see

    def recorded(updates: int) -> None:  # history.iterations, .cost: the costs recorded up to `updates`
        written = updates // record_every - first + 1 if record_every else 0
        steps = (first + np.arange(written, dtype=np.int64)) * record_every
        history.iterations = np.concatenate([prior_steps, steps]) if kept else steps
        history.cost = costs[:kept + written]

    def epoch_end(epoch: int, mean_batch_cost: float) -> bool:  # the compiled loop, paused after every epoch
        recorded(epoch * epoch_length)
        return run.end_epoch(epoch, eta, images, {"objective": mean_batch_cost})

    def poll(updates: int) -> bool:  # about every 0.1 s: the progress bar
        updates += done
        epoch = min(updates // epoch_length + 1, epochs) if epochs else 1
        within = updates - (epoch - 1) * epoch_length if epochs else updates  # updates into this epoch
        run.show(within, epoch, None, within * batch_size)
        return False

    start = time.perf_counter()
    final, ran = math.nan, 0
    try:
        if iterations > 0:
            _, final, ran, diverged_at = _C.sgd_train(
                Ws, bs, acts, slopes, X, Y, iterations, batch_size, replacement, shuffle, eta, lam, record_every,
                history.seed or 0, epoch_end=epoch_end if epochs else None, epoch_length=epoch_length,
                poll=poll if run.bar is not None else None, state=state, order=order, cost=costs[kept:])
            finite = all(_checks.all_finite(p) for p in Ws + bs)
            if diverged_at >= 0:
                at = done + diverged_at
                raise run.diverged("mini-batch cost (3.3)", final, at // epoch_length + 1, at % epoch_length + 1,
                                   f"eta={eta}", applied=not finite)
            if not math.isfinite(final) or not finite:
                raise TrainingDiverged(f"{method}: the cost became {final} (eta={eta} is probably too large); "
                                       "the network's parameters are no longer usable")
        run.finish()  # callbacks' last word (EarlyStopping puts the best weights back)
    finally:
        run.close()
    if iterations > 0:
        recorded(done + ran)
    history.seconds = time.perf_counter() - start
    if record_every == 0:  # final is the last mini-batch's cost
        history.batch_cost = final if ran else None
    else:  # stopped by a callback, or nothing was left to run: the cost of what is in net
        history.final_cost = final if 0 < ran == iterations else net.cost(X, Y, lam)
    return history


def stochastic_gradient(net: Network, X: ArrayLike, Y: ArrayLike, eta: float, iterations: int | None = None, *,
                        epochs: int | None = None, batch_size: int = 1, replacement: bool = True, lam: float = 0.0,
                        record_every: int | None = None, seed: int | None = None, callbacks: Iterable[Callback] = (),
                        patience: int | None = None, checkpoint: str | os.PathLike[str] | None = None,
                        resume: bool = False, progress: bool = False, on_epoch: OnEpoch | None = None) -> History:
    """Trains net in place by the stochastic gradient method (4.6)-(4.8); X is (n_1, N), Y is (n_L, N).
    Data held one point per row, data (N, n_1), is passed as data.T and read in place, without a copy.

    Give the number of updates (`iterations`) or of `epochs` (ceil(N / batch_size) updates each).
    Without replacement, the points are shuffled at the start of every epoch and cut into
    mini-batches in that order (the last one shorter when batch_size does not divide N).
    The cost over all N points is recorded before the first update and then every
    `record_every` updates: by default once per epoch (ceil(N / batch_size) updates);
    record_every=1 gives the cost after every update (Figure 6.1), 0 records nothing.

    With epochs, the run is also a run of hdl.run.Run, as fit's: after every epoch the compiled loop
    pauses, History records the epoch (epochs, lr, train['objective'] = the mean mini-batch cost (3.3),
    epoch_seconds, images_per_second) and the callbacks run (hdl.callbacks: EarlyStopping(monitor=
    'train/objective'), Checkpoint, CSVLogger, JSONLinesLogger; patience=k and checkpoint=path are the
    shorthands); any may stop the run. As with fit, checkpoint=path with resume=True continues the run that
    path holds (its parameters, History and the state of its random choice of mini-batches, which the
    checkpoint records after every epoch) and ends where the run would have ended had it not stopped, bit for
    bit, with the same thread count; without a file at path it starts afresh. seed may then be left out. progress=True draws a bar with images/s; Ctrl-C stops any run with
    KeyboardInterrupt, the parameters as the last update left them. A mini-batch whose cost is not finite
    stops the run before its update with TrainingDiverged (a FloatingPointError) naming epoch and batch.
    """
    if (iterations is None) == (epochs is None):
        raise ValueError("give either iterations or epochs")
    if epochs is not None:
        epochs = _checks.positive("epochs", epochs, integer=True)
        N = np.shape(X)[1] if np.ndim(X) == 2 else 1
        iterations = epochs * -(-N // _checks.positive("batch_size", batch_size, integer=True))
    form = "with" if replacement else "without"
    return _run(net, X, Y, eta=eta, iterations=iterations, batch_size=batch_size, replacement=bool(replacement),
                shuffle=True, lam=lam, record_every=record_every, seed=seed,
                method=f"stochastic gradient, batch {batch_size}, {form} replacement", epochs=epochs,
                callbacks=callbacks_of(callbacks, patience, checkpoint), progress=progress, on_epoch=on_epoch,
                resume_from=checkpoint if resume and checkpoint else None)


def steepest_descent(net: Network, X: ArrayLike, Y: ArrayLike, eta: float, iterations: int, *, lam: float = 0.0,
                     record_every: int | None = None) -> History:
    """Trains net in place by steepest descent (4.3): p -> p - eta grad Cost(p) over all N points.
    Every update is an epoch, so the cost is recorded after each one unless record_every says otherwise."""
    N = np.shape(X)[1] if np.ndim(X) == 2 else 1
    return _run(net, X, Y, eta=eta, iterations=iterations, batch_size=max(N, 1), replacement=False, shuffle=False,
                lam=lam, record_every=record_every, seed=0, method="steepest descent")
