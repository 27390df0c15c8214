"""MatConvNet's preprocessing for CIFAR-10 (cnn_cifar.m's getCifarImdb): subtract the mean
training image, normalise each image's contrast (Coates, Lee & Ng, 2011), and ZCA-whiten with
the training covariance. Images are float32 (N, H, W, C); statistics come from the training set
and apply to both sets. The passes over the images go in chunks that stay in the cache."""
from __future__ import annotations

import numpy as np

CHUNK = 2000  # images per pass


def _chunks(n):
    return (slice(i, min(i + CHUNK, n)) for i in range(0, n, CHUNK))


def matconvnet_cifar(train: np.ndarray, test: np.ndarray, contrast: bool = True, whiten: bool = True):
    """(train, test) as float32 arrays, preprocessed as MatConvNet's cifar example does."""
    n_train, total = len(train), len(train) + len(test)
    z = np.empty((total, int(np.prod(train.shape[1:]))), np.float32)
    z[:n_train] = train.reshape(n_train, -1)
    z[n_train:] = test.reshape(len(test), -1)
    mean = z[:n_train].mean(axis=0, dtype=np.float64).astype(np.float32)  # the mean training image
    norms = np.empty((total, 1), np.float32)
    for s in _chunks(total):
        c = z[s]
        c -= mean
        if contrast:
            c -= c.mean(axis=1, keepdims=True)
            norms[s] = c.std(axis=1, ddof=1, keepdims=True)
    if contrast:
        scale = norms.mean(dtype=np.float64) / np.maximum(norms, 40.0)
        for s in _chunks(total):
            z[s] *= scale[s]
    if whiten:
        _zca(z, n_train)
    shape = (-1,) + train.shape[1:]
    return z[:n_train].reshape(shape), z[n_train:].reshape(shape)


def _zca(z, n_train):
    """z <- z Z in place, Z = V diag(en / max(sqrt(d), 10)) V^T from the eigenpairs (d, V) of the
    training covariance (divided by the count of all images, as cnn_cifar.m does). Eigenvalues
    clamped at 10 share one factor s0, so Z = s0 I + V_k diag(s_k - s0) V_k^T over the k others:
    the same matrix, applied at k/n of the cost."""
    t = z[:n_train]
    W = (t.T @ t).astype(np.float64) / len(z)
    d2, V = np.linalg.eigh(W)
    d = np.sqrt(np.maximum(d2, 0.0))
    en = np.sqrt(np.maximum(d2, 0.0).mean())
    s = en / np.maximum(d, 10.0)
    s0 = en / 10.0
    keep = d > 10.0
    if keep.sum() > len(d) // 2:  # the full matrix is cheaper
        Z = ((V * s) @ V.T).astype(np.float32)
        for c in _chunks(len(z)):
            z[c] = z[c] @ Z
        return
    Vk = V[:, keep].astype(np.float32)
    ds = (s[keep] - s0).astype(np.float32)
    for c in _chunks(len(z)):
        block = z[c]
        low = (block @ Vk) * ds
        block *= np.float32(s0)
        block += low @ Vk.T
