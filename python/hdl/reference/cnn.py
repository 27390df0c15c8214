"""Oracles for the layers of Section 7 (NCHW), as plain loops with the ops' signatures."""
import numba
import numpy as np


@numba.njit(cache=True)
def _window(i, j, kh, kw, sh, sw, pt, pl, H, W):
    r, c = i * sh - pt, j * sw - pl
    return max(r, 0), min(r + kh, H), max(c, 0), min(c + kw, W)


@numba.njit(cache=True)
def _pool(x, kh, kw, sh, sw, pt, pb, pl, pr, is_max):
    N, C, H, W = x.shape
    Ho, Wo = (H + pt + pb - kh) // sh + 1, (W + pl + pr - kw) // sw + 1
    y = np.empty((N, C, Ho, Wo), dtype=x.dtype)
    for n in range(N):
        for c in range(C):
            for i in range(Ho):
                for j in range(Wo):
                    r0, r1, c0, c1 = _window(i, j, kh, kw, sh, sw, pt, pl, H, W)
                    window = x[n, c, r0:r1, c0:c1]
                    y[n, c, i, j] = window.max() if is_max else window.sum() / window.size
    return y


@numba.njit(cache=True)
def _pool_backward(dy, x, kh, kw, sh, sw, pt, pb, pl, pr, is_max):
    N, C, H, W = x.shape
    Ho, Wo = dy.shape[2], dy.shape[3]
    dx = np.zeros_like(x)
    for n in range(N):
        for c in range(C):
            for i in range(Ho):
                for j in range(Wo):
                    r0, r1, c0, c1 = _window(i, j, kh, kw, sh, sw, pt, pl, H, W)
                    if is_max:  # the first maximal cell in row-major order
                        br, bc = r0, c0
                        for r in range(r0, r1):
                            for q in range(c0, c1):
                                if x[n, c, r, q] > x[n, c, br, bc]:
                                    br, bc = r, q
                        dx[n, c, br, bc] += dy[n, c, i, j]
                    else:
                        dx[n, c, r0:r1, c0:c1] += dy[n, c, i, j] / ((r1 - r0) * (c1 - c0))
    return dx


def _two(v):
    """An int or a pair as a pair (the oracle checks nothing: the ops it is held to do)."""
    return (int(v), int(v)) if np.isscalar(v) else (int(v[0]), int(v[1]))


def _four(pad):
    """An int or (top, bottom, left, right)."""
    return (int(pad),) * 4 if np.isscalar(pad) else tuple(int(p) for p in pad)


def _args(window, stride, pad):
    return (*_two(window), *_two(window if stride is None else stride), *_four(pad))


def max_pool2d(x, window, stride=None, pad=0):
    return _pool(x, *_args(window, stride, pad), True)


def max_pool2d_backward(dy, x, window, stride=None, pad=0):
    return _pool_backward(dy, x, *_args(window, stride, pad), True)


def avg_pool2d(x, window, stride=None, pad=0):
    return _pool(x, *_args(window, stride, pad), False)


def avg_pool2d_backward(dy, x, window, stride=None, pad=0):
    return _pool_backward(dy, x, *_args(window, stride, pad), False)


@numba.njit(cache=True)
def relu(x, slope=0.0):
    return np.where(x > 0, x, slope * x)


@numba.njit(cache=True)
def relu_backward(dy, x, slope=0.0):
    return np.where(x > 0, dy, slope * dy)


@numba.njit(cache=True)
def sigmoid(x):
    """(2.1), computed in float64 and rounded once to x's dtype."""
    out = np.empty_like(x)
    flat, src = out.ravel(), x.ravel()
    for i in range(src.size):
        flat[i] = 1.0 / (1.0 + np.exp(-np.float64(src[i])))
    return out


@numba.njit(cache=True)
def sigmoid_backward(dy, y):
    """dy sigma'(x) = dy y (1 - y) (2.2)."""
    return dy * y * (1 - y)


@numba.njit(cache=True)
def tanh(x):
    """tanh, computed in float64 and rounded once to x's dtype."""
    out = np.empty_like(x)
    flat, src = out.ravel(), x.ravel()
    for i in range(src.size):
        flat[i] = np.tanh(np.float64(src[i]))
    return out


@numba.njit(cache=True)
def tanh_backward(dy, y):
    """dy tanh'(x) = dy (1 - y^2)."""
    return dy * (1 - y * y)


@numba.njit(cache=True)
def _uniform(seed, i):
    """splitmix64's finaliser on the Weyl sequence seed + (i + 1) * golden: the dropout hash."""
    z = np.uint64(seed) + np.uint64(i + 1) * np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z = z ^ (z >> np.uint64(31))
    return np.float64(z >> np.uint64(11)) * 2.0 ** -53


@numba.njit(cache=True)
def _dropout(x, rate, seed):
    flat = x.ravel()
    mask = np.empty_like(flat)
    for i in range(flat.size):
        mask[i] = 1.0 / (1.0 - rate) if _uniform(seed, i) >= rate else 0.0
    return (flat * mask).reshape(x.shape), mask.reshape(x.shape)


def dropout(x, rate, seed):
    return _dropout(x, float(rate), int(seed))


@numba.njit(cache=True)
def _softmax_log_loss(v, labels):
    N, K = v.shape
    loss = 0.0
    dv = np.empty_like(v)
    for i in range(N):
        top = v[i].max()
        log_sum = np.log(np.sum(np.exp(v[i] - top))) + top  # log-sum-exp
        loss += log_sum - v[i, labels[i]]  # (7.4)
        for k in range(K):
            dv[i, k] = np.exp(v[i, k] - log_sum) / N
        dv[i, labels[i]] -= 1.0 / N
    return loss / N, dv


def softmax_log_loss(v, labels):
    shape = v.shape
    loss, dv = _softmax_log_loss(v.reshape(shape[0], shape[1]), np.asarray(labels, dtype=np.int64))
    return loss, dv.reshape(shape)


def top_k(v, k):
    v = v.reshape(v.shape[0], v.shape[1])
    return np.argsort(-v, axis=1, kind="stable")[:, :k]


def sgd_momentum_(params, grads, velocities, lr, momentum=0.9, weight_decay=0.0, lr_mults=None, decay_mults=None,
                  form="matconvnet"):
    n = len(params)
    lr_mults = lr_mults or [1.0] * n
    decay_mults = decay_mults or [1.0] * n
    for w, g, v, lm, dm in zip(params, grads, velocities, lr_mults, decay_mults):
        eta, lam = lr * lm, weight_decay * dm
        if form == "matconvnet":
            v[...] = momentum * v - (g + lam * w)
            w[...] = w + eta * v
        else:
            v[...] = momentum * v + (g + lam * w)
            w[...] = w - eta * v


@numba.njit(cache=True)
def _conv(x, w, b, sh, sw, pt, pb, pl, pr):
    N, C, H, W = x.shape
    O, _, kh, kw = w.shape
    Ho, Wo = (H + pt + pb - kh) // sh + 1, (W + pl + pr - kw) // sw + 1
    y = np.empty((N, O, Ho, Wo), dtype=x.dtype)
    for n in range(N):
        for o in range(O):
            for i in range(Ho):
                for j in range(Wo):
                    s = b[o]
                    for c in range(C):
                        for u in range(kh):
                            r = i * sh - pt + u
                            if 0 <= r < H:
                                for v in range(kw):
                                    q = j * sw - pl + v
                                    if 0 <= q < W:
                                        s += w[o, c, u, v] * x[n, c, r, q]
                    y[n, o, i, j] = s
    return y


@numba.njit(cache=True)
def _conv_backward(dy, x, w, sh, sw, pt, pb, pl, pr):
    N, C, H, W = x.shape
    O, _, kh, kw = w.shape
    Ho, Wo = dy.shape[2], dy.shape[3]
    dx, dw, db = np.zeros_like(x), np.zeros_like(w), np.zeros(O, dtype=w.dtype)
    for n in range(N):
        for o in range(O):
            for i in range(Ho):
                for j in range(Wo):
                    g = dy[n, o, i, j]
                    db[o] += g
                    for c in range(C):
                        for u in range(kh):
                            r = i * sh - pt + u
                            if 0 <= r < H:
                                for v in range(kw):
                                    q = j * sw - pl + v
                                    if 0 <= q < W:
                                        dw[o, c, u, v] += g * x[n, c, r, q]
                                        dx[n, c, r, q] += g * w[o, c, u, v]
    return dx, dw, db


def conv2d(x, w, b, stride=1, pad=0):
    return _conv(x, w, b, *_two(stride), *_four(pad))


def conv2d_backward(dy, x, w, stride=1, pad=0, want_dx=True):
    dx, dw, db = _conv_backward(dy, x, w, *_two(stride), *_four(pad))
    return (dx if want_dx else None), dw, db
