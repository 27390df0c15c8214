"""CIFAR-10 and IDX loaders on small files in the official formats, and on the shared copy."""
import gzip
import os
import tarfile
from pathlib import Path

import numpy as np
import pytest

from hdl.data import cifar10
from hdl.data.cifar10 import DataError, load_cifar10, parse_batch
from hdl.data import idx
from hdl.data.cifar100 import load_cifar100
from hdl.data.idx import load_fashion_mnist, load_idx_dataset, load_mnist, read_idx
from hdl.data.images import fit_channels, read_images
from hdl.data.preprocess import apply_stats, matconvnet_cifar, standardize
from idx_files import idx_bytes

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
    raw = idx_bytes(data)
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
    a, b, stats = matconvnet_cifar(images[:1200], images[1200:], return_stats=True)
    ra, rb = _preprocess_reference(images[:1200], images[1200:])
    scale = np.abs(ra).max()
    np.testing.assert_allclose(a.reshape(1200, -1), ra, rtol=0, atol=2e-5 * scale)
    np.testing.assert_allclose(b.reshape(300, -1), rb, rtol=0, atol=2e-5 * scale)
    # the saved statistics give new images (hdl predict) the same preprocessing, one image at a time too
    np.testing.assert_allclose(apply_stats(images[1200:], stats).reshape(300, -1), rb, rtol=0, atol=2e-5 * scale)
    np.testing.assert_allclose(apply_stats(images[1299:], stats)[0], b[99], rtol=0, atol=2e-5 * scale)
    assert stats["zca_V"].shape == (48, len(stats["zca_ds"])) and stats["zca_V"].dtype == np.float32


def test_standardize():
    rng = np.random.default_rng(0)
    train, test = (rng.integers(0, 256, (n, 5, 5, 1)).astype(np.uint8) for n in (300, 40))
    a, b, stats = standardize(train, test)
    assert abs(a.mean()) < 1e-5 and abs(a.std() - 1) < 1e-4 and stats["mean"] == pytest.approx(train.mean() / 255)
    np.testing.assert_allclose(b, (test / 255 - stats["mean"]) / stats["std"], rtol=1e-5)
    with pytest.raises(ValueError, match="unknown preprocessing 'zscore'"):
        apply_stats(test, {"kind": "zscore"})


# -- CIFAR-100 (binary version): synthetic files in its layout -------------------------------------------------

def cifar100_records(coarse, fine, seed=0):
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (len(coarse), 3072)).astype(np.uint8)
    return np.concatenate([np.array([coarse, fine], np.uint8).T, pixels], axis=1).tobytes()


def write_cifar100(folder, names=True):
    folder.mkdir(parents=True)
    (folder / "train.bin").write_bytes(cifar100_records([0, 19, 4], [3, 99, 42]))
    (folder / "test.bin").write_bytes(cifar100_records([7, 2], [55, 10], seed=1))
    if names:
        (folder / "fine_label_names.txt").write_text("".join(f"f{i}\n" for i in range(100)))
        (folder / "coarse_label_names.txt").write_text("".join(f"c{i}\n" for i in range(20)))
    return folder


def test_cifar100_folder_fine_and_coarse(tmp_path):
    folder = write_cifar100(tmp_path / "cifar-100-binary")
    (x, y), (xt, yt), names = load_cifar100(tmp_path, verify=False, with_names=True)  # finds the subfolder
    assert x.shape == (3, 32, 32, 3) and xt.shape == (2, 32, 32, 3) and x.dtype == np.uint8
    assert y.tolist() == [3, 99, 42] and yt.tolist() == [55, 10] and y.dtype == np.int64
    assert len(names) == 100 and names[99] == "f99"
    raw = (folder / "train.bin").read_bytes()
    pixels = np.frombuffer(raw[2:3074], np.uint8)
    assert x[0, 0, 0, 0] == pixels[0] and x[0, 0, 0, 1] == pixels[1024] and x[0, 0, 1, 2] == pixels[2049]
    (x2, y2), (_, yt2), names = load_cifar100(folder, label="coarse", verify=False, with_names=True)
    assert y2.tolist() == [0, 19, 4] and yt2.tolist() == [7, 2] and names[:2] == ("c0", "c1") and len(names) == 20
    np.testing.assert_array_equal(x2, x)
    with pytest.raises(DataError, match="train.bin holds 3 records, the official file 50000"):
        load_cifar100(folder)
    with pytest.raises(ValueError, match="'fine' .* or 'coarse'"):
        load_cifar100(folder, label="medium", verify=False)


def test_cifar100_archive_names_and_errors(tmp_path):
    folder = write_cifar100(tmp_path / "cifar-100-binary", names=False)
    archive = tmp_path / "cifar-100-binary.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder, arcname="cifar-100-binary")
    (x, y), _, names = load_cifar100(archive, verify=False, with_names=True)
    assert y.tolist() == [3, 99, 42] and names[7] == "class 7"  # no names file: numbered classes
    with pytest.raises(DataError, match="MD5 .* differs from the official archive's 03b5dce01913d631647c71ecec9e9cb8"):
        load_cifar100(archive)
    (folder / "test.bin").write_bytes(cifar100_records([3], [100]))
    with pytest.raises(DataError, match="record 0 has fine label 100, outside 0..99"):
        load_cifar100(folder, verify=False)
    (folder / "test.bin").write_bytes(cifar100_records([20], [1]))
    with pytest.raises(DataError, match="coarse label 20, outside 0..19"):
        load_cifar100(folder, verify=False)
    (folder / "test.bin").write_bytes(b"\0" * 3075)
    with pytest.raises(DataError, match="not a whole number of 3074-byte CIFAR-100 records"):
        load_cifar100(folder, verify=False)
    (folder / "train.bin").unlink()
    with pytest.raises(DataError, match="missing train.bin"):
        load_cifar100(folder, verify=False)
    with pytest.raises(DataError, match="no CIFAR-100 binary data there"):
        load_cifar100(tmp_path / "nowhere")


# -- MNIST and Fashion-MNIST (IDX) ----------------------------------------------------------------------------

def write_idx(folder, n=(6, 4), gz=True, side=28):
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for part, count in zip(("train", "t10k"), n):
        x = rng.integers(0, 256, (count, side, side)).astype(np.uint8)
        y = (np.arange(count) % 10).astype(np.uint8)
        for name, a in ((f"{part}-images-idx3-ubyte", x), (f"{part}-labels-idx1-ubyte", y)):
            raw = idx_bytes(a)
            (folder / (name + ".gz" if gz else name)).write_bytes(gzip.compress(raw) if gz else raw)
    return folder


def test_idx_loaders_read_folders_gzipped_or_not(tmp_path):
    for gz in (True, False):
        folder = write_idx(tmp_path / f"gz{gz}", gz=gz)
        (x, y), (xt, yt) = load_mnist(folder, verify=False)
        assert x.shape == (6, 28, 28, 1) and xt.shape == (4, 28, 28, 1) and y.tolist() == [0, 1, 2, 3, 4, 5]
        assert y.dtype == np.int64 and x.dtype == np.uint8
    (x2, _), _ = load_fashion_mnist(folder)  # the earlier signature: a folder, no checks
    np.testing.assert_array_equal(x2, x)


def test_idx_verify_and_errors(tmp_path):
    folder = write_idx(tmp_path / "mnist")
    with pytest.raises(DataError, match="6 train images of 28x28, not the official 60000 of 28x28 of MNIST"):
        load_mnist(folder)
    assert not idx._official_md5("mnist", folder / "train-images-idx3-ubyte.gz")
    (folder / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(np.full(4, 12, np.uint8))))
    with pytest.raises(DataError, match="labels must lie in 0..9, found 12..12"):
        load_mnist(folder, verify=False)
    (folder / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(np.zeros(3, np.uint8))))
    with pytest.raises(DataError, match="4 t10k images but labels of shape \\(3,\\)"):
        load_mnist(folder, verify=False)
    (folder / "t10k-labels-idx1-ubyte.gz").write_bytes(b"not gzip")
    with pytest.raises(DataError, match="not a readable gzip file"):
        load_mnist(folder, verify=False)
    (folder / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match="no MNIST IDX files there \\(missing t10k-labels-idx1-ubyte"):
        load_mnist(folder, verify=False)
    with pytest.raises(ValueError, match="unknown IDX data set 'kmnist'"):
        load_idx_dataset("kmnist", folder)


def test_idx_search_and_offline_download(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HDL_DATA", str(tmp_path / "data"))
    write_idx(tmp_path / "data" / "fashion-mnist")
    (x, _), _ = load_idx_dataset("fashion-mnist", verify=False)  # found under $HDL_DATA/fashion-mnist
    assert x.shape == (6, 28, 28, 1)
    monkeypatch.setattr(idx, "FASHION_MNIST", tmp_path / "no-debian-package")
    monkeypatch.setitem(idx.DATASETS["mnist"], "url", "http://127.0.0.1:9/")  # nothing listens: refused at once
    with pytest.raises(DataError, match="MNIST .* is not on this machine and http://127.0.0.1:9/train-images"
                       ".* cannot be reached .*--data or HDL_DATA"):
        load_mnist()
    with pytest.raises(DataError, match="MNIST not found: pass its folder"):
        load_mnist(allow_download=False)


def test_published_checksums_are_recorded():
    """The MD5s of the official .gz files (torchvision's and Zalando's published values)."""
    assert idx.DATASETS["mnist"]["md5"]["train-images-idx3-ubyte.gz"] == "f68b3c2dcbeaaa9fbdd348bbdeb94873"
    assert idx.DATASETS["fashion-mnist"]["md5"]["t10k-labels-idx1-ubyte.gz"] == "bb300cfdad3c16e7a12a480ee83cd310"
    assert all(len(d) == 32 for spec in idx.DATASETS.values() for d in spec["md5"].values())


# -- image files for hdl predict ------------------------------------------------------------------------------

def test_read_images_and_channels(tmp_path):
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4)
    np.save(tmp_path / "g.npy", grey)
    np.save(tmp_path / "f.npy", grey / 255.0)  # floats in [0, 1]: fractions of full scale
    np.save(tmp_path / "s.npy", np.stack([grey, grey]))
    assert read_images(tmp_path / "g.npy").shape == (1, 3, 4, 1)
    np.testing.assert_array_equal(read_images(tmp_path / "f.npy")[0, ..., 0], grey)
    assert read_images(tmp_path / "s.npy").shape == (1, 2, 3, 4)  # (H, W, C) with C = 4 (RGBA) unless told
    assert read_images(tmp_path / "s.npy", size=(3, 4)).shape == (2, 3, 4, 1)  # two grey images of 3x4
    rgb, note = fit_channels(read_images(tmp_path / "g.npy"), 3, "g.npy")
    assert rgb.shape == (1, 3, 4, 3) and "grey to RGB" in note
    colour = np.zeros((1, 3, 4, 3), np.uint8)
    colour[..., 0] = 9
    with pytest.raises(ValueError, match="a colour image, but the model takes grey images"):
        fit_channels(colour, 1, "c.png")
    rgba = np.full((1, 3, 4, 4), 200, np.uint8)
    rgba[0, 0, 0, 3] = 10
    with pytest.raises(ValueError, match="transparent pixels"):
        fit_channels(rgba, 3, "t.png")
    np.save(tmp_path / "bad.npy", np.zeros(5))
    with pytest.raises(ValueError, match="expected an image"):
        read_images(tmp_path / "bad.npy")


def test_picture_readers_with_and_without_pillow(tmp_path, monkeypatch):
    import sys

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rgb = np.random.default_rng(0).integers(0, 256, (5, 6, 3)).astype(np.uint8)
    plt.imsave(tmp_path / "a.png", rgb)
    np.testing.assert_array_equal(read_images(tmp_path / "a.png")[0], np.dstack([rgb, np.full((5, 6), 255)]))
    pytest.importorskip("PIL").Image.fromarray(rgb).save(tmp_path / "a.jpg", quality=95)
    jpeg = read_images(tmp_path / "a.jpg")
    assert jpeg.shape == (1, 5, 6, 3) and np.abs(jpeg[0].astype(int) - rgb).mean() < 40  # lossy
    monkeypatch.setitem(sys.modules, "PIL", None)  # Pillow not installed
    for name in ("a.png", "a.jpg"):
        with pytest.raises(ImportError, match=r"needs Pillow: pip install 'hdl-higham\[plot\]'"):
            read_images(tmp_path / name)
    np.save(tmp_path / "a.npy", rgb)  # arrays need neither
    np.testing.assert_array_equal(read_images(tmp_path / "a.npy")[0], rgb)
