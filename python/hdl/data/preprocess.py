"""MatConvNet's preprocessing for CIFAR-10 (cnn_cifar.m's getCifarImdb): subtract the mean
training image, normalise each image's contrast (Coates, Lee & Ng, 2011), and ZCA-whiten with
the training covariance. Images are float32 (N, H, W, C); statistics come from the training set
and apply to both sets."""
from __future__ import annotations

import numpy as np


def matconvnet_cifar(train: np.ndarray, test: np.ndarray, contrast: bool = True, whiten: bool = True):
    """(train, test) as float32 arrays, preprocessed as MatConvNet's cifar example does."""
    n_train = len(train)
    z = np.concatenate([train, test]).astype(np.float32).reshape(n_train + len(test), -1)
    z -= z[:n_train].mean(axis=0)  # the mean training image
    if contrast:
        z -= z.mean(axis=1, keepdims=True)
        n = z.std(axis=1, ddof=1, keepdims=True)
        z *= n.mean() / np.maximum(n, 40.0)
    if whiten:
        total = len(z)
        t = z[:n_train]
        W = (t.T @ t).astype(np.float64) / total  # as cnn_cifar.m: divided by the count of all images
        d2, V = np.linalg.eigh(W)
        d2 = np.maximum(d2, 0.0)
        en = np.sqrt(d2.mean())
        Z = (V * (en / np.maximum(np.sqrt(d2), 10.0))) @ V.T  # V diag(en / max(sqrt(d), 10)) V^T
        z = z @ Z.astype(np.float32)  # Z is symmetric
    shape = (-1,) + train.shape[1:]
    return np.ascontiguousarray(z[:n_train].reshape(shape)), np.ascontiguousarray(z[n_train:].reshape(shape))
