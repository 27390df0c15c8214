"""CIFAR-100 (the paper's "big sibling" of CIFAR-10) in its official binary version: the folder
cifar-100-binary of cifar-100-binary.tar.gz holds train.bin (50,000 records) and test.bin (10,000),
each record a coarse label byte (0..19), a fine label byte (0..99), then 1,024 red, 1,024 green and
1,024 blue bytes of a 32x32 image; fine_label_names.txt and coarse_label_names.txt name the classes.

load_cifar100() looks where load_cifar10() does (the folder or archive given, $HDL_DATA, ~/.cache/hdl,
../shared/data) and, failing those, downloads the archive and checks its published MD5. Fine labels by
default, coarse with label="coarse". Images come back as uint8 (N, 32, 32, 3) (NHWC).
"""
from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import numpy as np

from hdl.data._common import DataError, cache_dir, fetch, locate, md5, write_atomically

URL = "https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz"
ARCHIVE_MD5 = "03b5dce01913d631647c71ecec9e9cb8"
FOLDER = "cifar-100-binary"
RECORD = 2 + 3 * 32 * 32
LABELS = {"coarse": (0, 20), "fine": (1, 100)}  # the label's byte in a record, and the number of classes
COUNTS = {"train.bin": 50_000, "test.bin": 10_000}  # records in the official files


def _label_kind(label: str):
    if label not in LABELS:
        raise ValueError(f"label must be 'fine' (100 classes) or 'coarse' (20 superclasses), got {label!r}")
    return LABELS[label]


def parse_cifar100(raw: bytes, name: str = "batch", label: str = "fine") -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 (n, 32, 32, 3), labels int64 (n,)) from the bytes of train.bin or test.bin."""
    byte, classes = _label_kind(label)
    if len(raw) == 0 or len(raw) % RECORD:
        raise DataError(f"{name}: {len(raw)} bytes is not a whole number of {RECORD}-byte CIFAR-100 records")
    records = np.frombuffer(raw, dtype=np.uint8).reshape(-1, RECORD)
    for kind, (b, k) in LABELS.items():
        if records[:, b].max() >= k:
            bad = int(np.argmax(records[:, b] >= k))
            raise DataError(f"{name}: record {bad} has {kind} label {records[bad, b]}, outside 0..{k - 1}")
    images = records[:, 2:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), records[:, byte].astype(np.int64)


def _locate(root):
    return locate(root, FOLDER, "cifar-100-binary.tar.gz", "test.bin",
                  "CIFAR-100 binary data", "a folder with train.bin and test.bin, or cifar-100-binary.tar.gz")


def _read_files(path: Path, verify: bool) -> dict[str, bytes]:
    """{file name: bytes} of train.bin, test.bin and the label-name files found in a folder or archive."""
    wanted = ("train.bin", "test.bin", "fine_label_names.txt", "coarse_label_names.txt")
    if path.is_dir():
        files = {n: (path / n).read_bytes() for n in wanted if (path / n).is_file()}
    else:
        raw = path.read_bytes()
        if verify and md5(raw) != ARCHIVE_MD5:
            raise DataError(f"{path}: MD5 {md5(raw)} differs from the official archive's {ARCHIVE_MD5}")
        try:
            with tarfile.open(fileobj=io.BytesIO(raw), mode="r:gz") as tar:
                files = {os.path.basename(m.name): tar.extractfile(m).read() for m in tar.getmembers()
                         if m.isfile() and os.path.basename(m.name) in wanted}
        except tarfile.TarError as err:
            raise DataError(f"{path}: not a readable .tar.gz archive ({err})") from None
    missing = [n for n in ("train.bin", "test.bin") if n not in files]
    if missing:
        raise DataError(f"{path}: missing {', '.join(missing)} (expected the official binary version)")
    if verify:
        for n, count in COUNTS.items():
            if len(files[n]) != count * RECORD:
                raise DataError(f"{path}: {n} holds {len(files[n]) / RECORD:g} records, the official file "
                                f"{count}; pass verify=False (--no-verify) to read other files")
    return files


def _names(files: dict, label: str) -> tuple[str, ...]:
    k = _label_kind(label)[1]
    text = files.get(f"{label}_label_names.txt", b"").decode("utf-8", "replace")
    names = [line.strip() for line in text.splitlines() if line.strip()]
    return tuple(names) if len(names) == k else tuple(f"class {i}" for i in range(k))


def download(cache: Path | None = None, timeout: float = 30.0) -> Path:
    """Fetches the official archive into the cache, checking its MD5; returns its path."""
    raw = fetch(URL, "CIFAR-100 (cifar-100-binary.tar.gz)", ARCHIVE_MD5, timeout)
    return write_atomically(Path(cache or cache_dir()) / "cifar-100-binary.tar.gz", raw)


def load_cifar100(root=None, label: str = "fine", verify: bool = True, allow_download: bool = True,
                  with_names: bool = False):
    """((train images, labels), (test images, labels)): 50,000 and 10,000 uint8 (N, 32, 32, 3) images
    and int64 labels, fine (0..99) or coarse (0..19). with_names: also the class names (from
    {label}_label_names.txt, else 'class 0', 'class 1', ...) as a third item."""
    _label_kind(label)
    path = _locate(root)
    if path is None:
        if not allow_download:
            raise DataError("CIFAR-100 not found: pass its folder (--data or HDL_DATA)")
        path = download()
    files = _read_files(path, verify)
    train = parse_cifar100(files["train.bin"], str(path / "train.bin"), label)
    test = parse_cifar100(files["test.bin"], str(path / "test.bin"), label)
    return (train, test, _names(files, label)) if with_names else (train, test)
