"""IDX files (the MNIST format; Fashion-MNIST ships in it): a magic number giving the element
type and the number of dimensions, the dimensions as big-endian 32-bit integers, then the data.
Gzipped files (.gz) are read as they are."""
from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path) -> np.ndarray:
    path = Path(path)
    raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in TYPES:
        raise ValueError(f"{path}: not an IDX file (bad magic number {raw[:4].hex()})")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path}: truncated IDX header")
    shape = tuple(int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(TYPES[raw[2]])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - header != expected:
        raise ValueError(f"{path}: {len(raw) - header} bytes of data, expected {expected} for shape {shape}")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


def load_fashion_mnist(root=FASHION_MNIST):
    """((train images uint8 (60000, 28, 28, 1), labels), (test images, labels)) from Debian's
    dataset-fashion-mnist (apt-get install dataset-fashion-mnist) or a folder of the four files."""
    root = Path(root)
    get = lambda name: read_idx(root / f"{name}.gz" if (root / f"{name}.gz").exists() else root / name)  # noqa
    train = get("train-images-idx3-ubyte")[..., None], get("train-labels-idx1-ubyte").astype(np.int64)
    test = get("t10k-images-idx3-ubyte")[..., None], get("t10k-labels-idx1-ubyte").astype(np.int64)
    return train, test
