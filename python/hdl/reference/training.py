"""The stochastic gradient method, the pseudocode at the end of Section 5 with
mini-batches (4.8), epochs (4.7) and the penalty (8.2): hdl._C.sgd_train step for step."""
import numba
import numpy as np

from hdl.reference.dense import dense_backward, dense_forward, quadratic_cost
from hdl.reference.rng import below, seed_state, shuffle


@numba.njit(cache=True)
def network_cost(Ws, bs, acts, slopes, X, Y, lam):
    """Cost (3.3) plus lam/N sum ||W[l]||^2 (8.2)."""
    a = X
    for l in range(len(Ws)):
        a = dense_forward(Ws[l], bs[l], a, acts[l], slopes[l])
    N = X.shape[1]
    c, _ = quadratic_cost(a, Y, 1.0 / N)
    for l in range(len(Ws)):
        c += lam / N * np.sum(Ws[l] ** 2)
    return c


@numba.njit(cache=True)
def sgd_state(seed, N):
    """A run's start: state = (the generator's 4 words seeded from seed, position N: the first update starts an
    epoch, 0 updates applied) and order = 0..N-1, as hdl._C.sgd_train starts without a state."""
    state = np.zeros(6, dtype=np.uint64)
    state[:4] = seed_state(seed)
    state[4] = N
    return state, np.arange(N)


@numba.njit(cache=True)
def sgd_train(Ws, bs, acts, slopes, X, Y, iterations, batch_size, replacement, shuffle_epochs, eta, lam,
              record_every, seed):
    """Updates the typed lists Ws, bs in place; returns the recorded costs."""
    state, order = sgd_state(seed, X.shape[1])
    return sgd_continue(Ws, bs, acts, slopes, X, Y, iterations, batch_size, replacement, shuffle_epochs, eta, lam,
                        record_every, state, order)


@numba.njit(cache=True)
def sgd_continue(Ws, bs, acts, slopes, X, Y, iterations, batch_size, replacement, shuffle_epochs, eta, lam,
                 record_every, state, order):
    """sgd_train from where a run left state (the generator's 4 words, the position in order, the updates
    applied) and order (the epoch's order of the points); both are updated in place, so that a run cut in two
    is the run. The cost is recorded at every multiple of record_every updates, counted from the run's start."""
    N = X.shape[1]
    L = len(Ws)
    position = np.int64(state[4])
    done = np.int64(state[5])
    first = -(-done // record_every) if record_every > 0 else 0
    history = np.empty((done + iterations) // record_every - first + 1 if record_every > 0 else 0)
    if record_every > 0 and done % record_every == 0:
        history[0] = network_cost(Ws, bs, acts, slopes, X, Y, lam)
    for it in range(iterations):
        # 1. the mini-batch
        if replacement:
            m = batch_size
            batch = np.empty(m, dtype=np.int64)
            for i in range(m):
                batch[i] = below(state, N)
        else:
            if position >= N:
                if shuffle_epochs:
                    shuffle(state, order)
                position = 0
            m = min(batch_size, N - position)
            batch = order[position:position + m].copy()
            position += m
        x = np.ascontiguousarray(X[:, batch])
        y = np.ascontiguousarray(Y[:, batch])
        # 2. forward pass (3.1)-(3.2)
        a = [x]
        for l in range(L):
            a.append(dense_forward(Ws[l], bs[l], a[l], acts[l], slopes[l]))
        # 3. backward pass (Lemma 5.1), averaged over the batch
        _, g = quadratic_cost(a[L], y, 1.0 / m)
        for l in range(L - 1, -1, -1):
            _, dW, db, g = dense_backward(g, a[l + 1], Ws[l], a[l], acts[l], slopes[l], 1.0)
            # 4. the update (4.8) with the gradient 2 lam/N W of the penalty (8.2)
            Ws[l] -= eta * (dW + 2.0 * lam / N * Ws[l])
            bs[l] -= eta * db
        t = done + it + 1
        if record_every > 0 and t % record_every == 0:
            history[t // record_every - first] = network_cost(Ws, bs, acts, slopes, X, Y, lam)
    state[4] = position
    state[5] = done + iterations
    return history
