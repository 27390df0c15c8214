"""CIFAR-10 in its official binary version (Krizhevsky, "Learning Multiple Layers of Features
from Tiny Images", 2009): data_batch_1..5.bin and test_batch.bin, 10,000 records of 3,073 bytes
each (a label byte, then 1,024 red, 1,024 green and 1,024 blue bytes of a 32x32 image).

load_cifar10() looks for the data, in order: the folder (or archive) it is given, $HDL_DATA, the
cache ~/.cache/hdl, and ../shared/data of a development checkout; failing those it downloads the
official archive, checks its MD5 and caches it. Images come back as uint8 (N, 32, 32, 3) (NHWC).
"""
from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import numpy as np

from hdl.data._common import DataError, cache_dir, fetch, locate, md5, write_atomically

URL = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
ARCHIVE_MD5 = "c32a1d4ab5d03f1284b67883e8d87530"
FILE_MD5 = {
    "data_batch_1.bin": "5dd7e06a14cb22eb9f671a540d1b7c25",
    "data_batch_2.bin": "5ea93a67294ea407fff1d09f752e9692",
    "data_batch_3.bin": "942cd6a4bcdd0dd3c604fbe906cb4421",
    "data_batch_4.bin": "ae636b3ba5c66a11e91e8cb52e771fcb",
    "data_batch_5.bin": "53f37980c15c3d472c316c40844f3f0d",
    "test_batch.bin": "803d5f7f4d78ea53de84dbe85f74fb6d",
}
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
RECORD = 1 + 3 * 32 * 32
TRAIN_FILES = [f"data_batch_{i}.bin" for i in range(1, 6)]


def parse_batch(raw: bytes, name: str = "batch") -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 (n, 32, 32, 3), labels int64 (n,)) from the bytes of one .bin file."""
    if len(raw) == 0 or len(raw) % RECORD:
        raise DataError(f"{name}: {len(raw)} bytes is not a whole number of {RECORD}-byte CIFAR-10 records")
    records = np.frombuffer(raw, dtype=np.uint8).reshape(-1, RECORD)
    labels = records[:, 0].astype(np.int64)
    if labels.max() > 9:
        bad = int(np.argmax(labels > 9))
        raise DataError(f"{name}: record {bad} has label {labels[bad]}, outside 0..9")
    images = records[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), labels


def _read_folder(folder: Path, verify: bool):
    missing = [f for f in TRAIN_FILES + ["test_batch.bin"] if not (folder / f).is_file()]
    if missing:
        raise DataError(f"{folder}: missing {', '.join(missing)} (expected the official binary version: "
                        "data_batch_1.bin .. data_batch_5.bin and test_batch.bin)")
    parts = {}
    for name in TRAIN_FILES + ["test_batch.bin"]:
        raw = (folder / name).read_bytes()
        if verify and md5(raw) != FILE_MD5[name]:
            raise DataError(f"{folder / name}: MD5 {md5(raw)} differs from the official {FILE_MD5[name]} "
                            "(corrupt or not CIFAR-10); pass verify=False to read it anyway")
        parts[name] = parse_batch(raw, str(folder / name))
    return parts


def _read_archive(path: Path, verify: bool):
    raw = path.read_bytes()
    if verify and md5(raw) != ARCHIVE_MD5:
        raise DataError(f"{path}: MD5 {md5(raw)} differs from the official archive's {ARCHIVE_MD5}")
    parts = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(raw), mode="r:gz") as tar:
            for member in tar.getmembers():
                name = os.path.basename(member.name)
                if name in FILE_MD5:
                    parts[name] = parse_batch(tar.extractfile(member).read(), f"{path}:{member.name}")
    except tarfile.TarError as err:
        raise DataError(f"{path}: not a readable .tar.gz archive ({err})") from None
    missing = sorted(set(FILE_MD5) - set(parts))
    if missing:
        raise DataError(f"{path}: the archive lacks {', '.join(missing)}")
    return parts


def _locate(root):
    return locate(root, "cifar-10-batches-bin", "cifar-10-binary.tar.gz", "test_batch.bin",
                  "CIFAR-10 binary data", "a folder of data_batch_*.bin and test_batch.bin, or cifar-10-binary.tar.gz")


def download(cache: Path | None = None, timeout: float = 30.0) -> Path:
    """Fetches the official archive into the cache, checking its MD5; returns its path."""
    raw = fetch(URL, "CIFAR-10 (cifar-10-binary.tar.gz)", ARCHIVE_MD5, timeout)
    return write_atomically(Path(cache or cache_dir()) / "cifar-10-binary.tar.gz", raw)


def load_cifar10(root=None, verify: bool = True, allow_download: bool = True):
    """((train images, train labels), (test images, test labels)): 50,000 and 10,000 images,
    uint8 (N, 32, 32, 3), labels int64 in 0..9."""
    path = _locate(root)
    if path is None:
        if not allow_download:
            raise DataError("CIFAR-10 not found: pass its folder (--data or HDL_DATA)")
        path = download()
    parts = _read_folder(path, verify) if path.is_dir() else _read_archive(path, verify)
    train_x = np.concatenate([parts[f][0] for f in TRAIN_FILES])
    train_y = np.concatenate([parts[f][1] for f in TRAIN_FILES])
    return (train_x, train_y), parts["test_batch.bin"]
