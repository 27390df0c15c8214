"""CIFAR-10 and IDX loaders on small files in the official formats, and on the shared copy."""
import gzip
import os
import tarfile
from pathlib import Path

import numpy as np
import pytest

from hdl.data import cifar10
from hdl.data.cifar10 import DataError, load_cifar10, parse_batch
from hdl.data.idx import read_idx
from hdl.data.preprocess import matconvnet_cifar

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar-10-batches-bin"


def records(labels, seed=0):
    rng = np.random.default_rng(seed)
    out = bytearray()
    for label in labels:
        out.append(label)
        out += rng.integers(0, 256, 3072, dtype=np.uint8).tobytes()
    return bytes(out)


def write_folder(folder, n=3):
    folder.mkdir()
    for i, name in enumerate(cifar10.TRAIN_FILES + ["test_batch.bin"]):
        (folder / name).write_bytes(records([(i + k) % 10 for k in range(n)], seed=i))
    return folder


def test_parse_batch_layout():
    raw = records([7])
    images, labels = parse_batch(raw)
    assert labels.tolist() == [7] and images.shape == (1, 32, 32, 3)
    pixels = np.frombuffer(raw[1:], np.uint8)
    assert images[0, 0, 0, 0] == pixels[0] and images[0, 0, 0, 1] == pixels[1024] and images[0, 0, 1, 2] == pixels[2049]


def test_folder_and_archive(tmp_path):
    folder = write_folder(tmp_path / "cifar")
    (x, y), (xt, yt) = load_cifar10(folder, verify=False)
    assert x.shape == (15, 32, 32, 3) and xt.shape == (3, 32, 32, 3) and y[:3].tolist() == [0, 1, 2]
    with pytest.raises(DataError, match="MD5"):
        load_cifar10(folder)  # not the official files
    archive = tmp_path / "cifar-10-binary.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for f in sorted(folder.iterdir()):
            tar.add(f, arcname=f"cifar-10-batches-bin/{f.name}")
    (x2, y2), _ = load_cifar10(archive, verify=False)
    np.testing.assert_array_equal(x2, x)
    with pytest.raises(DataError, match="MD5"):
        load_cifar10(archive)


def test_bad_data(tmp_path):
    with pytest.raises(DataError, match="no CIFAR-10"):
        load_cifar10(tmp_path / "nowhere")
    folder = write_folder(tmp_path / "c")
    (folder / "test_batch.bin").write_bytes(records([1])[:-5])
    with pytest.raises(DataError, match="whole number"):
        load_cifar10(folder, verify=False)
    (folder / "test_batch.bin").write_bytes(records([12]))
    with pytest.raises(DataError, match="label 12"):
        load_cifar10(folder, verify=False)
    os.remove(folder / "data_batch_3.bin")
    with pytest.raises(DataError, match="missing data_batch_3.bin"):
        load_cifar10(folder, verify=False)
    bad = tmp_path / "x.tar.gz"
    bad.write_bytes(b"not gzip")
    with pytest.raises(DataError, match="archive"):
        load_cifar10(bad, verify=False)


@pytest.mark.skipif(not SHARED.exists(), reason="the shared CIFAR-10 copy (../shared/data) is not here")
def test_shared_copy_facts():
    (x, y), (xt, yt) = load_cifar10(SHARED)
    assert x.shape == (50000, 32, 32, 3) and xt.shape == (10000, 32, 32, 3)
    assert y[:10].tolist() == [6, 9, 9, 4, 1, 1, 2, 7, 8, 3]
    assert yt[:10].tolist() == [3, 8, 8, 0, 6, 6, 1, 6, 3, 1]
    np.testing.assert_allclose(x.reshape(-1, 3).mean(0), [125.307, 122.950, 113.865], atol=1e-3)
    assert np.bincount(y).tolist() == [5000] * 10 and np.bincount(yt).tolist() == [1000] * 10


def test_idx(tmp_path):
    data = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    raw = bytes([0, 0, 0x08, 3]) + b"".join(int(d).to_bytes(4, "big") for d in data.shape) + data.tobytes()
    (tmp_path / "a-idx3-ubyte").write_bytes(raw)
    (tmp_path / "a-idx3-ubyte.gz").write_bytes(gzip.compress(raw))
    np.testing.assert_array_equal(read_idx(tmp_path / "a-idx3-ubyte"), data)
    np.testing.assert_array_equal(read_idx(tmp_path / "a-idx3-ubyte.gz"), data)
    f = np.array([1.5, -2.0], ">f4")
    (tmp_path / "f").write_bytes(bytes([0, 0, 0x0D, 1]) + (2).to_bytes(4, "big") + f.tobytes())
    np.testing.assert_array_equal(read_idx(tmp_path / "f"), [1.5, -2.0])
    (tmp_path / "bad").write_bytes(b"\x01\x02\x03\x04")
    with pytest.raises(ValueError, match="magic"):
        read_idx(tmp_path / "bad")
    (tmp_path / "short").write_bytes(raw[:-1])
    with pytest.raises(ValueError, match="bytes of data"):
        read_idx(tmp_path / "short")


def test_matconvnet_preprocessing():
    rng = np.random.default_rng(0)
    base = rng.normal(128, 40, (1, 4, 4, 3))
    train = np.clip(base + rng.normal(0, 30, (600, 4, 4, 3)), 0, 255).astype(np.uint8)
    test = np.clip(base + rng.normal(0, 30, (100, 4, 4, 3)), 0, 255).astype(np.uint8)
    a, b = matconvnet_cifar(train, test, whiten=False)
    assert a.dtype == np.float32 and a.shape == train.shape and b.shape == test.shape
    np.testing.assert_allclose(a.reshape(600, -1).mean(axis=1), 0, atol=1e-3)  # each image centred
    a, b = matconvnet_cifar(train, test)
    z = a.reshape(600, -1).astype(np.float64)
    cov = z.T @ z / 700
    off = cov - np.diag(np.diag(cov))
    assert np.abs(off).max() < 0.05 * np.diag(cov).mean()  # whitened: nearly diagonal


def _preprocess_reference(train, test):
    """cnn_cifar.m's getCifarImdb written out plainly, in float64."""
    z = np.concatenate([train, test]).reshape(len(train) + len(test), -1).astype(np.float64)
    z -= z[:len(train)].mean(axis=0)
    z -= z.mean(axis=1, keepdims=True)
    n = z.std(axis=1, ddof=1, keepdims=True)
    z *= n.mean() / np.maximum(n, 40.0)
    W = z[:len(train)].T @ z[:len(train)] / len(z)
    d2, V = np.linalg.eigh(W)
    d2 = np.maximum(d2, 0.0)
    z = z @ (V * (np.sqrt(d2.mean()) / np.maximum(np.sqrt(d2), 10.0))) @ V.T
    return z[:len(train)], z[len(train):]


@pytest.mark.parametrize("strong", [3, 40], ids=["few eigenvalues above the floor", "most above the floor"])
def test_matconvnet_preprocessing_matches_the_plain_formula(strong):
    """Both ways of applying the whitening (the low-rank update, the full matrix) give cnn_cifar.m's result."""
    rng = np.random.default_rng(1)
    directions = rng.normal(0, 1, (strong, 48))
    codes = rng.normal(0, 60, (1500, strong))
    images = np.clip(128 + codes @ directions + rng.normal(0, 2, (1500, 48)), 0, 255).astype(np.uint8)
    images = images.reshape(1500, 4, 4, 3)
    a, b = matconvnet_cifar(images[:1200], images[1200:])
    ra, rb = _preprocess_reference(images[:1200], images[1200:])
    scale = np.abs(ra).max()
    np.testing.assert_allclose(a.reshape(1200, -1), ra, rtol=0, atol=2e-5 * scale)
    np.testing.assert_allclose(b.reshape(300, -1), rb, rtol=0, atol=2e-5 * scale)
