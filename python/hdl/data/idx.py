"""IDX files (the MNIST format; Fashion-MNIST ships in it): a magic number giving the element
type and the number of dimensions, the dimensions as big-endian 32-bit integers, then the data.
Gzipped files (.gz) are read as they are.

load_mnist() and load_fashion_mnist() read the four official files (train-images-idx3-ubyte,
train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte, gzipped or not) from a
folder: the one given, else $HDL_DATA, ~/.cache/hdl, ../shared/data (each also in a subfolder
'mnist' or 'fashion-mnist'), Debian's /usr/share/datasets/fashion-mnist; failing those they download
the official .gz files (MD5 checked) into ~/.cache/hdl/<name>. verify=True accepts a local .gz file
whose MD5 is the published one, or else (an unzipped or recompressed copy) one with the official
counts and shapes (60,000 and 10,000 images of 28x28, labels 0..9); verify=False reads any IDX files."""
from __future__ import annotations

import gzip
import math
from pathlib import Path

import numpy as np

from hdl.data._common import DataError, cache_dir, candidates, fetch, md5, write_atomically

TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def parse_idx(raw: bytes, name: str = "IDX data") -> np.ndarray:
    """The array an IDX file's (uncompressed) bytes hold."""
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in TYPES:
        raise ValueError(f"{name}: not an IDX file (bad magic number {raw[:4].hex()})")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{name}: truncated IDX header")
    shape = tuple(int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(TYPES[raw[2]])
    expected = math.prod(shape) * dtype.itemsize  # Python ints: np.prod would wrap around past 2**63
    if len(raw) - header != expected or expected >= 2**62:
        raise ValueError(f"{name}: {len(raw) - header} bytes of data, expected {expected} for shape {shape}")
    if 0 in shape and math.prod(d for d in shape if d) >= 2**62:  # numpy refuses such a shape even when empty
        raise ValueError(f"{name}: shape {shape} is too large")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def read_idx(path) -> np.ndarray:
    path = Path(path)
    raw = path.read_bytes()
    if path.suffix == ".gz":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as err:
            raise ValueError(f"{path}: not a readable gzip file ({err})") from None
    return parse_idx(raw, str(path))


FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")  # Debian's dataset-fashion-mnist
FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
DATASETS = {
    "mnist": {
        "title": "MNIST",
        "url": "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "md5": {"train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
                "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
                "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
                "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c"},
        "folders": ("mnist", "MNIST/raw"),
        "classes": tuple("0123456789"),
    },
    "fashion-mnist": {
        "title": "Fashion-MNIST",
        "url": "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
        "md5": {"train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
                "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
                "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
                "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310"},
        "folders": ("fashion-mnist", "FashionMNIST/raw"),
        "classes": ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                    "Ankle boot"),
    },
}
OFFICIAL_COUNTS = {"train": 60_000, "t10k": 10_000}


def _dataset(name):
    if name not in DATASETS:
        raise ValueError(f"unknown IDX data set {name!r}; choose one of {', '.join(DATASETS)}")
    return DATASETS[name]


def _file(folder: Path, name: str) -> Path | None:
    for path in (folder / f"{name}.gz", folder / name):
        if path.is_file():
            return path
    return None


def _has_files(folder: Path) -> bool:
    return all(_file(folder, n) for n in FILES)


def locate(dataset: str, root=None) -> Path | None:
    """The folder holding the data set's four files, or None; with root given, root (or its subfolder
    named after the data set), else a DataError naming what is missing."""
    spec = _dataset(dataset)
    if root is not None:
        root = Path(root)
        for folder in (root, *(root / f for f in spec["folders"])):
            if _has_files(folder):
                return folder
        missing = [n for n in FILES if not _file(root, n)]
        raise DataError(f"{root}: no {spec['title']} IDX files there (missing {', '.join(missing)}, "
                        "each gzipped (.gz) or not)")
    bases = list(candidates())
    for base in bases:
        for folder in (base / f for f in spec["folders"]):
            if _has_files(folder):
                return folder
    if dataset == "fashion-mnist" and _has_files(FASHION_MNIST):
        return FASHION_MNIST
    return None


def _check(dataset: str, path: Path, part: str, images: np.ndarray, labels: np.ndarray, verify: bool):
    """Images (n, h, w) uint8 and n labels 0..9; with verify the official count and 28x28 unless the
    .gz file's MD5 is the published one."""
    if images.ndim != 3 or images.dtype != np.uint8:
        raise DataError(f"{path}: {part} images must be uint8 of shape (N, height, width), got {images.dtype} "
                        f"{images.shape}")
    if labels.ndim != 1 or len(labels) != len(images):
        raise DataError(f"{path}: {len(images)} {part} images but labels of shape {labels.shape}")
    if len(labels) and (labels.min() < 0 or labels.max() > 9):
        raise DataError(f"{path}: {part} labels must lie in 0..9, found {labels.min()}..{labels.max()}")
    if verify and (images.shape[1:] != (28, 28) or len(images) != OFFICIAL_COUNTS[part]):
        raise DataError(f"{path}: {len(images)} {part} images of {images.shape[1]}x{images.shape[2]}, not the "
                        f"official {OFFICIAL_COUNTS[part]} of 28x28 of {DATASETS[dataset]['title']}; pass "
                        "verify=False (--no-verify) to read other IDX files")


def _official_md5(dataset: str, path: Path) -> bool:
    """Whether a .gz file is the published one; a DataError if it is the other data set's."""
    if path.suffix != ".gz":
        return False
    digest = md5(path.read_bytes())
    for other, spec in DATASETS.items():
        if digest == spec["md5"].get(path.name):
            if other != dataset:
                raise DataError(f"{path} is {spec['title']}'s file, not {DATASETS[dataset]['title']}'s")
            return True
    return False


def read_folder(dataset: str, folder, verify: bool = True):
    """((train images (N, 28, 28, 1) uint8, labels int64), (test images, labels)) from a folder."""
    folder = Path(folder)
    out = []
    for part in ("train", "t10k"):
        paths = [_file(folder, f"{part}-{kind}") for kind in ("images-idx3-ubyte", "labels-idx1-ubyte")]
        missing = [f"{part}-{k}" for k, p in zip(("images-idx3-ubyte", "labels-idx1-ubyte"), paths) if p is None]
        if missing:
            raise DataError(f"{folder}: missing {', '.join(missing)} (gzipped or not)")
        try:
            images, labels = (read_idx(p) for p in paths)
        except ValueError as err:
            raise DataError(str(err)) from None
        official = verify and all(_official_md5(dataset, p) for p in paths)
        _check(dataset, paths[0], part, images, labels, verify and not official)
        out.append((np.ascontiguousarray(images[..., None]), labels.astype(np.int64)))
    return tuple(out)


def download(dataset: str, cache: Path | None = None, timeout: float = 30.0) -> Path:
    """Fetches the four official .gz files into cache/<dataset>, checking their MD5; returns the folder."""
    spec = _dataset(dataset)
    folder = Path(cache or cache_dir()) / dataset
    for name, digest in spec["md5"].items():
        if not (folder / name).is_file():
            raw = fetch(spec["url"] + name, f"{spec['title']} ({name})", digest, timeout)
            write_atomically(folder / name, raw)
    return folder


def load_idx_dataset(dataset: str, root=None, verify: bool = True, allow_download: bool = True):
    """MNIST or Fashion-MNIST ('mnist', 'fashion-mnist'): ((train images uint8 (N, 28, 28, 1), labels
    int64), (test images, labels)); where it looks and what verify means: the module's docstring."""
    folder = locate(dataset, root)
    if folder is None:
        if not allow_download:
            raise DataError(f"{_dataset(dataset)['title']} not found: pass its folder (--data or HDL_DATA)")
        folder = download(dataset)
    return read_folder(dataset, folder, verify)


def load_mnist(root=None, verify: bool = True, allow_download: bool = True):
    """MNIST's 60,000 training and 10,000 test digits: see load_idx_dataset."""
    return load_idx_dataset("mnist", root, verify, allow_download)


def load_fashion_mnist(root=FASHION_MNIST, verify: bool = False):
    """((train images uint8 (60000, 28, 28, 1), labels), (test images, labels)) from Debian's
    dataset-fashion-mnist (apt-get install dataset-fashion-mnist) or a folder of the four files
    (verify=True: the official ones; load_idx_dataset('fashion-mnist') also searches and downloads)."""
    return read_folder("fashion-mnist", root, verify)
