"""MatConvNet's preprocessing for CIFAR-10 (cnn_cifar.m's getCifarImdb): subtract the mean
training image, normalise each image's contrast (Coates, Lee & Ng, 2011), and ZCA-whiten with
the training covariance. Images are float32 (N, H, W, C); statistics come from the training set
and apply to both sets. The passes over the images go in chunks that stay in the cache.

With return_stats=True matconvnet_cifar also returns those statistics (arrays and numbers), which
apply_stats applies to new images (hdl predict); standardize is the simpler preprocessing of the
MNIST commands, (x / 255 - mean) / std with the training set's mean and standard deviation."""
from __future__ import annotations

import numpy as np

CHUNK = 2000  # images per pass
FLOOR = 40.0  # contrast normalisation divides by max(standard deviation, FLOOR)


def _chunks(n):
    return (slice(i, min(i + CHUNK, n)) for i in range(0, n, CHUNK))


def matconvnet_cifar(train: np.ndarray, test: np.ndarray, contrast: bool = True, whiten: bool = True,
                     return_stats: bool = False):
    """(train, test) as float32 arrays, preprocessed as MatConvNet's cifar example does; with
    return_stats, also the statistics that apply_stats needs (a dict: 'kind', 'contrast', 'whiten',
    'norm_mean', 'floor', 'zca_s0' numbers, 'mean', 'zca_V', 'zca_ds' float32 arrays)."""
    n_train, total = len(train), len(train) + len(test)
    z = np.empty((total, int(np.prod(train.shape[1:]))), np.float32)
    z[:n_train] = train.reshape(n_train, -1)
    z[n_train:] = test.reshape(len(test), -1)
    mean = z[:n_train].mean(axis=0, dtype=np.float64).astype(np.float32)  # the mean training image
    stats = {"kind": "matconvnet_cifar", "contrast": contrast, "whiten": whiten, "mean": mean, "floor": FLOOR}
    norms = np.empty((total, 1), np.float32)
    for s in _chunks(total):
        c = z[s]
        c -= mean
        if contrast:
            c -= c.mean(axis=1, keepdims=True)
            norms[s] = c.std(axis=1, ddof=1, keepdims=True)
    if contrast:
        stats["norm_mean"] = float(norms.mean(dtype=np.float64))
        scale = stats["norm_mean"] / np.maximum(norms, FLOOR)
        for s in _chunks(total):
            z[s] *= scale[s]
    if whiten:
        stats.update(_zca(z, n_train))
    shape = (-1,) + train.shape[1:]
    out = z[:n_train].reshape(shape), z[n_train:].reshape(shape)
    return (*out, stats) if return_stats else out


def _zca(z, n_train):
    """z <- z Z in place, Z = V diag(en / max(sqrt(d), 10)) V^T from the eigenpairs (d, V) of the
    training covariance (divided by the count of all images, as cnn_cifar.m does). Eigenvalues
    clamped at 10 share one factor s0, so Z = s0 I + V_k diag(s_k - s0) V_k^T over the k others:
    the same matrix, applied at k/n of the cost. Returns s0, V_k and s_k - s0 for apply_stats."""
    t = z[:n_train]
    W = (t.T @ t).astype(np.float64) / len(z)
    d2, V = np.linalg.eigh(W)
    d = np.sqrt(np.maximum(d2, 0.0))
    en = np.sqrt(np.maximum(d2, 0.0).mean())
    s = en / np.maximum(d, 10.0)
    s0 = en / 10.0
    keep = d > 10.0
    Vk = V[:, keep].astype(np.float32)
    ds = (s[keep] - s0).astype(np.float32)
    stats = {"zca_s0": float(s0), "zca_V": Vk, "zca_ds": ds}
    if keep.sum() > len(d) // 2:  # the full matrix is cheaper
        Z = ((V * s) @ V.T).astype(np.float32)
        for c in _chunks(len(z)):
            z[c] = z[c] @ Z
        return stats
    for c in _chunks(len(z)):
        block = z[c]
        low = (block @ Vk) * ds
        block *= np.float32(s0)
        block += low @ Vk.T
    return stats


def apply_stats(images: np.ndarray, stats: dict) -> np.ndarray:
    """New images (N, H, W, C) preprocessed with the statistics a training run saved: those of
    matconvnet_cifar(..., return_stats=True) or of standardize; float32 of the same shape (float64
    for float64 images, as central differences need)."""
    kind = stats.get("kind")
    dtype = np.float64 if images.dtype == np.float64 else np.float32
    if kind == "standardize":
        return ((images.astype(dtype) / 255 - dtype(stats["mean"])) / dtype(stats["std"]))
    if kind != "matconvnet_cifar":
        raise ValueError(f"unknown preprocessing {kind!r} (expected 'matconvnet_cifar' or 'standardize')")
    z = images.reshape(len(images), -1).astype(dtype) - stats["mean"]
    if stats["contrast"]:
        z -= z.mean(axis=1, keepdims=True)
        z *= stats["norm_mean"] / np.maximum(z.std(axis=1, ddof=1, keepdims=True), stats["floor"])
    if stats["whiten"]:
        V = stats["zca_V"]
        z = z * np.float32(stats["zca_s0"]) + ((z @ V) * stats["zca_ds"]) @ V.T
    return z.astype(dtype).reshape(images.shape)


def apply_stats_vjp(images: np.ndarray, dz: np.ndarray, stats: dict) -> np.ndarray:
    """dC/d(images) given dz = dC/dz for z = apply_stats(images, stats): the preprocessing's Jacobian,
    transposed, applied to dz (float64, the shape of images, per pixel value 0..255). The whitening Z is
    symmetric; the contrast step u = s(c) c, s = norm_mean / max(std(c), floor), adds (dz.c) ds/dc, with
    ds/dc = -norm_mean c / ((n - 1) std^3) where std > floor and 0 where the floor holds."""
    if dz.shape != images.shape:
        raise ValueError(f"dz must have the images' shape {images.shape}, got {dz.shape}")
    kind = stats.get("kind")
    g = dz.reshape(len(dz), -1).astype(np.float64)
    if kind == "standardize":
        return (g / (255 * stats["std"])).reshape(images.shape)
    if kind != "matconvnet_cifar":
        raise ValueError(f"unknown preprocessing {kind!r} (expected 'matconvnet_cifar' or 'standardize')")
    if stats["whiten"]:
        V = stats["zca_V"].astype(np.float64)
        g = g * stats["zca_s0"] + ((g @ V) * stats["zca_ds"].astype(np.float64)) @ V.T
    if stats["contrast"]:
        c = images.reshape(len(images), -1).astype(np.float64) - stats["mean"]
        c -= c.mean(axis=1, keepdims=True)
        n = c.shape[1]
        std = c.std(axis=1, ddof=1, keepdims=True)
        s = stats["norm_mean"] / np.maximum(std, stats["floor"])
        slope = np.where(std > stats["floor"], -stats["norm_mean"] / ((n - 1) * std ** 3), 0.0)
        g = s * g + slope * np.sum(g * c, axis=1, keepdims=True) * c
        g -= g.mean(axis=1, keepdims=True)  # the centring is a symmetric projection
    return g.reshape(images.shape)


def standardize(train: np.ndarray, test: np.ndarray):
    """(train, test, stats): uint8 images scaled to [0, 1], less the training set's mean pixel, over its
    standard deviation (float32). The statistics come from a histogram of the 256 grey levels."""
    count = np.bincount(np.asarray(train, np.uint8).ravel(), minlength=256)  # exact, without a float copy
    level = np.arange(256) / 255
    mean = float(count @ level / count.sum())
    std = float(np.sqrt(count @ (level - mean) ** 2 / count.sum())) or 1.0
    stats = {"kind": "standardize", "mean": mean, "std": std}
    return apply_stats(train, stats), apply_stats(test, stats), stats
